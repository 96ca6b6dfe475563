"""Dispatch planning: the day's allocations → parcels → gate loads → routes for carriers' fleets.

Three phases, so that a job runner can keep the database free while the engine searches:

1. :func:`prepare_plan` (reads only): allocations not yet in a parcel become new parcels (one
   per household and warehouse), parcels still pending (or released by a re-plan) join them;
   the fleet of the day is read (availability, vehicles already out on the road).
2. :func:`solve_plan` (pure): per warehouse, one routing problem whose stops are community
   gates, split into loads no larger than the biggest vehicle allowed in; who may come to a
   gate and who carries the last 100 m is :mod:`relieflink.dispatch.reach` (sealed compounds
   in two legs: any vehicle to the gate, the compound's volunteer team inside, at its
   capacity, within its shift; robots directly; open compounds whose team works hand over at
   the gate the same way, the courier walks to the doors where none does). The engine's
   independent checker verifies every plan; the teams' inner legs are scheduled per compound
   and give the doors' ETAs.
3. :func:`store_plan` (one transaction): parcels with their pickup codes, routes, stops with
   ETAs. ``relieflink.flows.dispatch`` runs the three, marks the requests ``dispatched`` and
   releases what could not be routed (stock freed, allocations back to their requests).

Stock stays reserved until loading: the ``loaded`` tracking event issues it ("picked").
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from time import perf_counter
from typing import Any

from sqlalchemy.orm import Session

from relieflink.dispatch import fleet, reach
from relieflink.dispatch import repository as repo
from relieflink.dispatch.reach import CIRCUITY, FleetGroup, GateTeam
from relieflink.errors import FieldError, Invalid
from relieflink.models import (
    DispatchPlan,
    FleetKind,
    InnerMode,
    PlanStatus,
    PriorityClass,
    User,
)
from relieflink.optim.geo import haversine_m
from relieflink.optim.routing import (
    Depot,
    Executor,
    RoutingParams,
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
# Gate loads up to which the engine solves a problem whole (larger ones it decomposes).
DIRECT_LIMIT = RoutingParams().direct_limit
__all__ = ["CIRCUITY", "FleetGroup", "PlanInput", "PlanSolution", "prepare_plan", "solve_plan"]


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
    # Its urgency as the allocation run ranked its most urgent allocation: (priority class,
    # -score), smallest first (:func:`relieflink.needs.allocation.load_lines`' order).
    rank: tuple[int, int] = (len(PriorityClass), 0)


@dataclass
class PlanInput:
    day: date
    replan_of_id: int | None
    parcels: list[PlanParcel]
    fleet: list[FleetGroup]
    warehouses: dict[int, tuple[float, float]]
    communities: dict[int, tuple[float, float, str, bool]]  # lat, lon, status, vehicles allowed
    release_routes: list[int] = field(default_factory=list)
    teams: dict[int, GateTeam] = field(default_factory=dict)  # by community: at work today
    # Vehicle groups of the day whose shift is over when the plan is made (code → why).
    shifts_over: dict[str, str] = field(default_factory=dict)


@dataclass
class PlannedStop:
    community_id: int
    inner_mode: InnerMode
    eta_s: int  # at the gate (or the door, for a courier going door to door)
    parcels: list[int]  # indices into PlanInput.parcels
    door_eta_s: int = 0  # the last of its parcels at the door (after the team's inner leg)


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
    parcels = [
        PlanParcel(pid, household, community, warehouse, g, ml, packs, rank=_rank(klass, score))
        for pid, household, community, warehouse, g, ml, packs, klass, score in (
            repo.pending_parcels(session, release)
        )
    ]
    parcels.extend(_new_parcels(session))
    groups = fleet.groups_of_day(session, day)  # breakdowns included (record_breakdowns)
    warehouses = repo.warehouse_places(session)
    ids = {p.community_id for p in parcels}
    communities = repo.community_access(session, ids)
    teams = fleet.gate_teams(session, day, ids)
    over = fleet.shifts_over(session, day)
    return PlanInput(
        day, replan_of_id, parcels, groups, warehouses, communities, release, teams, over
    )


def _new_parcels(session: Session) -> list[PlanParcel]:
    """Allocations not yet carried by any parcel, grouped into new parcels (one per household
    and warehouse), weighed from the catalog."""
    kits, items = repo.sku_sizes(session)
    parcels: dict[tuple[int, int], PlanParcel] = {}
    for row in repo.unparcelled_allocations(session):
        a, line, ref, kit, item, q, household, warehouse, community, klass, score = row
        p = parcels.get((household, warehouse))
        if p is None:
            p = parcels[(household, warehouse)] = PlanParcel(
                None, household, community, warehouse, 0, 0, 0
            )
        p.rank = min(p.rank, _rank(klass, score))
        g, ml = kits[kit] if kit is not None else items[item or 0]
        p.weight_g += g * q
        p.volume_ml += ml * q
        p.packs += q
        p.lines.append((a, line, ref, kit, item, q))
    return list(parcels.values())


def _rank(klass: int | None, score: int | None) -> tuple[int, int]:
    return (len(PriorityClass) if klass is None else klass, -(score or 0))


# --- phase 2: solve (pure) --------------------------------------------------------------------


def _type_id(g: FleetGroup) -> str:
    """The routing's vehicle type of a group's vehicles waiting at one warehouse (a group
    whose vehicles wait at several is several types)."""
    if g.home_id is None or g.home_id == g.depot_id:
        return f"g{g.vehicle_id}"
    return f"g{g.vehicle_id}@w{g.depot_id}"


def _assign_groups(
    inp: PlanInput, load_g: dict[int, int]
) -> dict[int, list[tuple[FleetGroup, int, int, int]]]:
    """Vehicle groups per stock warehouse: (group, count, shift delay, deadhead metres). The
    deadhead is from where the group's vehicles wait (``depot_id``: home, or the warehouse
    their last route of the day ended at, :func:`relieflink.dispatch.fleet.vehicles_at`). A
    group with a range (robots: short loops from nearby depots) only goes where the deadhead
    there and back leaves range for a loop (:func:`relieflink.dispatch.reach.reachable`'s
    rule). A group whose depot
    holds no parcels today drives to the stock warehouses, apportioned by load, starting later
    by the deadhead time; a group whose depot holds parcels shares its vehicles, by load, with
    the stock warehouses where no group is based (so that every warehouse the reach rule lets
    ship has vehicles)."""
    out: dict[int, list[tuple[FleetGroup, int, int, int]]] = defaultdict(list)
    sources = sorted(load_g)
    if not sources:
        return out
    homes = {g.depot_id for g in inp.fleet}
    orphans = [w for w in sources if w not in homes]
    for g in inp.fleet:
        home = inp.warehouses[g.depot_id]
        deadhead = {
            w: 0
            if w == g.depot_id
            else int(
                float(haversine_m(home[0], home[1], inp.warehouses[w][0], inp.warehouses[w][1]))
                * CIRCUITY
            )
            for w in sources
        }
        targets = sorted({g.depot_id, *orphans}) if g.depot_id in load_g else sources
        targets = [
            w
            for w in targets
            if g.range_m is None or w == g.depot_id or 2 * deadhead[w] < g.range_m
        ]
        if not targets:
            continue
        total = sum(load_g[w] for w in targets)
        shares = [g.count * load_g[w] / total for w in targets]
        counts = [math.floor(s) for s in shares]
        for i in sorted(range(len(targets)), key=lambda i: counts[i] - shares[i])[
            : g.count - sum(counts)
        ]:
            counts[i] += 1
        if g.depot_id in load_g and counts[targets.index(g.depot_id)] == 0:
            # Its own depot's parcels come first: one vehicle at least stays home.
            counts[max(range(len(targets)), key=lambda i: counts[i])] -= 1
            counts[targets.index(g.depot_id)] += 1
        for w, n in zip(targets, counts, strict=True):
            if n > 0:
                out[w].append((g, n, int(deadhead[w] / (g.speed_kmh / 3.6)), deadhead[w]))
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
    takers: list[GateTeam | None]  # the compound's team where it takes the stop's load


def _unreachable_reason(
    status: str, vehicles_ok: bool, team: GateTeam | None, inp: PlanInput
) -> str:
    if reach.two_legs(status, vehicles_ok) and not reach.team_works(team):
        return (
            "sealed compound with no volunteer team at work today, and no robot within range "
            "of this warehouse"
        )
    why = "no vehicle of the day can reach this gate from this warehouse within its range and shift"
    if inp.shifts_over:
        why += f" (shift over for {len(inp.shifts_over)} vehicle groups at the plan's hour)"
    return why


def _gate_team(
    team: GateTeam | None, two_legs: bool, fit: Sequence[VehicleType]
) -> GateTeam | None:
    """The compound's team (``team``: at work today, with capacity, else None) if it takes the
    loads at the gate: always where vehicles may not enter; in an open compound only if its
    shift meets the hours the vehicles ``fit`` can come (else the couriers walk to the doors)."""
    if team is None or two_legs:
        return team
    meets = team.shift_start_s < max(t.shift_end for t in fit) and team.shift_end_s > min(
        t.shift_start for t in fit
    )
    return team if meets else None


def _beyond_carriage(
    inp: PlanInput,
    gates: dict[int, list[int]],
    types: list[VehicleType],
    reachable: set[tuple[int, int]],
    w: int,
) -> set[int]:
    """When the free vehicles at warehouse ``w`` cannot carry all its parcels (one trip each),
    the least urgent ones: the parcels are loaded in the allocation's order of urgency
    (:attr:`PlanParcel.rank`) until the vehicles' payload is taken; the rest wait."""
    if not types:
        return set()
    room = sum(t.count * t.capacity_g for t in types)
    routable = [i for c, indices in gates.items() if (c, w) in reachable for i in indices]
    out: set[int] = set()
    for i in sorted(routable, key=lambda i: inp.parcels[i].rank):
        room -= inp.parcels[i].weight_g
        if room < 0:
            out.add(i)
    return out


