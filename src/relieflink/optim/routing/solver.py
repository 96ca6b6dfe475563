"""The routing engine: pre-checks, split delivery, direct or decomposed PyVRP search.

Reproducibility
---------------
With ``iterations`` set (and ``time_limit`` left ``None``) every sub-problem stops after a fixed
number of PyVRP iterations, sub-problems are formed from the seed and the round number only,
and executors return results in input order. The plan is then a pure function of
``(problem, provider, params, seed, executor.workers)``: the same seed and the same number of
workers give the same plan on any executor (serial, process pool or Dask). With a time limit
the amount of search done depends on machine load, so plans may differ between runs.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from relieflink.optim.geo import EuclideanProvider, MatrixProvider, travel_seconds
from relieflink.optim.routing._tasks import SubProfile, SubResult, SubTask, SubVehicleType
from relieflink.optim.routing.checker import check_solution, default_provider
from relieflink.optim.routing.construct import (
    nearest_neighbours,
    packed_sweep_routes,
    pick_route_groups,
    savings_routes,
)
from relieflink.optim.routing.executors import (
    AsyncExecutor,
    Executor,
    Handle,
    LocalProcessExecutor,
)
from relieflink.optim.routing.model import RoutingProblem, VehicleType
from relieflink.optim.routing.result import PlannedRoute, RoutingResult, Unassigned, Visit

__all__ = ["ProgressEvent", "RoutingParams", "solve_routing", "whole_instance_bytes"]

logger = logging.getLogger(__name__)

#: The largest seed :func:`solve_routing` takes (PyVRP's seeds are unsigned 32-bit integers).
MAX_SEED = 2**32 - 1

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class RoutingParams:
    """Tuning knobs of the engine.

    Parameters
    ----------
    direct_limit
        Problems with at most this many demand pieces go to PyVRP whole: one search per
        worker, each with its own seed, the cheapest plan kept.
    direct_memory_mb
        Larger problems also go to PyVRP whole where every depot's problem is plain CVRP
        with long routes (``long_route_clients``) and the matrices of one whole-instance
        solve per worker fit in this many megabytes (:func:`whole_instance_bytes`; 1024 with
        two workers takes one-profile problems up to about 4,000 locations; PyVRP's own
        structures add about half again: 966-975 MB for the whole run, main process and two
        workers, at 3,000 clients). On long routes PyVRP's search makes about as many
        iterations a second on the whole instance as on a part of it, so parts gain nothing
        per iteration and lose the moves between parts: on Leuven1-west-L115 (3,000 clients,
        27 routes of about 110) at 300 s the rounds ended 0.15 % above plain PyVRP's
        three-seed mean, the two searches 0.23 % below it. ``0`` turns this off.
    part_size
        Target number of pieces per sub-problem when decomposing.
    rounds
        Improvement rounds in iteration mode (time mode runs until the limit).
    init_share
        Share of the time limit for the first, parallel pass over all parts.
    sub_time
        Base seconds per sub-problem in improvement rounds (``None``: derived from
        ``covers``).
    covers
        With ``sub_time`` left ``None`` and routes shorter than ``long_route_clients``
        pieces on average, the base slice is set so that the rounds could re-optimise every
        route about this many times in the time left after the sweep pass (the time left
        times the workers, over the number of parts times ``covers``; between 0.5 and 30 s).
        Rounds seed their parts from the routes re-optimised longest ago, so the whole plan
        is covered before a region is taken again. A slice of a twelfth of the budget (still
        the rule for long routes) covered Brussels1 (15,000 clients, 30 parts) about half a
        time in 300 s: 2.92 % above the best known, against 1.18 % with 0.75 s slices.
    construction
        ``"auto"``: where every depot has one plain capacitated fleet (no time windows,
        shift or range limits, site rules or duration costs), a granular savings plan first (a
        feasible plan within seconds, returned if the search does not beat it), then the
        polar-sweep pass that seeds the rounds. ``"sweep"``: the sweep pass only.
    neighbours
        Nearest neighbours per client that make two routes neighbours.
    savings_neighbours
        Candidate partners per client in the savings construction (fewer leave more routes).
    group_routes
        A sub-problem holds at least this many routes (long routes make bigger parts).
    max_slice_growth
        A part whose last solve improved gets up to this many times the base time slice.
    portfolio_memory_mb
        Above ``direct_limit``, with at least two workers on an executor that can start a task
        in the background (:class:`~relieflink.optim.routing.executors.AsyncExecutor`), and
        where one whole-instance PyVRP solve is estimated to fit in this many megabytes (its
        full matrices, see :func:`whole_instance_bytes`; 1024 takes one-profile problems up
        to about 5,800 locations), one worker runs PyVRP on the whole problem (from the
        savings plan where there is one, else from PyVRP's own start) for the whole budget
        while the others run the decomposition, and the cheaper plan is returned. ``0``
        (the default) turns the portfolio off: on a shared machine (load 20 on 2 cores,
        about 8 CPU s per 60 s run) it lost to the two-lane decomposition by 3-5 % on a
        3,000-client long-route instance (``benchmarks/routing/results/README.md``).
    portfolio_exchange
        In the portfolio, stop the whole-problem lane half-way (in iteration mode: after half
        the rounds), keep the cheaper of its plan and the decomposition's in both, and restart
        the lane from that plan for the second half: each side seeds the other once. Off, the
        lane is one PyVRP run over the whole budget and the plan is never worse than it.
    long_route_clients
        Where every depot's problem is plain CVRP and its capacity holds at least this many
        mean demands (long routes), the sweep pass starts each part from whole routes
        instead of from scratch: of the routes packed to capacity in sweep order
        (:func:`~relieflink.optim.routing.construct.packed_sweep_routes`: thin sectors, or
        sectors cut into bands by distance) and the savings routes, the plan with the
        fewest routes, then the cheapest. Parts solved from scratch round their vehicle
        counts up one by one
        (30 routes where 27 suffice on Leuven1-west-L115), and with routes this long every
        extra route pays the trip out from the depot, which the rounds, re-optimising a few
        routes at a time, rarely win back. Where the sweep plan's routes hold this many pieces
        on average, the rounds' base slice stays a twelfth of the budget (see ``covers``).
    """

    direct_limit: int = 1500
    direct_memory_mb: int = 1024
    part_size: int = 500
    rounds: int = 6
    init_share: float = 0.15
    sub_time: float | None = None
    covers: float = 20.0
    construction: str = "auto"
    neighbours: int = 8
    savings_neighbours: int = 32
    group_routes: int = 4
    max_slice_growth: float = 2.0
    portfolio_memory_mb: int = 0
    portfolio_exchange: bool = True
    long_route_clients: float = 40.0

    def __post_init__(self) -> None:
        if self.direct_limit < 1 or self.part_size < 2:
            raise ValueError("direct_limit must be >= 1 and part_size >= 2")
        if not 0 < self.init_share < 1:
            raise ValueError("init_share must be in (0, 1)")
        if self.rounds < 0:
            raise ValueError("rounds must be >= 0")
        if self.construction not in ("auto", "sweep"):
            raise ValueError(f"construction must be 'auto' or 'sweep', got {self.construction!r}")
        if min(self.neighbours, self.savings_neighbours, self.group_routes) < 1:
            raise ValueError("neighbours, savings_neighbours and group_routes must be >= 1")
        if self.covers <= 0:
            raise ValueError("covers must be > 0")
        if self.max_slice_growth < 1:
            raise ValueError("max_slice_growth must be >= 1")
        if self.portfolio_memory_mb < 0 or self.direct_memory_mb < 0:
            raise ValueError("portfolio_memory_mb and direct_memory_mb must be >= 0")
        if self.long_route_clients <= 0:
            raise ValueError("long_route_clients must be > 0")


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """Progress report passed to the ``progress`` callback."""

    phase: str
    elapsed_s: float
    time_limit_s: float | None
    cost: float | None
    done: int
    total: int


ProgressFn = Callable[[ProgressEvent], None]


@dataclass(slots=True)
class _Route:
    vtype: int
    pieces: list[int]
    arrivals: list[int]
    starts: list[int]
    start: int
    end: int
    distance: int
    duration: int
    cost: int = 0
    centroid: tuple[float, float] = (0.0, 0.0)
    gain: float = 0.0  # relative improvement of the solve that made this route
    solved: int = -1  # last round whose sub-problems held this route (-1: none yet)


@dataclass(slots=True)
class _Prepared:
    problem: RoutingProblem
    provider: MatrixProvider
    piece_stop: IntArray
    piece_g: IntArray
    piece_ml: IntArray
    compat: npt.NDArray[np.bool_]  # (types, stops)
    type_profile: list[int]
    profiles: list[tuple[str, float]]
    xy: FloatArray  # planar projection of locations (depots then stops)
    unassigned: list[Unassigned] = field(default_factory=list)
    home_depot: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def _project(problem: RoutingProblem, provider: MatrixProvider) -> FloatArray:
    lat = np.array([d.lat for d in problem.depots] + [s.lat for s in problem.stops])
    lon = np.array([d.lon for d in problem.depots] + [s.lon for s in problem.stops])
    if isinstance(provider, EuclideanProvider):
        return np.column_stack([lon, lat]).astype(np.float64)
    lat0 = float(np.mean(lat)) if len(lat) else 0.0
    out: FloatArray = np.column_stack([lon * math.cos(math.radians(lat0)), lat]) * 111_195.0
    return out


def _durations(
    provider: MatrixProvider, o: IntArray, d: IntArray, dist: IntArray, vt: VehicleType
) -> IntArray:
    dur = provider.durations(o, d, vt.kind.value)
    return travel_seconds(dist, vt.speed) if dur is None else dur.astype(np.int64)


def _prepare(problem: RoutingProblem, provider: MatrixProvider) -> _Prepared:
    n_dep = len(problem.depots)
    n = len(problem.stops)
    dep_locs = np.arange(n_dep, dtype=np.int64)
    stop_locs = np.arange(n_dep, n_dep + n, dtype=np.int64)
    d_out = provider.distances(dep_locs, stop_locs).astype(np.int64)  # (D, N)
    d_in = provider.distances(stop_locs, dep_locs).astype(np.int64).T  # (D, N)
    w = np.array([s.weight_g for s in problem.stops], dtype=np.int64)
    v = np.array([s.volume_ml for s in problem.stops], dtype=np.int64)
    svc = np.array([s.service_s for s in problem.stops], dtype=np.int64)
    tw_s = np.array([s.tw_start for s in problem.stops], dtype=np.int64)
    tw_e = np.array([s.tw_end for s in problem.stops], dtype=np.int64)

    profiles: list[tuple[str, float]] = []
    type_profile: list[int] = []
    n_types = len(problem.vehicle_types)
    kind_ok = np.zeros((n_types, n), dtype=bool)
    range_ok = np.zeros((n_types, n), dtype=bool)
    time_ok = np.zeros((n_types, n), dtype=bool)
    dur_ok = np.zeros((n_types, n), dtype=bool)
    cap_ok = np.zeros((n_types, n), dtype=bool)
    dur_cache: dict[tuple[str, float], tuple[IntArray, IntArray]] = {}
    # A PyVRP profile is one (kind, speed) pair *and* one access pattern: access is enforced
    # through the profile's matrices, so types with different site rules may not share one.
    profile_keys: list[tuple[str, float, bytes]] = []
    for t, vt in enumerate(problem.vehicle_types):
        key = (vt.kind.value, vt.speed)
        kind_ok[t] = [s.allows_vehicle(vt) for s in problem.stops]
        pkey = (*key, np.packbits(kind_ok[t]).tobytes())
        if pkey not in profile_keys:
            profile_keys.append(pkey)
            profiles.append(key)
        type_profile.append(profile_keys.index(pkey))
        kind_ok[t] &= vt.count > 0
        if key not in dur_cache:
            dur_cache[key] = (
                _durations(provider, dep_locs, stop_locs, d_out, vt),
                _durations(provider, stop_locs, dep_locs, d_in.T, vt).T,
            )
        t_out_all, t_in_all = dur_cache[key]
        sd = problem.depot_index[vt.start_depot]
        ed = problem.depot_index[vt.end]
        dist_rt = d_out[sd] + d_in[ed]
        range_ok[t] = True if vt.max_distance_m is None else dist_rt <= vt.max_distance_m
        t0 = max(vt.shift_start, problem.depots[sd].open_s)
        begin = np.maximum(t0 + t_out_all[sd], tw_s)
        back = begin + svc + t_in_all[ed]
        latest = min(vt.shift_end, problem.depots[ed].close_s)
        time_ok[t] = (begin <= tw_e) & (back <= latest) & (t0 <= problem.depots[sd].close_s)
        rt_time = t_out_all[sd] + svc + t_in_all[ed]
        dur_ok[t] = True if vt.max_duration_s is None else rt_time <= vt.max_duration_s
        cap_ok[t] = ((w == 0) | (vt.capacity_g > 0)) & ((v == 0) | (vt.capacity_ml > 0))
    compat = kind_ok & range_ok & time_ok & dur_ok & cap_ok

    unassigned: list[Unassigned] = []
    p_stop: list[int] = []
    p_g: list[int] = []
    p_ml: list[int] = []
    home: list[int] = []
    for i, stop in enumerate(problem.stops):
        ok = np.flatnonzero(compat[:, i])
        if len(ok) == 0:
            reason = _reason(problem, i, kind_ok, range_ok, time_ok, dur_ok, cap_ok)
            unassigned.append(Unassigned(i, stop.id, stop.weight_g, stop.volume_ml, reason))
            continue
        # Split delivery: full loads of the type needing the fewest trips, plus a remainder.
        best_t, best_k = int(ok[0]), math.inf
        for t in ok.tolist():
            vt = problem.vehicle_types[t]
            k = max(
                math.ceil(stop.weight_g / vt.capacity_g) if stop.weight_g else 1,
                math.ceil(stop.volume_ml / vt.capacity_ml) if stop.volume_ml else 1,
                1,
            )
            if k < best_k:
                best_t, best_k = t, k
        cap = problem.vehicle_types[best_t]
        rem_g, rem_ml = stop.weight_g, stop.volume_ml
        for _ in range(int(best_k)):
            g = min(rem_g, cap.capacity_g)
            ml = min(rem_ml, cap.capacity_ml)
            rem_g -= g
            rem_ml -= ml
            p_stop.append(i)
            p_g.append(g)
            p_ml.append(ml)
        deps = {problem.depot_index[problem.vehicle_types[int(t)].start_depot] for t in ok}
        near = min(deps, key=lambda dd: (int(d_out[dd, i]), dd))
        home.extend([near] * int(best_k))
        if best_k > 1:
            logger.debug("stop %s split into %d deliveries", stop.id, best_k)
    return _Prepared(
        problem=problem,
        provider=provider,
        piece_stop=np.array(p_stop, dtype=np.int64),
        piece_g=np.array(p_g, dtype=np.int64),
        piece_ml=np.array(p_ml, dtype=np.int64),
        compat=compat,
        type_profile=type_profile,
        profiles=profiles,
        xy=_project(problem, provider),
        unassigned=unassigned,
        home_depot=np.array(home, dtype=np.int64),
    )


def _reason(
    problem: RoutingProblem,
    i: int,
    kind_ok: npt.NDArray[np.bool_],
    range_ok: npt.NDArray[np.bool_],
    time_ok: npt.NDArray[np.bool_],
    dur_ok: npt.NDArray[np.bool_],
    cap_ok: npt.NDArray[np.bool_],
) -> str:
    stop = problem.stops[i]
    if not kind_ok[:, i].any():
        if stop.allowed_types is not None:
            types = ", ".join(sorted(stop.allowed_types))
            return f"no available vehicle of an allowed type ({types})"
        allowed = sorted(k.value for k in stop.allowed_kinds or ())
        return f"no available vehicle of an allowed kind ({', '.join(allowed) or 'any'})"
    acc = kind_ok[:, i]
    if not (acc & cap_ok[:, i]).any():
        return "no allowed vehicle can carry this kind of load (zero capacity)"
    acc = acc & cap_ok[:, i]
    if not (acc & range_ok[:, i]).any():
        return "out of range: round trip exceeds max distance of every allowed vehicle"
    acc = acc & range_ok[:, i]
    if not (acc & dur_ok[:, i]).any():
        return "round trip exceeds the max route duration of every allowed vehicle"
    return "time window unreachable within shifts and depot opening hours of allowed vehicles"


def _sub_task(
    prep: _Prepared,
    pieces: list[int],
    budget: dict[int, int],
    initial: list[tuple[int, list[int]]] | None,
    iterations: int | None,
    time_limit: float | None,
    seed: int,
) -> tuple[SubTask, list[int]]:
    """Build a sub-problem over ``pieces`` with ``budget[type] = vehicles``; returns task, types."""
    problem = prep.problem
    types = sorted(t for t, k in budget.items() if k > 0)
    dep_ids = sorted(
        {problem.depot_index[problem.vehicle_types[t].start_depot] for t in types}
        | {problem.depot_index[problem.vehicle_types[t].end] for t in types}
    )
    dep_local = {d: j for j, d in enumerate(dep_ids)}
    prof_ids = sorted({prep.type_profile[t] for t in types})
    prof_local = {p: j for j, p in enumerate(prof_ids)}
    stops = prep.piece_stop[pieces]
    sub_profiles = []
    for p in prof_ids:
        ts = [t for t in types if prep.type_profile[t] == p]
        allowed = np.asarray(prep.compat[ts][:, stops].any(axis=0), dtype=np.bool_)
        sub_profiles.append(SubProfile(prep.profiles[p][0], prep.profiles[p][1], allowed))
    svts = []
    for t in types:
        vt = problem.vehicle_types[t]
        svts.append(
            SubVehicleType(
                type_index=t,
                num=budget[t],
                start=dep_local[problem.depot_index[vt.start_depot]],
                end=dep_local[problem.depot_index[vt.end]],
                capacity=(vt.capacity_g, vt.capacity_ml),
                tw_early=vt.shift_start,
                tw_late=vt.shift_end,
                max_duration=vt.max_duration_s,
                max_distance=vt.max_distance_m,
                fixed=vt.fixed_cost * 1000,
                unit_distance=vt.cost_per_km,
                unit_duration=vt.unit_duration_cost,
                profile=prof_local[prep.type_profile[t]],
            )
        )
    local = {p: j for j, p in enumerate(pieces)}
    type_local = {t: j for j, t in enumerate(types)}
    init = None
    if initial:
        init = tuple(
            (type_local[t], tuple(local[p] for p in ps)) for t, ps in initial if t in type_local
        )
    n_dep = len(problem.depots)
    task = SubTask(
        provider=prep.provider,
        depot_locs=np.array(dep_ids, dtype=np.int64),
        depot_tw=np.array(
            [[problem.depots[d].open_s, problem.depots[d].close_s] for d in dep_ids],
            dtype=np.int64,
        ).reshape(-1, 2),
        client_locs=(stops + n_dep).astype(np.int64),
        delivery=_loads(prep, np.asarray(pieces, dtype=np.int64)).astype(np.int64),
        service=np.array([problem.stops[s].service_s for s in stops], dtype=np.int64),
        tw=np.array(
            [[problem.stops[s].tw_start, problem.stops[s].tw_end] for s in stops], dtype=np.int64
        ).reshape(-1, 2),
        vehicle_types=tuple(svts),
        profiles=tuple(sub_profiles),
        initial=init,
        iterations=iterations,
        time_limit=time_limit,
        seed=seed % (MAX_SEED + 1),  # sub-problem seeds derived from a large one wrap around
    )
    return task, types


def _run(executor: Executor, tasks: list[SubTask]) -> list[SubResult]:
    from relieflink.optim.routing._pyvrp import solve_task

    return executor.map(solve_task, tasks)


def _collect(
    prep: _Prepared, task: SubTask, pieces: list[int], res: SubResult
) -> tuple[list[_Route], list[int]]:
    routes = []
    for sr in res.routes:
        t = task.vehicle_types[sr.vehicle_type].type_index
        ps = [pieces[c] for c in sr.clients]
        routes.append(
            _finish(
                prep,
                _Route(
                    t,
                    ps,
                    list(sr.arrivals),
                    list(sr.service_starts),
                    sr.start,
                    sr.end,
                    sr.distance,
                    sr.duration,
                ),
            )
        )
    return routes, [pieces[c] for c in res.dropped]


def _finish(prep: _Prepared, r: _Route) -> _Route:
    vt = prep.problem.vehicle_types[r.vtype]
    r.cost = vt.fixed_cost * 1000 + vt.cost_per_km * r.distance + vt.unit_duration_cost * r.duration
    n_dep = len(prep.problem.depots)
    pts = prep.xy[n_dep + prep.piece_stop[r.pieces]]
    r.centroid = (float(pts[:, 0].mean()), float(pts[:, 1].mean()))
    return r


def _sweep_angles(prep: _Prepared, d: int) -> tuple[IntArray, FloatArray, FloatArray]:
    """Pieces of home depot ``d`` with their polar angle (0 at the widest angular gap, so
    the sweep never cuts a cluster in two) and radius around the depot."""
    idx = np.flatnonzero(prep.home_depot == d)
    n_dep = len(prep.problem.depots)
    rel = prep.xy[n_dep + prep.piece_stop[idx]] - prep.xy[d]
    ang = np.arctan2(rel[:, 1], rel[:, 0])
    if len(ang) > 1:
        srt = np.sort(ang)
        gaps = np.diff(np.concatenate([srt, [srt[0] + 2 * np.pi]]))
        cut = srt[(int(np.argmax(gaps)) + 1) % len(srt)]
        ang = np.mod(ang - cut, 2 * np.pi)
    return idx, ang, np.hypot(rel[:, 0], rel[:, 1])


def _split_initial(prep: _Prepared, part_size: int) -> list[list[int]]:
    """Split pieces by home depot, then by polar sweep around the depot into parts."""
    parts: list[list[int]] = []
    for d in sorted(set(prep.home_depot.tolist())):
        idx, ang, _ = _sweep_angles(prep, d)
        if len(idx) == 0:
            continue
        order = idx[np.lexsort((idx, ang))]
        k = max(1, math.ceil(len(order) / part_size))
        for chunk in np.array_split(order, k):
            parts.append([int(x) for x in chunk])
    return parts


def _packed_parts(
    prep: _Prepared,
    params: RoutingParams,
    stats: dict[str, float | int | str],
    savings: list[_Route] | None = None,
) -> tuple[list[list[int]], list[list[tuple[int, list[int]]]], list[dict[int, int]]] | None:
    """Parts made of whole routes packed to capacity, for long routes on plain CVRP.

    Three first cuts per depot: every route a thin sweep sector; ``k`` sweep sectors (one a
    part) cut into bands by distance; the ``savings`` routes, grouped into parts by the
    angle of their centroids. The one with the fewest routes is kept, then the cheapest
    (with routes this long, a route fewer is worth more than any first ordering: on
    Leuven1-west-L115 the savings plan, 28 routes, ends 2 % above the 27 thin sectors;
    on Flanders1-west-L115, all at 175 routes, it ends lowest).

    Returns the parts, the routes that seed each part's solve and each part's vehicles (its
    routes plus a share of the depot's spare vehicles); ``None`` where it does not apply: a
    depot's problem is more than plain CVRP, or its capacity holds fewer than
    ``params.long_route_clients`` mean demands, or the packed routes outnumber its fleet.
    """
    plain = _plain_types(prep)
    if plain is None:
        return None
    parts: list[list[int]] = []
    seeds: list[list[tuple[int, list[int]]]] = []
    budgets: list[dict[int, int]] = []
    cuts: list[str] = []
    for d, t in plain.items():
        vt = prep.problem.vehicle_types[t]
        idx, ang, rad = _sweep_angles(prep, d)
        loads = _loads(prep, idx)
        cap = np.array([vt.capacity_g, vt.capacity_ml], dtype=np.float64)
        used = loads.sum(axis=0) > 0
        if _capacity_in_means(vt, loads) < params.long_route_clients:
            return None
        bound = int(np.max(np.ceil(loads.sum(axis=0)[used] / cap[used])))
        if bound > vt.count:
            return None
        k = min(bound, max(1, math.ceil(len(idx) / params.part_size)))
        # Candidates as lists of parts, each a list of routes (global piece indices).
        cands: list[tuple[tuple[int, int], str, list[list[list[int]]]]] = []
        for n_sec in (0, k):
            secs = packed_sweep_routes(ang, rad, loads, (vt.capacity_g, vt.capacity_ml), n_sec)
            routes = [[int(idx[c]) for c in r] for sec in secs for r in sec]
            cost = sum(_schedule(prep, t, r).cost for r in routes)
            if n_sec == 0:  # one route a sector: parts of consecutive routes
                grouped = [
                    [routes[i] for i in g.tolist()]
                    for g in np.array_split(np.arange(len(routes)), k)
                ]
            else:
                it = iter(routes)
                grouped = [[next(it) for _ in sec] for sec in secs]
            cands.append(((len(routes), cost), "sectors" if n_sec == 0 else "bands", grouped))
        own = [r for r in savings or [] if r.vtype == t]
        if own:
            origin = np.array(prep.xy[d])
            ra = np.array(
                [math.atan2(r.centroid[1] - origin[1], r.centroid[0] - origin[0]) for r in own]
            )
            srt = np.sort(ra)
            if len(srt) > 1:  # the sweep starts at the widest angular gap, as above
                gaps = np.diff(np.concatenate([srt, [srt[0] + 2 * np.pi]]))
                ra = np.mod(ra - srt[(int(np.argmax(gaps)) + 1) % len(srt)], 2 * np.pi)
            order = np.lexsort((np.arange(len(own)), ra))
            grouped = [[own[i].pieces for i in g.tolist()] for g in np.array_split(order, k)]
            cands.append(((len(own), sum(r.cost for r in own)), "savings", grouped))
        _, cut, best = min(cands, key=lambda c: c[0])
        cuts.append(cut)
        n_routes = sum(len(g) for g in best)
        if n_routes > vt.count:
            return None
        spare = _allocate({t: vt.count - n_routes}, [float(len(g)) for g in best])
        for rs, extra in zip(best, spare, strict=True):
            if not rs:
                continue
            parts.append([p for r in rs for p in r])
            seeds.append([(t, list(r)) for r in rs])
            budgets.append({t: len(rs) + extra.get(t, 0)})
    stats["packed_cut"] = ", ".join(sorted(set(cuts)))
    return parts, seeds, budgets


def _loads(prep: _Prepared, idx: IntArray) -> IntArray:
    """The pieces' demands as rows of (grams, millilitres)."""
    return np.column_stack([prep.piece_g[idx], prep.piece_ml[idx]])


def _capacity_in_means(vt: VehicleType, loads: FloatArray | IntArray) -> float:
    """How many mean demands (rows of ``loads``: grams, millilitres) one vehicle holds, by
    its tighter dimension; 0 where nothing is loaded."""
    cap = np.array([vt.capacity_g, vt.capacity_ml], dtype=np.float64)
    used = loads.sum(axis=0) > 0
    if not used.any():
        return 0.0
    return float(np.min(cap[used] / loads.mean(axis=0)[used]))


def _long_direct(prep: _Prepared, workers: int, params: RoutingParams) -> bool:
    """Whether a problem above ``direct_limit`` still goes to PyVRP whole: plain CVRP with
    long routes (see ``RoutingParams.direct_memory_mb``), where one whole-instance solve
    per worker fits the memory budget."""
    n_loc = len(prep.problem.depots) + len(prep.piece_stop)
    if workers * whole_instance_bytes(n_loc, len(prep.profiles)) > params.direct_memory_mb * 2**20:
        return False
    plain = _plain_types(prep)
    if plain is None:
        return False
    vts = prep.problem.vehicle_types
    return all(
        _capacity_in_means(vts[t], _loads(prep, np.flatnonzero(prep.home_depot == d)))
        >= params.long_route_clients
        for d, t in plain.items()
    )


def _allocate(counts: dict[int, int], weights: list[float]) -> list[dict[int, int]]:
    """Split each type's count over parts in proportion to weights (largest remainder)."""
    out: list[dict[int, int]] = [{} for _ in weights]
    total = sum(weights) or 1.0
    for t, c in counts.items():
        raw = [c * w / total for w in weights]
        base = [math.floor(x) for x in raw]
        left = c - sum(base)
        order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - base[i]), i))
        for i in order[:left]:
            base[i] += 1
        for i, b in enumerate(base):
            if b > 0:
                out[i][t] = b
    return out


