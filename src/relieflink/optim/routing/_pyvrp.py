"""The only module that imports PyVRP: builds a PyVRP instance for a sub-problem and solves it."""

from __future__ import annotations

import logging
import math
import time
import warnings
from typing import Any

import numpy as np
import pyvrp
from pyvrp.constants import MAX_VALUE
from pyvrp.stop import MaxIterations, MaxRuntime, MultipleCriteria

from relieflink.optim.geo import travel_seconds
from relieflink.optim.routing._tasks import SubResult, SubRoute, SubTask

logger = logging.getLogger(__name__)

PYVRP_VERSION: str = str(getattr(pyvrp, "__version__", "unknown"))


def _matrices(task: SubTask) -> tuple[list[Any], list[Any]]:
    locs = np.concatenate([task.depot_locs, task.client_locs])
    dist = task.provider.distances(locs, locs).astype(np.int64)
    np.fill_diagonal(dist, 0)
    n_dep = len(task.depot_locs)
    # Forbidden client/profile pairs get edges long enough to be unattractive and slow enough
    # to break every time window (so PyVRP sees them as infeasible). MAX_VALUE is not used:
    # multiplied by non-unit costs and penalties it overflows PyVRP's 64-bit cost arithmetic.
    horizon = max(
        int(task.depot_tw.max(initial=0)),
        int(task.tw.max(initial=0)),
        max((v.tw_late for v in task.vehicle_types), default=0),
    )
    big_dur = min(MAX_VALUE, horizon + 1)
    big_dist = min(MAX_VALUE, 2 * int(dist.max(initial=0)) + 1)
    dists: list[Any] = []
    durs: list[Any] = []
    for prof in task.profiles:
        dur = task.provider.durations(locs, locs, prof.name)
        dur = travel_seconds(dist, prof.speed_kmh) if dur is None else dur.astype(np.int64)
        np.fill_diagonal(dur, 0)
        if not prof.allowed.all():
            blocked = np.concatenate([np.zeros(n_dep, dtype=bool), ~prof.allowed])
            d = dist.copy()
            d[blocked, :] = big_dist
            d[:, blocked] = big_dist
            dur = dur.copy()
            dur[blocked, :] = big_dur
            dur[:, blocked] = big_dur
            np.fill_diagonal(d, 0)
            np.fill_diagonal(dur, 0)
            dists.append(d)
        else:
            dists.append(dist)
        durs.append(dur)
    return dists, durs


def build_data(task: SubTask) -> Any:
    """Build a :class:`pyvrp.ProblemData` for ``task``."""
    n_dep = len(task.depot_locs)
    # Load dimensions that no client uses are left out (less work in every move evaluation).
    dims = [k for k in range(2) if task.delivery[:, k].any()] or [0]
    locations = [pyvrp.Location(0.0, 0.0) for _ in range(n_dep + len(task.client_locs))]
    depots = [
        pyvrp.Depot(location=i, tw_early=int(task.depot_tw[i, 0]), tw_late=int(task.depot_tw[i, 1]))
        for i in range(n_dep)
    ]
    clients = [
        pyvrp.Client(
            location=n_dep + j,
            delivery=[int(task.delivery[j, k]) for k in dims],
            service_duration=int(task.service[j]),
            tw_early=int(task.tw[j, 0]),
            tw_late=int(task.tw[j, 1]),
        )
        for j in range(len(task.client_locs))
    ]
    weights = [v.fixed for v in task.vehicle_types]
    weights += [v.unit_distance for v in task.vehicle_types]
    weights += [v.unit_duration for v in task.vehicle_types]
    g = math.gcd(*weights) or 1
    vtypes = []
    for v in task.vehicle_types:
        kw: dict[str, Any] = {}
        if v.max_duration is not None:
            kw["shift_duration"] = v.max_duration
        if v.max_distance is not None:
            kw["max_distance"] = v.max_distance
        vtypes.append(
            pyvrp.VehicleType(
                num_available=v.num,
                capacity=[v.capacity[k] for k in dims],
                start_depot=v.start,
                end_depot=v.end,
                fixed_cost=v.fixed // g,
                tw_early=v.tw_early,
                tw_late=v.tw_late,
                unit_distance_cost=v.unit_distance // g,
                unit_duration_cost=v.unit_duration // g,
                profile=v.profile,
                **kw,
            )
        )
    dists, durs = _matrices(task)
    return pyvrp.ProblemData(locations, clients, depots, vtypes, dists, durs)


