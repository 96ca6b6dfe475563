"""Online consultations: request and triage, the doctors' queue, messages, prescriptions, chronic
refills and the queue summary. Services never commit; every read of a consultation is audited.

Health data: a doctor sees consultations assigned to them and those waiting in their specialties;
a resident those of their household; nobody else reads the content (see ``users.access``).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy.orm import Session

from relieflink import clock
from relieflink.audit import service as audit
from relieflink.catalog import service as catalog
from relieflink.common import crud
from relieflink.consult import repository, staffing, triage
from relieflink.consult.schemas import (
    ChronicPatientCreate,
    ConsultationClose,
    ConsultationCreate,
    ConsultationFilters,
    ConsultationRead,
    DoctorShift,
    PrescriptionCreate,
    PrescriptionDelivery,
    PrescriptionRead,
    QueueLevel,
    QueueSummary,
)
from relieflink.errors import Conflict, FieldError, Forbidden, Invalid, NotFound
from relieflink.households import service as households
from relieflink.models import (
    ChronicPatient,
    Consultation,
    ConsultMessage,
    DoctorProfile,
    Household,
    Item,
    Prescription,
    PrescriptionLine,
    Role,
    User,
)
from relieflink.needs import service as needs
from relieflink.notices import service as notices
from relieflink.users import access

ENTITY = "consultation"
OPEN_FOR_MESSAGES = {"waiting", "in_progress"}


# --- doctors -------------------------------------------------------------------------------


def begin_write(session: Session) -> None:
    """Start the session's transaction as a writer (SQLite: ``BEGIN IMMEDIATE``; no-op on
    PostgreSQL). Call first, before anything is read, in a transaction that reads then writes."""
    repository.begin_write(session)


def get_profile(session: Session, user_id: int) -> DoctorProfile | None:
    """The doctor's profile, or None."""
    return repository.get_profile(session, user_id)


def _specialties_of(session: Session, actor: User) -> list[str]:
    if actor.role != Role.doctor:
        return []
    profile = repository.get_profile(session, actor.id)
    return list(profile.specialties) if profile else []


def start_shift(session: Session, data: DoctorShift, *, actor: User) -> DoctorProfile:
    """A doctor signs in to the queue with their specialties and languages."""
    access.ensure_role(actor, {Role.doctor})
    profile = repository.get_profile(session, actor.id)
    if profile is None:
        profile = DoctorProfile(user_id=actor.id, specialties=[], languages=[])
        session.add(profile)
    profile.specialties = list(data.specialties)
    profile.languages = list(data.languages)
    profile.on_duty = True
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="start_shift",
        entity="doctor_profile",
        entity_id=profile.id,
        detail={"specialties": profile.specialties, "languages": profile.languages},
    )
    return profile


def end_shift(session: Session, *, actor: User) -> DoctorProfile:
    """A doctor leaves the queue (consultations already taken stay theirs)."""
    access.ensure_role(actor, {Role.doctor})
    profile = repository.get_profile(session, actor.id)
    if profile is None:
        raise NotFound("you have not started a shift")
    profile.on_duty = False
    audit.record(
        session, actor=actor, action="end_shift", entity="doctor_profile", entity_id=profile.id
    )
    return profile


# --- requests and triage ---------------------------------------------------------------------


