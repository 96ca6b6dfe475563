"""SQL for audit events."""

from __future__ import annotations

from collections.abc import Sequence
from json import dumps
from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from relieflink.db.bulk import copy_rows
from relieflink.models import AuditEvent

_COLUMNS = ("at", "actor_id", "action", "entity", "entity_id", "detail")
COPY_FROM = 1000  # events; fewer go in one INSERT (one round trip where a COPY takes two)


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
    """Insert events in one statement; on PostgreSQL a batch of ``COPY_FROM`` or more with one
    COPY, each detail serialised to JSON text as SQLAlchemy's ``JSON`` type would (``None``
    becomes JSON ``null``)."""
    if len(rows) >= COPY_FROM and session.get_bind().dialect.name == "postgresql":
        table = cast(Table, AuditEvent.__table__)
        copy_rows(
            session,
            table,
            _COLUMNS,
            [(*(r[c] for c in _COLUMNS[:-1]), dumps(r["detail"])) for r in rows],
        )
    elif rows:
        session.execute(insert(AuditEvent), list(rows))
