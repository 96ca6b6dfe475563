"""SQL for jobs: enqueue, claim (one worker per job, a global cap on running jobs), progress,
leases, the end of a job, and the lists."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, or_, select, update
from sqlalchemy.orm import Session

from relieflink.common import repository as common
from relieflink.models import ACTIVE_JOB_STATUSES, Job, JobStatus

# PostgreSQL: claimers take this transaction-scoped advisory lock in turn, so two of them cannot
# both see one free slot under the cap and both take it. (SQLite: the write lock does the same.)
_CLAIM_LOCK = 0x4A_4F_42_53  # "JOBS"


def count_active(session: Session, *, created_by_id: int | None = None) -> int:
    """Jobs still queued or running: one user's when ``created_by_id`` is given, else all."""
    stmt = select(func.count()).select_from(Job).where(Job.status.in_(ACTIVE_JOB_STATUSES))
    if created_by_id is not None:
        stmt = stmt.where(Job.created_by_id == created_by_id)
    return session.scalar(stmt) or 0


def active_with_key(session: Session, key: str) -> Job | None:
    """A queued or running job holding ``exclusive_key`` ``key``."""
    return session.scalars(
        select(Job)
        .where(Job.exclusive_key == key, Job.status.in_(ACTIVE_JOB_STATUSES))
        .order_by(Job.id)
        .limit(1)
    ).first()


def anything_due(session: Session, *, now: datetime, due_before: datetime) -> bool:
    """Whether a queued job is due or a running one outlived its lease (a plain read: an idle
    worker checks this before it takes any lock)."""
    return (
        session.scalar(
            select(Job.id)
            .where(
                or_(
                    (Job.status == JobStatus.queued) & (Job.run_after <= due_before),
                    (Job.status == JobStatus.running) & (Job.lease_until < now),
                )
            )
            .limit(1)
        )
        is not None
    )


def due_ids(session: Session, *, kind: str, now: datetime, limit: int) -> list[int]:
    stmt = (
        select(Job.id)
        .where(Job.kind == kind, Job.status == JobStatus.queued, Job.run_after <= now)
        .order_by(Job.run_after, Job.id)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def expired_leases(session: Session, *, now: datetime) -> Sequence[Job]:
    """Running jobs whose worker stopped extending their lease."""
    return session.scalars(
        select(Job).where(Job.status == JobStatus.running, Job.lease_until < now).order_by(Job.id)
    ).all()


def claim(
    session: Session,
    *,
    now: datetime,
    due_before: datetime,
    worker: str,
    lease_until: datetime,
    max_running: int,
    job_id: int | None = None,
) -> Job | None:
    """Mark the next due job (or job ``job_id``) ``running`` for ``worker`` and return it; None
    when nothing is due or ``max_running`` jobs already run. On SQLite the caller holds the write
    lock (``begin_write``)."""
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        session.execute(select(func.pg_advisory_xact_lock(_CLAIM_LOCK)))
    running = session.scalar(
        select(func.count()).select_from(Job).where(Job.status == JobStatus.running)
    )
    if (running or 0) >= max_running:
        return None
    busy = select(Job.exclusive_key).where(
        Job.status == JobStatus.running, Job.exclusive_key.is_not(None)
    )
    stmt = (
        select(Job.id)
        .where(
            Job.status == JobStatus.queued,
            Job.run_after <= due_before,
            or_(Job.exclusive_key.is_(None), Job.exclusive_key.not_in(busy)),
        )
        .order_by(Job.run_after, Job.id)
        .limit(1)
    )
    if job_id is not None:
        stmt = stmt.where(Job.id == job_id)
    if postgres:
        stmt = stmt.with_for_update(skip_locked=True)
    found = session.scalar(stmt)
    if found is None:
        return None
    # Conditional: only a job still queued is taken (on PostgreSQL its row is locked already).
    taken = session.execute(
        update(Job)
        .where(Job.id == found, Job.status == JobStatus.queued)
        .values(
            status=JobStatus.running,
            worker=worker,
            lease_until=lease_until,
            started_at=now,
            attempts=Job.attempts + 1,
        )
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return session.get(Job, found, populate_existing=True)


def extend_lease(
    session: Session,
    job_id: int,
    *,
    worker: str,
    lease_until: datetime,
    progress: tuple[int, int, str] | None = None,
) -> bool | None:
    """Extend ``worker``'s lease on a running job (and record its progress); returns whether a
    cancel was asked for, or None when the job is no longer this worker's."""
    values: dict[str, Any] = {"lease_until": lease_until}
    if progress is not None:
        values |= {
            "progress_done": progress[0],
            "progress_total": progress[1],
            "message": progress[2],
        }
    return session.scalars(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.running, Job.worker == worker)
        .values(**values)
        .returning(Job.cancel_requested)
        .execution_options(synchronize_session=False)
    ).first()


def finish(
    session: Session,
    job_id: int,
    *,
    owner: str | None,
    lease_expired_at: datetime | None = None,
    **values: Any,
) -> bool:
    """End (or re-queue) a running job with ``values``: only ``owner``'s own job when given, and
    only while its lease is out at ``lease_expired_at`` when given (a job another worker just
    claimed is left alone). Returns whether it was changed."""
    stmt = update(Job).where(Job.id == job_id, Job.status == JobStatus.running)
    if owner is not None:
        stmt = stmt.where(Job.worker == owner)
    if lease_expired_at is not None:
        stmt = stmt.where(Job.lease_until < lease_expired_at)
    result = session.execute(stmt.values(**values).execution_options(synchronize_session=False))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def cancel_queued(session: Session, job_id: int, *, now: datetime, reason: str) -> bool:
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.queued)
        .values(status=JobStatus.cancelled, finished_at=now, error=reason)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def request_cancel(session: Session, job_id: int) -> bool:
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.running)
        .values(cancel_requested=True)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def filtered(*, status: JobStatus | None, kind: str | None) -> Select[Job]:
    stmt = select(Job)
    if status is not None:
        stmt = stmt.where(Job.status == status)
    if kind is not None:
        stmt = stmt.where(Job.kind == kind)
    return stmt


def page(
    session: Session, stmt: Select[Job], *, offset: int, limit: int
) -> tuple[Sequence[Job], int]:
    return common.page(session, stmt, offset=offset, limit=limit, order_by=Job.id.desc())