def request_consultation(
    session: Session,
    data: ConsultationCreate,
    *,
    actor: User,
    rules: triage.TriageRules | None = None,
    now: datetime | None = None,
) -> tuple[Consultation, triage.TriageResult]:
    """A resident asks for a consultation for a household member; it is triaged at once.

    A red flag gives "call emergency services now" with the numbers, and the request still joins
    the queue at the top so that a doctor follows up.
    """
    access.ensure_role(actor, access.CONSULT_REQUESTERS)
    household_id = data.household_id or actor.household_id
    if household_id is None:
        raise Invalid(
            "your account is not linked to a household",
            [FieldError(("household_id",), "required: your account has no household")],
        )
    if actor.household_id != household_id:
        raise Forbidden("you may ask for a consultation only for your own household")
    if not households.household_exists(session, household_id):
        raise Invalid("no such household", [FieldError(("household_id",), "does not exist")])
    rules = rules or triage.default_rules()
    errors = triage.check_answers(
        rules, data.symptoms, age_band=data.age_band, sex=data.sex, pregnant=data.pregnant
    )
    if errors:
        raise Invalid("the symptom questionnaire is incomplete or invalid", errors)
    result = triage.evaluate(
        rules,
        data.symptoms,
        age_band=data.age_band,
        sex=data.sex,
        pregnant=data.pregnant,
        requested_specialty=data.specialty,
    )
    now = now or clock.now()
    consultation = Consultation(
        household_id=household_id,
        requested_by_id=actor.id,
        member_label=data.member_label,
        age_band=data.age_band,
        sex=data.sex,
        pregnant=data.pregnant,
        reason=data.reason,
        free_text=data.free_text,
        language=data.language,
        symptoms=dict(data.symptoms),
        urgency=result.urgency,
        urgency_rank=result.rank,
        triage_outcome=result.outcome,
        target_minutes=result.target_minutes,
        due_at=now + timedelta(minutes=result.target_minutes),
        rules_version=result.rules_version,
        fired_rules=list(result.fired),
        emergency_numbers=[dict(n) for n in result.emergency_numbers] or None,
        specialty=result.specialty,
        status="waiting",
        created_at=now,
        updated_at=now,
    )
    session.add(consultation)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="create",
        entity=ENTITY,
        entity_id=consultation.id,
        detail={
            "urgency": result.urgency,
            "outcome": result.outcome,
            "rules_version": result.rules_version,
            "fired": list(result.fired),
        },
    )
    return consultation, result


# --- reading -------------------------------------------------------------------------------


def require_consultation(session: Session, consultation_id: int, *, actor: User) -> Consultation:
    """One consultation the actor may read; the read is audited."""
    access.ensure_role(actor, access.CONSULT_READERS)
    consultation = repository.get_consultation(session, consultation_id)
    if consultation is None:
        raise NotFound(f"no consultation with id {consultation_id}")
    specialties = _specialties_of(session, actor)
    if not access.can_read_consultation(actor, consultation, specialties=specialties):
        raise Forbidden("this consultation is not assigned to you or waiting in your specialty")
    audit.record(session, actor=actor, action="read", entity=ENTITY, entity_id=consultation.id)
    return consultation


def to_read(session: Session, consultation: Consultation) -> ConsultationRead:
    """The full view of one consultation, with its prescription if any."""
    read = ConsultationRead.model_validate(consultation)
    prescription = repository.prescription_for(session, consultation.id)
    if prescription is not None:
        read.prescription = PrescriptionRead.model_validate(prescription)
        if prescription.request_id is not None:
            state = needs.delivery_state(session, prescription.request_id)
            read.prescription.delivery = PrescriptionDelivery(
                request_status=state.status,
                units_delivered=state.units_delivered,
                delivered_at=state.delivered_at,
            )
    return read


def list_consultations(
    session: Session,
    filters: ConsultationFilters,
    *,
    actor: User,
    offset: int = 0,
    limit: int = 50,
) -> tuple[Sequence[Consultation], int]:
    """One page of the consultations the actor may see; the ids read are audited."""
    access.ensure_role(actor, access.CONSULT_READERS)
    stmt = access.scope_consultations(
        repository.filtered(filters, user_id=actor.id),
        actor,
        specialties=_specialties_of(session, actor),
    )
    rows, total = repository.page(session, stmt, offset=offset, limit=limit)
    audit.record(
        session,
        actor=actor,
        action="list",
        entity=ENTITY,
        detail={"ids": [c.id for c in rows], "filters": filters.model_dump(mode="json")},
    )
    return rows, total


