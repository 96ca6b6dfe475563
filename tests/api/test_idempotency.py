from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relieflink.models import IdempotencyRecord, Item, Role
from tests.factories import headers_for

ITEM = {"sku": "IDEM-1", "name": "Rice", "name_zh": "米", "category": "food", "unit": "bag"}


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
