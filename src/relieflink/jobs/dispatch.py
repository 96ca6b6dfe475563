"""The dispatch plan job (kind ``dispatch_plan``): plan or re-plan a day on the runner.

It reads in one short transaction, searches with no transaction open (progress goes to the job
and to the plan row, which clients poll), and writes the plan in one final transaction that also
marks the job succeeded, so a worker lost after that commit never writes the plan twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from relieflink.db import session_scope
from relieflink.dispatch import fleet, planning
from relieflink.dispatch import jobs as plan_rows
from relieflink.flows import dispatch as dispatch_flow
from relieflink.jobs import service
from relieflink.jobs.runner import JobContext, Outcome, register
from relieflink.models import DispatchPlan, Job, PlanStatus, User

KIND = "dispatch_plan"


def start_plan_job(
    session: Session,
    *,
    day: date | None,
    actor: User | None,
    replan_of_id: int | None = None,
    time_limit: float | None = None,
    seed: int = 1,
    failed_route_ids: Iterable[int] = (),
) -> tuple[DispatchPlan, Job]:
    """A queued plan row and the job that will fill it, in the caller's transaction."""
    failed_route_ids = list(failed_route_ids)
    plan = planning.start_plan(session, day=day, actor=actor, replan_of_id=replan_of_id)
    # Recorded once, here: a retried job must not count the same breakdown twice.
    fleet.record_breakdowns(session, day=plan.day, route_ids=failed_route_ids, actor=actor)
    job = service.enqueue(
        session,
        kind=KIND,
        payload={
            "plan_id": plan.id,
            "time_limit": time_limit,
            "seed": seed,
            "failed_route_ids": list(failed_route_ids),
        },
        actor=actor,
    )
    return plan, job


def run(ctx: JobContext) -> Outcome:
    payload = ctx.payload
    plan_id = int(payload["plan_id"])

    def progress(percent: int, message: str) -> None:
        ctx.progress(
            percent,
            100,
            message,
            also=lambda session: plan_rows.set_progress(session, plan_id, percent, message),
        )

    progress(2, "reading allocations and fleet")
    with session_scope() as session:
        plan = plan_rows.require_plan(session, plan_id)
        if plan.status == PlanStatus.done:  # written by an earlier attempt
            return _outcome(plan)
        inp = planning.prepare_plan(
            session,
            day=plan.day,
            replan_of_id=plan.replan_of_id,
            failed_route_ids=payload.get("failed_route_ids") or (),
        )
    sol = planning.solve_plan(
        inp,
        time_limit=payload.get("time_limit"),
        seed=int(payload.get("seed", 1)),
        progress=progress,
    )
    progress(92, "writing routes")
    with session_scope() as session:
        plan = plan_rows.require_plan(session, plan_id)
        actor = session.get(User, ctx.created_by_id) if ctx.created_by_id is not None else None
        dispatch_flow.write_plan(session, plan, inp, sol, actor=actor)
        outcome = _outcome(plan)
        ctx.succeed(session, outcome)
    return outcome


def _outcome(plan: DispatchPlan) -> Outcome:
    summary: dict[str, Any] = dict(plan.summary or {})
    return Outcome(
        result_ref=f"dispatch_plan:{plan.id}",
        result={k: summary[k] for k in ("routes", "parcels", "planned_parcels") if k in summary},
    )


def on_failed(session: Session, payload: dict[str, Any], reason: str) -> None:
    plan_rows.fail_plan(session, int(payload["plan_id"]), reason)


register(KIND, run, on_failed=on_failed)
