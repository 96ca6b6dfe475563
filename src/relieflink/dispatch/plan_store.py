"""Phase 3 of dispatch planning: a solved plan stored in one transaction — parcels with their
pickup codes, routes, stops with ETAs; parcels of released routes moved. Parcels no route could
take are ``released``, each with its reason in the plan's summary; ``relieflink.flows.dispatch``
frees their stock and returns their allocations, and marks the requests served ``dispatched``."""

from __future__ import annotations

from collections import defaultdict
from time import perf_counter
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from relieflink import clock
from relieflink.audit import service as audit
from relieflink.dispatch import codes
from relieflink.dispatch import repository as repo
from relieflink.dispatch.planning import PlanInput, PlanSolution
from relieflink.errors import Conflict
from relieflink.models import DispatchPlan, ParcelStatus, PlanStatus, RouteStatus, User


def store_plan(
    session: Session, plan: DispatchPlan, inp: PlanInput, sol: PlanSolution, *, actor: User | None
) -> DispatchPlan:
    """Store parcels (with pickup codes), routes and stops (``relieflink.flows.dispatch``
    then marks the requests ``dispatched``)."""
    repo.begin_write(session)
    t0 = perf_counter()
    if inp.release_routes:
        # Only routes still not loaded: anything loaded meanwhile keeps its parcels.
        still = repo.routes_not_loaded(session, plan.day, among=inp.release_routes)
        lost = set(inp.release_routes) - set(still)
        if lost:
            raise Conflict(f"routes {sorted(lost)} were loaded while re-planning; re-plan again")
        repo.cancel_routes(session, still)
    # Routes and stops.
    route_rows = [
        {
            "plan_id": plan.id,
            "vehicle_id": r.vehicle_id,
            "vehicle_index": r.vehicle_index,
            "carrier_id": r.carrier_id,
            "kind": r.kind,
            "depot_id": r.depot_id,
            "status": RouteStatus.planned,
            "start_s": r.start_s,
            "end_s": r.end_s,
            "distance_m": r.distance_m,
            "duration_s": r.duration_s,
            "cost_fen": r.cost_fen,
            "weight_g": sum(inp.parcels[i].weight_g for s in r.stops for i in s.parcels),
        }
        for r in sol.routes
    ]
    route_ids = repo.insert_routes(session, route_rows)
    stop_rows: list[dict[str, Any]] = []
    stop_parcels: list[list[int]] = []
    for route_id, r in zip(route_ids, sol.routes, strict=True):
        for seq, s in enumerate(r.stops, start=1):
            stop_rows.append(
                {
                    "route_id": route_id,
                    "seq": seq,
                    "community_id": s.community_id,
                    "household_id": None,
                    "inner_mode": s.inner_mode,
                    "eta_s": s.eta_s,
                    "weight_g": sum(inp.parcels[i].weight_g for i in s.parcels),
                    "parcels": len(s.parcels),
                }
            )
            stop_parcels.append(s.parcels)
    stop_ids = repo.insert_stops(session, stop_rows)
    placed: dict[int, tuple[int, int]] = {}
    for stop_id, row, parcels in zip(stop_ids, stop_rows, stop_parcels, strict=True):
        for i in parcels:
            placed[i] = (int(row["route_id"]), stop_id)
    # New parcels, already on their stops, codes derived from a fresh nonce each.
    new = [i for i, p in enumerate(inp.parcels) if p.parcel_id is None]
    rows = []
    for i in new:
        p = inp.parcels[i]
        nonce, hashed = codes.issue()
        rows.append(
            {
                "household_id": p.household_id,
                "community_id": p.community_id,
                "warehouse_id": p.warehouse_id,
                "plan_id": plan.id,
                "route_id": placed[i][0] if i in placed else None,
                "stop_id": placed[i][1] if i in placed else None,
                "status": ParcelStatus.planned if i in placed else ParcelStatus.released,
                "packs": p.packs,
                "weight_g": p.weight_g,
                "volume_ml": p.volume_ml,
                "code_nonce": nonce,
                "code_hash": hashed,
                "code_attempts": 0,
                "last_seq": 0,
            }
        )
    for i, pid in zip(new, repo.insert_parcels(session, rows), strict=True):
        inp.parcels[i].parcel_id = pid
    line_rows = [
        {
            "parcel_id": inp.parcels[i].parcel_id,
            "allocation_id": a,
            "request_line_id": line,
            "reference": ref,
            "kit_id": kit,
            "item_id": item,
            "quantity": q,
        }
        for i in new
        for a, line, ref, kit, item, q in inp.parcels[i].lines
    ]
    try:
        repo.insert_parcel_lines(session, line_rows)
    except IntegrityError:
        raise Conflict(
            "another plan took some of these allocations meanwhile; plan again"
        ) from None
    repo.refresh_statistics(session, len(rows))
    new_set = set(new)
    moves = [
        {"pid": inp.parcels[i].parcel_id, "r": r, "s": st, "p": plan.id}
        for i, (r, st) in placed.items()
        if i not in new_set
    ]
    repo.place_parcels(session, moves)
    # Parcels that found no route are released, never left holding stock (the flow frees it).
    left = [
        parked
        for i in sol.unassigned
        if (parked := inp.parcels[i].parcel_id) is not None and i not in new_set
    ]
    repo.release_parcels(session, left, plan.id)
    reasons: dict[str, int] = defaultdict(int)
    for reason in sol.unassigned.values():
        reasons[reason] += 1
    plan.status = PlanStatus.done
    plan.progress = 100
    plan.finished_at = clock.now()
    plan.message = (
        f"{len(sol.routes)} routes, {len(inp.parcels) - len(sol.unassigned)} of "
        f"{len(inp.parcels)} parcels planned"
        + (
            f"; {len(sol.unassigned)} released, to be allocated again at the next wave"
            if sol.unassigned
            else ""
        )
    )
    plan.summary = {
        "parcels": len(inp.parcels),
        "new_parcels": len(new),
        "planned_parcels": len(inp.parcels) - len(sol.unassigned),
        "unassigned": dict(reasons),
        # Every parcel no route could take, and why in words (its stock was freed and its
        # allocations went back to their requests, for the next wave).
        "released": {
            str(inp.parcels[i].parcel_id): reason for i, reason in sorted(sol.unassigned.items())
        },
        "routes": len(sol.routes),
        "distance_m": sum(r.distance_m for r in sol.routes),
        "cost_fen": sum(r.cost_fen for r in sol.routes),
        "released_routes": len(inp.release_routes),
        "violations": sol.violations,
        "solve_s": round(sol.runtime_s, 3),
        "write_s": round(perf_counter() - t0, 3),
        "by_kind": _by_kind(sol),
        **sol.stats,
    }
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="replan" if plan.replan_of_id else "plan",
        entity="dispatch_plan",
        entity_id=plan.id,
        detail={"day": plan.day.isoformat(), "routes": len(sol.routes)},
    )
    session.expire_all()
    return plan


def _by_kind(sol: PlanSolution) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for r in sol.routes:
        out[str(r.kind)] += 1
    return dict(out)


def released_lines(
    session: Session, inp: PlanInput, sol: PlanSolution
) -> list[tuple[list[int], list[str], str]]:
    """Per parcel a stored plan released: its allocations, their stock references, and why."""
    reasons = {
        pid: reason
        for i, reason in sol.unassigned.items()
        if (pid := inp.parcels[i].parcel_id) is not None
    }
    lines = repo.lines_of(session, sorted(reasons))
    return [
        (
            [line.allocation_id for line in lines.get(pid, [])],
            [line.reference for line in lines.get(pid, [])],
            reason,
        )
        for pid, reason in sorted(reasons.items())
    ]


def planned_lines(inp: PlanInput, sol: PlanSolution) -> list[int]:
    """The request lines whose allocations a plan put on routes."""
    return [
        line
        for i in range(len(inp.parcels))
        if i not in sol.unassigned
        for _, line, *_ in inp.parcels[i].lines
    ]
