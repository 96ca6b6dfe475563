"""Side-by-side routing benchmark: this engine vs plain PyVRP vs OR-Tools (GLS) vs VROOM.

Every solver gets the same wall-clock budget and the same cores; costs of every plan are
recomputed here from its routes with the instance's distance convention (so the table compares
like with like), and gaps are taken to the best-known solution (``.sol`` beside the instance).

Examples::

    .venv/bin/python benchmarks/routing/run.py --instances 'CVRP_X/X-n1[0-2]*.vrp' --time-limit 30
    .venv/bin/python benchmarks/routing/run.py --instances CVRP_XXL_Belgium/Leuven1.vrp \
        --time-limit 120 --solvers engine,pyvrp,vroom
    .venv/bin/python benchmarks/routing/run.py --instances none --city 20000 --time-limit 120
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from relieflink.optim.routing import (
    LocalProcessExecutor,
    RoutingParams,
    SerialExecutor,
    check_solution,
    default_provider,
    generate_city_problem,
    load_instance,
    solve_routing,
)
from relieflink.optim.routing.io import LoadedInstance

ROOT = Path(os.environ.get("RELIEFLINK_INSTANCES", "/work/shared/instances"))
DEFAULT_INSTANCES = [
    "CVRP_X/X-n101-k25.vrp",
    "CVRP_X/X-n204-k19.vrp",
    "CVRP_X/X-n502-k39.vrp",
    "VRPTW_GH1000/C1_10_1.vrp",
]


class PeakMemory:
    """Samples RSS of this process and its children every 0.2 s."""

    def __init__(self) -> None:
        self.peak = 0
        self.cpu_s = 0.0
        self._child_cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            rss = me.memory_info().rss
            for c in me.children(recursive=True):
                try:
                    rss += c.memory_info().rss
                    t = c.cpu_times()
                    self._child_cpu[c.pid] = t.user + t.system
                except psutil.Error:
                    pass
            self.peak = max(self.peak, rss)
            time.sleep(0.2)

    @staticmethod
    def _cpu() -> float:
        t = psutil.Process().cpu_times()
        return t.user + t.system

    def __enter__(self) -> PeakMemory:
        self._cpu0 = self._cpu()
        self._t.start()
        return self

    def __exit__(self, *a: object) -> None:
        self._stop.set()
        self._t.join()
        # CPU seconds actually received: with other jobs on the machine (and the kernel's
        # per-session autogroup scheduling) a 2-process engine may get no more CPU than a
        # 1-process baseline, so the wall-clock budget alone does not say who got what.
        # Children (the engine's pool, started through a fork server) are sampled above.
        self.cpu_s = self._cpu() - self._cpu0 + sum(self._child_cpu.values())


# A plan is a list of routes, each (vehicle type index, [stop indices]) of ``loaded.problem``:
# the vehicle type carries the start/end depot, capacity, shift, duration limit and site
# rules, so multi-depot and site-dependent plans are recomputed against the right depot.
Plan = list[tuple[int, list[int]]]


def _legs(loaded: LoadedInstance, seq: list[int], kind: str) -> tuple[Any, Any]:
    prov = loaded.provider
    assert prov is not None
    o, d = np.asarray(seq[:-1]), np.asarray(seq[1:])
    dist = np.diagonal(prov.distances(o, d)).astype(np.int64)
    dur = prov.durations(o, d, kind)
    return dist, (dist if dur is None else np.diagonal(dur).astype(np.int64))


def evaluate(loaded: LoadedInstance, plan: Plan) -> tuple[float, str]:
    """Cost (file convention) and feasibility of ``plan``, recomputed from the problem alone.

    Feasibility: every client exactly once, fleet size per type, capacity, site rules, time
    windows (service starts in the window, leaving the depot at its opening), return before
    the depot closes / shift ends, maximum route duration (with the start delayed as far as
    the windows allow, as PyVRP and the literature define duration) and maximum distance.
    Returns ``"ok"`` or the first broken rule.
    """
    p = loaded.problem
    n_dep = len(p.depots)
    seen = sorted(c for _, r in plan for c in r)
    problems: list[str] = []
    if seen != list(range(len(p.stops))):
        problems.append("missing/duplicate clients")
    used: dict[int, int] = {}
    total = 0.0
    for t, r in plan:
        vt = p.vehicle_types[t]
        used[t] = used.get(t, 0) + 1
        sd, ed = p.depot_index[vt.start_depot], p.depot_index[vt.end]
        seq = [sd, *(n_dep + c for c in r), ed]
        dist, dur = _legs(loaded, seq, vt.kind.value)
        distance = int(dist.sum())
        total += vt.fixed_cost + vt.cost_per_km * distance / 1000
        if sum(p.stops[c].weight_g for c in r) > vt.capacity_g:
            problems.append("capacity")
        if any(not p.stops[c].allows_vehicle(vt) for c in r):
            problems.append("site rule")
        if vt.max_distance_m is not None and distance > vt.max_distance_m:
            problems.append("max distance")
        # Forward pass from the earliest departure: time windows and return time.
        t0 = max(vt.shift_start, p.depots[sd].open_s)
        now = t0
        for leg, c in enumerate(r):
            s = p.stops[c]
            now = max(now + int(dur[leg]), s.tw_start)
            if now > s.tw_end:
                problems.append("time window")
                break
            now += s.service_s
        else:
            now += int(dur[-1])
            if now > min(vt.shift_end, p.depots[ed].close_s):
                problems.append("depot closing")
            # Latest departure that keeps every window: a backward pass.
            latest = min(vt.shift_end, p.depots[ed].close_s) - int(dur[-1])
            for leg in range(len(r) - 1, -1, -1):
                s = p.stops[r[leg]]
                latest = min(s.tw_end, latest - s.service_s) - int(dur[leg])
            dep = max(t0, min(latest, p.depots[sd].close_s))
            now = dep
            for leg, c in enumerate(r):
                s = p.stops[c]
                now = max(now + int(dur[leg]), s.tw_start) + s.service_s
            now += int(dur[-1])
            if vt.max_duration_s is not None and now - dep > vt.max_duration_s:
                problems.append("max duration")
    if any(k > p.vehicle_types[t].count for t, k in used.items()):
        problems.append("fleet size")
    return total / loaded.cost_divisor, (problems[0] if problems else "ok")


def read_sol_plan(loaded: LoadedInstance, sol: Path) -> Plan:
    """The routes of a VRPLIB ``.sol`` file as a plan (route ``#k`` is file vehicle ``k-1``)."""
    stop_of = {loaded.client_number(i): i for i in range(len(loaded.problem.stops))}
    plan: Plan = []
    k = 0
    for line in sol.read_text().splitlines():
        if not line.lower().startswith("route"):
            continue
        nums = [int(x) for x in line.split(":", 1)[1].split()]
        if nums:
            t = loaded.file_vehicles[k][0] if loaded.file_vehicles else 0
            plan.append((t, [stop_of[x] for x in nums]))
        k += 1
    return plan


#: Engine tuning for this run (``--engine-params``); empty: the engine's defaults.
ENGINE_PARAMS: dict[str, Any] = {}


def run_engine(loaded: LoadedInstance, tl: float, workers: int, seed: int) -> dict[str, Any]:
    params = RoutingParams(**ENGINE_PARAMS)
    with LocalProcessExecutor(workers) as exe:
        res = solve_routing(
            loaded.problem,
            time_limit=tl,
            seed=seed,
            executor=exe,
            provider=loaded.provider,
            params=params,
        )
    violations = check_solution(loaded.problem, res, loaded.provider)
    type_index = {vt.id: t for t, vt in enumerate(loaded.problem.vehicle_types)}
    out: dict[str, Any] = {
        "plan": [(type_index[r.vehicle_type], [v.stop for v in r.visits]) for r in res.routes],
        "checker_violations": len(violations),
        "unassigned": len(res.unassigned),
        "mode": res.stats.get("mode"),
        "first_feasible_s": res.stats.get("first_feasible_s"),
        "first_feasible_cpu_s": res.stats.get("first_feasible_cpu_s"),
        "construction": res.stats.get("construction"),
        "result_from": res.stats.get("result_from"),
        "engine_cost": res.cost() / loaded.cost_divisor,
        # All of the engine's own figures: where the time went (first feasible, end of the
        # sweep pass and of the search, rounds), what each phase cost, the portfolio's waits.
        "engine_stats": dict(res.stats),
    }
    return out


def run_pyvrp(path: Path, loaded: LoadedInstance, tl: float, seed: int) -> dict[str, Any]:
    import pyvrp
    from pyvrp.stop import MaxRuntime

    rf = {1: "round", 10: "dimacs"}[loaded.cost_divisor]
    if loaded.file_vehicles or len(loaded.problem.depots) > 1:
        rf = "exact"  # MDVRPTW/SDVRPTW/HFVRP: the ×1000 convention of their .sol files
    data = pyvrp.read(str(path), round_func=rf)
    res = pyvrp.solve(data, MaxRuntime(tl), seed=seed, collect_stats=False)
    plan: Plan = []
    for r in res.best.routes():
        # PyVRP names a type after the file's vehicles in it ("3,4,5"): map back to ours.
        first = int(data.vehicle_type(r.vehicle_type()).name.split(",")[0])
        t = loaded.file_vehicles[first][0] if loaded.file_vehicles else 0
        plan.append((t, [a.idx for a in r if a.is_client()]))
    return {"plan": plan, "pyvrp_feasible": bool(res.best.is_feasible())}


def _vehicles(loaded: LoadedInstance) -> list[int]:
    """Vehicle type index per vehicle offered to OR-Tools and VROOM (capped per type)."""
    p = loaded.problem
    bound = _fleet_bound(loaded)
    return [t for t, vt in enumerate(p.vehicle_types) for _ in range(min(vt.count, bound))]


def _has_tw(loaded: LoadedInstance) -> bool:
    return any(s.tw_end < 2**39 for s in loaded.problem.stops)


def run_ortools(loaded: LoadedInstance, tl: float) -> dict[str, Any]:
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2

    p = loaded.problem
    prov = loaded.provider
    assert prov is not None
    n_dep = len(p.depots)
    n = n_dep + len(p.stops)
    idx = np.arange(n)
    dist = prov.distances(idx, idx)
    veh = _vehicles(loaded)
    vts = [p.vehicle_types[t] for t in veh]
    starts = [p.depot_index[vt.start_depot] for vt in vts]
    ends = [p.depot_index[vt.end] for vt in vts]
    mgr = pywrapcp.RoutingIndexManager(n, len(veh), starts, ends)
    model = pywrapcp.RoutingModel(mgr)
    dl = dist.tolist()
    svc = [0] * n_dep + [s.service_s for s in p.stops]

    def d_cb(i: int, j: int) -> int:
        return int(dl[mgr.IndexToNode(i)][mgr.IndexToNode(j)])

    cb = model.RegisterTransitCallback(d_cb)
    model.SetArcCostEvaluatorOfAllVehicles(cb)
    dem = [0] * n_dep + [s.weight_g for s in p.stops]
    dcb = model.RegisterUnaryTransitCallback(lambda i: int(dem[mgr.IndexToNode(i)]))
    model.AddDimensionWithVehicleCapacity(dcb, 0, [vt.capacity_g for vt in vts], True, "load")
    limits = [vt.max_duration_s for vt in vts]
    if _has_tw(loaded) or any(x is not None for x in limits):

        def t_cb(i: int, j: int) -> int:
            a = mgr.IndexToNode(i)
            return int(dl[a][mgr.IndexToNode(j)] + svc[a])

        tcb = model.RegisterTransitCallback(t_cb)
        horizon = int(max(d.close_s for d in p.depots))
        model.AddDimension(tcb, horizon, horizon, False, "time")
        tdim = model.GetDimensionOrDie("time")
        for k, s in enumerate(p.stops, start=n_dep):
            tdim.CumulVar(mgr.NodeToIndex(k)).SetRange(int(s.tw_start), int(s.tw_end))
        for v, vt in enumerate(vts):
            dep = p.depots[starts[v]]
            tdim.CumulVar(model.Start(v)).SetRange(
                int(max(dep.open_s, vt.shift_start)), int(dep.close_s)
            )
            end_dep = p.depots[ends[v]]
            tdim.CumulVar(model.End(v)).SetMax(int(min(end_dep.close_s, vt.shift_end)))
            if vt.max_duration_s is not None:
                tdim.SetSpanUpperBoundForVehicle(int(vt.max_duration_s), v)
    # Site rules: a client may only go on vehicles of its allowed types.
    for k, s in enumerate(p.stops, start=n_dep):
        if s.allowed_types is not None or s.allowed_kinds is not None:
            bad = [v for v, vt in enumerate(vts) if not s.allows_vehicle(vt)]
            if bad:
                model.VehicleVar(mgr.NodeToIndex(k)).RemoveValues(bad)
    params = pywrapcp.DefaultRoutingSearchParameters()
    # With time windows, PATH_CHEAPEST_ARC often finds no first solution at all (PR01, PR11A
    # in 5 s); parallel cheapest insertion does. Plain CVRP keeps the usual default.
    fs = routing_enums_pb2.FirstSolutionStrategy
    params.first_solution_strategy = (
        fs.PARALLEL_CHEAPEST_INSERTION if _has_tw(loaded) else fs.PATH_CHEAPEST_ARC
    )
    params.local_search_metaheuristic = (
        routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    )
    params.time_limit.FromMilliseconds(int(tl * 1000))
    sol = model.SolveWithParameters(params)
    if sol is None:
        return {"plan": None, "note": "no solution"}
    plan: Plan = []
    for v in range(len(veh)):
        i = model.Start(v)
        r = []
        while not model.IsEnd(i):
            node = mgr.IndexToNode(i)
            if node >= n_dep:
                r.append(node - n_dep)
            i = sol.Value(model.NextVar(i))
        if r:
            plan.append((veh[v], r))
    return {"plan": plan}


def _fleet_bound(loaded: LoadedInstance) -> int:
    p = loaded.problem
    cap = min(vt.capacity_g for vt in p.vehicle_types)
    need = math.ceil(sum(s.weight_g for s in p.stops) / max(cap, 1))
    return max(need * 2 + 5, need + 20)


def run_vroom(loaded: LoadedInstance, tl: float, workers: int) -> dict[str, Any]:
    import vroom

    p = loaded.problem
    prov = loaded.provider
    assert prov is not None
    n_dep = len(p.depots)
    n = n_dep + len(p.stops)
    idx = np.arange(n)
    dist = prov.distances(idx, idx).astype(np.uint32)
    inp = vroom.Input()
    inp.set_durations_matrix(profile="car", matrix_input=dist)
    tw = _has_tw(loaded)
    veh = _vehicles(loaded)
    # Site rules as VROOM skills: one skill per distinct allowed-type set; a vehicle has the
    # skill when its type is in the set. VROOM has no route-duration limit (only travel time
    # via max_travel_time), so MDVRPTW duration limits are approximated and rechecked here.
    skill_of: dict[frozenset[int], int] = {}
    job_skill: list[int | None] = []
    for s in p.stops:
        ok = frozenset(t for t, vt in enumerate(p.vehicle_types) if s.allows_vehicle(vt))
        if len(ok) == len(p.vehicle_types):
            job_skill.append(None)
        else:
            job_skill.append(skill_of.setdefault(ok, len(skill_of) + 1))
    for v, t in enumerate(veh):
        vt = p.vehicle_types[t]
        sd, ed = p.depot_index[vt.start_depot], p.depot_index[vt.end]
        kw: dict[str, Any] = {}
        if tw or vt.max_duration_s is not None:
            dep = p.depots[sd]
            kw["time_window"] = vroom.TimeWindow(
                int(max(dep.open_s, vt.shift_start)),
                int(min(p.depots[ed].close_s, vt.shift_end)),
            )
        skills = {k for ok, k in skill_of.items() if t in ok}
        if skills:
            kw["skills"] = skills
        inp.add_vehicle(vroom.Vehicle(v, start=sd, end=ed, capacity=[vt.capacity_g], **kw))
    for k, s in enumerate(p.stops):
        kw = {"default_service": int(s.service_s)}
        if tw:
            kw["time_windows"] = [vroom.TimeWindow(int(s.tw_start), int(s.tw_end))]
        if job_skill[k] is not None:
            kw["skills"] = {job_skill[k]}
        inp.add_job(vroom.Job(k, location=n_dep + k, delivery=[s.weight_g], **kw))
    sol = inp.solve(exploration_level=5, nb_threads=workers, timeout=timedelta(seconds=tl))
    routes: dict[int, list[int]] = {}
    for _, row in sol.routes.iterrows():
        if row["type"] == "job":
            routes.setdefault(int(row["vehicle_id"]), []).append(int(row["id"]))
    unassigned = len(p.stops) - sum(len(r) for r in routes.values())
    return {"plan": [(veh[v], r) for v, r in routes.items()], "vroom_unassigned": unassigned}


def bks_of(path: Path) -> float | None:
    sol = path.with_suffix(".sol")
    if not sol.exists():
        return None
    for line in sol.read_text().splitlines():
        if line.lower().startswith("cost"):
            return float(line.split()[1])
    return None


# Clients per route (capacity ÷ mean demand) from which an instance counts as long-route.
# Belgium "1" has 15-29 (the short regime); among the X instances (at most 24) those
# at or above LONG_X_MIN are the long-route ones `variants.py --list-x` lists.
LONG_ROUTE_MIN = 40.0
LONG_X_MIN = 16.0


def regime(loaded: LoadedInstance) -> str:
    """``long`` (long routes, or a depot at the edge of the clients) or ``short``.

    The issue's two regimes: a central depot with ~20 clients a route (Belgium "1") against
    long routes and/or an eccentric depot (the variants, the long-route X instances).
    """
    p = loaded.problem
    if len(p.depots) != 1 or not p.stops:
        return "other"
    dem = np.array([s.weight_g for s in p.stops], dtype=np.float64)
    per_route = max(vt.capacity_g for vt in p.vehicle_types) / max(dem.mean(), 1e-9)
    xy = np.array([[s.lon, s.lat] for s in p.stops])
    c = xy.mean(axis=0)
    spread = float(np.sqrt(((xy - c) ** 2).sum(axis=1).mean()))
    off = float(np.hypot(p.depots[0].lon - c[0], p.depots[0].lat - c[1])) / max(spread, 1e-9)
    long_x = p.name.startswith("X-") and per_route >= LONG_X_MIN
    return "long" if per_route >= LONG_ROUTE_MIN or off >= 1.0 or long_x else "short"


def load_reference(path: Path | None) -> dict[str, float]:
    """Reference costs of instances with no published BKS (e.g. the variants)."""
    if path is None or not path.exists():
        return {}
    data = json.loads(path.read_text())
    return {k: float(v["cost"] if isinstance(v, dict) else v) for k, v in data.items()}


REFERENCE: dict[str, float] = {}


def bench_file(path: Path, solvers: list[str], tl: float, workers: int, seed: int) -> list[dict]:
    loaded = load_instance(path)
    bks = bks_of(path)
    gap_to = "BKS"
    if bks is None and path.stem in REFERENCE:
        bks, gap_to = REFERENCE[path.stem], "reference"
    reg = regime(loaded)
    rows = []
    sol = path.with_suffix(".sol")
    bks_check = None
    if sol.exists():  # the recomputation must reproduce the BKS file's own cost, feasibly
        bks_cost, bks_ok = evaluate(loaded, read_sol_plan(loaded, sol))
        bks_check = f"{bks_cost:.1f} {bks_ok}"
        print(f"{path.stem}: BKS recomputed {bks_cost:,.1f} ({bks_ok}), file says {bks}")
    for solver in solvers:
        if solver == "ortools" and len(loaded.problem.stops) > 5000:
            rows.append({"instance": path.stem, "solver": solver, "note": "skipped (n>5000)"})
            continue
        load1 = round(os.getloadavg()[0], 2)
        t0 = time.perf_counter()
        with PeakMemory() as mem:
            try:
                if solver == "engine":
                    out = run_engine(loaded, tl, workers, seed)
                elif solver == "pyvrp":
                    out = run_pyvrp(path, loaded, tl, seed)
                elif solver == "ortools":
                    out = run_ortools(loaded, tl)
                elif solver == "vroom":
                    out = run_vroom(loaded, tl, workers)
                else:
                    raise ValueError(f"unknown solver {solver}")
            except Exception as exc:  # a baseline failing must not stop the run
                out = {"plan": None, "note": f"error: {exc!r}"[:200]}
        wall = time.perf_counter() - t0
        plan = out.pop("plan")
        row: dict[str, Any] = {
            "instance": path.stem,
            "n": len(loaded.problem.stops),
            "solver": solver,
            "wall_s": round(wall, 1),
            "peak_mem_mb": round(mem.peak / 2**20),
            "cpu_s": round(mem.cpu_s, 1),
            "bks": bks,
            "gap_to": gap_to if bks is not None else None,
            "regime": reg,
            "bks_recomputed": bks_check,
            "load1_at_start": load1,
            **out,
        }
        if plan is not None:
            row["cost"], row["feasible"] = evaluate(loaded, plan)
            row["vehicles"] = len(plan)
            if bks:
                row["gap_pct"] = round(100 * (row["cost"] / bks - 1), 2)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def bench_city(
    n: int, depots: int, tl: float, workers: int, seed: int, solvers: list[str]
) -> list[dict]:
    p = generate_city_problem(n, depots, seed=seed)
    prov = default_provider(p)
    rows = []
    for solver in [s for s in solvers if s in ("engine", "pyvrp")]:
        t0 = time.perf_counter()
        with PeakMemory() as mem:
            if solver == "engine":
                with LocalProcessExecutor(workers) as exe:
                    res = solve_routing(p, time_limit=tl, seed=seed, executor=exe)
            else:  # plain PyVRP on the whole problem: the engine's direct path, one process
                res = solve_routing(
                    p,
                    time_limit=tl,
                    seed=seed,
                    executor=SerialExecutor(),
                    params=RoutingParams(direct_limit=10**9),
                )
        row = {
            "instance": p.name,
            "n": n,
            "solver": solver,
            "wall_s": round(time.perf_counter() - t0, 1),
            "peak_mem_mb": round(mem.peak / 2**20),
            "cost": res.cost(),
            "vehicles": len(res.routes),
            "unassigned_stops": len({u.stop for u in res.unassigned}),
            "feasible": "ok" if not check_solution(p, res, prov) else "VIOLATIONS",
            "first_feasible_s": res.stats.get("first_feasible_s"),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def table(rows: list[dict]) -> str:
    by_inst: dict[str, dict[str, dict]] = {}
    for r in rows:
        by_inst.setdefault(r["instance"], {})[r["solver"]] = r
    solvers = sorted({r["solver"] for r in rows}, key=["engine", "pyvrp", "ortools", "vroom"].index)
    head = (
        f"{'instance':<16}{'n':>7}{'BKS':>12} "
        + "".join(f"{s + ' cost':>14}{'gap%':>7}" for s in solvers)
        + "  engine/best-baseline"
    )
    lines = [head, "-" * len(head)]
    for inst, d in by_inst.items():
        any_r = next(iter(d.values()))
        cells = []
        for s in solvers:
            r = d.get(s, {})
            c = r.get("cost")
            ok = r.get("feasible") == "ok"
            ctxt = "-" if c is None else f"{c:,.1f}" + ("" if ok else "!")
            cells.append(f"{ctxt:>14}{r.get('gap_pct', '-')!s:>7}")
        base = [
            d[s]["cost"]
            for s in solvers
            if s != "engine"
            and d.get(s, {}).get("cost")
            and d[s].get("feasible") == "ok"
            and not d[s].get("vroom_unassigned")
        ]
        eng = d.get("engine", {}).get("cost")
        ratio = f"{eng / min(base):.4f}" if eng and base else "-"
        bks = any_r.get("bks")
        lines.append(
            f"{inst:<16}{any_r.get('n', ''):>7}{'-' if bks is None else f'{bks:,.1f}':>12} "
            + "".join(cells)
            + f"  {ratio}"
        )
    gaps = [r["gap_pct"] for r in rows if r["solver"] == "engine" and "gap_pct" in r]
    if gaps:
        lines.append(f"engine mean gap: {sum(gaps) / len(gaps):.2f}% over {len(gaps)} instances")
    return "\n".join(lines)


def markdown(rows: list[dict], meta: dict[str, Any]) -> str:
    """The results as a markdown table: per instance and solver, cost, gap, feasibility,
    wall time and peak memory; then each solver's mean gap over the instances it solved."""
    order = ["engine", "pyvrp", "ortools", "vroom"]
    solvers = sorted({r["solver"] for r in rows}, key=order.index)
    by_inst: dict[str, dict[str, dict[str, Any]]] = {}
    for r in rows:
        by_inst.setdefault(r["instance"], {})[r["solver"]] = r
    lines = [
        f"`{meta.get('command', '')}`",
        "",
        f"time limit {meta.get('time_limit')} s, workers {meta.get('workers')}, "
        f"load average (1/5/15 min) at start {meta.get('load_start')}, "
        f"at end {meta.get('load_end')}"
        + (f" ({meta['load_note']})" if "load_note" in meta else ""),
        "",
        "| instance | regime | n | BKS | solver | cost | gap % | feasible | wall s | CPU s "
        "| peak MB | note |",
        "|---|---|---:|---:|---|---:|---:|---|---:|---:|---:|---|",
    ]
    for inst, d in by_inst.items():
        for s in solvers:
            r = d.get(s)
            if r is None:
                continue
            c = r.get("cost")
            note = r.get("note", "")
            if s == "engine":
                note = (
                    f"mode {r.get('mode')}"
                    + (f", start {r['construction']}" if r.get("construction") else "")
                    + (
                        f" ({r['engine_stats']['packed_cut']})"
                        if r.get("engine_stats", {}).get("packed_cut")
                        else ""
                    )
                    + (", savings plan kept" if r.get("result_from") == "savings" else "")
                    + f", checker violations {r.get('checker_violations')}, "
                    f"first feasible {r.get('first_feasible_s')} s"
                    + (
                        f" ({r['first_feasible_cpu_s']} CPU s)"
                        if r.get("first_feasible_cpu_s") is not None
                        else ""
                    )
                )
            if r.get("vroom_unassigned"):
                note = f"{r['vroom_unassigned']} unassigned"
            bks = r.get("bks")
            ref = " (ref)" if r.get("gap_to") == "reference" else ""
            lines.append(
                f"| {inst} | {r.get('regime', '-')} | {r.get('n', '')} "
                f"| {'-' if bks is None else f'{bks:,.1f}'}{ref} | {s} "
                f"| {'-' if c is None else f'{c:,.1f}'} | {r.get('gap_pct', '-')} "
                f"| {r.get('feasible', '-')} | {r.get('wall_s', '-')} | {r.get('cpu_s', '-')} "
                f"| {r.get('peak_mem_mb', '-')} | {note} |"
            )
    lines.append("")
    if any(r.get("gap_to") == "reference" for r in rows):
        lines.append(
            "Gaps marked as to a *reference* are to the best plan recorded in the reference file "
            "(no published BKS exists for these instances)."
        )
    for reg in sorted({r.get("regime", "-") for r in rows}):
        for s in solvers:
            gaps = [
                r["gap_pct"]
                for r in rows
                if r["solver"] == s
                and r.get("regime", "-") == reg
                and "gap_pct" in r
                and r.get("feasible") == "ok"
            ]
            n_all = len({r["instance"] for r in rows if r["solver"] == s})
            if gaps:
                lines.append(
                    f"- regime {reg}, {s}: mean gap {sum(gaps) / len(gaps):.2f} % over "
                    f"{len(gaps)} feasible plans of {n_all} instances"
                )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--instances",
        nargs="*",
        default=DEFAULT_INSTANCES,
        help="globs relative to the instance folder ('none' for no files)",
    )
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--solvers", default="engine,pyvrp,ortools,vroom")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument(
        "--engine-params",
        default="{}",
        help="JSON of RoutingParams fields for the engine, e.g. '{\"portfolio_memory_mb\": 1024}'",
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--city", type=int, default=0, help="also run a generated city of N stops")
    ap.add_argument("--city-depots", type=int, default=20)
    ap.add_argument(
        "--city-solvers",
        default="engine,pyvrp",
        help="plain PyVRP needs the full matrices: ~10 x 8 N^2 bytes",
    )
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    ap.add_argument(
        "--reference",
        type=Path,
        default=Path("benchmarks/routing/reference.json"),
        help="JSON {instance: cost} of reference plans for instances with no BKS file",
    )
    ap.add_argument(
        "--render",
        nargs="*",
        type=Path,
        help="only re-render these result JSONs (merged) as the table and markdown",
    )
    args = ap.parse_args()
    if args.render:
        meta: dict[str, Any] = {}
        merged: list[dict[str, Any]] = []
        for f in args.render:
            data = json.loads(f.read_text())
            merged += data["rows"]
            meta = {k: v for k, v in data.items() if k != "rows"}
        print(table(merged))
        print(markdown(merged, meta))
        return
    load_start = [round(x, 2) for x in os.getloadavg()]
    REFERENCE.update(load_reference(args.reference))
    ENGINE_PARAMS.update(json.loads(args.engine_params))
    solvers = [s.strip() for s in args.solvers.split(",") if s.strip()]
    files: list[Path] = []
    for pat in args.instances:
        if pat != "none":  # a path that exists as given (e.g. a variant) or one under ROOT
            found = glob.glob(pat) or glob.glob(str(ROOT / pat))
            files += sorted(Path(p) for p in found)
    rows: list[dict] = []
    for f in files:
        rows += bench_file(f, solvers, args.time_limit, args.workers, args.seed)
    if args.city:
        rows += bench_city(
            args.city,
            args.city_depots,
            args.time_limit,
            args.workers,
            args.seed,
            args.city_solvers.split(","),
        )
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    out = args.out / f"routing-{stamp}.json"
    meta = {
        "time_limit": args.time_limit,
        "workers": args.workers,
        "load_start": load_start,
        "load_end": [round(x, 2) for x in os.getloadavg()],
        "command": " ".join(sys.argv),
    }
    out.write_text(json.dumps({**meta, "rows": rows}, indent=1))
    out.with_suffix(".md").write_text(markdown(rows, meta))
    print(table(rows))
    print(f"wrote {out} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
