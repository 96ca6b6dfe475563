from __future__ import annotations

from typing import Any, cast

import pytest
from fastapi import BackgroundTasks, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relieflink.api.deps import CurrentUser, SessionDep
from relieflink.catalog import service as catalog
from relieflink.catalog.schemas import ItemCreate
from relieflink.db import get_sessionmaker
from relieflink.idempotency import service as idempotency_service
from relieflink.models import IdempotencyRecord, Item, Role, StockBalance
from relieflink.stock import service as stock_service
from tests.factories import headers_for
from tests.stock.factories import make_item, make_lot, make_warehouse

ITEM = {"sku": "IDEM-1", "name": "Rice", "name_zh": "米", "category": "food", "unit": "bag"}
URL = "/api/v1/stock/reservations"


def test_a_retry_gets_the_first_answer_and_does_nothing_twice(
    db: Session, client: TestClient
) -> None:
    headers = headers_for(db, client, Role.coordinator) | {"Idempotency-Key": "k-1"}
    first = client.post("/api/v1/items", json=ITEM, headers=headers)
    again = client.post("/api/v1/items", json=ITEM, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert db.scalar(select(func.count()).select_from(Item)) == 1


def test_the_same_key_with_another_payload_is_refused(db: Session, client: TestClient) -> None:
    headers = headers_for(db, client, Role.coordinator) | {"Idempotency-Key": "k-2"}
    assert client.post("/api/v1/items", json=ITEM, headers=headers).status_code == 201
    other = client.post("/api/v1/items", json=ITEM | {"sku": "IDEM-2"}, headers=headers)
    assert other.status_code == 422
    assert db.scalar(select(func.count()).select_from(Item)) == 1


def test_a_retry_while_the_first_is_running_gets_409(db: Session, client: TestClient) -> None:
    headers = headers_for(db, client, Role.coordinator) | {"Idempotency-Key": "k-3"}
    first = client.post("/api/v1/items", json=ITEM, headers=headers)
    record = db.scalars(select(IdempotencyRecord)).one()
    record.response_status = None  # as if the first request had not finished yet
    db.commit()
    retry = client.post("/api/v1/items", json=ITEM, headers=headers)
    assert first.status_code == 201 and retry.status_code == 409


def test_an_error_answer_is_replayed_too(db: Session, client: TestClient) -> None:
    headers = headers_for(db, client, Role.coordinator) | {"Idempotency-Key": "k-4"}
    bad = ITEM | {"category": "spaceships"}
    assert client.post("/api/v1/items", json=bad, headers=headers).status_code == 422
    assert client.post("/api/v1/items", json=bad, headers=headers).status_code == 422


def _reservation_setup(db: Session, client: TestClient) -> tuple[dict[str, str], dict[str, Any]]:
    wh, item = make_warehouse(db), make_item(db)
    make_lot(db, wh, item, 10)
    headers = headers_for(db, client, Role.warehouse)
    body = {"warehouse_id": wh.id, "item_id": item.id, "quantity": 4, "reference": "alloc:9"}
    return headers, body


def _reserved(db: Session) -> int:
    db.commit()  # end the test session's read transaction: see what the requests committed
    return int(db.scalar(select(func.coalesce(func.sum(StockBalance.reserved), 0))) or 0)


def test_the_answer_is_stored_with_the_work(db: Session, client: TestClient) -> None:
    headers, body = _reservation_setup(db, client)
    first = client.post(URL, json=body, headers=headers | {"Idempotency-Key": "w-1"})
    assert first.status_code == 201
    record = db.scalars(select(IdempotencyRecord)).one()
    assert (record.response_status, record.response_body) == (201, first.json())
    assert _reserved(db) == 4


def test_a_request_that_fails_keeps_neither_its_work_nor_its_key(
    db: Session, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers, body = _reservation_setup(db, client)
    headers |= {"Idempotency-Key": "w-2"}
    real = stock_service.reserve

    def reserve_then_fail(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)
        raise RuntimeError("the server failed after the work")

    monkeypatch.setattr(stock_service, "reserve", reserve_then_fail)
    with TestClient(client.app, raise_server_exceptions=False) as failing:
        assert failing.post(URL, json=body, headers=headers).status_code == 500
    assert _reserved(db) == 0
    assert db.scalars(select(IdempotencyRecord)).all() == []
    monkeypatch.setattr(stock_service, "reserve", real)
    assert client.post(URL, json=body, headers=headers).status_code == 201  # a retry does it
    assert _reserved(db) == 4


def test_when_the_answer_cannot_be_stored_the_work_is_undone(
    db: Session, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The answer is stored in the route's own transaction: both are kept, or neither."""
    headers, body = _reservation_setup(db, client)
    headers |= {"Idempotency-Key": "w-3"}

    def cannot_store(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(idempotency_service, "complete", cannot_store)
    with TestClient(client.app, raise_server_exceptions=False) as failing:
        assert failing.post(URL, json=body, headers=headers).status_code == 500
    assert _reserved(db) == 0
    assert db.scalars(select(IdempotencyRecord)).all() == []


def test_a_keyed_request_with_a_bad_token_claims_nothing(db: Session, client: TestClient) -> None:
    headers, body = _reservation_setup(db, client)
    client.post("/api/v1/auth/sign-out", headers=headers)
    for bad in (headers, {"Authorization": "Bearer not-a-token"}):
        r = client.post(URL, json=body, headers=bad | {"Idempotency-Key": "w-4"})
        assert r.status_code == 401
    assert db.scalars(select(IdempotencyRecord)).all() == []
    assert _reserved(db) == 0


def test_background_tasks_of_a_keyed_request_see_its_committed_work(
    db: Session, client: TestClient
) -> None:
    """The answer is stored and the work committed as the last chunk is sent, before the
    route's background tasks run (a planning job started by a keyed POST reads its plan)."""
    seen: list[tuple[int, list[int | None]]] = []

    def look() -> None:
        with get_sessionmaker()() as session:
            items = session.scalar(select(func.count()).where(Item.sku == "BG-1")) or 0
            answers = list(session.scalars(select(IdempotencyRecord.response_status)))
            seen.append((items, answers))

    def create(
        background: BackgroundTasks, session: SessionDep, user: CurrentUser
    ) -> dict[str, int]:
        item = catalog.create_item(session, ItemCreate.model_validate(ITEM | {"sku": "BG-1"}),
                                   actor=user)  # fmt: skip
        background.add_task(look)
        return {"id": item.id}

    app = cast(FastAPI, client.app)
    app.add_api_route("/test/background", create, methods=["POST"], status_code=201)
    headers = headers_for(db, client, Role.coordinator) | {"Idempotency-Key": "bg-1"}
    assert client.post("/test/background", json={}, headers=headers).status_code == 201
    assert seen == [(1, [201])]
