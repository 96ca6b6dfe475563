"""Pledges through the API: lifecycle, role scoping, receipts and discrepancies, threads and
unread counts, webhooks (signed), idempotent retries, and the IATI/HXL exports."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from datetime import date, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relieflink import clock
from relieflink.donations import service as donations
from relieflink.jobs import runner
from relieflink.models import (
    Organization,
    OrgKind,
    Pledge,
    PledgeStatusChange,
    Role,
    WebhookDelivery,
)
from relieflink.stock import exports
from tests.donations.conftest import Partner
from tests.factories import headers_for, make_org
from tests.stock.factories import make_item, make_program, make_warehouse


def _setup(db: Session) -> dict[str, Any]:
    donor = make_org(db, OrgKind.donor, name="Acme Foods", code="ACME")
    ngo = make_org(db, OrgKind.ngo, name="Volunteer NGO", code="VNGO")
    other = make_org(db, OrgKind.donor, name="Other Donor")
    program = make_program(db, ngo, name="Shanghai 2022", region="Shanghai")
    rice, oil = make_item(db), make_item(db)
    wh = make_warehouse(db, ngo)
    return {
        "donor": donor, "ngo": ngo, "other": other, "program": program, "rice": rice,
        "oil": oil, "wh": wh,
    }  # fmt: skip


def _pledge_body(s: dict[str, Any]) -> dict[str, Any]:
    return {
        "donor_org_id": s["donor"].id,
        "recipient_org_id": s["ngo"].id,
        "program_id": s["program"].id,
        "declared_value_fen": 10_000_000_000,  # RMB 100 million
        "expected_arrival": (date.today() + timedelta(days=3)).isoformat(),
        "lines": [
            {"item_id": s["rice"].id, "quantity": 100, "unit_value_fen": 5000},
            {"item_id": s["oil"].id, "quantity": 40, "unit_value_fen": 9000},
        ],
    }


def test_pledge_lifecycle_receipts_discrepancies_and_threads(
    db: Session, client: TestClient
) -> None:
    s = _setup(db)
    donor_h = headers_for(db, client, Role.donor, organization_id=s["donor"].id)
    ngo_h = headers_for(db, client, Role.warehouse, organization_id=s["ngo"].id)
    outsider_h = headers_for(db, client, Role.donor, organization_id=s["other"].id)
    resident_h = headers_for(db, client, Role.resident)

    # A donor pledges for its own organization only.
    body = _pledge_body(s)
    assert client.post("/api/v1/pledges", json=body, headers=outsider_h).status_code == 403
    assert client.post("/api/v1/pledges", json=body, headers=resident_h).status_code == 403
    r = client.post("/api/v1/pledges", json=body, headers=donor_h | {"Idempotency-Key": "p1"})
    assert r.status_code == 201, r.text
    again = client.post("/api/v1/pledges", json=body, headers=donor_h | {"Idempotency-Key": "p1"})
    assert again.json() == r.json()
    assert db.scalar(select(func.count()).select_from(Pledge)) == 1
    pledge_id = r.json()["id"]
    assert r.json()["declared_value_fen"] == 10_000_000_000

    # Scoping: the outsider neither sees nor reads the thread.
    assert client.get(f"/api/v1/pledges/{pledge_id}", headers=outsider_h).status_code == 403
    assert client.get("/api/v1/pledges", headers=outsider_h).json()["total"] == 0
    assert (
        client.get(f"/api/v1/pledges/{pledge_id}/messages", headers=outsider_h).status_code == 403
    )
    assert client.get("/api/v1/pledges", headers=ngo_h).json()["total"] == 1

    # The donor may not confirm; the recipient does. Each change posts a system message.
    r = client.post(f"/api/v1/pledges/{pledge_id}/status", json={"status": "confirmed"},
                    headers=donor_h)  # fmt: skip
    assert r.status_code == 403
    r = client.post(f"/api/v1/pledges/{pledge_id}/status", json={"status": "confirmed"},
                    headers=ngo_h)  # fmt: skip
    assert r.status_code == 200 and r.json()["status"] == "confirmed"
    r = client.post(f"/api/v1/pledges/{pledge_id}/status", json={"status": "closed"},
                    headers=ngo_h)  # fmt: skip
    assert r.status_code == 409  # confirmed → closed is not a transition

    # Part of the goods arrive: partly received; then the rest with one item short.
    expiry = (date.today() + timedelta(days=180)).isoformat()
    receipt = {
        "warehouse_id": s["wh"].id,
        "pledge_id": pledge_id,
        "lots": [{"item_id": s["rice"].id, "quantity": 60, "expiry": expiry,
                  "unit_value_fen": 5000}],
    }  # fmt: skip
    r = client.post("/api/v1/stock/receipts", json=receipt, headers=ngo_h)
    assert r.status_code == 201, r.text
    assert r.json()["donor_org_id"] == s["donor"].id
    assert client.get(f"/api/v1/pledges/{pledge_id}", headers=donor_h).json()["status"] == (
        "partly_received"
    )
    receipt["lots"] = [
        {"item_id": s["rice"].id, "quantity": 40, "expiry": expiry, "unit_value_fen": 5000},
        {"item_id": s["oil"].id, "quantity": 38, "unit_value_fen": 9000},
    ]
    r = client.post("/api/v1/stock/receipts", json=receipt | {"final": True}, headers=ngo_h)
    assert r.status_code == 201, r.text
    pledge = client.get(f"/api/v1/pledges/{pledge_id}", headers=donor_h).json()
    assert pledge["status"] == "received"
    assert [h["to_status"] for h in pledge["history"]] == [
        "pledged", "confirmed", "partly_received", "received",
    ]  # fmt: skip
    assert all(h["at"] for h in pledge["history"])
    discrepancies = client.get(f"/api/v1/pledges/{pledge_id}/discrepancies", headers=donor_h).json()
    assert [(d["item_id"], d["pledged"], d["received"]) for d in discrepancies] == [
        (s["oil"].id, 40, 38)
    ]
    # A received pledge takes no more receipts.
    assert client.post("/api/v1/stock/receipts", json=receipt, headers=ngo_h).status_code == 409

    # Thread: system messages, the discrepancy, and a reply referencing it; unread counts.
    unread = {u["thread"]: u["unread"] for u in client.get(
        "/api/v1/messages/unread", headers=donor_h).json()}  # fmt: skip
    thread = f"pledge:{pledge_id}"
    assert unread[thread] >= 5
    messages = client.get(f"/api/v1/pledges/{pledge_id}/messages", headers=donor_h).json()
    kinds = [m["kind"] for m in messages]
    assert kinds.count("system") == 4 and kinds.count("discrepancy") == 1
    unread = {u["thread"]: u["unread"] for u in client.get(
        "/api/v1/messages/unread", headers=donor_h).json()}  # fmt: skip
    assert unread.get(thread, 0) == 0
    r = client.post(
        f"/api/v1/pledges/{pledge_id}/messages",
        json={"body": "2 cases of oil were damaged in transit", "discrepancy_id":
              discrepancies[0]["id"]},
        headers=donor_h,
    )  # fmt: skip
    assert r.status_code == 201
    ngo_unread = {u["thread"]: u["unread"] for u in client.get(
        "/api/v1/messages/unread", headers=ngo_h).json()}  # fmt: skip
    assert ngo_unread[thread] == len(messages) + 1
    assert client.get("/api/v1/messages/unread", headers=outsider_h).json() == []
    # The program thread is shared by the program's organizations only.
    program_id = s["program"].id
    r = client.post(f"/api/v1/programs/{program_id}/messages", json={"body": "hello"},
                    headers=ngo_h)  # fmt: skip
    assert r.status_code == 201
    assert client.get(f"/api/v1/programs/{program_id}/messages", headers=donor_h).status_code == 200
    assert (
        client.get(f"/api/v1/programs/{program_id}/messages", headers=outsider_h).status_code == 403
    )

    # Trace and per-donor report: a donor sees its own figures only.
    report = client.get("/api/v1/stock/donors/report", headers=donor_h).json()
    assert {(x["item_id"], x["pledged"], x["received"], x["balanced"]) for x in report} == {
        (s["rice"].id, 100, 100, True),
        (s["oil"].id, 40, 38, True),
    }
    assert client.get("/api/v1/stock/donors/report", params={"donor_org_id": s["other"].id},
                      headers=donor_h).status_code == 403  # fmt: skip
    assert client.get("/api/v1/stock/on-hand", headers=donor_h).status_code == 403


def test_status_changes_queue_signed_webhooks(
    db: Session, client: TestClient, partner: Partner
) -> None:
    s = _setup(db)
    secret = "s3cret-s3cret-s3cret"
    coordinator = headers_for(db, client, Role.coordinator)
    r = client.put(f"/api/v1/organizations/{s['donor'].id}/webhook",
                   json={"url": partner.url, "secret": secret},
                   headers=coordinator)  # fmt: skip
    assert r.status_code == 200 and "secret" not in r.json()
    r = client.post("/api/v1/pledges", json=_pledge_body(s), headers=coordinator)
    pledge_id = r.json()["id"]
    client.post(f"/api/v1/pledges/{pledge_id}/status", json={"status": "cancelled"},
                headers=coordinator)  # fmt: skip
    events = db.scalars(select(WebhookDelivery.event).order_by(WebhookDelivery.id)).all()
    assert events == ["pledge.created", "pledge.status_changed"]

    partner.failures = 1  # the first attempt fails, is retried later, then succeeds
    now = clock.now()
    for moment in (now, now + timedelta(minutes=1), now + timedelta(minutes=2)):
        with clock.frozen(moment):
            runner.Worker().run_pending()
    sent = [(partner.url, r.body, r.headers) for r in partner.received]
    assert [r.answered for r in partner.received] == [503, 204, 204]
    for url, body, headers in sent:
        assert url == partner.url
        assert donations.verify(secret, body, headers[donations.SIGNATURE_HEADER])
        assert not donations.verify("wrong-secret-wrong", body, headers[donations.SIGNATURE_HEADER])
    bodies = [json.loads(body) for _, body, _ in sent]
    assert [b["event"] for b in bodies] == ["pledge.created", "pledge.status_changed",
                                            "pledge.created"]  # fmt: skip
    assert bodies[1]["data"] == {"pledge_id": pledge_id, "from": "pledged", "to": "cancelled"}
    changes = db.scalars(select(PledgeStatusChange).order_by(PledgeStatusChange.id)).all()
    assert [(c.from_status, c.to_status) for c in changes] == [
        (None, "pledged"), ("pledged", "cancelled"),
    ]  # fmt: skip
    assert all(c.actor_id is not None for c in changes)


def test_iati_and_hxl_exports(db: Session, client: TestClient) -> None:
    s = _setup(db)
    coordinator = headers_for(db, client, Role.coordinator)
    pledge_id = client.post("/api/v1/pledges", json=_pledge_body(s), headers=coordinator).json()[
        "id"
    ]
    r = client.post(
        "/api/v1/stock/receipts",
        json={"warehouse_id": s["wh"].id, "pledge_id": pledge_id,
              "lots": [{"item_id": s["rice"].id, "quantity": 10, "unit_value_fen": 5000}]},
        headers=coordinator,
    )  # fmt: skip
    assert r.status_code == 201
    for n, body in enumerate(
        [
            {"warehouse_id": s["wh"].id, "item_id": s["rice"].id, "quantity": 4,
             "reference": "alloc:9"},
        ]
    ):  # fmt: skip
        assert (
            client.post("/api/v1/stock/reservations", json=body, headers=coordinator).status_code
            == 201
        ), n
    for hh in ("hh:1", "hh:2"):
        r = client.post("/api/v1/stock/issues",
                        json={"reference": "alloc:9", "quantity": 2, "delivery_ref": hh},
                        headers=coordinator)  # fmt: skip
        assert r.status_code == 201
    # hh:1's two bags reached the door; hh:2's are on the way (loaded, not delivered)
    r = client.post("/api/v1/stock/handovers", json={"delivery_refs": ["hh:1"]},
                    headers=coordinator)  # fmt: skip
    assert r.status_code == 201 and r.json() == {"movements": 1}
    again = client.post("/api/v1/stock/handovers", json={"delivery_refs": ["hh:1"]},
                        headers=coordinator)  # fmt: skip
    assert again.json() == {"movements": 0}

    xml = client.get(f"/api/v1/programs/{s['program'].id}/iati.xml", headers=coordinator)
    assert xml.status_code == 200
    root = ET.fromstring(xml.content)
    assert root.tag == "iati-activities" and root.get("version") == exports.IATI_VERSION
    (activity,) = root
    order = [exports.ACTIVITY_ORDER.index(child.tag) for child in activity]
    assert order == sorted(order), "children of iati-activity out of schema order"
    for el in activity.iter():
        if el.tag in {"reporting-org", "provider-org"}:
            assert el.get("ref") and el.get("type")
        if el.tag == "participating-org":
            assert el.get("role") in {"1", "2", "3", "4"}
        if el.tag == "value":
            assert el.get("value-date") and el.get("currency") == "CNY"
    transactions = activity.findall("transaction")
    for tx in transactions:
        t_order = [exports.TRANSACTION_ORDER.index(child.tag) for child in tx]
        assert t_order == sorted(t_order)
    by_type = {
        tx.find("transaction-type").get("code"): tx.find("value").text  # type: ignore[union-attr]
        for tx in transactions
    }
    assert by_type == {"11": "100000000.00", "3": "100.00"}  # 2 bags at the door × 50 yuan

    hxl = client.get("/api/v1/stock/exports/hxl.csv", headers=coordinator)
    rows = list(csv.reader(io.StringIO(hxl.text)))
    assert rows[1][0] == "#org+donor" and "#reached+hh" in rows[1] and "#adm1+name" in rows[1]
    (data,) = rows[2:]
    record = dict(zip(rows[1], data, strict=True))
    assert record["#org+donor"] == "Acme Foods" and record["#adm1+name"] == "Shanghai"
    assert (record["#item+stock+num"], record["#item+distributed+num"]) == ("6", "2")
    assert record["#reached+hh"] == "1"  # reached means at the door
    donor_user = headers_for(db, client, Role.donor, organization_id=s["donor"].id)
    assert client.get("/api/v1/stock/exports/hxl.csv", headers=donor_user).status_code == 403
    assert db.get(Organization, s["donor"].id) is not None


def test_bad_references_are_422_with_field_paths(db: Session, client: TestClient) -> None:
    s = _setup(db)
    coordinator = headers_for(db, client, Role.coordinator)
    pledge_id = client.post("/api/v1/pledges", json=_pledge_body(s), headers=coordinator).json()[
        "id"
    ]
    message = {"body": "see shipment", "transfer_id": 999999}
    r = client.post(f"/api/v1/pledges/{pledge_id}/messages", json=message, headers=coordinator)
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["transfer_id"]
    receipt = {"warehouse_id": s["wh"].id, "pledge_id": pledge_id,
               "lots": [{"item_id": 999999, "quantity": 1}]}  # fmt: skip
    r = client.post("/api/v1/stock/receipts", json=receipt, headers=coordinator)
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["lots", 0, "item_id"]
    bad_pledge = _pledge_body(s) | {"program_id": 999999}
    r = client.post("/api/v1/pledges", json=bad_pledge, headers=coordinator)
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["program_id"]
