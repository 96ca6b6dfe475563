"""The worker: claim a due job, run its kind's handler, record how it ended.

Each job kind registers a handler (:func:`register`). A worker (``relieflink worker``, or the
server itself with ``jobs_in_process``) first re-queues jobs whose worker died (their lease ran
out), then claims one due job under the global cap on running jobs, and runs it while a
heartbeat thread extends its lease. A handler reports progress through its
:class:`JobContext` (where a pending cancel stops it), and records success in its own final
transaction (:meth:`JobContext.succeed`), so a job's work and its "succeeded" commit together.

A kind may also *feed* the queue from its domain's outbox (:func:`register` with ``feed``):
workers call it before they look for due jobs, so work recorded by any path (a webhook event
written with a pledge's change) gets its job without that path knowing about the runner.

How a job ends: a domain refusal (:class:`~relieflink.errors.RelieflinkError`) fails it with
that message; a handler that raises :class:`RetryLater` (a partner's server is down), and a
deadlock, serialization failure or locked database, queue it again after an exponential backoff
(up to ``max_attempts``, then it fails); anything else fails it with a one-line reason while the
full trace goes to the log, never to the stored reason.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from relieflink import clock
from relieflink.config import get_settings
from relieflink.db import begin_write, session_scope
from relieflink.errors import RelieflinkError
from relieflink.jobs import repository as repo
from relieflink.models import JobStatus

log = logging.getLogger(__name__)

# PostgreSQL's deadlock and serialization failures: the transaction may simply run again.
_RETRY_SQLSTATES = {"40P01", "40001"}


class JobCancelled(Exception):
    """A cancel was asked for: the handler stops, its open transaction rolls back."""


class JobLost(Exception):
    """The job is no longer this worker's (its lease ran out and another worker took it)."""


class RetryLater(Exception):
    """The handler could not do its work now: queue the job again ``after`` this long (see
    :func:`backoff`), or fail it with this reason once it had its ``max_attempts``."""

    def __init__(self, reason: str, *, after: timedelta) -> None:
        super().__init__(reason)
        self.after = after


@dataclass(frozen=True)
class Outcome:
    """What a job produced: a reference to its record (``"allocation_run:12"``) and a summary."""

    result_ref: str | None = None
    result: dict[str, Any] = field(default_factory=dict)


@dataclass
class JobContext:
    """A running job as its handler sees it."""

    job_id: int
    kind: str
    payload: dict[str, Any]
    created_by_id: int | None
    attempts: int
    worker: str
    lease_seconds: int
    succeeded: bool = False

    @property
    def can_report_aside(self) -> bool:
        """Whether progress can be written while the handler holds a write transaction open:
        not on SQLite, where one writer at a time holds the whole database."""
        return not get_settings().is_sqlite

    def progress(
        self,
        done: int,
        total: int,
        message: str,
        *,
        also: Callable[[Session], None] | None = None,
    ) -> None:
        """Record progress (and run ``also`` in the same short transaction, e.g. to mirror it on
        a domain row); raises :class:`JobCancelled` when a cancel is pending."""
        with session_scope() as session:
            cancel = repo.extend_lease(
                session,
                self.job_id,
                worker=self.worker,
                lease_until=clock.now() + timedelta(seconds=self.lease_seconds),
                progress=(done, total, message[:500]),
            )
            if cancel is None:
                raise JobLost(f"job {self.job_id} is no longer held by {self.worker}")
            if also is not None and not cancel:
                also(session)
        if cancel:
            raise JobCancelled(f"job {self.job_id} was cancelled")

    def succeed(self, session: Session, outcome: Outcome) -> None:
        """Mark the job succeeded in the handler's own (final) transaction."""
        if not repo.finish(
            session,
            self.job_id,
            owner=self.worker,
            status=JobStatus.succeeded,
            finished_at=clock.now(),
            lease_until=None,
            progress_done=100,
            progress_total=100,
            message="done",
            result_ref=outcome.result_ref,
            result=outcome.result,
        ):
            raise JobLost(f"job {self.job_id} is no longer held by {self.worker}")
        self.succeeded = True


Handler = Callable[[JobContext], Outcome | None]
OnFailed = Callable[[Session, dict[str, Any], str], None]
Feed = Callable[[Session], int]


@dataclass(frozen=True)
class Kind:
    run: Handler
    on_failed: OnFailed | None = None  # mirror a failure or cancel on a domain row
    feed: Feed | None = None  # queue jobs for work its domain recorded; returns how many


KINDS: dict[str, Kind] = {}


