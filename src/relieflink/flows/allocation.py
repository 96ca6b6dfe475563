"""An allocation run: open requests and available stock in, reservations and reasons out.

Load (the open lines under the ration policy, the stock each warehouse has), solve with
:func:`relieflink.optim.allocation.solve_allocation` (beside the first-come-first-served baseline,
for the run's comparison), then record: reserve the stock, store the run and its allocations with
their reasons, and add to the request lines. The API, the CLI (``relieflink allocate``), the job
runner and the simulation all call :func:`run_allocation`; the caller owns the transaction.

Running it twice does not double-reserve: a line's ``allocated`` count grows with each run and
only the remainder up to its entitlement is asked for again.
"""

from __future__ import annotations

from datetime import date
from time import perf_counter
from typing import Literal

from sqlalchemy.orm import Session

from relieflink.audit import service as audit
from relieflink.dispatch import fleet
from relieflink.models import User
from relieflink.needs import allocation
from relieflink.needs.allocation import Progress, RunReport
from relieflink.needs.policy import Policy, default_policy
from relieflink.notices import service as notices
from relieflink.optim.allocation import solve_allocation, solve_fcfs
from relieflink.stock import service as stock
from relieflink.stock.ledger import reserve_many
from relieflink.users import access

__all__ = ["Progress", "RunReport", "run_allocation"]


def run_allocation(
    session: Session,
    *,
    actor: User | None,
    today: date,
    dry_run: bool = False,
    policy: Policy | None = None,
    progress: Progress | None = None,
    method: Literal["priority", "fcfs"] = "priority",
    with_allocations: bool = False,
) -> RunReport:
    """Allocate available stock to open requests; reserve it unless ``dry_run``.

    ``method="fcfs"`` applies the first-come-first-served baseline instead of the policy (for
    side-by-side simulations); both outcomes are always in the run's summary, with the stock
    capped warehouses held back. ``with_allocations`` puts each decided piece in words on the
    report (also for a dry run).
    """
    if actor is not None:
        access.ensure_role(actor, access.STAFF)
    step = progress or (lambda _m: None)
    policy = policy or default_policy()
    started = perf_counter()

    # Load.
    step("reading open requests")
    skus = allocation.sku_table(session, policy)
    lines = allocation.load_lines(session, policy, skus, today)
    report = RunReport(
        run_id=None,
        dry_run=dry_run,
        policy_version=policy.version,
        lines=len(lines),
        units_requested=int(lines.demand.sum()),
        units_allocated=0,
        runtime_s=0.0,
    )
    if not len(lines):
        if not dry_run:
            allocation.apply_to_lines(session, lines, {})  # lines already at their entitlement
        report.runtime_s = round(perf_counter() - started, 3)
        return report
    step("reading available stock")
    warehouses = allocation.warehouses(session)
    available = {
        "kit": stock.stock_matrix(session, kind="kit", as_of=today),
        "item": stock.stock_matrix(session, kind="item", as_of=today),
    }
    # Only stock the day's fleet (and a sealed compound's team inside) can bring to the door.
    reach = fleet.reach_matrix(
        session,
        day=today,
        community_ids=[int(c) for c in lines.communities],
        warehouse_ids=[w.id for w in warehouses],
    )
    problem, keys = allocation.build_problem(
        lines, skus, policy, warehouses, available, reach=reach
    )

    # Solve.
    step("allocating")
    problem, applied = allocation.within_reach(
        lines, problem, reach, solve_allocation if method == "priority" else solve_fcfs
    )
    result = applied if method == "priority" else solve_allocation(problem)
    baseline = applied if method == "fcfs" else solve_fcfs(problem)
    report.units_allocated = int(applied.allocated.sum())
    report.summary = allocation.summarize(
        lines,
        problem,
        keys,
        skus,
        policy=policy,
        method=method,
        result=result,
        baseline=baseline,
        warehouses=warehouses,
    )

    # Record.
    if dry_run:
        if with_allocations:
            decision = allocation.decided(0, lines, applied, problem, policy, warehouses)
            report.allocations = allocation.described(session, decision, skus, warehouses)
    else:
        step("reserving stock")
        run_id = allocation.start_run(session, report, method=applied.method, actor=actor)
        decision = allocation.decided(run_id, lines, applied, problem, policy, warehouses)
        if with_allocations:
            report.allocations = allocation.described(session, decision, skus, warehouses)
        # References name this run's new id, so none can have been reserved before.
        reserve_many(session, decision.reservations, actor=None, as_of=today, new_references=True)
        allocation.store_allocations(session, lines, decision)
        report.run_id = run_id
        if notices.enabled():
            notices.notify(session, _notices(run_id, lines, decision))
        audit.record(
            session,
            actor=actor,
            action="allocate",
            entity="allocation_run",
            entity_id=run_id,
            detail={"units": report.units_allocated, "policy": policy.version},
        )
    report.runtime_s = round(perf_counter() - started, 3)
    if report.run_id is not None:
        allocation.finish_run(session, report.run_id, report.runtime_s)
    return report


def _notices(
    run_id: int, lines: allocation.Lines, decision: allocation.Decided
) -> list[notices.Notice]:
    """One notice per request the run gave packs to."""
    request_of = dict(zip(lines.line_id.tolist(), lines.request_id.tolist(), strict=True))
    packs: dict[tuple[int, int], int] = {}
    for row in decision.rows:
        key = (request_of[row["line_id"]], row["household_id"])
        packs[key] = packs.get(key, 0) + row["quantity"]
    return [
        notices.Notice(
            f"allocation_run:{run_id}:request:{request_id}",
            household_id,
            "allocated",
            {"request": request_id, "packs": n},
        )
        for (request_id, household_id), n in sorted(packs.items())
    ]
