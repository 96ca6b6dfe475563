"""Independent feasibility checker.

It shares no code with the solver: from the problem, the matrix provider and a plan it
recomputes every route's loads, schedule, duration, distance and cost and lists every broken
rule. Unassigned demand is not a violation as long as it carries a reason; silently dropped
demand is.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np

from relieflink.optim.geo import HaversineProvider, MatrixProvider, travel_seconds
from relieflink.optim.routing.model import RoutingProblem
from relieflink.optim.routing.result import RoutingResult, Violation

__all__ = ["check_solution", "default_provider"]


def default_provider(problem: RoutingProblem) -> HaversineProvider:
    """The default provider for ``problem``: haversine × 1.3 on depot then stop coordinates."""
    lat = [d.lat for d in problem.depots] + [s.lat for s in problem.stops]
    lon = [d.lon for d in problem.depots] + [s.lon for s in problem.stops]
    return HaversineProvider(lat, lon)


def check_solution(
    problem: RoutingProblem,
    result: RoutingResult,
    provider: MatrixProvider | None = None,
) -> list[Violation]:
    """List every violation of ``result`` against ``problem``.

    Parameters
    ----------
    problem
        The problem that was solved.
    result
        The plan (its ``violations`` field is ignored).
    provider
        The matrix provider the plan was made with (default: haversine × circuity).

    Returns
    -------
    list[Violation]
        Empty when the plan is feasible and its reported figures are exact.
    """
    prov = provider if provider is not None else default_provider(problem)
    out: list[Violation] = []
    types = {vt.id: vt for vt in problem.vehicle_types}
    n_dep = len(problem.depots)
    delivered_g: Counter[int] = Counter()
    delivered_ml: Counter[int] = Counter()
    used: dict[str, set[int]] = defaultdict(set)

    for r_idx, route in enumerate(result.routes):

        def bad(code: str, msg: str, stop_id: str | None = None, r: int = r_idx) -> None:
            out.append(Violation(code, msg, r, stop_id))

        vt = types.get(route.vehicle_type)
        if vt is None:
            bad("unknown_vehicle_type", f"route {r_idx}: unknown type {route.vehicle_type!r}")
            continue
        if not 0 <= route.vehicle_index < vt.count:
            bad("fleet_size", f"route {r_idx}: vehicle {route.vehicle_index} of {vt.id} >= count")
        if route.vehicle_index in used[vt.id]:
            bad("vehicle_reused", f"route {r_idx}: vehicle {vt.id}#{route.vehicle_index} reused")
        used[vt.id].add(route.vehicle_index)
        if not route.visits:
            bad("empty_route", f"route {r_idx} has no visits")
            continue

        load_g = load_ml = 0
        seq = [problem.depot_index[vt.start_depot]]
        for v in route.visits:
            if not 0 <= v.stop < len(problem.stops):
                bad("unknown_stop", f"route {r_idx}: stop index {v.stop} out of range")
                seq = []
                break
            stop = problem.stops[v.stop]
            if stop.id != v.stop_id:
                bad("stop_id_mismatch", f"route {r_idx}: stop {v.stop} is {stop.id!r}", v.stop_id)
            if not stop.allows_vehicle(vt):
                bad("access", f"{vt.kind.value} {vt.id} may not enter stop {stop.id!r}", stop.id)
            if v.weight_g < 0 or v.volume_ml < 0:
                bad("negative_delivery", f"negative delivery at {stop.id!r}", stop.id)
            load_g += v.weight_g
            load_ml += v.volume_ml
            delivered_g[v.stop] += v.weight_g
            delivered_ml[v.stop] += v.volume_ml
            seq.append(n_dep + v.stop)
        if not seq:
            continue
        seq.append(problem.depot_index[vt.end])
        if load_g > vt.capacity_g:
            bad("capacity_weight", f"route {r_idx}: load {load_g} g > {vt.capacity_g} g")
        if load_ml > vt.capacity_ml:
            bad("capacity_volume", f"route {r_idx}: load {load_ml} ml > {vt.capacity_ml} ml")

        origins = np.asarray(seq[:-1])
        dests = np.asarray(seq[1:])
        dist_legs = np.diagonal(prov.distances(origins, dests)).astype(np.int64)
        dur_block = prov.durations(origins, dests, vt.kind.value)
        if dur_block is None:
            dur_legs = travel_seconds(dist_legs, vt.speed)
        else:
            dur_legs = np.diagonal(dur_block).astype(np.int64)
        distance = int(dist_legs.sum())
        if distance != route.distance_m:
            bad("distance_mismatch", f"route {r_idx}: distance {route.distance_m} != {distance}")
        if vt.max_distance_m is not None and distance > vt.max_distance_m:
            bad("max_distance", f"route {r_idx}: {distance} m > range {vt.max_distance_m} m")

        start_dep = problem.depots[problem.depot_index[vt.start_depot]]
        end_dep = problem.depots[problem.depot_index[vt.end]]
        t = route.start_s
        if t < vt.shift_start or t < start_dep.open_s:
            bad("early_start", f"route {r_idx}: starts at {t} before shift/depot opening")
        if t > start_dep.close_s:
            bad("depot_closed", f"route {r_idx}: leaves {start_dep.id} after closing")
        for leg, v in enumerate(route.visits):
            stop = problem.stops[v.stop]
            t += int(dur_legs[leg])
            begin = max(t, stop.tw_start)
            if begin > stop.tw_end:
                bad(
                    "time_window",
                    f"route {r_idx}: service at {stop.id!r} starts {begin} > {stop.tw_end}",
                    stop.id,
                )
            if v.service_start_s != begin:
                bad(
                    "schedule_mismatch",
                    f"route {r_idx}: service at {stop.id!r} reported "
                    f"{v.service_start_s}, recomputed {begin}",
                    stop.id,
                )
            t = begin + stop.service_s
        t += int(dur_legs[-1])
        if t > vt.shift_end:
            bad("shift_end", f"route {r_idx}: returns at {t} > shift end {vt.shift_end}")
        if t > end_dep.close_s:
            bad("depot_closed", f"route {r_idx}: returns at {t} after {end_dep.id} closes")
        duration = t - route.start_s
        if duration != route.duration_s:
            bad("duration_mismatch", f"route {r_idx}: duration {route.duration_s} != {duration}")
        if vt.max_duration_s is not None and duration > vt.max_duration_s:
            bad("max_duration", f"route {r_idx}: {duration} s > {vt.max_duration_s} s")
        cost = vt.fixed_cost * 1000 + vt.cost_per_km * distance + vt.unit_duration_cost * duration
        if cost != route.cost_millifen:
            bad("cost_mismatch", f"route {r_idx}: cost {route.cost_millifen} != {cost}")

    un_g: Counter[int] = Counter()
    un_ml: Counter[int] = Counter()
    for u in result.unassigned:
        if not u.reason:
            out.append(Violation("no_reason", f"stop {u.stop_id!r} unassigned without reason"))
        if 0 <= u.stop < len(problem.stops):
            un_g[u.stop] += u.weight_g
            un_ml[u.stop] += u.volume_ml
        else:
            out.append(Violation("unknown_stop", f"unassigned stop index {u.stop} out of range"))
    unassigned_stops = {u.stop for u in result.unassigned}
    for i, stop in enumerate(problem.stops):
        visited = i in delivered_g or i in delivered_ml
        if not visited and i not in unassigned_stops:
            out.append(
                Violation(
                    "dropped", f"stop {stop.id!r} neither served nor unassigned", stop_id=stop.id
                )
            )
            continue
        if (
            delivered_g[i] + un_g[i] != stop.weight_g
            or delivered_ml[i] + un_ml[i] != stop.volume_ml
        ):
            out.append(
                Violation(
                    "demand_mismatch",
                    f"stop {stop.id!r}: delivered {delivered_g[i]} g/{delivered_ml[i]} ml + "
                    f"unassigned {un_g[i]} g/{un_ml[i]} ml != demand {stop.weight_g} g/"
                    f"{stop.volume_ml} ml",
                    stop_id=stop.id,
                )
            )
    return out
