"""A doctor's prescription, or a chronic patient's refill falling due, becomes a medical
request: written once here. The consult domain closes consultations and keeps prescriptions
and refills; the needs domain creates the request (its own, never merged into the household's
food request, in the medical class); this flow links the two. Nothing here commits."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy.orm import Session

from relieflink import clock
from relieflink.consult import service as consult
from relieflink.consult.schemas import ConsultationClose
from relieflink.models import Consultation, NeedRequest, Prescription, User
from relieflink.needs import service as needs

__all__ = ["close_consultation", "request_due_refills", "request_prescription"]


def close_consultation(
    session: Session,
    consultation_id: int,
    data: ConsultationClose,
    *,
    actor: User,
    now: datetime | None = None,
) -> Consultation:
    """The assigned doctor ends the consultation (see ``consult.close_consultation``); its
    prescription, if any, becomes a medical request for the household."""
    consultation = consult.close_consultation(session, consultation_id, data, actor=actor, now=now)
    written = consult.get_prescription(session, consultation.id)
    if written is not None and written.request_id is None:
        request_prescription(
            session,
            consultation,
            written,
            actor=actor,
            today=clock.local(now).date() if now else clock.today(),
        )
    return consultation


def request_prescription(
    session: Session,
    consultation: Consultation,
    prescription: Prescription,
    *,
    actor: User | None,
    today: date,
) -> NeedRequest:
    """A prescription becomes a medical request, linked both ways to its consultation."""
    request = needs.create_medical_request(
        session,
        household_id=consultation.household_id,
        items=consult.prescription_request_lines(prescription),
        actor=actor,
        today=today,
        note=f"prescription {prescription.id} from consultation {consultation.id}",
        consultation_id=consultation.id,
    )
    consult.attach_request(session, prescription, request_id=request.id)
    return request


def request_due_refills(
    session: Session, *, today: date, lead_days: int, actor: User | None
) -> list[consult.RefillDue]:
    """Turn every refill falling due into a medical request before the medicine runs out (one
    per patient and supply: a second call finds nothing new). Returns what was requested."""
    due = consult.due_refills(session, today=today, lead_days=lead_days)
    for refill in due:
        request = needs.create_medical_request(
            session,
            household_id=refill.household_id,
            items=[(refill.item_id, refill.quantity)],
            actor=actor,
            today=today,
            note=f"chronic refill for {refill.member_label}: supply ends "
            f"{refill.supply_until.isoformat()}",
            medical_urgency=2 if refill.days_left <= 2 else 1,
        )
        consult.mark_refill_requested(session, refill.patient_id, request_id=request.id)
    return due
