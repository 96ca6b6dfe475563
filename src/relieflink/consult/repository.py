"""All SQL of the consultation domain."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, case, func, insert, select, update
from sqlalchemy.orm import Session

from relieflink import db
from relieflink.common import repository as common
from relieflink.consult.schemas import ConsultationFilters
from relieflink.models import (
    ChronicPatient,
    Consultation,
    ConsultMessage,
    DoctorProfile,
    Prescription,
)


def dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def begin_write(session: Session) -> None:
    """On SQLite, take the database write lock before reading (``BEGIN IMMEDIATE``): a
    transaction that reads and then writes (claiming from the queue, a read that is audited, a
    batch of messages checked then stored) cannot then fail with "database is locked" when
    another writer committed in between. Must be the first statement of the transaction.
    PostgreSQL needs nothing here (the queue locks rows with ``FOR UPDATE SKIP LOCKED``)."""
    db.begin_write(session)


def get_profile(session: Session, user_id: int) -> DoctorProfile | None:
    return session.scalars(
        select(DoctorProfile).where(DoctorProfile.user_id == user_id)
    ).one_or_none()


def get_consultation(session: Session, consultation_id: int) -> Consultation | None:
    return session.get(Consultation, consultation_id)


def filtered(filters: ConsultationFilters, *, user_id: int) -> Select[Consultation]:
    stmt = select(Consultation)
    if filters.status is not None:
        stmt = stmt.where(Consultation.status == filters.status)
    if filters.specialty is not None:
        stmt = stmt.where(Consultation.specialty == filters.specialty)
    if filters.mine:
        stmt = stmt.where(Consultation.doctor_id == user_id)
    return stmt


def page(
    session: Session, stmt: Select[Consultation], *, offset: int, limit: int
) -> tuple[Sequence[Consultation], int]:
    rows, total = common.page(session, stmt, offset=offset, limit=limit, order_by=Consultation.id)
    return rows, total


def queue_order(stmt: Select[Consultation]) -> Select[Consultation]:
    """Most urgent first; within a level the earliest due (the most overdue) first."""
    return stmt.order_by(Consultation.urgency_rank, Consultation.due_at, Consultation.id)


def queue(
    session: Session, stmt: Select[Consultation], *, languages: Collection[str], limit: int
) -> Sequence[Consultation]:
    """The first ``limit`` rows of ``stmt`` in a doctor's ``languages``, in queue order."""
    stmt = queue_order(stmt).where(Consultation.language.in_(list(languages)))
    return session.scalars(stmt.limit(limit)).all()


def waiting_matching(specialties: Collection[str], languages: Collection[str]) -> Select[int]:
    return (
        select(Consultation.id)
        .where(
            Consultation.status == "waiting",
            Consultation.specialty.in_(list(specialties)),
            Consultation.language.in_(list(languages)),
        )
        .order_by(Consultation.urgency_rank, Consultation.due_at, Consultation.id)
    )


