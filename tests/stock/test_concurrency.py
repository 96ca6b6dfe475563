"""Concurrent reservations never oversell (PostgreSQL: row locks on the balance rows)."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relieflink.db import get_sessionmaker
from relieflink.models import OrgKind, Role, StockBalance
from relieflink.stock import service as stock
from tests.conftest import POSTGRES_URL
from tests.factories import make_org, make_user, sign_in
from tests.stock.factories import make_item, make_lot, make_warehouse

pytestmark = pytest.mark.skipif(
    not (POSTGRES_URL or "").startswith("postgresql"),
    reason="the concurrency test needs RELIEFLINK_TEST_DATABASE_URL on PostgreSQL",
)

THREADS = 16
ROUNDS = 4
ON_HAND = 100


def test_sixteen_threads_reserving_the_same_lot_never_oversell(
    db: Session, client: TestClient
) -> None:
    wh, item = make_warehouse(db), make_item(db)
    make_lot(db, wh, item, ON_HAND, donor=make_org(db, OrgKind.donor))
    users = [make_user(db, Role.warehouse) for _ in range(THREADS)]
    db.commit()
    headers = [sign_in(client, u) for u in users]
    barrier = threading.Barrier(THREADS)

    def worker(n: int) -> list[tuple[int, int, str]]:
        out = []
        barrier.wait()
        for r in range(ROUNDS):
            quantity = 3 + (n + r) % 5
            body = {
                "warehouse_id": wh.id,
                "item_id": item.id,
                "quantity": quantity,
                "reference": f"t{n}:r{r}",
            }
            key = {"Idempotency-Key": f"c-{n}-{r}"}
            response = client.post(
                "/api/v1/stock/reservations", json=body, headers=headers[n] | key
            )
            out.append((response.status_code, quantity, response.text))
        return out

    with ThreadPoolExecutor(THREADS) as pool:
        results = [x for part in pool.map(worker, range(THREADS)) for x in part]

    statuses = Counter(status for status, _, _ in results)
    assert set(statuses) <= {201, 409}, statuses
    for status, _, text in results:
        if status == 409:
            assert "available" in text  # a clear refusal, naming what is left
    granted = sum(q for status, q, _ in results if status == 201)
    asked = sum(q for _, q, _ in results)
    assert asked > ON_HAND and statuses[409] > 0  # the test really contended
    with get_sessionmaker()() as session:
        reserved = session.scalar(
            select(func.sum(StockBalance.reserved)).where(StockBalance.warehouse_id == wh.id)
        )
        assert reserved == granted <= ON_HAND
        # Everything a refusal left over was really too little for the last asks.
        assert ON_HAND - granted < max(q for _, q, _ in results)
        assert stock.check_ledger(session) == []