def _initial_budgets(prep: _Prepared, parts: list[list[int]]) -> list[dict[int, int]]:
    problem = prep.problem
    budgets: list[dict[int, int]] = [{} for _ in parts]
    by_depot: dict[int, list[int]] = defaultdict(list)
    for j, part in enumerate(parts):
        by_depot[int(prep.home_depot[part[0]])].append(j)
    for d, js in by_depot.items():
        counts = {
            t: vt.count
            for t, vt in enumerate(problem.vehicle_types)
            if problem.depot_index[vt.start_depot] == d and vt.count > 0
        }
        weights = [float(len(parts[j])) for j in js]
        for j, b in zip(js, _allocate(counts, weights), strict=True):
            budgets[j] = b
    return budgets


def _piece_neighbours(prep: _Prepared, k: int) -> IntArray:
    n_dep = len(prep.problem.depots)
    return nearest_neighbours(prep.xy[n_dep + prep.piece_stop], k)


def _pair_distances(provider: MatrixProvider, origins: IntArray, targets: IntArray) -> IntArray:
    """``out[i, j]`` = distance from location ``origins[i]`` to ``targets[i, j]``."""
    out = np.zeros(targets.shape, dtype=np.int64)
    step = 256
    for lo in range(0, len(origins), step):
        tg = targets[lo : lo + step]
        uniq, inv = np.unique(tg, return_inverse=True)
        block = provider.distances(origins[lo : lo + step], uniq).astype(np.int64)
        out[lo : lo + step] = np.take_along_axis(block, inv.reshape(tg.shape), axis=1)
    return out


