"""Dispatch planning: the day's allocations → parcels → gate loads → routes for carriers' fleets.

Three phases, so that a job runner can keep the database free while the engine searches:

1. :func:`prepare_plan` (reads only): allocations not yet in a parcel become new parcels (one
   per household and warehouse), parcels still pending (or released by a re-plan) join them;
   the fleet of the day is read (availability, vehicles already out on the road).
2. :func:`solve_plan` (pure): per warehouse, one routing problem whose stops are community
   gates, split into loads no larger than the biggest vehicle allowed in; access rules come from
   the compound's lockdown status (sealed or no-vehicle compounds admit only robots and
   volunteers on foot). The engine's independent checker verifies every plan.
3. :func:`write_plan` (one transaction): parcels with their pickup codes, routes, stops with
   ETAs; the requests become ``dispatched``.

Stock stays reserved until loading: the ``loaded`` tracking event issues it ("picked").
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from time import perf_counter
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from relieflink import clock
from relieflink.audit import service as audit
from relieflink.dispatch import codes, fleet
from relieflink.dispatch import repository as repo
from relieflink.errors import Conflict, FieldError, Invalid
from relieflink.models import (
    Community,
    DispatchPlan,
    FleetKind,
    InnerMode,
    LockdownStatus,
    Parcel,
    ParcelLine,
    ParcelStatus,
    PlanStatus,
    Route,
    RouteStatus,
    RouteStop,
    User,
    Vehicle,
    Warehouse,
)
from relieflink.needs import service as needs
from relieflink.optim.geo import haversine_m
from relieflink.optim.routing import (
    Depot,
    RoutingProblem,
    RoutingResult,
    SerialExecutor,
    Stop,
    VehicleKind,
    VehicleType,
    check_solution,
    make_executor,
    solve_routing,
)
from relieflink.users import access

Progress = Callable[[int, str], None]
_NO_VEHICLES = frozenset({VehicleKind.ROBOT, VehicleKind.FOOT})
CIRCUITY = 1.3  # the engine's default provider: haversine × 1.3


@dataclass
class PlanParcel:
    """A parcel to route: ``parcel_id`` is None for a new one (created by :func:`write_plan`)."""

    parcel_id: int | None
    household_id: int
    community_id: int
    warehouse_id: int
    weight_g: int
    volume_ml: int
    packs: int
    lines: list[tuple[int, int, str, int | None, int | None, int]] = field(default_factory=list)
    # (allocation id, request line id, reference, kit id, item id, quantity)


@dataclass
class FleetGroup:
    vehicle_id: int
    carrier_id: int
    kind: FleetKind
    depot_id: int
    count: int
    capacity_g: int
    capacity_ml: int
    speed_kmh: int
    range_m: int | None
    shift_start_s: int
    shift_end_s: int
    fixed_cost_fen: int
    cost_per_km_fen: int


@dataclass
class PlanInput:
    day: date
    replan_of_id: int | None
    parcels: list[PlanParcel]
    fleet: list[FleetGroup]
    warehouses: dict[int, tuple[float, float]]
    communities: dict[int, tuple[float, float, str, bool]]  # lat, lon, status, vehicles allowed
    release_routes: list[int] = field(default_factory=list)


@dataclass
class PlannedStop:
    community_id: int
    inner_mode: InnerMode
    eta_s: int
    parcels: list[int]  # indices into PlanInput.parcels


@dataclass
class PlannedVehicleRoute:
    vehicle_id: int
    vehicle_index: int
    carrier_id: int
    kind: FleetKind
    depot_id: int
    start_s: int
    end_s: int
    distance_m: int
    duration_s: int
    cost_fen: int
    stops: list[PlannedStop]


@dataclass
class PlanSolution:
    routes: list[PlannedVehicleRoute]
    unassigned: dict[int, str]  # parcel index → reason
    violations: list[str]
    runtime_s: float
    stats: dict[str, Any] = field(default_factory=dict)


# --- access rules -----------------------------------------------------------------------------


def allowed_kinds(status: str, vehicles_allowed: bool) -> frozenset[VehicleKind] | None:
    """Who may serve a compound's gate: sealed (or no-vehicle) compounds only robots and
    volunteers on foot; any vehicle elsewhere."""
    if status == LockdownStatus.sealed or not vehicles_allowed:
        return _NO_VEHICLES
    return None


def inner_mode(status: str, vehicles_allowed: bool) -> InnerMode:
    """Who carries the last 100 metres inside the compound."""
    if status == LockdownStatus.sealed or not vehicles_allowed:
        return InnerMode.robot
    if status == LockdownStatus.controlled:
        return InnerMode.volunteer
    return InnerMode.courier


# --- phase 1: read ----------------------------------------------------------------------------


def prepare_plan(
    session: Session,
    *,
    day: date,
    replan_of_id: int | None = None,
    failed_route_ids: Iterable[int] = (),
) -> PlanInput:
    """Read what a plan needs (no writes). For a re-plan, the undelivered remainder: parcels of
    routes not yet loaded (and of ``failed_route_ids`` not yet loaded) plus pending parcels;
    parcels on board are left alone and their vehicles are busy."""
    failed = set(failed_route_ids)
    release: list[int] = []
    if replan_of_id is not None:
        release = repo.routes_not_loaded(session, day)
        for route_id in failed:
            if route_id not in release and repo.route_status(session, route_id) is None:
                raise Invalid(f"no route {route_id}")
    parcels = repo.pending_parcels(session, release)
    parcels.extend(repo.unparcelled_allocations(session))
    counts = fleet.available_counts(session, day)
    busy = repo.busy_vehicles(session, day)
    for vehicle_id in repo.vehicles_of_routes(session, failed):
        counts[vehicle_id] = counts.get(vehicle_id, 0) - 1  # broken down: out for the day
    groups = []
    for v in session.scalars(select(Vehicle).where(Vehicle.active.is_(True)).order_by(Vehicle.id)):
        n = counts.get(v.id, 0) - busy.get(v.id, 0)
        if n > 0:
            groups.append(
                FleetGroup(
                    v.id,
                    v.carrier_id,
                    FleetKind(v.kind),
                    v.depot_id,
                    n,
                    v.capacity_g,
                    v.capacity_ml,
                    v.speed_kmh,
                    v.range_m,
                    v.shift_start_s,
                    v.shift_end_s,
                    v.fixed_cost_fen,
                    v.cost_per_km_fen,
                )
            )
    warehouses = {
        w: (lat, lon)
        for w, lat, lon in session.execute(select(Warehouse.id, Warehouse.lat, Warehouse.lon))
    }
    community_ids = {p.community_id for p in parcels}
    communities: dict[int, tuple[float, float, str, bool]] = {}
    ids = sorted(community_ids)
    for start in range(0, len(ids), 5000):
        for cid, lat, lon, status, allowed in session.execute(
            select(
                Community.id,
                Community.lat,
                Community.lon,
                Community.lockdown_status,
                Community.vehicles_allowed,
            ).where(Community.id.in_(ids[start : start + 5000]))
        ):
            communities[cid] = (lat, lon, str(status), bool(allowed))
    return PlanInput(day, replan_of_id, parcels, groups, warehouses, communities, release)


# --- phase 2: solve (pure) --------------------------------------------------------------------


def _assign_groups(
    inp: PlanInput, load_g: dict[int, int]
) -> dict[int, list[tuple[FleetGroup, int, int]]]:
    """Vehicle groups per stock warehouse: (group, count, shift delay). A group whose depot
    holds no parcels today drives to the stock warehouses, apportioned by load, starting later
    by the deadhead time."""
    out: dict[int, list[tuple[FleetGroup, int, int]]] = defaultdict(list)
    sources = sorted(load_g)
    if not sources:
        return out
    total = sum(load_g.values())
    for g in inp.fleet:
        if g.depot_id in load_g:
            out[g.depot_id].append((g, g.count, 0))
            continue
        shares = [g.count * load_g[w] / total for w in sources]
        counts = [math.floor(s) for s in shares]
        for i in sorted(range(len(sources)), key=lambda i: counts[i] - shares[i])[
            : g.count - sum(counts)
        ]:
            counts[i] += 1
        home = inp.warehouses[g.depot_id]
        for w, n in zip(sources, counts, strict=True):
            if n == 0:
                continue
            there = inp.warehouses[w]
            metres = float(haversine_m(home[0], home[1], there[0], there[1])) * CIRCUITY
            delay = int(metres / (g.speed_kmh / 3.6))
            out[w].append((g, n, delay))
    return out


def _chunks(
    indices: list[int], parcels: list[PlanParcel], cap_g: int, cap_ml: int
) -> list[list[int]]:
    """Split a gate's parcels into loads no larger than the biggest allowed vehicle."""
    out: list[list[int]] = []
    current: list[int] = []
    g = ml = 0
    for i in indices:
        p = parcels[i]
        if current and (g + p.weight_g > cap_g or ml + p.volume_ml > cap_ml):
            out.append(current)
            current, g, ml = [], 0, 0
        current.append(i)
        g += p.weight_g
        ml += p.volume_ml
    if current:
        out.append(current)
    return out


