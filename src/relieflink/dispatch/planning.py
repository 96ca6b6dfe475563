"""Dispatch planning: the day's allocations → parcels → gate loads → routes for carriers' fleets.

Three phases, so that a job runner can keep the database free while the engine searches:

1. :func:`prepare_plan` (reads only): allocations not yet in a parcel become new parcels (one
   per household and warehouse), parcels still pending (or released by a re-plan) join them;
   the fleet of the day is read (availability, vehicles already out on the road).
2. :func:`solve_plan` (pure): per warehouse, one routing problem whose stops are community
   gates, split into loads no larger than the biggest vehicle allowed in; access rules come from
   the compound's lockdown status (sealed or no-vehicle compounds admit only robots and
   volunteers on foot). The engine's independent checker verifies every plan.
3. :func:`store_plan` (one transaction): parcels with their pickup codes, routes, stops with
   ETAs. ``relieflink.flows.dispatch`` runs the three and marks the requests ``dispatched``.

Stock stays reserved until loading: the ``loaded`` tracking event issues it ("picked").
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from time import perf_counter
from typing import Any

from sqlalchemy.orm import Session

from relieflink.dispatch import fleet
from relieflink.dispatch import repository as repo
from relieflink.errors import FieldError, Invalid
from relieflink.models import (
    DispatchPlan,
    FleetKind,
    InnerMode,
    LockdownStatus,
    PlanStatus,
    User,
)
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
    """A parcel to route: ``parcel_id`` is None for a new one (created by :func:`store_plan`)."""

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
    parcels = [PlanParcel(*row) for row in repo.pending_parcels(session, release)]
    parcels.extend(_new_parcels(session))
    counts = fleet.available_counts(session, day)  # breakdowns included (record_breakdowns)
    busy = repo.busy_vehicles(session, day)
    groups = []
    for v in repo.active_vehicles(session):
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
    warehouses = repo.warehouse_places(session)
    communities = repo.community_access(session, {p.community_id for p in parcels})
    return PlanInput(day, replan_of_id, parcels, groups, warehouses, communities, release)


def _new_parcels(session: Session) -> list[PlanParcel]:
    """Allocations not yet carried by any parcel, grouped into new parcels (one per household
    and warehouse), weighed from the catalog."""
    kits, items = repo.sku_sizes(session)
    parcels: dict[tuple[int, int], PlanParcel] = {}
    for a, line, ref, kit, item, q, household, warehouse, community in repo.unparcelled_allocations(
        session
    ):
        p = parcels.get((household, warehouse))
        if p is None:
            p = parcels[(household, warehouse)] = PlanParcel(
                None, household, community, warehouse, 0, 0, 0
            )
        g, ml = kits[kit] if kit is not None else items[item or 0]
        p.weight_g += g * q
        p.volume_ml += ml * q
        p.packs += q
        p.lines.append((a, line, ref, kit, item, q))
    return list(parcels.values())


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
