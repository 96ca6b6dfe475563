"""Chronic refills: days of supply tracked, a refill due before the medicine runs out, once."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy.orm import Session

from relieflink.catalog import service as catalog
from relieflink.consult import service as consult
from relieflink.consult.schemas import ChronicPatientCreate
from relieflink.errors import Conflict, Forbidden
from relieflink.flows import prescriptions
from relieflink.models import Item, Role
from tests.consult.factories import make_household_with_resident
from tests.factories import make_user

TODAY = date(2026, 11, 29)


def register(db: Session, supply_until: date, **kw: object) -> int:
    catalog.seed_catalog(db, actor=None)
    item = db.query(Item).filter(Item.sku == "MED-AMLODIPINE-30").one()
    household, _ = make_household_with_resident(db)
    doctor = make_user(db, Role.doctor)
    data = {
        "household_id": household.id,
        "member_label": "grandmother",
        "item_id": item.id,
        "daily_dose_units": 1,
        "units_per_pack": 30,
        "supply_until": supply_until,
    } | kw
    return consult.register_chronic_patient(
        db, ChronicPatientCreate.model_validate(data), actor=doctor
    ).id


@pytest.mark.parametrize(
    ("days_left", "lead_days", "due"),
    [(10, 5, False), (5, 5, True), (3, 5, True), (0, 5, True), (-2, 5, True), (6, 5, False)],
)
def test_due_before_running_out(db: Session, days_left: int, lead_days: int, due: bool) -> None:
    patient_id = register(db, TODAY + timedelta(days=days_left))
    found = consult.due_refills(db, today=TODAY, lead_days=lead_days)
    assert [d.patient_id for d in found] == ([patient_id] if due else [])
    if due:
        assert found[0].days_left == days_left


def test_refill_quantity_covers_the_refill_period(db: Session) -> None:
    register(db, TODAY, daily_dose_units=3, units_per_pack=30)
    (due,) = consult.due_refills(db, today=TODAY, lead_days=0, refill_days=30)
    assert due.quantity == 3  # 3 tablets × 30 days = 90 tablets = 3 boxes of 30


def test_requested_once_then_again_after_the_supply_is_extended(db: Session) -> None:
    patient_id = register(db, TODAY + timedelta(days=2))
    assert len(consult.due_refills(db, today=TODAY, lead_days=5)) == 1
    consult.mark_refill_requested(db, patient_id, request_id=5)
    assert consult.due_refills(db, today=TODAY, lead_days=5) == []
    patient = consult.record_supply(db, patient_id, packs=1, actor=None, today=TODAY)
    assert patient.supply_until == TODAY + timedelta(days=32)
    assert consult.due_refills(db, today=TODAY, lead_days=5) == []
    later = TODAY + timedelta(days=28)
    assert [d.patient_id for d in consult.due_refills(db, today=later, lead_days=5)] == [patient_id]


def test_registration_is_unique_and_for_clinicians(db: Session) -> None:
    patient_id = register(db, TODAY)
    patient = consult.repository.get_chronic(db, patient_id)
    assert patient is not None
    data = ChronicPatientCreate(
        household_id=patient.household_id,
        member_label=patient.member_label,
        item_id=patient.item_id,
        daily_dose_units=1,
        supply_until=TODAY,
    )
    with pytest.raises(Conflict):
        consult.register_chronic_patient(db, data, actor=make_user(db, Role.doctor))
    with pytest.raises(Forbidden):
        consult.register_chronic_patient(db, data, actor=make_user(db, Role.courier))


def test_a_due_refill_becomes_one_medical_request_before_the_medicine_runs_out(
    db: Session,
) -> None:
    from relieflink.models import NeedRequest, RequestSource

    patient_id = register(db, TODAY + timedelta(days=3))
    requested = prescriptions.request_due_refills(db, today=TODAY, lead_days=5, actor=None)
    assert [r.patient_id for r in requested] == [patient_id]
    request = db.query(NeedRequest).one()
    assert request.source == RequestSource.prescription
    assert [(line.item_id, line.quantity) for line in request.lines] == [
        (requested[0].item_id, requested[0].quantity)
    ]
    # Asked once per supply: a second pass finds nothing new.
    assert prescriptions.request_due_refills(db, today=TODAY, lead_days=5, actor=None) == []
    assert db.query(NeedRequest).count() == 1
