"""Allocation as a background job of the serving process, for the web dashboard's button.

``start_allocation`` records a job (``queued``) and the page returns at once; ``run_allocation_job``
then runs in a thread of the same process (FastAPI ``BackgroundTasks``) in one transaction of its
own, and the page polls ``get_job`` for the step it is at. Unlike a dispatch plan there is no
database row until the run is stored (the ``AllocationRun``), so the job's state lives in this
process only: it is lost on a restart, and a server with several worker processes answers a poll
that reaches another worker with "unknown job". One job runs at a time per process, as two runs
at once would read the same open lines.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass, field, replace
from datetime import date, datetime

from relieflink import clock
from relieflink.db import begin_write, session_scope
from relieflink.errors import Conflict, RelieflinkError
from relieflink.models import User
from relieflink.needs import allocation
from relieflink.users import access

log = logging.getLogger(__name__)

# run_allocation's steps, as percentages of the run.
STEPS = {
    "reading open requests": 10,
    "reading available stock": 35,
    "allocating": 55,
    "reserving stock": 80,
}
KEEP = 50  # finished jobs remembered (the newest)


@dataclass(frozen=True)
class AllocationJob:
    """One allocation run started from a page, and where it is."""

    id: str
    day: date
    actor_id: int
    status: str = "queued"  # queued, running, done, failed
    progress: int = 0
    step: str = ""
    message: str = ""
    run_id: int | None = None
    lines: int = 0
    units_requested: int = 0
    units_allocated: int = 0
    created_at: datetime = field(default_factory=clock.now)
    finished_at: datetime | None = None

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed")


_jobs: dict[str, AllocationJob] = {}
_lock = threading.Lock()


def _set(job_id: str, **changes: object) -> None:
    with _lock:
        _jobs[job_id] = replace(_jobs[job_id], **changes)  # type: ignore[arg-type]


def start_allocation(*, day: date, actor: User) -> AllocationJob:
    """A queued job for ``actor`` (staff), refused while another one runs in this process."""
    access.ensure_role(actor, access.STAFF)
    with _lock:
        running = [j for j in _jobs.values() if not j.finished]
        if running:
            raise Conflict(f"an allocation run is already in progress (job {running[0].id})")
        job = AllocationJob(id=uuid.uuid4().hex, day=day, actor_id=actor.id)
        _jobs[job.id] = job
        done = sorted((j for j in _jobs.values() if j.finished), key=lambda j: j.created_at)
        for old in done[: max(0, len(done) - KEEP)]:
            del _jobs[old.id]
    return job


def get_job(job_id: str) -> AllocationJob | None:
    with _lock:
        return _jobs.get(job_id)


def run_allocation_job(job_id: str) -> None:
    """Run the allocation of job ``job_id`` and store its outcome (any error on the job)."""
    job = get_job(job_id)
    if job is None:
        return
    _set(job_id, status="running", progress=2, step="starting")

    def step(message: str) -> None:
        _set(job_id, progress=STEPS.get(message, 50), step=message)

    try:
        with session_scope() as session:
            # One read-then-write transaction: on SQLite take the write lock first, as the API's
            # synchronous run does through its request session.
            begin_write(session)
            actor = session.get(User, job.actor_id)
            if actor is None:
                raise Conflict(f"user {job.actor_id} no longer exists")
            report = allocation.run_allocation(session, actor=actor, today=job.day, progress=step)
        _set(
            job_id,
            status="done",
            progress=100,
            step="done",
            run_id=report.run_id,
            lines=report.lines,
            units_requested=report.units_requested,
            units_allocated=report.units_allocated,
            finished_at=clock.now(),
        )
    except Exception as exc:  # kept on the job for the poller; logged in full
        message = exc.message if isinstance(exc, RelieflinkError) else f"internal error: {exc}"
        if not isinstance(exc, RelieflinkError):
            log.exception("allocation job %s failed", job_id)
        _set(job_id, status="failed", message=message, finished_at=clock.now())