def _schedule(prep: _Prepared, vtype: int, pieces: list[int]) -> _Route:
    """A route's figures as the checker recomputes them: leave at the earliest start."""
    problem = prep.problem
    vt = problem.vehicle_types[vtype]
    n_dep = len(problem.depots)
    sd, ed = problem.depot_index[vt.start_depot], problem.depot_index[vt.end]
    stops = prep.piece_stop[pieces]
    seq = np.concatenate([[sd], n_dep + stops, [ed]]).astype(np.int64)
    o, d = seq[:-1], seq[1:]
    dist = np.diagonal(prep.provider.distances(o, d)).astype(np.int64)
    dur_block = prep.provider.durations(o, d, vt.kind.value)
    legs = (
        travel_seconds(dist, vt.speed)
        if dur_block is None
        else np.diagonal(dur_block).astype(np.int64)
    )
    start = max(vt.shift_start, problem.depots[sd].open_s)
    t = start
    arrivals: list[int] = []
    starts: list[int] = []
    for leg, st in enumerate(stops.tolist()):
        t += int(legs[leg])
        arrivals.append(t)
        t = max(t, problem.stops[st].tw_start)
        starts.append(t)
        t += problem.stops[st].service_s
    t += int(legs[-1])
    return _finish(
        prep, _Route(vtype, list(pieces), arrivals, starts, start, t, int(dist.sum()), t - start)
    )