def waiting_queue(session: Session, *, actor: User, limit: int = 50) -> Sequence[Consultation]:
    """The waiting consultations a doctor could take, in the order they will be taken."""
    access.ensure_role(actor, {Role.doctor})
    profile = repository.get_profile(session, actor.id)
    if profile is None:
        return []
    stmt = access.scope_consultations(
        repository.filtered(ConsultationFilters(status="waiting"), user_id=actor.id),
        actor,
        specialties=profile.specialties,
    )
    rows = repository.queue(session, stmt, languages=profile.languages, limit=limit)
    audit.record(
        session, actor=actor, action="list", entity=ENTITY, detail={"ids": [c.id for c in rows]}
    )
    return rows


# --- the queue -----------------------------------------------------------------------------


def take_next(session: Session, *, actor: User, now: datetime | None = None) -> Consultation | None:
    """Assign the next matching consultation (urgency, then most overdue) to the doctor.

    Safe under concurrent doctors: PostgreSQL skips rows another doctor has locked; SQLite takes
    the write lock first, so on SQLite call this at the start of a transaction (nothing read yet).
    """
    access.ensure_role(actor, {Role.doctor})
    repository.begin_write(session)
    profile = repository.get_profile(session, actor.id)
    if profile is None or not profile.on_duty:
        raise Conflict("start a shift (specialties and languages) before taking consultations")
    consultation = repository.claim_next(
        session,
        doctor_id=actor.id,
        specialties=profile.specialties,
        languages=profile.languages,
        now=now or clock.now(),
    )
    if consultation is None:
        return None
    audit.record(session, actor=actor, action="take", entity=ENTITY, entity_id=consultation.id)
    return consultation


def _require_assigned(session: Session, consultation_id: int, actor: User) -> Consultation:
    access.ensure_role(actor, {Role.doctor})
    consultation = repository.lock_consultation(session, consultation_id)
    if consultation is None:
        raise NotFound(f"no consultation with id {consultation_id}")
    if consultation.doctor_id != actor.id:
        raise Forbidden("this consultation is not assigned to you")
    if consultation.status != "in_progress":
        raise Conflict(f"the consultation is {consultation.status}, not in progress")
    return consultation


def prescribe(
    session: Session, consultation_id: int, data: PrescriptionCreate, *, actor: User
) -> Prescription:
    """The assigned doctor prescribes catalog items (prescription-only medicines included)."""
    consultation = _require_assigned(session, consultation_id, actor)
    if repository.prescription_for(session, consultation.id) is not None:
        raise Conflict("this consultation has a prescription already")
    errors = []
    seen: set[int] = set()
    for i, line in enumerate(data.lines):
        if catalog.get_item(session, line.item_id) is None:
            errors.append(FieldError(("lines", i, "item_id"), f"no item with id {line.item_id}"))
        if line.item_id in seen:
            errors.append(FieldError(("lines", i, "item_id"), "the item is listed twice"))
        seen.add(line.item_id)
    if errors:
        raise Invalid("the prescription is not valid", errors)
    prescription = Prescription(
        consultation_id=consultation.id,
        household_id=consultation.household_id,
        doctor_id=actor.id,
        member_label=consultation.member_label,
        priority="medical",
        reason=data.reason or f"prescription from consultation {consultation.id}",
        lines=[
            PrescriptionLine(item_id=x.item_id, quantity=x.quantity, instructions=x.instructions)
            for x in data.lines
        ],
    )
    session.add(prescription)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="prescribe",
        entity=ENTITY,
        entity_id=consultation.id,
        detail={
            "prescription_id": prescription.id,
            "lines": prescription_request_lines(prescription),
        },
    )
    return prescription


def close_consultation(
    session: Session,
    consultation_id: int,
    data: ConsultationClose,
    *,
    actor: User,
    now: datetime | None = None,
) -> Consultation:
    """The assigned doctor ends the consultation with notes and an outcome (and optionally a
    prescription). ``relieflink.flows.prescriptions.close_consultation`` closes it and turns
    the prescription into a medical request for the household."""
    consultation = _require_assigned(session, consultation_id, actor)
    if data.prescription is not None:
        prescribe(session, consultation_id, data.prescription, actor=actor)
    written = repository.prescription_for(session, consultation_id)
    if data.outcome == "prescription" and written is None:
        raise Invalid(
            "the outcome is a prescription but none was written",
            [FieldError(("prescription",), "required when the outcome is prescription")],
        )
    consultation.status = "closed"
    consultation.closed_at = now or clock.now()
    consultation.notes = data.notes
    consultation.outcome = data.outcome
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="close",
        entity=ENTITY,
        entity_id=consultation.id,
        detail={"outcome": data.outcome},
    )
    return consultation


