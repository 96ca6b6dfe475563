"""The allocation job (kind ``allocation``): the allocation flow for a day, on the runner.

One run at a time (two at once would read the same open lines): a second is refused while one
is queued or running, and the runner never starts two (``exclusive_key``). The run is one
read-then-write transaction that also marks the job succeeded. On SQLite that transaction holds
the database's only write lock, so the steps in between are not written (nor can a cancel reach
the run); on PostgreSQL each step is written as it comes and a cancel stops the run at the next.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from relieflink.db import begin_write, session_scope
from relieflink.errors import Conflict
from relieflink.flows import allocation as allocation_flow
from relieflink.jobs import service
from relieflink.jobs.runner import JobContext, Outcome, register
from relieflink.models import Job, User
from relieflink.users import access

KIND = "allocation"
# The flow's steps, as percentages of the run.
STEPS = {
    "reading open requests": 10,
    "reading available stock": 35,
    "allocating": 55,
    "reserving stock": 80,
}


def start_allocation_job(session: Session, *, day: date, actor: User | None) -> Job:
    """A queued allocation run for ``day`` (staff), refused while another one is in progress."""
    if actor is not None:
        access.ensure_role(actor, access.STAFF)
    return service.enqueue(
        session, kind=KIND, payload={"day": day.isoformat()}, actor=actor, exclusive_key=KIND
    )


def run(ctx: JobContext) -> Outcome:
    day = date.fromisoformat(ctx.payload["day"])
    ctx.progress(2, 100, "starting")
    aside = ctx.can_report_aside

    def step(message: str) -> None:
        if aside:
            ctx.progress(STEPS.get(message, 50), 100, message)

    with session_scope() as session:
        begin_write(session)  # read then write with no writer in between (SQLite)
        actor = None
        if ctx.created_by_id is not None:
            actor = session.get(User, ctx.created_by_id)
            if actor is None:
                raise Conflict(f"user {ctx.created_by_id} no longer exists")
        report = allocation_flow.run_allocation(session, actor=actor, today=day, progress=step)
        outcome = Outcome(
            result_ref=f"allocation_run:{report.run_id}" if report.run_id is not None else None,
            result={
                "run_id": report.run_id,
                "lines": report.lines,
                "units_requested": report.units_requested,
                "units_allocated": report.units_allocated,
                "coverage": report.summary.get("priority", {}).get("coverage", {}),
                "caps": report.caps,
            },
        )
        ctx.succeed(session, outcome)
    return outcome


register(KIND, run)