def _plain_types(prep: _Prepared) -> dict[int, int] | None:
    """The one vehicle type of each home depot, where every depot's problem is plain CVRP.

    ``None`` where a depot has several fleets, or its fleet has time windows, a shift,
    range or duration limit, site rules or duration costs to break: the constructions that
    only respect capacity (savings, the packed sweep) do not apply there.
    """
    problem = prep.problem
    out: dict[int, int] = {}
    for d in sorted(set(prep.home_depot.tolist())):
        types = [
            t
            for t, vt in enumerate(problem.vehicle_types)
            if vt.count > 0 and problem.depot_index[vt.start_depot] == d
        ]
        if len(types) != 1:
            return None
        t = types[0]
        vt = problem.vehicle_types[t]
        if vt.max_duration_s is not None or vt.max_distance_m is not None:
            return None
        if vt.unit_duration_cost != 0:
            return None
        ed = problem.depot_index[vt.end]
        t0 = max(vt.shift_start, problem.depots[d].open_s)
        latest = min(vt.shift_end, problem.depots[ed].close_s)
        stops = prep.piece_stop[prep.home_depot == d]
        if not prep.compat[t, stops].all():
            return None
        if any(
            problem.stops[s].tw_start > t0 or problem.stops[s].tw_end < latest
            for s in set(stops.tolist())
        ):
            return None
        out[d] = t
    return out