def _allowed(task: SubTask, vt: int, client: int) -> bool:
    return bool(task.profiles[task.vehicle_types[vt].profile].allowed[client])


def _route_feasible(data: Any, visits: list[int], vt: int) -> bool:
    return bool(pyvrp.Route(data, visits, vt).is_feasible())


def _repair(data: Any, visits: list[int], vt: int) -> tuple[list[int], list[int]]:
    """Drop clients from an infeasible route until it is feasible; return (kept, dropped)."""
    kept = list(visits)
    dropped: list[int] = []
    while kept and not _route_feasible(data, kept, vt):
        best_i, best_pen = 0, math.inf
        for i in range(len(kept)):
            trial = kept[:i] + kept[i + 1 :]
            if not trial:
                pen = 0.0
            else:
                r = pyvrp.Route(data, trial, vt)
                pen = float(sum(r.excess_load()) * 1000 + r.time_warp() + r.excess_distance())
            if pen < best_pen:
                best_i, best_pen = i, pen
        dropped.append(kept.pop(best_i))
    return kept, dropped


class _Deadline:
    """PyVRP stopping criterion: stop ``seconds`` after the task started on its worker.

    Unlike ``MaxRuntime``, whose clock starts at its first call (after PyVRP's initial
    construction, several seconds at a few thousand clients on a loaded machine), this one
    counts the worker's set-up too. It is a duration read on the worker's own monotonic clock,
    not a moment: a moment would compare clocks of different processes or machines (a Dask
    worker elsewhere; a test suite that moves the wall clock in its own process only).
    """

    def __init__(self, started: float, seconds: float) -> None:
        self.deadline = started + seconds

    def __call__(self, best_cost: float) -> bool:
        return time.monotonic() >= self.deadline


def solve_task(task: SubTask) -> SubResult:
    """Solve one sub-problem with PyVRP's iterated local search and return plain routes."""
    t0 = time.perf_counter()
    started = time.monotonic()
    if len(task.client_locs) == 0:
        return SubResult((), (), 0, 0.0)
    if not task.vehicle_types:
        return SubResult((), tuple(range(len(task.client_locs))), 0, 0.0)
    data = build_data(task)
    crit: list[Any] = []
    if task.iterations is not None:
        crit.append(MaxIterations(task.iterations))
    if task.run_for_s is not None:
        crit.append(_Deadline(started, task.run_for_s))
    elif task.time_limit is not None:
        crit.append(MaxRuntime(max(task.time_limit, 0.0)))
    if not crit:
        raise ValueError("sub-problem needs an iteration or time limit")
    stop = crit[0] if len(crit) == 1 else MultipleCriteria(crit)
    init = None
    if task.initial:
        init = pyvrp.Solution(
            data, [pyvrp.Route(data, list(cl), vt) for vt, cl in task.initial if cl]
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyVRP's penalty-bound warnings are expected here
        res = pyvrp.solve(data, stop, seed=task.seed, collect_stats=False, initial_solution=init)
    best = res.best
    if init is not None and not best.is_feasible() and init.is_feasible():
        best = init
    routes: list[SubRoute] = []
    dropped: list[int] = []
    visited: set[int] = set()
    for route in best.routes():
        vt = route.vehicle_type()
        visits = [a.idx for a in route if a.is_client()]
        forbidden = [c for c in visits if not _allowed(task, vt, c)]
        if forbidden:
            dropped.extend(forbidden)
            visits = [c for c in visits if _allowed(task, vt, c)]
        if forbidden or not route.is_feasible():
            visits, gone = _repair(data, visits, vt)
            dropped.extend(gone)
            if not visits:
                continue
            route = pyvrp.Route(data, visits, vt)
        visited.update(visits)
        sched = [a for a in route.schedule() if a.is_client()]
        routes.append(
            SubRoute(
                vehicle_type=vt,
                clients=tuple(visits),
                arrivals=tuple(int(a.start_time - a.wait_duration) for a in sched),
                service_starts=tuple(int(a.start_time) for a in sched),
                start=int(route.start_time()),
                end=int(route.end_time()),
                distance=int(route.distance()),
                duration=int(route.duration()),
            )
        )
    missing = set(range(len(task.client_locs))) - visited - set(dropped)
    dropped.extend(sorted(missing))
    return SubResult(
        tuple(routes), tuple(sorted(dropped)), int(res.num_iterations), time.perf_counter() - t0
    )