def register(
    kind: str, run: Handler, *, on_failed: OnFailed | None = None, feed: Feed | None = None
) -> None:
    """Let workers run jobs of ``kind`` with ``run`` (and queue them with ``feed``)."""
    KINDS[kind] = Kind(run, on_failed, feed)


def mirror_failure(session: Session, kind: str, payload: dict[str, Any], reason: str) -> None:
    """Tell the job's domain row (if its kind has one) that the job failed or was cancelled."""
    handler = KINDS.get(kind)
    if handler is not None and handler.on_failed is not None:
        handler.on_failed(session, payload, reason)


def failure_reason(exc: BaseException) -> str:
    """One clear line for the stored reason (the trace goes to the log)."""
    if isinstance(exc, RelieflinkError):
        return exc.message
    first = (str(exc).strip().splitlines() or [""])[0][:300]
    return f"internal error ({type(exc).__name__}): {first}" if first else "internal error"


def _transient(exc: BaseException) -> bool:
    if not isinstance(exc, OperationalError):
        return False
    return getattr(exc.orig, "sqlstate", None) in _RETRY_SQLSTATES or "locked" in str(exc.orig)


def backoff(attempts: int, *, base: float = 5.0, cap: float = 300.0) -> timedelta:
    """How long to wait after attempt ``attempts`` (1, 2, ...): ``base`` seconds, doubled after
    each further attempt, at most ``cap``."""
    return timedelta(seconds=min(cap, base * 2 ** max(attempts - 1, 0)))


class Worker:
    """Runs jobs one at a time (start several for more; the database caps them all)."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"

    # --- claiming ---------------------------------------------------------------------------

    def feed(self) -> int:
        """Let every kind with a feed queue the jobs its domain's outbox asks for."""
        queued = 0
        for kind in KINDS.values():
            if kind.feed is not None:
                with session_scope() as session:
                    queued += kind.feed(session)
        return queued

    def recover(self) -> int:
        """Queue again (or fail, after ``max_attempts``) the running jobs whose lease ran out."""
        now = clock.now()
        with session_scope() as session:
            if not repo.expired_leases(session, now=now):
                return 0
        count = 0
        with session_scope() as session:
            begin_write(session)
            for job in repo.expired_leases(session, now=now):
                gone = f"its worker {job.worker or '?'} stopped"
                if job.cancel_requested or job.attempts >= job.max_attempts:
                    status = JobStatus.cancelled if job.cancel_requested else JobStatus.failed
                    reason = (
                        "cancelled"
                        if job.cancel_requested
                        else f"{gone} ({job.attempts} attempts); not tried again"
                    )
                    changed = repo.finish(
                        session,
                        job.id,
                        owner=None,
                        lease_expired_at=now,
                        status=status,
                        error=reason,
                        finished_at=now,
                        lease_until=None,
                    )
                    if changed:
                        mirror_failure(session, job.kind, job.payload, reason)
                else:
                    changed = repo.finish(
                        session,
                        job.id,
                        owner=None,
                        lease_expired_at=now,
                        status=JobStatus.queued,
                        worker="",
                        lease_until=None,
                        run_after=now,
                        message=f"queued again: {gone}",
                    )
                if changed:  # (another worker may have recovered it first)
                    log.warning("job %s (%s): %s", job.id, job.kind, gone)
                    count += 1
        return count

    def run_one(self, *, job_id: int | None = None, grace: float = 0.0) -> bool:
        """Claim and run one due job (job ``job_id`` only, when given); False when there was
        none or the cap on running jobs is reached. ``grace``: leave jobs younger than this many
        seconds to the requests that queued them (the server's own poller)."""
        settings = get_settings()
        if job_id is None:
            self.feed()  # first: what it queues now is due now
        now = clock.now()
        due_before = now - timedelta(seconds=grace)
        if job_id is None:
            with session_scope() as session:  # a plain read first: an idle poll takes no lock
                if not repo.anything_due(session, now=now, due_before=due_before):
                    return False
        self.recover()
        now = clock.now()
        due_before = now - timedelta(seconds=grace)
        with session_scope() as session:
            begin_write(session)
            job = repo.claim(
                session,
                now=now,
                due_before=due_before,
                worker=self.name,
                lease_until=now + timedelta(seconds=settings.jobs_lease_seconds),
                max_running=settings.jobs_max_running,
                job_id=job_id,
            )
            if job is None:
                return False
            ctx = JobContext(
                job_id=job.id,
                kind=job.kind,
                payload=dict(job.payload),
                created_by_id=job.created_by_id,
                attempts=job.attempts,
                worker=self.name,
                lease_seconds=settings.jobs_lease_seconds,
            )
            max_attempts = job.max_attempts
        self._execute(ctx, max_attempts)
        return True

    def run_pending(self, *, limit: int | None = None) -> int:
        """Run due jobs until none is left (or ``limit`` ran); returns how many ran."""
        ran = 0
        while (limit is None or ran < limit) and self.run_one():
            ran += 1
        return ran

    def run_forever(self, stop: threading.Event, *, grace: float = 0.0) -> None:
        """Run jobs until ``stop`` is set, polling every ``jobs_poll_seconds`` when idle."""
        poll = get_settings().jobs_poll_seconds
        while not stop.is_set():
            try:
                ran = self.run_one(grace=grace)
            except Exception:  # the database away for a moment: try again after a poll
                log.exception("job worker %s: could not claim a job", self.name)
                ran = False
            if not ran:
                stop.wait(poll)

    # --- running ----------------------------------------------------------------------------

    def _execute(self, ctx: JobContext, max_attempts: int) -> None:
        kind = KINDS.get(ctx.kind)
        beat = _Heartbeat(ctx)
        beat.start()
        try:
            if kind is None:
                raise RelieflinkError(f"no worker handles jobs of kind {ctx.kind!r}")
            outcome = kind.run(ctx) or Outcome()
            if not ctx.succeeded:
                with session_scope() as session:
                    ctx.succeed(session, outcome)
        except JobLost as exc:
            log.warning("%s", exc)
        except JobCancelled:
            self._end(ctx, JobStatus.cancelled, "cancelled")
        except RetryLater as exc:
            if ctx.attempts < max_attempts:
                self._retry(ctx, str(exc), after=exc.after)
            else:
                self._end(ctx, JobStatus.failed, f"{exc} (after {ctx.attempts} attempts)")
        except Exception as exc:
            if not isinstance(exc, RelieflinkError):
                log.exception("job %s (%s) failed", ctx.job_id, ctx.kind)
            if _transient(exc) and ctx.attempts < max_attempts:
                self._retry(ctx, failure_reason(exc))
            else:
                self._end(ctx, JobStatus.failed, failure_reason(exc))
        finally:
            beat.stop()

    def _retry(self, ctx: JobContext, reason: str, *, after: timedelta | None = None) -> None:
        with session_scope() as session:
            repo.finish(
                session,
                ctx.job_id,
                owner=self.name,
                status=JobStatus.queued,
                worker="",
                lease_until=None,
                run_after=clock.now() + (after or backoff(ctx.attempts)),
                message=f"queued again after: {reason}",
            )

    def _end(self, ctx: JobContext, status: JobStatus, reason: str) -> None:
        with session_scope() as session:
            begin_write(session)
            if repo.finish(
                session,
                ctx.job_id,
                owner=self.name,
                status=status,
                error=reason,
                finished_at=clock.now(),
                lease_until=None,
            ):
                mirror_failure(session, ctx.kind, ctx.payload, reason)