def _savings_start(prep: _Prepared, nbrs: IntArray) -> list[_Route] | None:
    """Granular savings per home depot; ``None`` where the problem is more than plain CVRP.

    Savings respect capacity only, so they are used when each depot has one fleet with no
    time windows, shift, range or duration limits, site rules or duration costs to break.
    """
    problem = prep.problem
    n_dep = len(problem.depots)
    plain = _plain_types(prep)
    if plain is None:
        return None
    routes: list[_Route] = []
    for d, t in plain.items():
        vt = problem.vehicle_types[t]
        ed = problem.depot_index[vt.end]
        latest = min(vt.shift_end, problem.depots[ed].close_s)
        idx = np.flatnonzero(prep.home_depot == d)
        stops = prep.piece_stop[idx]
        # Neighbours of pieces at this depot, as local indices (others are left out).
        local = np.full(len(prep.piece_stop), -1, dtype=np.int64)
        local[idx] = np.arange(len(idx))
        nb = local[nbrs[idx]]
        nb = np.where(nb >= 0, nb, np.arange(len(idx))[:, None])  # self-pairs are ignored
        locs = n_dep + stops
        nb_dist = _pair_distances(prep.provider, locs, locs[nb])
        d_out = prep.provider.distances(np.array([d]), locs).astype(np.int64)[0]
        d_in = prep.provider.distances(locs, np.array([ed])).astype(np.int64)[:, 0]
        loads = _loads(prep, idx)
        seqs = savings_routes(d_out, d_in, nb, nb_dist, loads, (vt.capacity_g, vt.capacity_ml))
        if len(seqs) > vt.count:
            return None
        for seq in seqs:
            r = _schedule(prep, t, [int(idx[c]) for c in seq])
            if r.end > latest:
                return None
            routes.append(r)
    return routes


def solve_routing(
    problem: RoutingProblem,
    *,
    time_limit: float | None = None,
    iterations: int | None = None,
    seed: int = 0,
    executor: Executor | None = None,
    provider: MatrixProvider | None = None,
    params: RoutingParams | None = None,
    progress: ProgressFn | None = None,
) -> RoutingResult:
    """Plan routes for ``problem``.

    Parameters
    ----------
    problem
        Depots, stops and fleet.
    time_limit
        Wall-clock budget in seconds (time mode; plans are not reproducible).
    iterations
        PyVRP iterations per sub-problem solve (iteration mode; reproducible, see module doc).
        Exactly one of ``time_limit`` and ``iterations`` must be given.
    seed
        Random seed.
    executor
        Where sub-problems run; default: a local process pool over all cores.
    provider
        Distance/duration source; default: haversine × 1.3 with per-kind speeds.
    params
        Engine tuning; see :class:`RoutingParams`.
    progress
        Optional callback receiving :class:`ProgressEvent` updates.

    Returns
    -------
    RoutingResult
        Routes, unassigned demand with reasons, and the checker's verdict.

    Raises
    ------
    ValueError
        If neither or both of ``time_limit`` and ``iterations`` are given, or they are not
        positive, or ``seed`` is outside ``0..MAX_SEED``.
    """
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be between 0 and {MAX_SEED}, got {seed}")
    if (time_limit is None) == (iterations is None):
        raise ValueError("give exactly one of time_limit (seconds) or iterations")
    if time_limit is not None and time_limit <= 0:
        raise ValueError(f"time_limit must be > 0, got {time_limit}")
    if iterations is not None and iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    t_start = time.perf_counter()
    cpu_start = time.process_time()
    params = params or RoutingParams()
    prov = provider if provider is not None else default_provider(problem)
    own_executor = executor is None
    exe: Executor = executor if executor is not None else LocalProcessExecutor()
    stats: dict[str, float | int | str] = {}

    def elapsed() -> float:
        return time.perf_counter() - t_start

    def report(phase: str, cost: float | None, done: int, total: int) -> None:
        if progress is not None:
            progress(ProgressEvent(phase, elapsed(), time_limit, cost, done, total))

    try:
        prep = _prepare(problem, prov)
        n_pieces = len(prep.piece_stop)
        stats["pieces"] = n_pieces
        stats["workers"] = exe.workers
        report("prepared", None, 0, 1)
        if n_pieces == 0:
            routes: list[_Route] = []
            dropped: list[int] = []
        elif n_pieces <= params.direct_limit or _long_direct(prep, exe.workers, params):
            routes, dropped = _solve_direct(prep, exe, time_limit, iterations, seed, elapsed)
            stats["mode"] = "direct"
        else:
            lane = _start_whole(prep, exe, time_limit, iterations, seed, params, elapsed)
            lanes = max(1, exe.workers - (lane is not None))
            routes, dropped = _solve_decomposed(
                prep,
                exe,
                lanes,
                time_limit,
                iterations,
                seed,
                params,
                elapsed,
                report,
                stats,
                cpu_start,
                lane,
            )
            stats["mode"] = "decomposed"
            if lane is not None:
                routes, dropped = _pick_portfolio(lane, routes, dropped, stats)
                stats["mode"] = "portfolio"
    finally:
        if own_executor:
            exe.close()
    result = _result(prep, routes, dropped, elapsed(), stats)
    violations = check_solution(problem, result, prov)
    if violations:
        logger.error("checker found %d violations, first: %s", len(violations), violations[0])
    out = RoutingResult(
        result.problem_name,
        result.routes,
        result.unassigned,
        elapsed(),
        tuple(violations),
        stats,
    )
    report("done", out.cost(), 1, 1)
    logger.info("%s", out.summary())
    return out


