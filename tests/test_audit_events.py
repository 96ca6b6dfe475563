"""Audit events written in bulk: a large batch goes by COPY on PostgreSQL and reads back as
a small one does (JSON details, ``None`` as JSON null, the actor and the time)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from relieflink.audit import repository
from relieflink.audit import service as audit
from relieflink.models import AuditEvent, Role
from tests.factories import make_user


def test_a_large_batch_reads_back_as_a_small_one(db: Session) -> None:
    actor = make_user(db, Role.admin)
    for n in (3, repository.COPY_FROM + 1):
        note = "a\ttab; a \\ and ü"
        details = [{"n": i, "lines": [[None, 7, 2]], "note": note} for i in range(n)]
        details[1] = None  # type: ignore[call-overload]
        audit.record_many(
            db,
            actor=actor,
            events=[("create", f"batch{n}", i, d) for i, d in enumerate(details)],
        )
        db.commit()
        rows = db.scalars(
            select(AuditEvent).where(AuditEvent.entity == f"batch{n}").order_by(AuditEvent.id)
        ).all()
        assert [r.detail for r in rows] == details
        assert [r.entity_id for r in rows] == list(range(n))
        assert {r.actor_id for r in rows} == {actor.id}
        assert len({r.at for r in rows}) == 1
