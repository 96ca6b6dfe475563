from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relieflink.models import Household, Role
from tests.factories import headers_for, make_community


def test_invalid_body_gets_problem_details_with_field_paths(
    db: Session, client: TestClient
) -> None:
    community = make_community(db)
    headers = headers_for(db, client, Role.coordinator)
    response = client.post(
        "/api/v1/households",
        json={"code": "H1", "community_id": community.id, "size": 0, "phone": "call me"},
        headers=headers,
    )
    assert response.status_code == 422
    body = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert {"type", "title", "status", "detail", "errors"} <= body.keys()
    locs = {tuple(e["loc"]) for e in body["errors"]}
    assert ("body", "size") in locs and ("body", "phone") in locs
    assert db.scalar(select(func.count()).select_from(Household)) == 0


def test_domain_validation_names_the_field(db: Session, client: TestClient) -> None:
    headers = headers_for(db, client, Role.coordinator)
    response = client.post(
        "/api/v1/households", json={"code": "H1", "community_id": 9999, "size": 2}, headers=headers
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"loc": ["community_id"], "msg": "no community with id 9999", "type": "value_error"}
    ]


def test_not_found_and_conflict_are_problems(db: Session, client: TestClient) -> None:
    headers = headers_for(db, client, Role.coordinator)
    assert client.get("/api/v1/items/424242", headers=headers).json()["status"] == 404
    item = {"sku": "X-1", "name": "X", "name_zh": "X", "category": "food", "unit": "bag"}
    assert client.post("/api/v1/items", json=item, headers=headers).status_code == 201
    again = client.post("/api/v1/items", json=item, headers=headers)
    assert again.status_code == 409
    assert again.json()["errors"][0]["loc"] == ["sku"]


def test_unknown_fields_are_refused_not_dropped(db: Session, client: TestClient) -> None:
    headers = headers_for(db, client, Role.coordinator)
    item = {
        "sku": "X-2",
        "name": "X",
        "name_zh": "X",
        "category": "food",
        "unit": "bag",
        "colour": "red",
    }
    response = client.post("/api/v1/items", json=item, headers=headers)
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "colour"]


def test_openapi_is_served(client: TestClient) -> None:
    spec = client.get("/api/v1/openapi.json").json()
    assert "/api/v1/households" in spec["paths"]
    assert "/api/v1/auth/sign-in" in spec["paths"]
