"""Concurrent reservations never oversell (PostgreSQL: row locks on the balance rows)."""

from __future__ import annotations

import itertools
import json
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relieflink.db import get_sessionmaker
from relieflink.errors import Conflict
from relieflink.models import IdempotencyRecord, OrgKind, Role, StockBalance
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


def test_threads_reserving_through_the_service_keep_fefo_and_never_oversell(db: Session) -> None:
    """The single-statement reservation path, straight on the service, each thread in its own
    transaction: FEFO holds under contention (a later lot is touched only once every earlier one
    is full), an expired lot is never reserved, and nothing is oversold."""
    today = stock.today()
    wh, item = make_warehouse(db), make_item(db)
    donor = make_org(db, OrgKind.donor)
    expired = make_lot(db, wh, item, 40, donor=donor, expiry=today - timedelta(days=1))
    lots = [
        make_lot(db, wh, item, 7, donor=donor, expiry=today + timedelta(days=2)),
        make_lot(db, wh, item, 11, donor=donor, expiry=today + timedelta(days=9)),
        make_lot(db, wh, item, 13, donor=donor),  # no expiry: last
    ]
    on_hand = sum(lot.quantity for lot in lots)
    db.commit()
    barrier = threading.Barrier(THREADS)

    def worker(n: int) -> list[tuple[int, int]]:
        out = []
        barrier.wait()
        for r in range(ROUNDS):
            quantity = 1 + (n * 3 + r) % 4
            with get_sessionmaker()() as session:
                try:
                    moves = stock.reserve(
                        session, warehouse_id=wh.id, item_id=item.id, quantity=quantity,
                        reference=f"svc:{n}:{r}", actor=None,
                    )  # fmt: skip
                    session.commit()
                except Conflict:
                    session.rollback()
                    out.append((quantity, 0))
                    continue
            assert sum(m.d_reserved for m in moves) == quantity
            out.append((quantity, quantity))
        return out

    with ThreadPoolExecutor(THREADS) as pool:
        results = [x for part in pool.map(worker, range(THREADS)) for x in part]

    granted = sum(g for _, g in results)
    assert sum(q for q, _ in results) > on_hand and granted < sum(q for q, _ in results)
    with get_sessionmaker()() as session:
        rows = {
            b.lot_id: b
            for b in session.scalars(select(StockBalance).where(StockBalance.warehouse_id == wh.id))
        }
        assert rows[expired.id].reserved == 0
        held = [rows[lot.id] for lot in lots]
        assert sum(b.reserved for b in held) == granted <= on_hand
        assert all(0 <= b.reserved <= b.on_hand for b in held)
        for earlier, later in itertools.pairwise(held):
            assert later.reserved == 0 or earlier.reserved == earlier.on_hand  # FEFO
        assert stock.check_ledger(session) == []


def test_threads_reserving_with_one_reference_reserve_once(db: Session) -> None:
    """The reference check runs under the row lock: racing reservations with the same
    reference reserve once and all get that reservation back."""
    wh, item = make_warehouse(db), make_item(db)
    make_lot(db, wh, item, 100, donor=make_org(db, OrgKind.donor))
    db.commit()
    barrier = threading.Barrier(THREADS)

    def worker(_n: int) -> list[tuple[int, int]]:
        barrier.wait()
        with get_sessionmaker()() as session:
            moves = stock.reserve(
                session, warehouse_id=wh.id, item_id=item.id, quantity=5,
                reference="alloc:same", actor=None,
            )  # fmt: skip
            session.commit()
            return sorted((m.id, m.d_reserved) for m in moves)

    with ThreadPoolExecutor(THREADS) as pool:
        answers = list(pool.map(worker, range(THREADS)))
    assert all(a == answers[0] for a in answers)
    with get_sessionmaker()() as session:
        reserved = session.scalar(
            select(func.sum(StockBalance.reserved)).where(StockBalance.warehouse_id == wh.id)
        )
        assert reserved == 5
        assert stock.check_ledger(session) == []


def test_racing_retries_with_one_idempotency_key_do_the_work_once(
    db: Session, client: TestClient
) -> None:
    """The claim commits before the work: a retry racing the first request gets 409 (still
    running) or, once it is done, the same answer; the stock is reserved once."""
    wh, item = make_warehouse(db), make_item(db)
    make_lot(db, wh, item, 50, donor=make_org(db, OrgKind.donor))
    user = make_user(db, Role.warehouse)
    db.commit()
    headers = sign_in(client, user) | {"Idempotency-Key": "race-1"}
    body = {"warehouse_id": wh.id, "item_id": item.id, "quantity": 3, "reference": "race"}
    barrier = threading.Barrier(THREADS)

    def worker(_n: int) -> tuple[int, str]:
        barrier.wait()
        r = client.post("/api/v1/stock/reservations", json=body, headers=headers)
        return r.status_code, r.text

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(worker, range(THREADS)))
    statuses = Counter(s for s, _ in results)
    assert set(statuses) <= {201, 409} and statuses[201] >= 1, statuses
    answers = [json.loads(text) for s, text in results if s == 201]
    assert all(a == answers[0] for a in answers)  # replays are the first answer
    with get_sessionmaker()() as session:
        reserved = session.scalar(
            select(func.sum(StockBalance.reserved)).where(StockBalance.warehouse_id == wh.id)
        )
        assert reserved == 3
        record = session.scalars(select(IdempotencyRecord)).one()
        assert record.response_status == 201
        assert stock.check_ledger(session) == []
