"""The planning job behind ``POST /dispatch/plans``: simple and honest.

The API creates a :class:`DispatchPlan` row (``queued``) and returns at once; this function then
runs in a thread of the serving process (FastAPI ``BackgroundTasks``). It reads in one short
transaction, searches with no transaction open (progress is written to the plan row in short
transactions of its own, which clients poll with ``GET /dispatch/plans/{id}``), and writes the
plan in one final transaction. A crash of the process leaves the row ``running``; there is no
queue, retry or worker pool.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy import update

from relieflink import clock
from relieflink.db import session_scope
from relieflink.dispatch import plan_store, planning
from relieflink.errors import RelieflinkError
from relieflink.models import DispatchPlan, PlanStatus, User
from relieflink.needs import service as needs

log = logging.getLogger(__name__)


def _progress(plan_id: int, percent: int, message: str) -> None:
    with session_scope() as session:
        session.execute(
            update(DispatchPlan)
            .where(DispatchPlan.id == plan_id)
            .values(status=PlanStatus.running, progress=percent, message=message)
        )


def run_plan_job(
    plan_id: int,
    *,
    actor_id: int | None,
    time_limit: float | None = None,
    seed: int = 1,
    failed_route_ids: Iterable[int] = (),
) -> None:
    """Plan (or re-plan) for the plan row ``plan_id``; any error is stored on the row."""
    try:
        _progress(plan_id, 2, "reading allocations and fleet")
        with session_scope() as session:
            plan = session.get(DispatchPlan, plan_id)
            assert plan is not None
            inp = planning.prepare_plan(
                session,
                day=plan.day,
                replan_of_id=plan.replan_of_id,
                failed_route_ids=failed_route_ids,
            )
        sol = planning.solve_plan(
            inp,
            time_limit=time_limit,
            seed=seed,
            progress=lambda p, m: _progress(plan_id, p, m),
        )
        _progress(plan_id, 92, "writing routes")
        with session_scope() as session:
            plan = session.get(DispatchPlan, plan_id)
            actor = session.get(User, actor_id) if actor_id is not None else None
            assert plan is not None
            # flows.dispatch.write_plan's two steps (this module sits under flows/): the job
            # runner that replaces it calls the flow.
            plan_store.store_plan(session, plan, inp, sol, actor=actor)
            needs.mark_dispatched(session, line_ids=plan_store.planned_lines(inp, sol))
    except Exception as exc:  # stored on the job row for the poller; logged in full
        message = exc.message if isinstance(exc, RelieflinkError) else f"internal error: {exc}"
        if not isinstance(exc, RelieflinkError):
            log.exception("dispatch plan %s failed", plan_id)
        with session_scope() as session:
            session.execute(
                update(DispatchPlan)
                .where(DispatchPlan.id == plan_id)
                .values(status=PlanStatus.failed, message=message, finished_at=clock.now())
            )