def cancel_consultation(session: Session, consultation_id: int, *, actor: User) -> Consultation:
    """The household withdraws a request that no doctor has taken yet."""
    access.ensure_role(actor, access.CONSULT_REQUESTERS)
    consultation = repository.lock_consultation(session, consultation_id)
    if consultation is None or consultation.household_id != actor.household_id:
        raise NotFound(f"no consultation with id {consultation_id}")
    if consultation.status != "waiting":
        raise Conflict(f"the consultation is {consultation.status}; only a waiting one can go")
    consultation.status = "cancelled"
    consultation.closed_at = clock.now()
    audit.record(session, actor=actor, action="cancel", entity=ENTITY, entity_id=consultation.id)
    return consultation


# --- prescriptions → requests ------------------------------------------------------------------


def get_prescription(session: Session, consultation_id: int) -> Prescription | None:
    """The prescription written in a consultation, or None (no access check: internal use)."""
    return repository.prescription_for(session, consultation_id)


def prescription_request_lines(prescription: Prescription) -> list[tuple[int, int]]:
    """The ``(item_id, quantity)`` lines of the medical request a prescription becomes."""
    return [(line.item_id, line.quantity) for line in prescription.lines]


def attach_request(session: Session, prescription: Prescription, *, request_id: int) -> None:
    """Link a prescription to the needs request created from it (both ways: the request stores
    ``consultation_id``; the prescription stores ``request_id``)."""
    if prescription.request_id is not None and prescription.request_id != request_id:
        raise Conflict(
            f"prescription {prescription.id} already became request {prescription.request_id}"
        )
    prescription.request_id = request_id
    audit.record(
        session,
        actor=None,
        action="link_request",
        entity="prescription",
        entity_id=prescription.id,
        detail={"request_id": request_id},
    )


# --- messages ------------------------------------------------------------------------------


def ensure_participant(session: Session, consultation: Consultation, actor: User) -> None:
    """Only the assigned doctor and the household's residents exchange messages."""
    if actor.role == Role.doctor and consultation.doctor_id == actor.id:
        return
    if actor.role == Role.resident and actor.household_id == consultation.household_id:
        return
    raise Forbidden("only the assigned doctor and the household take part in this consultation")


def open_conversation(
    session: Session, consultation_id: int, *, actor: User, after_id: int = 0, limit: int = 500
) -> tuple[Consultation, Sequence[ConsultMessage]]:
    """A participant joins the conversation: the consultation and the stored messages after
    ``after_id`` (one audited read)."""
    consultation = require_consultation(session, consultation_id, actor=actor)
    ensure_participant(session, consultation, actor)
    return consultation, repository.messages(
        session, consultation.id, after_id=after_id, limit=limit
    )


def view_consultation(
    session: Session, consultation_id: int, *, actor: User, after_id: int = 0, limit: int = 500
) -> tuple[Consultation, Sequence[ConsultMessage] | None]:
    """One consultation (one audited read) and, for a participant, the messages after
    ``after_id``; None for a reader who does not take part (a doctor looking at a request
    waiting in their specialty)."""
    consultation = require_consultation(session, consultation_id, actor=actor)
    try:
        ensure_participant(session, consultation, actor)
    except Forbidden:
        return consultation, None
    return consultation, repository.messages(
        session, consultation.id, after_id=after_id, limit=limit
    )