def _solve_direct(
    prep: _Prepared,
    exe: Executor,
    time_limit: float | None,
    iterations: int | None,
    seed: int,
    elapsed: Callable[[], float],
) -> tuple[list[_Route], list[int]]:
    pieces = list(range(len(prep.piece_stop)))
    budget = {t: vt.count for t, vt in enumerate(prep.problem.vehicle_types) if vt.count > 0}
    tl = None if time_limit is None else max(0.5, time_limit - elapsed() - 1.0)
    tasks = [
        _sub_task(prep, pieces, budget, None, iterations, tl, seed + k)[0]
        for k in range(max(1, exe.workers))
    ]
    results = _run(exe, tasks)
    best: tuple[list[_Route], list[int]] | None = None
    best_key: tuple[int, int] | None = None
    for task, res in zip(tasks, results, strict=True):
        routes, dropped = _collect(prep, task, pieces, res)
        key = (len(dropped), sum(r.cost for r in routes))
        if best_key is None or key < best_key:
            best, best_key = (routes, dropped), key
    assert best is not None
    return best


def whole_instance_bytes(n_locations: int, n_profiles: int) -> int:
    """Estimated peak bytes of one PyVRP solve over a whole instance.

    Parameters
    ----------
    n_locations
        Depots plus demand pieces.
    n_profiles
        Travel profiles (each has its own duration matrix, and a distance matrix of its own
        where site rules block clients).

    Returns
    -------
    int
        ``8 n^2 (2 + 2 p)`` bytes: the int64 distance matrix and one duration matrix per
        profile, each held once by NumPy and once more inside PyVRP's ``ProblemData``.
    """
    return 8 * n_locations * n_locations * (2 + 2 * n_profiles)


@dataclass(slots=True)
class _WholeLane:
    """The portfolio's lane: PyVRP over the whole problem on one worker, in one or two runs."""

    prep: _Prepared
    exe: AsyncExecutor
    seed: int
    end: float | None  # time.monotonic() by which the last run ends (time mode)
    iterations: int | None  # iterations of all runs together (iteration mode)
    exchange_at: float | None  # time.monotonic() of the exchange (time mode, exchange on)
    exchange_round: int | None  # round after which to exchange (None: no exchange)
    task: SubTask | None = None
    handle: Handle[SubResult] | None = None
    exchanged: bool = False

    def run(self, initial: list[tuple[int, list[int]]] | None, until: float | None) -> None:
        """Start one run from ``initial`` (``None``: PyVRP's own start) ending at ``until``."""
        from relieflink.optim.routing._pyvrp import solve_task

        prep = self.prep
        pieces = list(range(len(prep.piece_stop)))
        budget = {t: vt.count for t, vt in enumerate(prep.problem.vehicle_types) if vt.count > 0}
        its = None
        if self.iterations is not None:
            half = self.iterations // 2
            its = self.iterations if self.exchange_round is None else half
            if self.exchanged:
                its = self.iterations - half
        tl = None if until is None else max(0.5, until - time.monotonic())
        task = _sub_task(prep, pieces, budget, initial, its, tl, self.seed)[0]
        if tl is not None:  # the worker's set-up counts against the budget
            task = dataclasses.replace(task, run_for_s=tl)
        self.task, self.handle = task, self.exe.submit(solve_task, task)

    def take(self) -> tuple[list[_Route], list[int], float]:
        """Wait for the current run: its routes, dropped pieces and runtime."""
        assert self.task is not None and self.handle is not None
        res = self.handle.result()
        routes, dropped = _collect(
            self.prep, self.task, list(range(len(self.prep.piece_stop))), res
        )
        return routes, dropped, res.runtime_s

    def due(self, rnd: int) -> bool:
        """Whether the exchange is due after round ``rnd`` (counted from 1)."""
        if self.exchanged or self.exchange_round is None:
            return False
        if self.exchange_at is not None:
            return time.monotonic() >= self.exchange_at
        return rnd >= self.exchange_round

    def exchange(
        self, routes: list[_Route], dropped: list[int], stats: dict[str, float | int | str]
    ) -> tuple[list[_Route], list[int]]:
        """Keep the cheaper plan of the two sides and restart the lane from it."""
        waited = time.perf_counter()
        w_routes, w_dropped, _ = self.take()
        stats["exchange_wait_s"] = round(time.perf_counter() - waited, 2)
        if (len(w_dropped), sum(r.cost for r in w_routes)) < (
            len(dropped),
            sum(r.cost for r in routes),
        ):
            routes, dropped = w_routes, w_dropped
            stats["exchange"] = "whole"
        else:
            stats["exchange"] = "decomposed"
        self.exchanged = True
        self.run([(r.vtype, r.pieces) for r in routes], self.end)
        return routes, dropped