@dataclass
class WarehouseProblem:
    """The routing problem of one stock warehouse, and which parcels each stop carries."""

    warehouse_id: int
    problem: RoutingProblem
    stop_parcels: list[list[int]]
    modes: list[InnerMode]
    communities: list[int]


def build_problems(inp: PlanInput) -> tuple[list[WarehouseProblem], dict[int, str]]:
    """One routing problem per stock warehouse (gate loads as stops, access rules as allowed
    kinds), and the parcels that cannot be routed at all, with the reason."""
    by_source: dict[int, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    load_g: dict[int, int] = defaultdict(int)
    for i, p in enumerate(inp.parcels):
        by_source[p.warehouse_id][p.community_id].append(i)
        load_g[p.warehouse_id] += max(p.weight_g, 1)
    groups = _assign_groups(inp, load_g)
    unassigned: dict[int, str] = {}
    problems: list[WarehouseProblem] = []
    for w in sorted(by_source):
        types: list[VehicleType] = []
        type_groups: list[FleetGroup] = []
        for g, n, delay in groups.get(w, []):
            if g.capacity_g <= 0 or g.shift_start_s + delay >= g.shift_end_s:
                continue
            types.append(
                VehicleType(
                    id=f"g{g.vehicle_id}",
                    kind=VehicleKind(g.kind.value),
                    count=n,
                    start_depot=f"w{w}",
                    capacity_g=g.capacity_g,
                    capacity_ml=g.capacity_ml or 1,
                    speed_kmh=float(g.speed_kmh),
                    max_distance_m=g.range_m,
                    shift_start=g.shift_start_s + delay,
                    shift_end=g.shift_end_s,
                    fixed_cost=g.fixed_cost_fen,
                    cost_per_km=g.cost_per_km_fen,
                    carrier=str(g.carrier_id),
                )
            )
            type_groups.append(g)
        stops: list[Stop] = []
        stop_parcels: list[list[int]] = []
        modes: list[InnerMode] = []
        communities: list[int] = []
        for c in sorted(by_source[w]):
            lat, lon, status, vehicles_ok = inp.communities[c]
            kinds = allowed_kinds(status, vehicles_ok)
            fit = [t for t in types if kinds is None or t.kind in kinds]
            indices = by_source[w][c]
            if not fit:
                why = (
                    "no robot or volunteer on foot available at this warehouse for a sealed "
                    "compound"
                    if kinds is not None
                    else "no vehicle available at this warehouse"
                )
                unassigned.update(dict.fromkeys(indices, why))
                continue
            cap_g = max(t.capacity_g for t in fit)
            cap_ml = max(t.capacity_ml for t in fit)
            too_big = [i for i in indices if inp.parcels[i].weight_g > cap_g]
            unassigned.update(
                dict.fromkeys(too_big, "a single parcel exceeds every allowed vehicle")
            )
            indices = [i for i in indices if inp.parcels[i].weight_g <= cap_g]
            mode = inner_mode(status, vehicles_ok)
            # Gate loads no larger than the smallest allowed vehicle, so that every vehicle
            # (e-bikes too) can take one; a big vehicle simply makes several stops there.
            heaviest = max((inp.parcels[i].weight_g for i in indices), default=0)
            gate_g = max(min(t.capacity_g for t in fit), heaviest)
            gate_ml = max(
                min(t.capacity_ml for t in fit),
                max((inp.parcels[i].volume_ml for i in indices), default=0),
            )
            gate_g, gate_ml = min(gate_g, cap_g), min(gate_ml, cap_ml)
            for k, chunk in enumerate(_chunks(indices, inp.parcels, gate_g, gate_ml)):
                households = len({inp.parcels[i].household_id for i in chunk})
                per_door = 90 if mode == InnerMode.courier else 10
                stops.append(
                    Stop(
                        id=f"c{c}:{k}",
                        lat=lat,
                        lon=lon,
                        weight_g=sum(inp.parcels[i].weight_g for i in chunk),
                        volume_ml=sum(inp.parcels[i].volume_ml for i in chunk),
                        service_s=120 + per_door * households,
                        allowed_kinds=kinds,
                    )
                )
                stop_parcels.append(chunk)
                modes.append(mode)
                communities.append(c)
        if not stops:
            continue
        if not types:
            for chunk in stop_parcels:
                unassigned.update(dict.fromkeys(chunk, "no vehicle available at this warehouse"))
            continue
        lat, lon = inp.warehouses[w]
        problem = RoutingProblem(
            depots=(Depot(f"w{w}", lat, lon),),
            stops=tuple(stops),
            vehicle_types=tuple(types),
            name=f"warehouse {w} on {inp.day.isoformat()}",
        )
        problems.append(WarehouseProblem(w, problem, stop_parcels, modes, communities))
    return problems, unassigned


def solve_plan(
    inp: PlanInput,
    *,
    time_limit: float | None = None,
    seed: int = 1,
    workers: int | None = None,
    progress: Progress | None = None,
    iterations: int | None = None,
) -> PlanSolution:
    """Route every parcel of ``inp``: one routing problem per stock warehouse. ``time_limit``
    is the total search budget (default: grows with the number of gate loads); ``iterations``
    instead fixes the engine's work per warehouse, so that a seed gives the same plan on any
    machine (the simulation's reproducible days)."""
    started = perf_counter()
    step = progress or (lambda _p, _m: None)
    problems, unassigned = build_problems(inp)
    routes: list[PlannedVehicleRoute] = []
    violations: list[str] = []
    total_stops = sum(len(p.problem.stops) for p in problems)
    budget = time_limit if time_limit is not None else min(30.0, 1.0 + 0.02 * total_stops)
    group_by_id = {f"g{g.vehicle_id}": g for g in inp.fleet}
    stats: dict[str, Any] = {"warehouses": len(problems), "gate_loads": total_stops}
    done = 0
    for wp in problems:
        w, problem, stop_parcels = wp.warehouse_id, wp.problem, wp.stop_parcels
        modes, communities = wp.modes, wp.communities
        share = budget * len(problem.stops) / max(total_stops, 1)
        step(10 + int(80 * done / max(total_stops, 1)), f"routing from warehouse {w}")
        executor = (
            SerialExecutor()
            if len(problem.stops) <= 1500 or workers == 1
            else make_executor(workers)
        )
        result: RoutingResult = (
            solve_routing(problem, iterations=iterations, seed=seed, executor=executor)
            if iterations is not None
            else solve_routing(problem, time_limit=max(share, 0.2), seed=seed, executor=executor)
        )
        done += len(problem.stops)
        violations.extend(
            f"warehouse {w}: {v.code}: {v.message}" for v in check_solution(problem, result)
        )
        for u in result.unassigned:
            for i in stop_parcels[u.stop]:
                unassigned[i] = u.reason
        remaining = {s: list(ps) for s, ps in enumerate(stop_parcels)}
        for r in result.routes:
            g = group_by_id[r.vehicle_type]
            planned: list[PlannedStop] = []
            for visit in r.visits:
                queue = remaining.get(visit.stop, [])
                take: list[int] = []
                weight = 0
                while queue and (
                    not take or weight + inp.parcels[queue[0]].weight_g <= visit.weight_g
                ):
                    weight += inp.parcels[queue[0]].weight_g
                    take.append(queue.pop(0))
                if not take:
                    continue
                planned.append(
                    PlannedStop(
                        communities[visit.stop], modes[visit.stop], visit.service_start_s, take
                    )
                )
            if not planned:
                continue
            routes.append(
                PlannedVehicleRoute(
                    vehicle_id=g.vehicle_id,
                    vehicle_index=r.vehicle_index,
                    carrier_id=g.carrier_id,
                    kind=g.kind,
                    depot_id=w,
                    start_s=r.start_s,
                    end_s=r.end_s,
                    distance_m=r.distance_m,
                    duration_s=r.duration_s,
                    cost_fen=round(r.cost_millifen / 1000),
                    stops=planned,
                )
            )
        for queue in remaining.values():
            for i in queue:
                unassigned.setdefault(i, "left over after a split delivery")
    stats["routes"] = len(routes)
    return PlanSolution(routes, unassigned, violations, perf_counter() - started, stats)


# --- phase 3: write ---------------------------------------------------------------------------


def start_plan(
    session: Session, *, day: date | None, actor: User | None, replan_of_id: int | None = None
) -> DispatchPlan:
    """A plan row in state ``queued`` (the job record polled by the API)."""
    if actor is not None:
        access.ensure_role(actor, access.STAFF)
    if replan_of_id is not None:
        base = session.get(DispatchPlan, replan_of_id)
        if base is None:
            raise Invalid(f"no dispatch plan {replan_of_id} to re-plan")
        day = base.day
    if day is None:
        raise Invalid("give the day to plan", [FieldError(("day",), "required")])
    plan = DispatchPlan(
        day=day,
        replan_of_id=replan_of_id,
        status=PlanStatus.queued,
        created_by_id=actor.id if actor else None,
        summary={},
    )
    session.add(plan)
    session.flush()
    return plan


def write_plan(
    session: Session, plan: DispatchPlan, inp: PlanInput, sol: PlanSolution, *, actor: User | None
) -> DispatchPlan:
    """Store parcels (with pickup codes), routes and stops; requests become ``dispatched``."""
    repo.begin_write(session)
    t0 = perf_counter()
    if inp.release_routes:
        # Only routes still not loaded: anything loaded meanwhile keeps its parcels.
        still = repo.routes_not_loaded(session, plan.day, among=inp.release_routes)
        lost = set(inp.release_routes) - set(still)
        if lost:
            raise Conflict(f"routes {sorted(lost)} were loaded while re-planning; re-plan again")
        session.execute(
            update(Route)
            .where(Route.id.in_(still))
            .values(status=RouteStatus.cancelled)
            .execution_options(synchronize_session=False)
        )
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
    route_ids: list[int] = []
    for start in range(0, len(route_rows), 2000):
        route_ids.extend(
            session.scalars(
                insert(Route).returning(Route.id, sort_by_parameter_order=True),
                route_rows[start : start + 2000],
            )
        )
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
    stop_ids: list[int] = []
    for start in range(0, len(stop_rows), 5000):
        stop_ids.extend(
            session.scalars(
                insert(RouteStop).returning(RouteStop.id, sort_by_parameter_order=True),
                stop_rows[start : start + 5000],
            )
        )
    placed: dict[int, tuple[int, int]] = {}
    for stop_id, row, parcels in zip(stop_ids, stop_rows, stop_parcels, strict=True):
        for i in parcels:
            placed[i] = (int(row["route_id"]), stop_id)
    # New parcels, already on their stops: one insert with RETURNING, codes derived from a
    # fresh nonce each.
    new = [i for i, p in enumerate(inp.parcels) if p.parcel_id is None]
    rows = []
    nonce_of: dict[str, int] = {}
    for i in new:
        p = inp.parcels[i]
        nonce, hashed = codes.issue()
        nonce_of[nonce] = i
        rows.append(
            {
                "household_id": p.household_id,
                "community_id": p.community_id,
                "warehouse_id": p.warehouse_id,
                "plan_id": plan.id,
                "route_id": placed[i][0] if i in placed else None,
                "stop_id": placed[i][1] if i in placed else None,
                "status": ParcelStatus.planned if i in placed else ParcelStatus.pending,
                "packs": p.packs,
                "weight_g": p.weight_g,
                "volume_ml": p.volume_ml,
                "code_nonce": nonce,
                "code_hash": hashed,
                "code_attempts": 0,
                "last_seq": 0,
            }
        )
    # Core executemany (no RETURNING, no ORM bookkeeping); the ids are read back by nonce.
    parcels_table = cast(Table, Parcel.__table__)
    for start in range(0, len(rows), 10_000):
        session.execute(insert(parcels_table), rows[start : start + 10_000])
    if rows:
        for pid, nonce in session.execute(
            select(Parcel.id, Parcel.code_nonce).where(Parcel.plan_id == plan.id)
        ):
            if nonce in nonce_of:
                inp.parcels[nonce_of[nonce]].parcel_id = pid
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
        for start in range(0, len(line_rows), 10_000):
            session.execute(
                insert(cast(Table, ParcelLine.__table__)), line_rows[start : start + 10_000]
            )
    except IntegrityError:
        raise Conflict(
            "another plan took some of these allocations meanwhile; plan again"
        ) from None
    new_set = set(new)
    moves = [
        {"pid": inp.parcels[i].parcel_id, "r": r, "s": st, "p": plan.id}
        for i, (r, st) in placed.items()
        if i not in new_set
    ]
    if moves:
        table = cast(Table, Parcel.__table__)
        session.execute(
            update(table)
            .where(table.c.id == bindparam("pid"))
            .values(
                route_id=bindparam("r"),
                stop_id=bindparam("s"),
                plan_id=bindparam("p"),
                status=ParcelStatus.planned,
            ),
            moves,
        )
    # Parcels of released routes that found no new route wait, pending, for the next plan.
    left = [
        inp.parcels[i].parcel_id
        for i in sol.unassigned
        if inp.parcels[i].parcel_id is not None and i not in new_set
    ]
    for start in range(0, len(left), 5000):
        session.execute(
            update(Parcel)
            .where(Parcel.id.in_(left[start : start + 5000]))
            .values(route_id=None, stop_id=None, status=ParcelStatus.pending)
            .execution_options(synchronize_session=False)
        )
    planned_lines = [
        line
        for i in range(len(inp.parcels))
        if i not in sol.unassigned
        for _, line, *_ in inp.parcels[i].lines
    ]
    needs.mark_dispatched(session, line_ids=planned_lines)
    reasons: dict[str, int] = defaultdict(int)
    for reason in sol.unassigned.values():
        reasons[reason] += 1
    plan.status = PlanStatus.done
    plan.progress = 100
    plan.finished_at = clock.now()
    plan.message = (
        f"{len(sol.routes)} routes, {len(inp.parcels) - len(sol.unassigned)} of "
        f"{len(inp.parcels)} parcels planned"
    )
    plan.summary = {
        "parcels": len(inp.parcels),
        "new_parcels": len(new),
        "planned_parcels": len(inp.parcels) - len(sol.unassigned),
        "unassigned": dict(reasons),
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
    progress: Progress | None = None,
    iterations: int | None = None,
) -> DispatchPlan:
    """All three phases in the caller's transaction (CLI, tests and the simulation)."""
    step = progress or (lambda _p, _m: None)
    plan = start_plan(session, day=day, actor=actor, replan_of_id=replan_of_id)
    step(2, "reading allocations and fleet")
    inp = prepare_plan(
        session, day=plan.day, replan_of_id=replan_of_id, failed_route_ids=failed_route_ids
    )
    sol = solve_plan(
        inp,
        time_limit=time_limit,
        seed=seed,
        workers=workers,
        progress=step,
        iterations=iterations,
    )
    step(92, "writing routes")
    return write_plan(session, plan, inp, sol, actor=actor)
