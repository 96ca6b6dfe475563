"""Jobs: enqueue one (in the caller's transaction, beside the write that causes it), look at
them, cancel one. Running them is :mod:`relieflink.jobs.runner`'s part."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from relieflink import clock
from relieflink.config import get_settings
from relieflink.errors import Conflict, NotFound, TooManyRequests
from relieflink.jobs import repository as repo
from relieflink.jobs import runner
from relieflink.jobs.schemas import JobFilters
from relieflink.models import Job, JobStatus, Role, User

RETRY_AFTER_SECONDS = 30  # a refused job: about the time a queued plan takes to start


def enqueue(
    session: Session,
    *,
    kind: str,
    payload: dict[str, Any],
    actor: User | None,
    exclusive_key: str | None = None,
    max_attempts: int = 3,
    run_after: datetime | None = None,
) -> Job:
    """A queued job of ``kind``. Committed with the caller's transaction, so a job exists
    exactly when the domain write that asked for it does (a transactional outbox).

    Refused (429) when ``actor`` already has the configured number of jobs queued or running
    or when everyone's together reach ``jobs_max_queued``, and (409) while another job holding
    the same ``exclusive_key`` is queued or running.
    """
    settings = get_settings()
    if actor is not None:
        active = repo.count_active(session, created_by_id=actor.id)
        if active >= settings.jobs_max_queued_per_user:
            raise TooManyRequests(
                f"you have {active} jobs queued or running (at most "
                f"{settings.jobs_max_queued_per_user}); wait for one to finish",
                retry_after=RETRY_AFTER_SECONDS,
            )
    active = repo.count_active(session)
    if active >= settings.jobs_max_queued:
        raise TooManyRequests(
            f"{active} jobs are queued or running (at most {settings.jobs_max_queued}); "
            "try again when some have finished",
            retry_after=RETRY_AFTER_SECONDS,
        )
    if exclusive_key is not None:
        other = repo.active_with_key(session, exclusive_key)
        if other is not None:
            raise Conflict(f"{_label(other.kind)} is already in progress (job {other.id})")
    job = Job(
        kind=kind,
        payload=payload,
        status=JobStatus.queued,
        exclusive_key=exclusive_key,
        created_by_id=actor.id if actor else None,
        run_after=run_after or clock.now(),
        max_attempts=max_attempts,
        result={},
    )
    session.add(job)
    session.flush()
    return job


def active_of_kind(session: Session, kind: str) -> bool:
    """Whether a job of ``kind`` holding its kind as ``exclusive_key`` is queued or running."""
    return repo.active_with_key(session, kind) is not None


def _label(kind: str) -> str:
    return {"allocation": "an allocation run", "dispatch_plan": "a dispatch plan"}.get(
        kind, f"a {kind} job"
    )


def _may_see(job: Job, actor: User | None) -> bool:
    """Admins (and the CLI) see every job; anyone else the jobs they started."""
    return actor is None or actor.role == Role.admin or job.created_by_id == actor.id


def get_job(session: Session, job_id: int, *, actor: User | None) -> Job | None:
    job = session.get(Job, job_id)
    return job if job is not None and _may_see(job, actor) else None


def require_job(session: Session, job_id: int, *, actor: User | None) -> Job:
    """One job the actor may see (404 otherwise)."""
    job = get_job(session, job_id, actor=actor)
    if job is None:
        raise NotFound(f"no job {job_id}")
    return job


def list_jobs(
    session: Session, filters: JobFilters, *, actor: User | None
) -> tuple[Sequence[Job], int]:
    """Jobs newest first: every job for an admin (and the CLI), a user's own otherwise."""
    stmt = repo.filtered(status=filters.status, kind=filters.kind)
    if actor is not None and actor.role != Role.admin:
        stmt = stmt.where(Job.created_by_id == actor.id)
    return repo.page(session, stmt, offset=filters.offset, limit=filters.limit)


def due_job_ids(session: Session, *, kind: str, limit: int) -> list[int]:
    """Queued jobs of ``kind`` due now, oldest first."""
    return repo.due_ids(session, kind=kind, now=clock.now(), limit=limit)


def cancel_job(session: Session, job_id: int, *, actor: User | None) -> Job:
    """Cancel a job: a queued one at once; a running one at its next progress step (its work
    is rolled back). A finished job is refused (409)."""
    job = require_job(session, job_id, actor=actor)
    who = f"by {actor.username}" if actor else "from the command line"
    reason = f"cancelled {who}"
    if repo.cancel_queued(session, job.id, now=clock.now(), reason=reason):
        runner.mirror_failure(session, job.kind, job.payload, reason)  # e.g. on the plan row
    elif not repo.request_cancel(session, job.id):
        session.refresh(job)
        raise Conflict(f"job {job.id} has already ended ({job.status})")
    session.refresh(job)
    return job
