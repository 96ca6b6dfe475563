"""Stock endpoints: roles, idempotency (replay, other payload, still running), problem details."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from relieflink.models import IdempotencyRecord, OrgKind, Role
from relieflink.stock import service as stock
from tests.factories import headers_for, make_org
from tests.stock.factories import make_item, make_kit, make_lot, make_warehouse


def test_roles_on_stock_endpoints(db: Session, client: TestClient) -> None:
    wh, item = make_warehouse(db), make_item(db)
    make_lot(db, wh, item, 10)
    body = {"warehouse_id": wh.id, "item_id": item.id, "quantity": 1, "reference": "r"}
    url = "/api/v1/stock/reservations"
    db.commit()
    assert client.post(url, json=body).status_code == 401
    for role in (Role.donor, Role.resident, Role.courier, Role.committee, Role.doctor):
        headers = headers_for(db, client, role)
        assert client.post(url, json=body, headers=headers).status_code == 403, role
        assert client.get("/api/v1/stock/on-hand", headers=headers).status_code == 403, role
    for role in (Role.warehouse, Role.coordinator, Role.admin):
        headers = headers_for(db, client, role)
        r = client.post(url, json=body | {"reference": f"r-{role}"}, headers=headers)
        assert r.status_code == 201, (role, r.text)
        assert client.get("/api/v1/stock/on-hand", headers=headers).status_code == 200


def test_idempotency_on_reservations(db: Session, client: TestClient) -> None:
    wh, item = make_warehouse(db), make_item(db)
    make_lot(db, wh, item, 10)
    headers = headers_for(db, client, Role.warehouse) | {"Idempotency-Key": "res-1"}
    body = {"warehouse_id": wh.id, "item_id": item.id, "quantity": 4, "reference": "alloc:1"}
    first = client.post("/api/v1/stock/reservations", json=body, headers=headers)
    again = client.post("/api/v1/stock/reservations", json=body, headers=headers)
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    other = client.post("/api/v1/stock/reservations", json=body | {"quantity": 5}, headers=headers)
    assert other.status_code == 422
    db.expire_all()
    assert stock.available(db, warehouse_id=wh.id, item_id=item.id) == 6
    # A retry while the first request is still running gets 409.
    running = client.post(
        "/api/v1/stock/reservations",
        json=body | {"reference": "alloc:2"},
        headers=headers | {"Idempotency-Key": "res-2"},
    )
    assert running.status_code == 201
    db.commit()  # end the read snapshot taken above
    record = db.scalars(select(IdempotencyRecord).where(IdempotencyRecord.key == "res-2")).one()
    record.response_status = None
    db.commit()
    retry = client.post(
        "/api/v1/stock/reservations",
        json=body | {"reference": "alloc:2"},
        headers=headers | {"Idempotency-Key": "res-2"},
    )
    assert retry.status_code == 409
    db.expire_all()
    assert stock.available(db, warehouse_id=wh.id, item_id=item.id) == 2


def test_oversell_is_a_409_problem_with_a_field_path(db: Session, client: TestClient) -> None:
    wh, item = make_warehouse(db), make_item(db)
    make_lot(db, wh, item, 3)
    headers = headers_for(db, client, Role.warehouse)
    body = {"warehouse_id": wh.id, "item_id": item.id, "quantity": 4, "reference": "x"}
    r = client.post("/api/v1/stock/reservations", json=body, headers=headers)
    assert r.status_code == 409
    problem = r.json()
    assert "only 3" in problem["detail"] and problem["errors"][0]["loc"] == ["quantity"]
    bad = client.post("/api/v1/stock/reservations", json=body | {"kit_id": 1}, headers=headers)
    assert bad.status_code == 422  # item and kit together


def test_kits_assemble_reserve_issue_and_trace_over_http(db: Session, client: TestClient) -> None:
    wh = make_warehouse(db)
    rice, oil = make_item(db), make_item(db)
    kit = make_kit(db, [(rice, 2), (oil, 1)])
    a, b = make_org(db, OrgKind.donor), make_org(db, OrgKind.donor)
    make_lot(db, wh, rice, 10, donor=a, unit_value_fen=100)
    make_lot(db, wh, oil, 5, donor=b, unit_value_fen=300)
    headers = headers_for(db, client, Role.warehouse)
    r = client.post("/api/v1/stock/assemblies",
                    json={"warehouse_id": wh.id, "kit_id": kit.id, "quantity": 5},
                    headers=headers)  # fmt: skip
    assert r.status_code == 201, r.text
    kit_lot = r.json()["id"]
    r = client.post("/api/v1/stock/reservations",
                    json={"warehouse_id": wh.id, "kit_id": kit.id, "quantity": 2,
                          "reference": "alloc:7:line:1"}, headers=headers)  # fmt: skip
    assert r.status_code == 201 and r.json()[0]["lot_id"] == kit_lot
    r = client.post("/api/v1/stock/issues",
                    json={"reference": "alloc:7:line:1", "delivery_ref": "hh:42"},
                    headers=headers)  # fmt: skip
    assert r.status_code == 201
    trace = client.get("/api/v1/stock/trace", params={"reference": "alloc:7:line:1"},
                       headers=headers).json()  # fmt: skip
    # Per kit: 2 rice (200 fen) from A, 1 oil (300 fen) from B → value shares 2/5 and 3/5.
    assert {d["donor_org_id"]: d["quantity"] for d in trace["donors"]} == {a.id: "4/5",
                                                                           b.id: "6/5"}  # fmt: skip
    donor_headers = headers_for(db, client, Role.donor, organization_id=a.id)
    mine = client.get(f"/api/v1/stock/lots/{kit_lot}/trace", headers=donor_headers).json()
    assert [d["donor_org_id"] for d in mine["donors"]] == [a.id]  # only its own part
    # Named, not ids alone: the donor's names and the share as a decimal beside the exact one.
    named = {d["name"]: (d["name_zh"], d["quantity_decimal"]) for d in trace["donors"]}
    assert named == {a.name: (a.name_zh, 0.8), b.name: (b.name_zh, 1.2)}
    report = client.get("/api/v1/stock/donors/report", headers=donor_headers).json()
    assert {(line["donor_code"], line["sku"]) for line in report} >= {(a.code, rice.sku)}
