"""Cancelling, the questionnaire endpoint, staffing from the history, chronic refills over HTTP."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from relieflink.catalog import service as catalog
from relieflink.consult import service as consult
from relieflink.consult.schemas import ConsultationClose
from relieflink.errors import Conflict, NotFound
from relieflink.flows import prescriptions
from relieflink.models import Item, Role
from tests.consult.factories import make_consultation, make_doctor, make_household_with_resident
from tests.consult.test_api import API, resident_headers
from tests.factories import headers_for, make_user


def test_a_waiting_request_can_be_cancelled_by_its_household_only(db: Session) -> None:
    _, resident = make_household_with_resident(db)
    _, stranger = make_household_with_resident(db)
    consultation = make_consultation(db, resident)
    db.commit()
    with pytest.raises(NotFound):
        consult.cancel_consultation(db, consultation.id, actor=stranger)
    consult.cancel_consultation(db, consultation.id, actor=resident)
    db.commit()
    doctor = make_doctor(db)
    db.commit()
    assert consult.take_next(db, actor=doctor) is None  # a cancelled request is not queued
    db.rollback()
    with pytest.raises(Conflict):
        consult.cancel_consultation(db, consultation.id, actor=resident)


def test_questionnaire_lists_what_must_be_answered(db: Session, client: TestClient) -> None:
    headers, _ = resident_headers(db, client)
    body = client.get(f"{API}/questionnaire", headers=headers).json()
    required = {q["id"]: q["required"] for q in body["questions"]}
    assert required["breathing_difficulty"] == "always"
    assert required["child_convulsions"] == "under_5"
    assert required["pregnancy_bleeding"] == "pregnant"
    assert {"120", "999"} <= {n["number"] for n in body["emergency_numbers"]}


def test_staffing_uses_the_observed_arrivals_and_service_time(db: Session) -> None:
    _, resident = make_household_with_resident(db)
    day = datetime(2026, 11, 28, tzinfo=UTC)
    arrivals = {9: 6, 14: 3}
    for hour, n in arrivals.items():
        for i in range(n):
            make_consultation(db, resident, now=day + timedelta(hours=hour, minutes=i))
    doctor = make_doctor(db)
    db.commit()
    taken = consult.take_next(db, actor=doctor, now=day + timedelta(hours=15))
    assert taken is not None
    prescriptions.close_consultation(
        db,
        taken.id,
        ConsultationClose(notes="n", outcome="advice_given"),
        actor=doctor,
        now=day + timedelta(hours=15, minutes=20),
    )
    db.commit()
    report = consult.staffing_report(
        db, actor=None, days=1, now=day + timedelta(days=1), service_level=0.8
    )
    assert report.arrivals_by_hour[9] == 6 and report.arrivals_by_hour[14] == 3
    assert sum(report.arrivals_by_hour) == 9
    assert report.service_minutes == pytest.approx(20)
    assert report.plan[3].doctors_needed == 0
    assert report.plan[9].doctors_needed >= report.plan[14].doctors_needed >= 1
    assert sum(level.waiting for level in report.queue.levels) == 8
    with pytest.raises(Exception, match="may not"):
        consult.staffing_report(db, actor=make_user(db, Role.doctor), days=1)


def test_chronic_refills_over_http(db: Session, client: TestClient) -> None:
    catalog.seed_catalog(db, actor=None)
    item = db.query(Item).filter(Item.sku == "MED-METFORMIN-60").one()
    household, _ = make_household_with_resident(db)
    db.commit()
    doctor = headers_for(db, client, Role.doctor)
    body = {
        "household_id": household.id,
        "member_label": "father",
        "item_id": item.id,
        "daily_dose_units": 2,
        "units_per_pack": 60,
        "supply_until": "2026-12-01",
    }
    assert client.post(f"{API}/chronic", json=body, headers=doctor).status_code == 201
    due = client.get(
        f"{API}/chronic/due", params={"today": "2026-11-28", "lead_days": 5}, headers=doctor
    ).json()
    assert [(d["member_label"], d["quantity"], d["days_left"]) for d in due] == [("father", 1, 3)]
    courier = headers_for(db, client, Role.courier)
    assert client.get(f"{API}/chronic/due", headers=courier).status_code == 403
    assert consult.due_refills(db, today=date(2026, 11, 20), lead_days=5) == []