def claim_next(
    session: Session,
    *,
    doctor_id: int,
    specialties: Collection[str],
    languages: Collection[str],
    now: datetime,
) -> Consultation | None:
    """Assign the first matching waiting consultation to ``doctor_id`` in ONE statement:
    ``UPDATE ... WHERE id = (SELECT id ... ORDER BY urgency, due LIMIT 1 [FOR UPDATE SKIP
    LOCKED]) AND status = 'waiting' RETURNING *``.

    PostgreSQL: ``SKIP LOCKED`` hands concurrent doctors different rows without waiting.
    SQLite: the caller took the write lock first (:func:`begin_write`), and SQLite runs one
    writer at a time. In both, the UPDATE is conditional on the row still waiting, so a row is
    never assigned twice; None when nothing matches.
    """
    subquery = waiting_matching(specialties, languages).limit(1)
    if dialect(session) == "postgresql":
        subquery = subquery.with_for_update(skip_locked=True, of=Consultation)
    stmt = (
        update(Consultation)
        .where(Consultation.id == subquery.scalar_subquery(), Consultation.status == "waiting")
        .values(status="in_progress", doctor_id=doctor_id, taken_at=now, updated_at=now)
        .returning(Consultation)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    return session.scalars(stmt).one_or_none()


def lock_consultation(session: Session, consultation_id: int) -> Consultation | None:
    """The row, locked against concurrent changes (PostgreSQL; SQLite serialises writers)."""
    stmt = select(Consultation).where(Consultation.id == consultation_id)
    if dialect(session) == "postgresql":
        stmt = stmt.with_for_update()
    return session.scalars(stmt.execution_options(populate_existing=True)).one_or_none()


def messages(
    session: Session, consultation_id: int, *, after_id: int = 0, limit: int = 500
) -> Sequence[ConsultMessage]:
    return session.scalars(
        select(ConsultMessage)
        .where(ConsultMessage.consultation_id == consultation_id, ConsultMessage.id > after_id)
        .order_by(ConsultMessage.id)
        .limit(limit)
    ).all()


def statuses(session: Session, ids: Collection[int]) -> dict[int, str]:
    stmt = select(Consultation.id, Consultation.status).where(Consultation.id.in_(list(ids)))
    return {row.id: row.status for row in session.execute(stmt)}


def insert_messages(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    """Insert messages in one statement; their ids, in the order given."""
    if not rows:
        return []
    result = session.execute(
        insert(ConsultMessage).returning(ConsultMessage.id, sort_by_parameter_order=True), rows
    )
    return [row[0] for row in result]


def prescription_for(session: Session, consultation_id: int) -> Prescription | None:
    return session.scalars(
        select(Prescription).where(Prescription.consultation_id == consultation_id)
    ).one_or_none()


def queue_counts(session: Session, now: datetime) -> list[tuple[str, int, int, int, datetime]]:
    """Per (specialty, urgency rank): waiting count, overdue count, oldest created_at."""
    overdue = func.sum(case((Consultation.due_at < now, 1), else_=0))
    rows = session.execute(
        select(
            Consultation.specialty,
            Consultation.urgency_rank,
            func.count(),
            overdue,
            func.min(Consultation.created_at),
        )
        .where(Consultation.status == "waiting")
        .group_by(Consultation.specialty, Consultation.urgency_rank)
    ).all()
    return [(s, r, n, int(o or 0), oldest) for s, r, n, o, oldest in rows]


def count_status(session: Session, status: str) -> int:
    return session.scalar(select(func.count()).where(Consultation.status == status)) or 0


def doctors_on_duty(session: Session) -> Sequence[DoctorProfile]:
    return session.scalars(select(DoctorProfile).where(DoctorProfile.on_duty.is_(True))).all()


def arrivals_since(session: Session, since: datetime) -> Sequence[datetime]:
    return session.scalars(
        select(Consultation.created_at).where(Consultation.created_at >= since)
    ).all()


def service_durations(session: Session, since: datetime) -> Sequence[tuple[datetime, datetime]]:
    rows = session.execute(
        select(Consultation.taken_at, Consultation.closed_at).where(
            Consultation.closed_at >= since,
            Consultation.taken_at.is_not(None),
        )
    ).all()
    return [(t, c) for t, c in rows if t is not None and c is not None]


def get_chronic(session: Session, patient_id: int) -> ChronicPatient | None:
    return session.get(ChronicPatient, patient_id)


def find_chronic(
    session: Session, household_id: int, member_label: str, item_id: int
) -> ChronicPatient | None:
    return session.scalars(
        select(ChronicPatient).where(
            ChronicPatient.household_id == household_id,
            ChronicPatient.member_label == member_label,
            ChronicPatient.item_id == item_id,
        )
    ).one_or_none()


def chronic_running_out(session: Session, *, until: date) -> Sequence[ChronicPatient]:
    """Active patients whose supply ends on or before ``until`` and who have no refill requested
    for that supply yet."""
    return session.scalars(
        select(ChronicPatient)
        .where(
            ChronicPatient.active.is_(True),
            ChronicPatient.supply_until <= until,
            (ChronicPatient.refill_requested_for.is_(None))
            | (ChronicPatient.refill_requested_for != ChronicPatient.supply_until),
        )
        .order_by(ChronicPatient.supply_until, ChronicPatient.id)
    ).all()