def post_message(
    session: Session,
    consultation_id: int,
    body: str,
    *,
    actor: User,
    client_ref: str | None = None,
) -> ConsultMessage:
    """Store one message of a consultation that is still open."""
    consultation = repository.get_consultation(session, consultation_id)
    if consultation is None:
        raise NotFound(f"no consultation with id {consultation_id}")
    ensure_participant(session, consultation, actor)
    if consultation.status not in OPEN_FOR_MESSAGES:
        raise Conflict(f"the consultation is {consultation.status}")
    message = ConsultMessage(
        consultation_id=consultation_id,
        sender_id=actor.id,
        sender_role=str(actor.role),
        body=body,
        client_ref=client_ref,
    )
    session.add(message)
    session.flush()
    if actor.role == Role.doctor and notices.enabled():
        # The patient hears once that a doctor answered (the first answer); the rest they read.
        notices.notify(
            session,
            [
                notices.Notice(
                    f"consultation:{consultation.id}:answered",
                    consultation.household_id,
                    "consultation_answered",
                    {"consultation": consultation.id},
                )
            ],
        )
    return message


def list_messages(
    session: Session, consultation_id: int, *, actor: User, after_id: int = 0
) -> Sequence[ConsultMessage]:
    """The stored history (read access as for the consultation; audited)."""
    consultation = require_consultation(session, consultation_id, actor=actor)
    return repository.messages(session, consultation.id, after_id=after_id)


# --- coordinators: queue and staffing ------------------------------------------------------------


def queue_summary(
    session: Session,
    *,
    actor: User | None,
    now: datetime | None = None,
    rules: triage.TriageRules | None = None,
) -> QueueSummary:
    """Counts only (no health data): waiting per urgency and specialty, overdue, doctors on duty.
    ``actor`` None: a trusted entry point (the CLI)."""
    if actor is not None:
        access.ensure_role(actor, access.CONSULT_QUEUE_VIEWERS)
    rules = rules or triage.default_rules()
    now = now or clock.now()
    rows = repository.queue_counts(session, now)
    by_rank: dict[int, list[int]] = {}
    oldest: dict[int, datetime] = {}
    by_specialty: Counter[str] = Counter()
    for specialty, rank, n, overdue, first in rows:
        totals = by_rank.setdefault(rank, [0, 0])
        totals[0] += n
        totals[1] += overdue
        by_specialty[specialty] += n
        oldest[rank] = min(first, oldest.get(rank, first))
    levels = [
        QueueLevel(
            urgency=level.name,
            rank=level.rank,
            target_minutes=level.target_minutes,
            waiting=by_rank.get(level.rank, [0, 0])[0],
            overdue=by_rank.get(level.rank, [0, 0])[1],
            oldest_wait_minutes=(
                round((now - oldest[level.rank]).total_seconds() / 60, 1)
                if level.rank in oldest
                else None
            ),
        )
        for level in sorted(rules.levels.values(), key=lambda lv: lv.rank)
    ]
    on_duty = repository.doctors_on_duty(session)
    duty_by_specialty: Counter[str] = Counter(s for p in on_duty for s in p.specialties)
    return QueueSummary(
        at=now,
        rules_version=rules.version,
        levels=levels,
        waiting_by_specialty=dict(by_specialty),
        in_progress=repository.count_status(session, "in_progress"),
        doctors_on_duty=len(on_duty),
        doctors_on_duty_by_specialty=dict(duty_by_specialty),
    )


@dataclass(frozen=True)
class StaffingReport:
    days: int
    service_minutes: float
    service_level: float
    arrivals_by_hour: list[float]
    plan: list[staffing.HourPlan]
    queue: QueueSummary


def staffing_report(
    session: Session,
    *,
    actor: User | None,
    days: int = 7,
    service_minutes: float | None = None,
    service_level: float = 0.8,
    now: datetime | None = None,
    default_service_minutes: float = 12.0,
) -> StaffingReport:
    """Doctors needed by hour of day (Erlang C) from the observed arrivals of the last ``days``
    days and the mean service time, next to the current queue (``actor`` None: the CLI)."""
    if actor is not None:
        access.ensure_role(actor, access.STAFF)
    now = now or clock.now()
    since = now - timedelta(days=days)
    per_hour = [0] * 24
    for created in repository.arrivals_since(session, since):
        per_hour[created.hour] += 1
    arrivals = [n / days for n in per_hour]
    if service_minutes is None:
        durations = [
            (closed - taken).total_seconds() / 60
            for taken, closed in repository.service_durations(session, since)
        ]
        service_minutes = (
            max(1.0, sum(durations) / len(durations)) if durations else default_service_minutes
        )
    rules = triage.default_rules()
    targets = {name: float(level.target_minutes) for name, level in rules.levels.items()}
    plan = staffing.staffing_plan(
        arrivals, service_minutes=service_minutes, targets=targets, service_level=service_level
    )
    return StaffingReport(
        days=days,
        service_minutes=service_minutes,
        service_level=service_level,
        arrivals_by_hour=arrivals,
        plan=plan,
        queue=queue_summary(session, actor=actor, now=now, rules=rules),
    )