def build_problems(inp: PlanInput) -> tuple[list[WarehouseProblem], dict[int, str]]:
    """One routing problem per stock warehouse (gate loads as stops, access rules as allowed
    kinds, a team's shift as the time window of its gate), and the parcels that cannot be
    routed at all, with the reason in words."""
    by_source: dict[int, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    load_g: dict[int, int] = defaultdict(int)
    # The most urgent parcels first (as the allocation ranked them), at every gate: the first
    # gate loads, and the parcels a split visit takes first, are theirs.
    ranked = sorted(range(len(inp.parcels)), key=lambda i: inp.parcels[i].rank)
    for i in ranked:
        p = inp.parcels[i]
        by_source[p.warehouse_id][p.community_id].append(i)
        load_g[p.warehouse_id] += max(p.weight_g, 1)
    groups = _assign_groups(inp, load_g)
    unassigned: dict[int, str] = {}
    problems: list[WarehouseProblem] = []
    gate_ids = sorted({p.community_id for p in inp.parcels})
    source_ids = sorted(by_source)
    can = reach.reachable(
        [inp.communities[c] for c in gate_ids],
        [inp.teams.get(c) for c in gate_ids],
        [inp.warehouses[w] for w in source_ids],
        inp.warehouses,
        inp.fleet,
    )
    reachable = {
        (c, w)
        for (gi, wi) in zip(*can.nonzero(), strict=True)
        for c, w in [(gate_ids[int(gi)], source_ids[int(wi)])]
    }
    # What each team can still carry in today (first come, first served across warehouses).
    team_left = {
        c: reach.team_day_g(t)
        for c, t in inp.teams.items()
        if c in inp.communities and reach.team_takes(*inp.communities[c][2:], t)
    }
    for w in source_ids:
        types: list[VehicleType] = []
        for g, n, delay, deadhead in groups.get(w, []):
            if g.capacity_g <= 0 or g.shift_start_s + delay >= g.shift_end_s:
                continue
            types.append(
                VehicleType(
                    id=_type_id(g),
                    kind=VehicleKind(g.kind.value),
                    count=n,
                    start_depot=f"w{w}",
                    capacity_g=g.capacity_g,
                    capacity_ml=g.capacity_ml or 1,
                    speed_kmh=float(g.speed_kmh),
                    max_distance_m=None if g.range_m is None else g.range_m - 2 * deadhead,
                    shift_start=g.shift_start_s + delay,
                    shift_end=g.shift_end_s,
                    fixed_cost=g.fixed_cost_fen,
                    cost_per_km=g.cost_per_km_fen,
                    carrier=str(g.carrier_id),
                )
            )
        stops: list[Stop] = []
        stop_parcels: list[list[int]] = []
        modes: list[InnerMode] = []
        communities: list[int] = []
        takers: list[GateTeam | None] = []
        full = _beyond_carriage(inp, by_source[w], types, reachable, w)
        unassigned.update(
            dict.fromkeys(
                full,
                "no room left on the free vehicles from this warehouse: more urgent parcels "
                "went first",
            )
        )
        for c in sorted(by_source[w]):
            lat, lon, status, vehicles_ok = inp.communities[c]
            team = inp.teams.get(c)
            indices = [i for i in by_source[w][c] if i not in full]
            if not indices:
                continue
            if (c, w) not in reachable:
                unassigned.update(
                    dict.fromkeys(indices, _unreachable_reason(status, vehicles_ok, team, inp))
                )
                continue
            kinds = reach.allowed_kinds(status, vehicles_ok, team)
            fit = [t for t in types if kinds is None or t.kind in kinds]
            if not fit:
                why = (
                    "no robot available at this warehouse for a sealed compound with no "
                    "volunteer team at work"
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
            two = reach.two_legs(status, vehicles_ok)
            gate_team = _gate_team(team if c in team_left else None, two, fit)
            # Gate loads no larger than the smallest allowed vehicle, so that every vehicle
            # (e-bikes too) can take one; a big vehicle simply makes several stops there.
            heaviest = max((inp.parcels[i].weight_g for i in indices), default=0)
            gate_g = max(min(t.capacity_g for t in fit), heaviest)
            gate_ml = max(
                min(t.capacity_ml for t in fit),
                max((inp.parcels[i].volume_ml for i in indices), default=0),
            )
            gate_g, gate_ml = min(gate_g, cap_g), min(gate_ml, cap_ml)
            robots = [t for t in types if t.kind in reach.ROBOT_KINDS]
            for k, chunk in enumerate(_chunks(indices, inp.parcels, gate_g, gate_ml)):
                households = len({inp.parcels[i].household_id for i in chunk})
                weight = sum(inp.parcels[i].weight_g for i in chunk)
                chunk_kinds, tw, taker = kinds, (0, 86_400), None
                if gate_team is not None:
                    if weight <= team_left[c]:
                        team_left[c] -= weight
                        taker = gate_team
                        # The team is at the gate within its shift, and must finish the inner
                        # leg by its end.
                        leg = reach.inner_leg_s(weight, gate_team)
                        tw = (
                            gate_team.shift_start_s,
                            max(gate_team.shift_end_s - leg, gate_team.shift_start_s),
                        )
                    elif not two:
                        pass  # the open compound's team is full today: the courier walks
                    elif robots and weight <= max(t.capacity_g for t in robots):
                        chunk_kinds = reach.ROBOT_KINDS  # the team is full today: robots only
                    else:
                        kg = reach.team_day_g(gate_team) // 1000
                        unassigned.update(
                            dict.fromkeys(
                                chunk,
                                f"the compound's volunteer team can carry {kg} kg in today, "
                                "all taken, and no robot can take this load",
                            )
                        )
                        continue
                mode = reach.inner_mode(
                    status, vehicles_ok, None if kinds else FleetKind.van, taker
                )
                per_door = reach.door_s(mode)
                stops.append(
                    Stop(
                        id=f"c{c}:{k}",
                        lat=lat,
                        lon=lon,
                        weight_g=weight,
                        volume_ml=sum(inp.parcels[i].volume_ml for i in chunk),
                        service_s=reach.GATE_SERVICE_S + per_door * households,
                        tw_start=tw[0],
                        tw_end=tw[1],
                        allowed_kinds=chunk_kinds,
                    )
                )
                stop_parcels.append(chunk)
                modes.append(mode)
                communities.append(c)
                takers.append(taker)
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
        problems.append(WarehouseProblem(w, problem, stop_parcels, modes, communities, takers))
    return problems, unassigned


def _door_etas(inp: PlanInput, routes: list[PlannedVehicleRoute]) -> dict[str, Any]:
    """Each stop's doors' ETA: the team of a two-leg gate carries the loads in as they come,
    one load after another, all its members at work in parallel (robots and couriers bring
    theirs to the door themselves). Returns per compound the team's inner-leg day."""
    legs: dict[int, list[PlannedStop]] = defaultdict(list)
    for r in routes:
        for s in r.stops:
            team = inp.teams.get(s.community_id)
            _, _, status, vehicles_ok = inp.communities[s.community_id]
            if s.inner_mode == InnerMode.volunteer and reach.team_takes(status, vehicles_ok, team):
                legs[s.community_id].append(s)
            else:
                households = len({inp.parcels[i].household_id for i in s.parcels})
                per_door = reach.door_s(s.inner_mode)
                s.door_eta_s = s.eta_s + reach.GATE_SERVICE_S + per_door * households
    out: dict[str, Any] = {}
    for c, stops in sorted(legs.items()):
        team = inp.teams[c]
        free = team.shift_start_s
        carried = 0
        for s in sorted(stops, key=lambda s: s.eta_s):
            weight = sum(inp.parcels[i].weight_g for i in s.parcels)
            start = max(s.eta_s + reach.GATE_SERVICE_S, free)
            s.door_eta_s = free = start + reach.inner_leg_s(weight, team)
            carried += weight
        out[str(c)] = {
            "loads": len(stops),
            "kg": round(carried / 1000, 1),
            "team": team.code,
            "volunteers": team.available,
            "first_s": min(s.eta_s for s in stops),
            "done_s": free,
        }
    return out


def solve_plan(
    inp: PlanInput,
    *,
    time_limit: float | None = None,
    seed: int = 1,
    workers: int | None = None,
    progress: Progress | None = None,
    iterations: int | None = None,
    scheduler: str | None = None,
    executor: Executor | None = None,
) -> PlanSolution:
    """Route every parcel of ``inp``: one routing problem per stock warehouse. ``time_limit``
    is the total search budget (default: grows with the number of gate loads); ``iterations``
    instead fixes the engine's work per warehouse, so that a seed gives the same plan on any
    machine and any executor (the simulation's reproducible days, a city on Dask). The
    warehouses' problems run on ``executor`` (default: in this process for a small day, else
    a local pool of ``workers`` processes, or the Dask cluster at ``scheduler``)."""
    started = perf_counter()
    step = progress or (lambda _p, _m: None)
    problems, unassigned = build_problems(inp)
    routes: list[PlannedVehicleRoute] = []
    violations: list[str] = []
    total_stops = sum(len(p.problem.stops) for p in problems)
    budget = time_limit if time_limit is not None else min(30.0, 1.0 + 0.02 * total_stops)
    group_by_id = {_type_id(g): g for g in inp.fleet}
    stats: dict[str, Any] = {
        "warehouses": len(problems),
        "gate_loads": total_stops,
        # Vehicles whose shift is over at the plan's hour: no route for them (code → why).
        "shifts_over": dict(inp.shifts_over),
    }
    # A small day stays in this process (no pool to start); a city goes to the pool or to Dask.
    own = executor is None
    if executor is None:
        small = workers == 1 or (scheduler is None and total_stops <= DIRECT_LIMIT)
        executor = SerialExecutor() if small else make_executor(workers, scheduler)
    try:
        results = _solve_all(problems, executor, budget, total_stops, iterations, seed, step)
    finally:
        if own:
            executor.close()
    for wp, result in zip(problems, results, strict=True):
        w, problem, stop_parcels = wp.warehouse_id, wp.problem, wp.stop_parcels
        communities = wp.communities
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
                c = communities[visit.stop]
                _, _, status, vehicles_ok = inp.communities[c]
                planned.append(
                    PlannedStop(
                        c,
                        reach.inner_mode(status, vehicles_ok, g.kind, wp.takers[visit.stop]),
                        visit.service_start_s,
                        take,
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
    stats["inner_legs"] = _door_etas(inp, routes)
    return PlanSolution(routes, unassigned, violations, perf_counter() - started, stats)


@dataclass(frozen=True)
class _Task:
    problem: RoutingProblem
    iterations: int | None
    time_limit: float
    seed: int


def _route(task: _Task, executor: Executor) -> RoutingResult:
    if task.iterations is not None:
        return solve_routing(
            task.problem, iterations=task.iterations, seed=task.seed, executor=executor
        )
    return solve_routing(
        task.problem, time_limit=task.time_limit, seed=task.seed, executor=executor
    )


def _solve_task(task: _Task) -> RoutingResult:
    """One warehouse's problem, whole, in a worker (module level: it travels by pickle)."""
    return _route(task, SerialExecutor())


def _solve_all(
    problems: list[WarehouseProblem],
    executor: Executor,
    budget: float,
    total_stops: int,
    iterations: int | None,
    seed: int,
    step: Progress,
) -> list[RoutingResult]:
    """Results in the order of ``problems``. Warehouses small enough to solve whole go to the
    executor side by side, a batch at a time (for progress); a bigger one is decomposed by the
    engine, whose sub-problems go to the same executor. Every warehouse has the same seed and,
    with ``iterations``, the same work wherever it runs: the plan does not depend on where."""
    out: dict[int, RoutingResult] = {}
    done = 0

    def task(wp: WarehouseProblem) -> _Task:
        share = budget * len(wp.problem.stops) / max(total_stops, 1)
        return _Task(wp.problem, iterations, max(share, 0.2), seed)

    def at(what: str) -> None:
        step(10 + int(80 * done / max(total_stops, 1)), what)

    whole = [k for k, wp in enumerate(problems) if len(wp.problem.stops) <= DIRECT_LIMIT]
    batch = max(2 * executor.workers, 1)
    for start in range(0, len(whole), batch):
        keys = whole[start : start + batch]
        at(f"routing from {len(keys)} warehouses ({len(out)} of {len(problems)} done)")
        tasks = [task(problems[k]) for k in keys]
        out.update(zip(keys, executor.map(_solve_task, tasks), strict=True))
        done += sum(len(problems[k].problem.stops) for k in keys)
    for k, wp in enumerate(problems):
        if k not in out:
            at(f"routing from warehouse {wp.warehouse_id}")
            out[k] = _route(task(wp), executor)
            done += len(wp.problem.stops)
    return [out[k] for k in range(len(problems))]


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
