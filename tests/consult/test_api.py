"""The consultation API: requests and triage, privacy of health data, the loop over HTTP."""

from __future__ import annotations

from collections import Counter
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from relieflink.catalog import service as catalog
from relieflink.models import AuditEvent, Item, Role, User
from tests.consult.factories import make_household_with_resident, negatives
from tests.factories import headers_for, make_user, sign_in

API = "/api/v1/consultations"


def request_body(**overrides: Any) -> dict[str, Any]:
    return {
        "member_label": "self",
        "age_band": "adult",
        "sex": "female",
        "reason": "cough for two days",
        "symptoms": negatives() | {"cough_or_sore_throat": True},
    } | overrides


def resident_headers(db: Session, client: TestClient) -> tuple[dict[str, str], User]:
    _, resident = make_household_with_resident(db)
    db.commit()
    return sign_in(client, resident), resident


def doctor_headers(
    db: Session, client: TestClient, specialties: list[str] | None = None
) -> tuple[dict[str, str], User]:
    doctor = make_user(db, Role.doctor)
    db.commit()
    headers = sign_in(client, doctor)
    shift = {"specialties": specialties or ["general"], "languages": ["zh", "en"]}
    assert client.post(f"{API}/shift", json=shift, headers=headers).status_code == 200
    return headers, doctor


def test_a_request_without_symptoms_is_refused_with_a_clear_error(
    db: Session, client: TestClient
) -> None:
    headers, _ = resident_headers(db, client)
    response = client.post(API, json=request_body(symptoms={}), headers=headers)
    assert response.status_code == 422
    problem = response.json()
    assert problem["errors"][0]["loc"] == ["symptoms"]
    assert "without symptoms" in problem["errors"][0]["msg"]
    response = client.post(API, json=request_body(symptoms={"fever": "none"}), headers=headers)
    assert response.status_code == 422
    assert ["symptoms", "breathing_difficulty"] in [e["loc"] for e in response.json()["errors"]]


def test_a_red_flag_answers_call_emergency_services_with_numbers(
    db: Session, client: TestClient
) -> None:
    headers, _ = resident_headers(db, client)
    body = request_body(symptoms=negatives() | {"chest_pain": "severe"})
    response = client.post(API, json=body, headers=headers)
    assert response.status_code == 201, response.text
    result = response.json()
    assert result["triage"]["outcome"] == "call_emergency_services"
    assert result["triage"]["red_flags"] == ["RF-chest-pain"]
    assert {"120", "999"} <= {n["number"] for n in result["triage"]["emergency_numbers"]}
    assert "120" in result["triage"]["message"] and "999" in result["triage"]["message"]
    consultation = result["consultation"]
    assert consultation["urgency"] == "immediate" and consultation["status"] == "waiting"
    assert consultation["fired_rules"] == ["RF-chest-pain"]
    assert consultation["rules_version"] == result["triage"]["rules_version"]


def test_only_residents_ask_and_only_for_their_household(db: Session, client: TestClient) -> None:
    headers, _ = resident_headers(db, client)
    other, _ = make_household_with_resident(db)
    db.commit()
    response = client.post(API, json=request_body(household_id=other.id), headers=headers)
    assert response.status_code == 403
    courier = headers_for(db, client, Role.courier)
    assert client.post(API, json=request_body(), headers=courier).status_code == 403


