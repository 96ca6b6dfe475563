"""SQL for audit events."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from relieflink.models import AuditEvent


def list_events(
    session: Session, *, entity: str | None, entity_id: int | None, limit: int
) -> Sequence[AuditEvent]:
    stmt = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if entity is not None:
        stmt = stmt.where(AuditEvent.entity == entity)
    if entity_id is not None:
        stmt = stmt.where(AuditEvent.entity_id == entity_id)
    return session.scalars(stmt).all()


def insert_events(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """One multi-row insert (JSON details go through SQLAlchemy's types, not COPY)."""
    if rows:
        session.execute(insert(AuditEvent), list(rows))