# --- chronic refills -------------------------------------------------------------------------


def register_chronic_patient(
    session: Session, data: ChronicPatientCreate, *, actor: User
) -> ChronicPatient:
    """Register a household member's long-term medicine so refills are asked for in time."""
    access.ensure_role(actor, access.CHRONIC_MANAGERS)
    crud.check_references(session, data.model_dump(), {"household_id": Household, "item_id": Item})
    if repository.find_chronic(session, data.household_id, data.member_label, data.item_id):
        raise Conflict("this member is registered for this medicine already")
    patient = ChronicPatient(**data.model_dump())
    session.add(patient)
    session.flush()
    audit.record(
        session, actor=actor, action="create", entity="chronic_patient", entity_id=patient.id
    )
    return patient


def record_supply(
    session: Session, patient_id: int, *, packs: int, actor: User | None, today: date
) -> ChronicPatient:
    """Medicine delivered: extend the supply by ``packs`` (from today if it had run out)."""
    if packs <= 0:
        raise Invalid("packs must be positive", [FieldError(("packs",), "must be > 0")])
    patient = repository.get_chronic(session, patient_id)
    if patient is None:
        raise NotFound(f"no chronic patient with id {patient_id}")
    days = packs * patient.units_per_pack // patient.daily_dose_units
    patient.supply_until = max(patient.supply_until, today) + timedelta(days=days)
    audit.record(
        session,
        actor=actor,
        action="supply",
        entity="chronic_patient",
        entity_id=patient.id,
        detail={"packs": packs, "supply_until": patient.supply_until.isoformat()},
    )
    return patient


@dataclass(frozen=True)
class RefillDue:
    patient_id: int
    household_id: int
    member_label: str
    item_id: int
    quantity: int  # catalog units (packs) covering ``refill_days``
    supply_until: date
    days_left: int


def due_refills(
    session: Session, *, today: date, lead_days: int, refill_days: int = 30
) -> list[RefillDue]:
    """Registered patients whose medicine runs out within ``lead_days`` (or has run out) and who
    have no refill requested for that supply yet, with the packs that cover ``refill_days``."""
    if lead_days < 0 or refill_days <= 0:
        raise ValueError("lead_days must be ≥ 0 and refill_days > 0")
    due = []
    for p in repository.chronic_running_out(session, until=today + timedelta(days=lead_days)):
        packs = math.ceil(p.daily_dose_units * refill_days / p.units_per_pack)
        due.append(
            RefillDue(
                patient_id=p.id,
                household_id=p.household_id,
                member_label=p.member_label,
                item_id=p.item_id,
                quantity=packs,
                supply_until=p.supply_until,
                days_left=(p.supply_until - today).days,
            )
        )
    return due


def mark_refill_requested(session: Session, patient_id: int, *, request_id: int | None) -> None:
    """Note that a refill was requested for the current supply (so it is not asked twice)."""
    patient = repository.get_chronic(session, patient_id)
    if patient is None:
        raise NotFound(f"no chronic patient with id {patient_id}")
    patient.refill_requested_for = patient.supply_until
    patient.refill_request_id = request_id
    audit.record(
        session,
        actor=None,
        action="refill_requested",
        entity="chronic_patient",
        entity_id=patient.id,
        detail={"request_id": request_id, "supply_until": patient.supply_until.isoformat()},
    )
