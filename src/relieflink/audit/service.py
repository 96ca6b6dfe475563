"""Recording and reading audit events."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from relieflink import clock
from relieflink.audit import repository
from relieflink.models import AuditEvent

if TYPE_CHECKING:
    from relieflink.models import User


def record(
    session: Session,
    *,
    actor: User | None,
    action: str,
    entity: str,
    entity_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one audit event in the caller's transaction (committed or rolled back with it)."""
    event = AuditEvent(
        actor_id=actor.id if actor is not None else None,
        action=action,
        entity=entity,
        entity_id=entity_id,
        detail=detail,
    )
    session.add(event)
    return event


def record_many(
    session: Session,
    *,
    actor: User | None,
    events: Sequence[tuple[str, str, int | None, dict[str, Any] | None]],
) -> None:
    """Append many audit events by one actor, ``(action, entity, entity_id, detail)`` each, in
    one statement (the events of a batch)."""
    at = clock.now()
    actor_id = actor.id if actor is not None else None
    repository.insert_events(
        session,
        [
            {"at": at, "actor_id": actor_id, "action": a, "entity": e, "entity_id": i, "detail": d}
            for a, e, i, d in events
        ],
    )


def list_events(
    session: Session, *, entity: str | None = None, entity_id: int | None = None, limit: int = 100
) -> Sequence[AuditEvent]:
    """The newest audit events, optionally for one entity (and record)."""
    return repository.list_events(session, entity=entity, entity_id=entity_id, limit=limit)
