from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from relieflink.models import AuditEvent, Role
from tests.factories import headers_for, make_district, make_org


def test_community_create_read_update_list_and_audit(db: Session, client: TestClient) -> None:
    district = make_district(db)
    headers = headers_for(db, client, Role.coordinator)
    body = {
        "code": "C1",
        "name": "Garden",
        "name_zh": "花园",
        "district_id": district.id,
        "lat": 31.2,
        "lon": 121.4,
        "households": 10,
        "residents": 23,
        "lockdown_status": "sealed",
        "vehicles_allowed": False,
    }
    created = client.post("/api/v1/communities", json=body, headers=headers)
    assert created.status_code == 201, created.text
    cid = created.json()["id"]
    assert (
        client.get(f"/api/v1/communities/{cid}", headers=headers).json()["lockdown_status"]
        == "sealed"
    )
    changed = client.patch(
        f"/api/v1/communities/{cid}", json={"lockdown_status": "open"}, headers=headers
    )
    assert changed.json()["lockdown_status"] == "open"
    assert changed.json()["residents"] == 23  # fields not sent are left alone
    listed = client.get(
        "/api/v1/communities", params={"lockdown_status": "open"}, headers=headers
    ).json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == cid
    assert (
        client.get(
            "/api/v1/communities", params={"lockdown_status": "sealed"}, headers=headers
        ).json()["total"]
        == 0
    )

    events = db.scalars(
        select(AuditEvent).where(AuditEvent.entity == "community").order_by(AuditEvent.id)
    ).all()
    assert [(e.action, e.entity_id) for e in events] == [("create", cid), ("update", cid)]
    assert events[1].detail == {"lockdown_status": ["sealed", "open"]}


def test_pagination(db: Session, client: TestClient) -> None:
    for _ in range(7):
        make_org(db)
    headers = headers_for(db, client, Role.donor)
    first = client.get("/api/v1/organizations", params={"limit": 3}, headers=headers).json()
    last = client.get(
        "/api/v1/organizations", params={"offset": 6, "limit": 3}, headers=headers
    ).json()
    assert first["total"] == last["total"] == 7
    assert len(first["items"]) == 3 and len(last["items"]) == 1
    too_big = client.get("/api/v1/organizations", params={"limit": 10_000}, headers=headers)
    assert too_big.status_code == 422
    assert too_big.json()["errors"][0]["loc"] == ["query", "limit"]


def test_kit_with_lines_and_unknown_sku(db: Session, client: TestClient) -> None:
    headers = headers_for(db, client, Role.admin)
    item = {
        "sku": "RICE",
        "name": "Rice",
        "name_zh": "米",
        "category": "food",
        "unit": "bag",
        "grams_per_unit": 5000,
        "kcal_per_unit": 18000,
    }
    assert client.post("/api/v1/items", json=item, headers=headers).status_code == 201
    kit = {
        "sku": "K1",
        "name": "Kit",
        "name_zh": "包",
        "purpose": "family_food",
        "persons": 2,
        "days": 2,
        "lines": [{"item_sku": "RICE", "quantity": 1}, {"item_sku": "NOPE", "quantity": 2}],
    }
    refused = client.post("/api/v1/kits", json=kit, headers=headers)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["loc"] == ["lines", 1, "item_sku"]
    kit["lines"] = kit["lines"][:1]
    created = client.post("/api/v1/kits", json=kit, headers=headers)
    assert created.status_code == 201, created.text
    assert created.json()["grams"] == 5000
    nutrition = client.get(f"/api/v1/kits/{created.json()['id']}/nutrition", headers=headers).json()
    assert nutrition["kcal_per_person_day"] == 4500.0
    assert nutrition["meets_sphere_energy"] is True
    relined = client.patch(
        f"/api/v1/kits/{created.json()['id']}",
        json={"lines": [{"item_sku": "RICE", "quantity": 2}]},
        headers=headers,
    )
    assert relined.json()["lines"][0]["quantity"] == 2