class _Heartbeat:
    """Extends a running job's lease every third of it, so a long search keeps its job."""

    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"job-{ctx.job_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        every = self.ctx.lease_seconds / 3
        while not self._stop.wait(every):
            try:
                with session_scope() as session:
                    repo.extend_lease(
                        session,
                        self.ctx.job_id,
                        worker=self.ctx.worker,
                        lease_until=clock.now() + timedelta(seconds=self.ctx.lease_seconds),
                    )
            except Exception:  # e.g. SQLite busy with the job's own write: try next beat
                log.warning("job %s: could not extend its lease", self.ctx.job_id, exc_info=True)


# --- in the server process ------------------------------------------------------------------


def run_in_process(job_id: int) -> None:
    """Run job ``job_id`` now in this process when the server runs its jobs itself (a request's
    background task, after the job was committed); else a worker process will take it."""
    if get_settings().runs_jobs_in_process:
        Worker().run_one(job_id=job_id)


def start_in_process(count: int = 1) -> Callable[[], None]:
    """Start ``count`` worker threads in this process; returns the function that stops them.
    They leave jobs queued in the last few seconds to the requests that queued them."""
    stop = threading.Event()
    grace = 2 * get_settings().jobs_poll_seconds + 5
    threads = [
        threading.Thread(
            target=Worker().run_forever,
            args=(stop,),
            kwargs={"grace": grace},
            name=f"relieflink-jobs-{i}",
            daemon=True,
        )
        for i in range(count)
    ]
    for thread in threads:
        thread.start()

    def stop_all() -> None:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)

    return stop_all
