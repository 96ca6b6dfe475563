"""SQL for notices: write the outbox (a duplicate event writes nothing), claim due notices for
a sender, record how each send ended, and the lists."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from relieflink.models import (
    Household,
    Notice,
    NoticePreference,
    NoticeStatus,
)

_NOTICES: Table = Notice.__table__  # type: ignore[assignment]


def recipients(
    session: Session, household_ids: Iterable[int]
) -> dict[int, tuple[str | None, str | None, str, bool]]:
    """Household id → (phone, e-mail, language, opted out)."""
    ids = sorted(set(household_ids))
    found: dict[int, tuple[str | None, str | None, str, bool]] = {}
    for start in range(0, len(ids), 5_000):
        chunk = ids[start : start + 5_000]
        rows = session.execute(
            select(
                Household.id,
                Household.phone,
                NoticePreference.email,
                NoticePreference.language,
                NoticePreference.opted_out,
            )
            .outerjoin(NoticePreference, NoticePreference.household_id == Household.id)
            .where(Household.id.in_(chunk))
        )
        for household_id, phone, email, language, opted_out in rows:
            found[household_id] = (phone, email, language or "zh", bool(opted_out))
    return found


def insert_new(session: Session, rows: Sequence[dict[str, Any]]) -> int:
    """Insert notices, skipping any whose (event, channel) exists; how many were new."""
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = (
        insert(_NOTICES)
        .on_conflict_do_nothing(index_elements=["event_key", "channel"])
        .returning(_NOTICES.c.id)  # (a many-row rowcount is not reliable on every driver)
    )
    written = 0
    for start in range(0, len(rows), 5_000):
        written += len(session.execute(stmt, list(rows[start : start + 5_000])).all())
    return written


def anything_due(session: Session, *, now: datetime) -> bool:
    return session.scalar(select(Notice.id).where(_due(now)).limit(1)) is not None


def _due(now: datetime) -> Any:
    return or_(
        (Notice.status == NoticeStatus.pending) & (Notice.next_try_at <= now),
        (Notice.status == NoticeStatus.sending) & (Notice.lease_until < now),
    )


def due(session: Session, *, now: datetime, limit: int) -> Sequence[Notice]:
    """Due notices, oldest first: pending ones whose time has come, and ones a sender took and
    never finished (its lease ran out)."""
    return session.scalars(
        select(Notice).where(_due(now)).order_by(Notice.next_try_at, Notice.id).limit(limit)
    ).all()


def take(session: Session, notice_id: int, *, now: datetime, lease_until: datetime) -> bool:
    """Mark one due notice ``sending`` for this sender; False if another sender took it."""
    result = session.execute(
        update(Notice)
        .where(Notice.id == notice_id, _due(now))
        .values(
            status=NoticeStatus.sending,
            lease_until=lease_until,
            attempts=Notice.attempts + 1,
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def sent_since(session: Session, recipient: str, since: datetime) -> list[datetime]:
    """When notices to ``recipient`` were sent since ``since``, oldest first."""
    return [
        t
        for t in session.scalars(
            select(Notice.sent_at)
            .where(Notice.recipient == recipient, Notice.sent_at >= since)
            .order_by(Notice.sent_at)
        )
        if t is not None
    ]


def finish(session: Session, notice_id: int, **values: Any) -> None:
    session.execute(
        update(Notice)
        .where(Notice.id == notice_id, Notice.status == NoticeStatus.sending)
        .values(lease_until=None, **values)
    )


def listed(session: Session, *, status: NoticeStatus | None, limit: int) -> Sequence[Notice]:
    stmt = select(Notice).order_by(Notice.id.desc()).limit(limit)
    if status is not None:
        stmt = stmt.where(Notice.status == status)
    return session.scalars(stmt).all()


def counts(session: Session) -> dict[str, int]:
    rows = session.execute(select(Notice.status, func.count()).group_by(Notice.status))
    return {str(status): count for status, count in rows}


def resend(session: Session, notice_id: int, *, now: datetime) -> bool:
    """A dead notice back to pending with fresh tries."""
    result = session.execute(
        update(Notice)
        .where(Notice.id == notice_id, Notice.status == NoticeStatus.dead)
        .values(status=NoticeStatus.pending, attempts=0, next_try_at=now, last_error="")
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def set_preference(
    session: Session,
    household_id: int,
    *,
    language: str | None,
    email: str | None,
    opted_out: bool | None,
) -> NoticePreference:
    preference = session.get(NoticePreference, household_id)
    if preference is None:
        preference = NoticePreference(household_id=household_id, language="zh", opted_out=False)
        session.add(preference)
    if language is not None:
        preference.language = language
    if email is not None:
        preference.email = email or None
    if opted_out is not None:
        preference.opted_out = opted_out
    session.flush()
    return preference