def _start_whole(
    prep: _Prepared,
    exe: Executor,
    time_limit: float | None,
    iterations: int | None,
    seed: int,
    params: RoutingParams,
    elapsed: Callable[[], float],
) -> _WholeLane | None:
    """The portfolio's whole-problem lane, where the portfolio applies (started later).

    It gets one worker for the whole budget (in iteration mode: ``iterations`` per round
    times ``rounds``) and the seed that the direct mode's first solve uses.
    """
    if exe.workers < 2 or not isinstance(exe, AsyncExecutor):
        return None
    n_loc = len(prep.problem.depots) + len(prep.piece_stop)
    if whole_instance_bytes(n_loc, len(prep.profiles)) > params.portfolio_memory_mb * 2**20:
        return None
    now = time.monotonic()
    end = None if time_limit is None else now + max(0.5, time_limit - elapsed() - 1.0)
    ex = params.portfolio_exchange
    return _WholeLane(
        prep,
        exe,
        seed,
        end,
        None if iterations is None else iterations * max(1, params.rounds),
        None if end is None or not ex else now + (end - now) / 2,
        max(1, params.rounds // 2) if ex else None,
    )


def _pick_portfolio(
    lane: _WholeLane,
    routes: list[_Route],
    dropped: list[int],
    stats: dict[str, float | int | str],
) -> tuple[list[_Route], list[int]]:
    """The cheaper of the decomposition's plan and the whole-problem PyVRP plan (fewest
    dropped pieces first); ties keep the decomposition's."""
    waited = time.perf_counter()
    w_routes, w_dropped, runtime = lane.take()
    # Where the wall clock goes: how long the lane's last run took, and the wait for it.
    stats["portfolio_whole_s"] = round(runtime, 2)
    stats["portfolio_wait_s"] = round(time.perf_counter() - waited, 2)
    w_key = (len(w_dropped), sum(r.cost for r in w_routes))
    d_key = (len(dropped), sum(r.cost for r in routes))
    stats["portfolio_whole_cost"] = w_key[1] / 1000
    stats["portfolio_decomposed_cost"] = d_key[1] / 1000
    stats["portfolio_whole_dropped"] = w_key[0]
    stats["portfolio_decomposed_dropped"] = d_key[0]
    if w_key < d_key:
        stats["result_from"] = "whole"
        return w_routes, w_dropped
    return routes, dropped


def _solve_decomposed(
    prep: _Prepared,
    exe: Executor,
    lanes: int,
    time_limit: float | None,
    iterations: int | None,
    seed: int,
    params: RoutingParams,
    elapsed: Callable[[], float],
    report: Callable[[str, float | None, int, int], None],
    stats: dict[str, float | int | str],
    cpu_start: float,
    lane: _WholeLane | None = None,
) -> tuple[list[_Route], list[int]]:
    """Savings start, sweep pass, then rounds over ``lanes`` parts at a time (exchanging
    plans once with the portfolio's whole-problem ``lane``, if any)."""
    workers = lanes
    # One k-d tree query serves both: rows are sorted nearest first.
    wide = _piece_neighbours(prep, max(params.neighbours, params.savings_neighbours))
    nbrs = np.ascontiguousarray(wide[:, : params.neighbours])
    start = None
    if params.construction == "auto":
        start = _savings_start(prep, np.ascontiguousarray(wide[:, : params.savings_neighbours]))
    if start is not None:
        # A complete plan within seconds, whatever the time limit; then the sweep pass.
        stats["first_feasible_s"] = round(elapsed(), 2)
        # CPU seconds of this process so far: on a shared machine the wall clock says little.
        stats["first_feasible_cpu_s"] = round(time.process_time() - cpu_start, 2)
        stats["savings_cost"] = sum(r.cost for r in start) / 1000
        report("improve", float(stats["savings_cost"]), 0, 0)
    # The rounds improve a plan of solved sectors far more than a savings plan, even one that
    # starts cheaper: on Ghent1-west-L115 (90 s, same CPU) savings 301,534 -> 298,048 after
    # the rounds, sweep 311,249 -> 290,268. Savings routes chain far clients radially, and
    # re-optimising four of them at a time does not undo that. So the sweep plan always seeds
    # the rounds; the savings plan is the answer until then, and at the end if still cheaper
    # (short budgets at 20,000 clients). With long routes (``long_route_clients``) the sweep
    # pass starts from whole routes, the savings routes among the candidates (see
    # ``_packed_parts``): there the route count decides, and it is not the rounds' job.
    if lane is not None:
        # The savings plan (where there is one) spares PyVRP its own start, a local search
        # from a random plan that no time limit bounds: 1.9 CPU s at 3,000 clients, 50 s of
        # wall clock under load 20, and of the same quality (84,985 vs 85,047).
        lane.run(
            None if start is None else [(r.vtype, r.pieces) for r in start],
            lane.exchange_at or lane.end,
        )
    routes, dropped = _sweep_start(
        prep, exe, workers, time_limit, iterations, seed, params, report, stats, start
    )
    cost = sum(r.cost for r in routes) / 1000
    stats.setdefault("first_feasible_s", round(elapsed(), 2))
    stats["initial_cost"] = cost
    stats["sweep_end_s"] = round(elapsed(), 2)  # where the wall clock goes: the sweep pass
    report("improve", cost, 0, params.rounds if iterations is not None else 0)

    # Parts hold whole routes: at least ``group_routes`` of them, so long routes make big parts.
    mean_len = len(prep.piece_stop) / max(1, len(routes))
    size = max(params.part_size, round(params.group_routes * mean_len))
    stats["part_size"] = size
    if time_limit is not None:
        if mean_len < params.long_route_clients:
            n_parts = max(1.0, len(prep.piece_stop) / size)
            share = (time_limit - elapsed()) * workers / (n_parts * params.covers)
            slice_s = min(30.0, max(0.5, share))
        else:
            # Long routes: PyVRP makes only ~100-165 iterations a second on them, and 4 s
            # slices gained less than 25 s ones on Leuven1-west-L115 (two seeds at 300 s).
            slice_s = min(30.0, max(2.0, time_limit / 12))
        base_time = params.sub_time or slice_s
        stats["base_slice_s"] = round(base_time, 2)
    rnd = 0
    while True:
        if iterations is not None and rnd >= params.rounds:
            break
        rng = np.random.default_rng([seed, rnd])
        groups = _pick_groups(prep, routes, nbrs, workers, size, rng)
        if not groups:
            break
        if time_limit is not None:
            remaining = time_limit - elapsed() - 1.0
            if remaining < 1.0:
                break
            base = min(base_time, remaining - 0.5)
            if lane is not None and lane.exchange_at is not None and not lane.exchanged:
                # Rounds end near the exchange, so the lane does not wait long for them.
                remaining = min(remaining, max(1.5, lane.exchange_at - time.monotonic()))
            # Parts of one round run side by side and the round waits for the slowest, so
            # they share one slice: the base grown by the parts' mean recent improvement
            # (unequal slices would leave a worker idle).
            grow = float(np.mean([_growth(routes, g, params.max_slice_growth) for g in groups]))
            slices: list[float | None] = [min(base * grow, remaining - 0.5)] * len(groups)
        else:
            slices = [None] * len(groups)
        routes, dropped = _improve_round(
            prep,
            exe,
            routes,
            dropped,
            groups,
            iterations,
            slices,
            seed,
            rnd,
        )
        rnd += 1
        if lane is not None and lane.due(rnd):
            routes, dropped = lane.exchange(routes, dropped, stats)
        cost = sum(r.cost for r in routes) / 1000
        report("improve", cost, rnd, params.rounds if iterations is not None else 0)
        logger.debug("round %d: cost %.1f, %d dropped", rnd, cost, len(dropped))
    stats["rounds"] = rnd
    stats["search_end_s"] = round(elapsed(), 2)
    stats["result_from"] = "search"
    if start is not None and (0, sum(r.cost for r in start)) < (
        len(dropped),
        sum(r.cost for r in routes),
    ):
        stats["result_from"] = "savings"
        return start, []
    return routes, dropped


def _growth(routes: list[_Route], grp: list[int], cap: float) -> float:
    """Time-slice factor of a part: grows with the last improvement found on its routes.

    A gain of 0.5 % or more gets ``cap`` times the base slice; no gain gets the base slice.
    """
    gain = max(routes[ri].gain for ri in grp)
    return float(min(cap, 1.0 + (cap - 1.0) * gain / 0.005))


def _sweep_start(
    prep: _Prepared,
    exe: Executor,
    lanes: int,
    time_limit: float | None,
    iterations: int | None,
    seed: int,
    params: RoutingParams,
    report: Callable[[str, float | None, int, int], None],
    stats: dict[str, float | int | str],
    savings: list[_Route] | None = None,
) -> tuple[list[_Route], list[int]]:
    """First plan: polar-sweep parts, each solved from scratch (or, for long routes on plain
    CVRP, from routes packed to capacity in sweep order, see :func:`_packed_parts`)."""
    workers = lanes
    packed = _packed_parts(prep, params, stats, savings)
    seeds: list[list[tuple[int, list[int]]] | None]
    if packed is not None:
        parts, packed_seeds, budgets = packed
        seeds = list(packed_seeds)
        stats["construction"] = "packed sweep"
    else:
        parts = _split_initial(prep, params.part_size)
        budgets = _initial_budgets(prep, parts)
        seeds = [None] * len(parts)
        stats["construction"] = "sweep"
    stats["parts"] = len(parts)
    init_time = None
    if time_limit is not None:
        waves = math.ceil(len(parts) / workers)
        init_time = max(0.5, params.init_share * time_limit / waves - 0.3)
    tasks = [
        _sub_task(prep, part, b, init, iterations, init_time, seed * 1_000_003 + j)[0]
        for j, (part, b, init) in enumerate(zip(parts, budgets, seeds, strict=True))
    ]
    report("initial", None, 0, len(tasks))
    routes: list[_Route] = []
    dropped: list[int] = []
    for task, part, res in zip(tasks, parts, _run(exe, tasks), strict=True):
        rs, dr = _collect(prep, task, part, res)
        routes.extend(rs)
        dropped.extend(dr)
    return routes, dropped


def _improve_round(
    prep: _Prepared,
    exe: Executor,
    routes: list[_Route],
    dropped: list[int],
    groups: list[list[int]],
    iterations: int | None,
    slices: list[float | None],
    seed: int,
    rnd: int,
) -> tuple[list[_Route], list[int]]:
    """Re-optimise each group of routes from the current plan; keep what improves."""
    problem = prep.problem
    counts_used: dict[int, int] = defaultdict(int)
    for r in routes:
        counts_used[r.vtype] += 1
    # Dropped pieces go with the group holding the route nearest to them.
    drop_group: dict[int, list[int]] = defaultdict(list)
    if dropped:
        member = {ri: g for g, grp in enumerate(groups) for ri in grp}
        cents = np.array([r.centroid for r in routes])
        n_dep = len(problem.depots)
        for p in dropped:
            pt = prep.xy[n_dep + prep.piece_stop[p]]
            near = int(np.argmin(((cents - pt) ** 2).sum(axis=1)))
            if near in member:
                drop_group[member[near]].append(p)
    tasks = []
    meta = []
    for g, grp in enumerate(groups):
        budget: dict[int, int] = defaultdict(int)
        for ri in grp:
            budget[routes[ri].vtype] += 1
        depots = {
            problem.depot_index[problem.vehicle_types[routes[ri].vtype].start_depot] for ri in grp
        }
        # Spare vehicles of the group's depots are shared out, so a part may open a route.
        for t, vt in enumerate(problem.vehicle_types):
            spare = vt.count - counts_used[t]
            if spare > 0 and problem.depot_index[vt.start_depot] in depots:
                budget[t] += spare // len(groups) + (1 if g < spare % len(groups) else 0)
        pieces = [p for ri in grp for p in routes[ri].pieces] + drop_group.get(g, [])
        # The current plan seeds every sub-problem: a part can only get better.
        initial = [(routes[ri].vtype, routes[ri].pieces) for ri in grp]
        task, _ = _sub_task(
            prep,
            pieces,
            dict(budget),
            initial,
            iterations,
            slices[g],
            seed * 1_000_003 + 7919 * (rnd + 1) + g,
        )
        tasks.append(task)
        meta.append((grp, pieces, len(drop_group.get(g, []))))
    results = _run(exe, tasks)
    remove: set[int] = set()
    new_routes: list[_Route] = []
    newly_served: set[int] = set()
    for task, (grp, pieces, n_drop_in), res in zip(tasks, meta, results, strict=True):
        rs, dr = _collect(prep, task, pieces, res)
        old_cost = sum(routes[ri].cost for ri in grp)
        new_cost = sum(r.cost for r in rs)
        if (len(dr), new_cost) < (n_drop_in, old_cost):
            gain = (old_cost - new_cost) / old_cost if old_cost > 0 else 0.0
            for r in rs:
                r.gain = max(0.0, gain)
                r.solved = rnd
            remove.update(grp)
            new_routes.extend(rs)
            newly_served.update(p for r in rs for p in r.pieces)
        else:
            for ri in grp:  # no gain here: the next slice on these routes shrinks back
                routes[ri].gain = 0.0
                routes[ri].solved = rnd
    if remove:
        routes = [r for i, r in enumerate(routes) if i not in remove] + new_routes
        dropped = [p for p in dropped if p not in newly_served]
    return routes, dropped


def _pick_groups(
    prep: _Prepared,
    routes: list[_Route],
    nbrs: IntArray,
    width: int,
    size: int,
    rng: np.random.Generator,
) -> list[list[int]]:
    """Up to ``width`` disjoint groups of routes whose clients are near each other."""
    route_of = np.full(len(prep.piece_stop), -1, dtype=np.int64)
    for ri, r in enumerate(routes):
        route_of[r.pieces] = ri
    cents = np.array([r.centroid for r in routes], dtype=np.float64).reshape(-1, 2)
    sizes = [len(r.pieces) for r in routes]
    solved = [r.solved for r in routes]
    return pick_route_groups(route_of, sizes, nbrs, cents, width, size, rng, solved)


def _result(
    prep: _Prepared,
    routes: list[_Route],
    dropped: list[int],
    runtime: float,
    stats: dict[str, float | int | str],
) -> RoutingResult:
    problem = prep.problem
    order = sorted(routes, key=lambda r: (r.vtype, r.start, r.pieces))
    seen: dict[int, int] = defaultdict(int)
    planned = []
    for r in order:
        vt = problem.vehicle_types[r.vtype]
        visits = tuple(
            Visit(
                int(prep.piece_stop[p]),
                problem.stops[int(prep.piece_stop[p])].id,
                int(prep.piece_g[p]),
                int(prep.piece_ml[p]),
                a,
                s,
            )
            for p, a, s in zip(r.pieces, r.arrivals, r.starts, strict=True)
        )
        planned.append(
            PlannedRoute(
                vt.id, seen[r.vtype], visits, r.start, r.end, r.distance, r.duration, r.cost
            )
        )
        seen[r.vtype] += 1
    unassigned = list(prep.unassigned)
    for p in sorted(dropped):
        s = int(prep.piece_stop[p])
        unassigned.append(
            Unassigned(
                s,
                problem.stops[s].id,
                int(prep.piece_g[p]),
                int(prep.piece_ml[p]),
                "no feasible route found: fleet size, shifts or the time limit ran out",
            )
        )
    unassigned.sort(key=lambda u: (u.stop, u.weight_g))
    return RoutingResult(problem.name, tuple(planned), tuple(unassigned), runtime, (), stats)