def test_privacy_of_consultations(db: Session, client: TestClient) -> None:
    resident, _ = resident_headers(db, client)
    created = client.post(API, json=request_body(), headers=resident).json()["consultation"]
    cid = created["id"]
    doctor_a, _ = doctor_headers(db, client)
    doctor_b, user_b = doctor_headers(db, client)
    psychiatrist, _ = doctor_headers(db, client, ["psychiatry"])
    # While it waits, the general doctors may look at it; the psychiatrist may not.
    assert client.get(f"{API}/{cid}", headers=doctor_b).status_code == 200
    assert client.get(f"{API}/{cid}", headers=psychiatrist).status_code == 403
    assert client.post(f"{API}/take", headers=doctor_a).json()["id"] == cid
    closed = client.post(
        f"{API}/{cid}/close",
        json={"notes": "rest, fluids", "outcome": "advice_given"},
        headers=doctor_a,
    )
    assert closed.status_code == 200, closed.text
    # Another doctor cannot read a finished consultation that was not theirs ...
    assert client.get(f"{API}/{cid}", headers=doctor_b).status_code == 403
    listed = client.get(API, headers=doctor_b).json()
    assert cid not in [c["id"] for c in listed["items"]]
    # ... nor can a courier or a coordinator (they see counts only), nor another household.
    for role in (Role.courier, Role.coordinator, Role.committee, Role.warehouse):
        assert client.get(f"{API}/{cid}", headers=headers_for(db, client, role)).status_code == 403
    stranger, _ = resident_headers(db, client)
    assert client.get(f"{API}/{cid}", headers=stranger).status_code == 403
    assert client.get(f"{API}/{cid}/messages", headers=doctor_b).status_code == 403
    # The doctor who closed it and the household still can.
    assert client.get(f"{API}/{cid}", headers=doctor_a).json()["notes"] == "rest, fluids"
    assert client.get(f"{API}/{cid}", headers=resident).json()["outcome"] == "advice_given"
    # Every read is in the audit log, and a refused attempt is not recorded as a read.
    db.expire_all()
    events = db.scalars(
        select(AuditEvent).where(AuditEvent.entity == "consultation", AuditEvent.entity_id == cid)
    ).all()
    actions = Counter(e.action for e in events)
    assert actions["read"] == 3  # doctor B while waiting, doctor A, the household
    assert [e.action for e in events if e.actor_id == user_b.id] == ["read"]


def test_queue_summary_is_counts_only_for_coordinators(db: Session, client: TestClient) -> None:
    resident, _ = resident_headers(db, client)
    client.post(API, json=request_body(), headers=resident)
    client.post(
        API, json=request_body(symptoms=negatives() | {"bleeding": "heavy"}), headers=resident
    )
    coordinator = headers_for(db, client, Role.coordinator)
    summary = client.get(f"{API}/queue/summary", headers=coordinator)
    assert summary.status_code == 200
    levels = {lv["urgency"]: lv["waiting"] for lv in summary.json()["levels"]}
    assert levels["immediate"] == 1 and levels["non_urgent"] == 1
    assert "cough" not in summary.text  # no reasons, no symptoms
    staffing = client.get(f"{API}/staffing", headers=coordinator, params={"service_minutes": 10})
    assert staffing.status_code == 200
    hours = staffing.json()["hours"]
    assert len(hours) == 24 and sum(h["arrivals_per_hour"] for h in hours) > 0
    assert client.get(f"{API}/queue/summary", headers=resident).status_code == 403


def test_the_loop_over_http(db: Session, client: TestClient) -> None:
    catalog.seed_catalog(db, actor=None)
    item = db.scalars(select(Item).where(Item.prescription_only.is_(True))).first()
    assert item is not None
    resident, _ = resident_headers(db, client)
    body = request_body(symptoms=negatives() | {"medicine_running_out": "run_out"})
    created = client.post(API, json=body, headers=resident).json()
    assert created["triage"]["outcome"] == "medicine_refill"
    cid = created["consultation"]["id"]
    internist, _ = doctor_headers(db, client, ["internal_medicine"])
    assert client.post(f"{API}/take", headers=internist).json()["id"] == cid
    assert client.post(f"{API}/take", headers=internist).status_code == 204
    sent = client.post(f"{API}/{cid}/messages", json={"body": "药还剩几天？"}, headers=internist)
    assert sent.status_code == 201
    client.post(f"{API}/{cid}/messages", json={"body": "已经没有了"}, headers=resident)
    history = client.get(f"{API}/{cid}/messages", headers=resident).json()
    assert [m["body"] for m in history] == ["药还剩几天？", "已经没有了"]
    closed = client.post(
        f"{API}/{cid}/close",
        json={
            "notes": "refill",
            "outcome": "prescription",
            "prescription": {"lines": [{"item_id": item.id, "quantity": 2}]},
        },
        headers=internist,
    )
    assert closed.status_code == 200, closed.text
    rx = closed.json()["prescription"]
    assert rx["priority"] == "medical" and rx["lines"] == [
        {"item_id": item.id, "quantity": 2, "instructions": None}
    ]
    seen = client.get(f"{API}/{cid}", headers=resident).json()
    assert seen["prescription"]["id"] == rx["id"]
    late = client.post(f"{API}/{cid}/messages", json={"body": "thanks"}, headers=resident)
    assert late.status_code == 409
