"""Consultation → prescription → medical request: everything a request needs, linked both ways."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from relieflink import clock
from relieflink.catalog import service as catalog
from relieflink.consult import service as consult
from relieflink.consult.schemas import ConsultationClose, PrescriptionCreate
from relieflink.errors import Conflict, Forbidden, Invalid
from relieflink.flows import allocation, prescriptions
from relieflink.models import Allocation, Item, NeedRequest, OrgKind, RequestSource, User, Warehouse
from relieflink.stock import service as stock
from tests.consult.factories import make_consultation, make_doctor, make_household_with_resident
from tests.factories import make_org
from tests.needs import outcomes


def seeded_medicines(db: Session) -> list[Item]:
    catalog.seed_catalog(db, actor=None)
    items = db.query(Item).filter(Item.category == "medicine").order_by(Item.id).all()
    assert any(i.prescription_only for i in items)
    return items


def open_consultation(db: Session) -> tuple[int, User, int]:
    household, resident = make_household_with_resident(db)
    consultation = make_consultation(
        db, resident, answers={"medicine_running_out": "within_2_days"}, member_label="father"
    )
    doctor = make_doctor(db, ("internal_medicine",))
    db.commit()
    taken = consult.take_next(db, actor=doctor)
    assert taken is not None and taken.id == consultation.id
    return consultation.id, doctor, household.id


def test_closed_consultation_with_prescription_carries_the_medical_request(db: Session) -> None:
    medicines = seeded_medicines(db)
    rx_only = next(i for i in medicines if i.prescription_only)
    other = next(i for i in medicines if i.id != rx_only.id)
    consultation_id, doctor, household_id = open_consultation(db)
    closed = prescriptions.close_consultation(
        db,
        consultation_id,
        ConsultationClose.model_validate(
            {
                "notes": "stable hypertension; refill for 30 days",
                "outcome": "prescription",
                "prescription": {
                    "lines": [
                        {"item_id": rx_only.id, "quantity": 2, "instructions": "1 tablet daily"},
                        {"item_id": other.id, "quantity": 1},
                    ]
                },
            }
        ),
        actor=doctor,
    )
    db.commit()
    assert closed.status == "closed" and closed.outcome == "prescription"
    assert closed.notes and closed.closed_at is not None
    prescription = consult.get_prescription(db, consultation_id)
    assert prescription is not None
    # Everything the needs domain needs to create the request:
    assert prescription.household_id == household_id
    assert prescription.consultation_id == consultation_id
    assert prescription.priority == "medical"
    assert prescription.member_label == "father"
    assert prescription.reason
    assert consult.prescription_request_lines(prescription) == [(rx_only.id, 2), (other.id, 1)]
    # The prescription became a medical request of its own, linked both ways.
    request = db.get(NeedRequest, prescription.request_id)
    assert request is not None
    assert request.source == RequestSource.prescription
    assert request.consultation_id == consultation_id
    assert request.household_id == household_id
    assert sorted((line.item_id, line.quantity) for line in request.lines) == sorted(
        [(rx_only.id, 2), (other.id, 1)]
    )
    view = consult.to_read(db, closed)
    assert view.prescription is not None and view.prescription.request_id == request.id
    with pytest.raises(Conflict):
        consult.attach_request(db, prescription, request_id=request.id + 1)


def test_after_allocation_and_delivery_the_consultation_shows_the_delivery(db: Session) -> None:
    """Close with a prescription → medical request → allocation reserves the medicine →
    delivered (the rule a courier's ``delivered`` event applies) → the consultation shows it."""
    medicines = seeded_medicines(db)
    rx_only = next(i for i in medicines if i.prescription_only)
    consultation_id, doctor, _ = open_consultation(db)
    closed = prescriptions.close_consultation(
        db,
        consultation_id,
        ConsultationClose.model_validate(
            {
                "notes": "refill",
                "outcome": "prescription",
                "prescription": {"lines": [{"item_id": rx_only.id, "quantity": 2}]},
            }
        ),
        actor=doctor,
    )
    donor, ngo = make_org(db, kind=OrgKind.donor), make_org(db)
    warehouse = Warehouse(
        code="W-RX",
        name="Pharmacy",
        name_zh="药房",
        owner_id=ngo.id,
        lat=31.2,
        lon=121.4,
        daily_outbound_kg=1000,
    )
    db.add(warehouse)
    db.flush()
    stock.receive_lot(
        db,
        warehouse_id=warehouse.id,
        item_id=rx_only.id,
        quantity=5,
        donor_org_id=donor.id,
        actor=None,
    )
    pending = consult.to_read(db, closed).prescription
    assert pending is not None and pending.delivery is not None
    assert (pending.delivery.request_status, pending.delivery.units_delivered) == ("open", 0)

    today = clock.today()
    run = allocation.run_allocation(db, actor=None, today=today)
    assert run.units_allocated == 2  # the medical class is served first
    outcomes.deliver(db, 1, list(db.scalars(select(Allocation))))
    db.commit()
    view = consult.to_read(db, closed).prescription
    assert view is not None and view.delivery is not None
    assert view.delivery.request_status == "delivered"
    assert view.delivery.units_delivered == 2
    assert view.delivery.delivered_at is not None


def test_prescription_needs_a_real_item_and_the_assigned_doctor(db: Session) -> None:
    consultation_id, doctor, _ = open_consultation(db)
    other_doctor = make_doctor(db, ("internal_medicine",))
    with pytest.raises(Invalid) as info:
        consult.prescribe(
            db,
            consultation_id,
            PrescriptionCreate.model_validate({"lines": [{"item_id": 999999, "quantity": 1}]}),
            actor=doctor,
        )
    assert info.value.errors[0].loc == ("lines", 0, "item_id")
    item = seeded_medicines(db)[0]
    data = PrescriptionCreate.model_validate({"lines": [{"item_id": item.id, "quantity": 1}]})
    with pytest.raises(Forbidden):
        consult.prescribe(db, consultation_id, data, actor=other_doctor)
    consult.prescribe(db, consultation_id, data, actor=doctor)
    with pytest.raises(Conflict):
        consult.prescribe(db, consultation_id, data, actor=doctor)


def test_outcome_prescription_without_one_is_refused(db: Session) -> None:
    consultation_id, doctor, _ = open_consultation(db)
    with pytest.raises(Invalid):
        prescriptions.close_consultation(
            db,
            consultation_id,
            ConsultationClose(notes="n", outcome="prescription"),
            actor=doctor,
        )


def test_a_closed_consultation_cannot_be_closed_or_prescribed_again(db: Session) -> None:
    consultation_id, doctor, _ = open_consultation(db)
    prescriptions.close_consultation(
        db, consultation_id, ConsultationClose(notes="advice", outcome="advice_given"), actor=doctor
    )
    with pytest.raises(Conflict):
        prescriptions.close_consultation(
            db, consultation_id, ConsultationClose(notes="x", outcome="advice_given"), actor=doctor
        )
