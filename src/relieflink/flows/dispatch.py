"""Plan and re-plan dispatch, written once: the day's allocations become parcels on routes, and
the requests they serve become ``dispatched``.

Three phases (see :mod:`relieflink.dispatch.planning`): read, solve (pure, with no transaction
needed), store. A job runner calls the phases itself, to keep the database free while the
engine searches, and ends with :func:`write_plan`; the CLI, tests and the simulation call
:func:`plan_dispatch`, which runs all three in the caller's transaction. A re-plan (after a
vehicle broke down or parcels failed) is the same flow with ``replan_of_id``: routes not loaded
yet are released and planned again with whatever is pending. Nothing here commits.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from sqlalchemy.orm import Session

from relieflink.dispatch import fleet, plan_store, planning
from relieflink.models import DispatchPlan, User
from relieflink.needs import service as needs
from relieflink.stock import ledger

__all__ = ["plan_dispatch", "write_plan"]


def write_plan(
    session: Session,
    plan: DispatchPlan,
    inp: planning.PlanInput,
    sol: planning.PlanSolution,
    *,
    actor: User | None,
) -> DispatchPlan:
    """Store a solved plan (parcels, routes, stops); the requests it serves become
    ``dispatched``. Parcels no route could take are released, never left holding stock: their
    reservations are freed and their allocations go back to their requests (reopened, carried
    over), to be allocated again at the next wave; the plan's summary says why, per parcel."""
    plan = plan_store.store_plan(session, plan, inp, sol, actor=actor)
    needs.mark_dispatched(session, line_ids=plan_store.planned_lines(inp, sol))
    released = plan_store.released_lines(session, inp, sol)
    ledger.release_many(
        session,
        [ledger.Release(reference) for _, references, _ in released for reference in references],
        actor=actor,
        returning=False,
    )
    needs.return_allocations(
        session,
        [(allocations, f"not routed: {reason}") for allocations, _, reason in released],
        actor=actor,
    )
    session.expire_all()
    return plan


def plan_dispatch(
    session: Session,
    *,
    day: date,
    actor: User | None,
    time_limit: float | None = None,
    seed: int = 1,
    workers: int | None = None,
    replan_of_id: int | None = None,
    failed_route_ids: Iterable[int] = (),
    progress: planning.Progress | None = None,
    iterations: int | None = None,
    scheduler: str | None = None,
) -> DispatchPlan:
    """Plan (or, with ``replan_of_id``, re-plan) a day, all three phases in the caller's
    transaction."""
    step = progress or (lambda _p, _m: None)
    failed_route_ids = list(failed_route_ids)
    plan = planning.start_plan(session, day=day, actor=actor, replan_of_id=replan_of_id)
    fleet.record_breakdowns(session, day=plan.day, route_ids=failed_route_ids, actor=actor)
    step(2, "reading allocations and fleet")
    inp = planning.prepare_plan(
        session, day=plan.day, replan_of_id=replan_of_id, failed_route_ids=failed_route_ids
    )
    sol = planning.solve_plan(
        inp,
        time_limit=time_limit,
        seed=seed,
        workers=workers,
        progress=step,
        iterations=iterations,
        scheduler=scheduler,
    )
    step(92, "writing routes")
    return write_plan(session, plan, inp, sol, actor=actor)
