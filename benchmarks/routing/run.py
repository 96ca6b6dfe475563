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
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            try:
                rss = me.memory_info().rss + sum(
                    c.memory_info().rss for c in me.children(recursive=True)
                )
            except psutil.Error:
                rss = 0
            self.peak = max(self.peak, rss)
            time.sleep(0.2)

    def __enter__(self) -> PeakMemory:
        self._t.start()
        return self

    def __exit__(self, *a: object) -> None:
        self._stop.set()
        self._t.join()


def routes_cost(loaded: LoadedInstance, routes: list[list[int]]) -> float:
    """Distance cost of VRPLIB-numbered routes (single depot 0) in the file's convention."""
    prov = loaded.provider
    assert prov is not None
    total = 0
    for r in routes:
        seq = np.array([0, *r, 0])
        total += int(np.diagonal(prov.distances(seq[:-1], seq[1:])).sum())
    return total / loaded.cost_divisor


def check_vrplib_routes(loaded: LoadedInstance, routes: list[list[int]]) -> str:
    """Feasibility of VRPLIB-numbered routes: all clients once, capacity, time windows."""
    p = loaded.problem
    prov = loaded.provider
    assert prov is not None
    seen = sorted(c for r in routes for c in r)
    if seen != list(range(1, len(p.stops) + 1)):
        return "missing/duplicate clients"
    cap = p.vehicle_types[0].capacity_g
    for r in routes:
        if sum(p.stops[c - 1].weight_g for c in r) > cap:
            return "capacity"
        t = p.depots[0].open_s
        prev = 0
        for c in r:
            t += int(prov.distances(np.array([prev]), np.array([c]))[0, 0])
            s = p.stops[c - 1]
            t = max(t, s.tw_start)
            if t > s.tw_end:
                return "time window"
            t += s.service_s
            prev = c
        t += int(prov.distances(np.array([prev]), np.array([0]))[0, 0])
        if t > p.depots[0].close_s:
            return "depot closing"
    return "ok"


def run_engine(loaded: LoadedInstance, tl: float, workers: int, seed: int) -> dict[str, Any]:
    with LocalProcessExecutor(workers) as exe:
        res = solve_routing(
            loaded.problem, time_limit=tl, seed=seed, executor=exe, provider=loaded.provider
        )
    violations = check_solution(loaded.problem, res, loaded.provider)
    out: dict[str, Any] = {
        "routes": [[v.stop + 1 for v in r.visits] for r in res.routes],
        "checker_violations": len(violations),
        "unassigned": len(res.unassigned),
        "mode": res.stats.get("mode"),
        "first_feasible_s": res.stats.get("first_feasible_s"),
        "engine_cost": res.cost(),
    }
    return out


def run_pyvrp(path: Path, loaded: LoadedInstance, tl: float, seed: int) -> dict[str, Any]:
    import pyvrp
    from pyvrp.stop import MaxRuntime

    rf = {1: "round", 10: "dimacs"}[loaded.cost_divisor]
    data = pyvrp.read(str(path), round_func=rf)
    res = pyvrp.solve(data, MaxRuntime(tl), seed=seed, collect_stats=False)
    routes = [[a.idx + 1 for a in r if a.is_client()] for r in res.best.routes()]
    return {"routes": routes, "pyvrp_feasible": bool(res.best.is_feasible())}


def run_ortools(loaded: LoadedInstance, tl: float) -> dict[str, Any]:
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2

    p = loaded.problem
    prov = loaded.provider
    assert prov is not None
    n = len(p.stops) + 1
    idx = np.arange(n)
    dist = prov.distances(idx, idx)
    n_veh = min(p.vehicle_types[0].count, _fleet_bound(loaded))
    mgr = pywrapcp.RoutingIndexManager(n, n_veh, 0)
    model = pywrapcp.RoutingModel(mgr)
    dl = dist.tolist()
    svc = [0] + [s.service_s for s in p.stops]

    def d_cb(i: int, j: int) -> int:
        return int(dl[mgr.IndexToNode(i)][mgr.IndexToNode(j)])

    cb = model.RegisterTransitCallback(d_cb)
    model.SetArcCostEvaluatorOfAllVehicles(cb)
    dem = [0] + [s.weight_g for s in p.stops]
    dcb = model.RegisterUnaryTransitCallback(lambda i: int(dem[mgr.IndexToNode(i)]))
    model.AddDimensionWithVehicleCapacity(
        dcb, 0, [p.vehicle_types[0].capacity_g] * n_veh, True, "load"
    )
    if any(s.tw_end < 2**39 for s in p.stops):

        def t_cb(i: int, j: int) -> int:
            a = mgr.IndexToNode(i)
            return int(dl[a][mgr.IndexToNode(j)] + svc[a])

        tcb = model.RegisterTransitCallback(t_cb)
        horizon = int(p.depots[0].close_s)
        model.AddDimension(tcb, horizon, horizon, False, "time")
        tdim = model.GetDimensionOrDie("time")
        for k, s in enumerate(p.stops, start=1):
            tdim.CumulVar(mgr.NodeToIndex(k)).SetRange(int(s.tw_start), int(s.tw_end))
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC
    params.local_search_metaheuristic = (
        routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    )
    params.time_limit.FromMilliseconds(int(tl * 1000))
    sol = model.SolveWithParameters(params)
    if sol is None:
        return {"routes": None, "note": "no solution"}
    routes = []
    for v in range(n_veh):
        i = model.Start(v)
        r = []
        while not model.IsEnd(i):
            node = mgr.IndexToNode(i)
            if node:
                r.append(node)
            i = sol.Value(model.NextVar(i))
        if r:
            routes.append(r)
    return {"routes": routes}


def _fleet_bound(loaded: LoadedInstance) -> int:
    p = loaded.problem
    cap = p.vehicle_types[0].capacity_g
    need = math.ceil(sum(s.weight_g for s in p.stops) / max(cap, 1))
    return max(need * 2 + 5, need + 20)


def run_vroom(loaded: LoadedInstance, tl: float, workers: int) -> dict[str, Any]:
    import vroom

    p = loaded.problem
    prov = loaded.provider
    assert prov is not None
    n = len(p.stops) + 1
    idx = np.arange(n)
    dist = prov.distances(idx, idx).astype(np.uint32)
    inp = vroom.Input()
    inp.set_durations_matrix(profile="car", matrix_input=dist)
    tw = any(s.tw_end < 2**39 for s in p.stops)
    n_veh = min(p.vehicle_types[0].count, _fleet_bound(loaded))
    for v in range(n_veh):
        kw: dict[str, Any] = {}
        if tw:
            kw["time_window"] = vroom.TimeWindow(int(p.depots[0].open_s), int(p.depots[0].close_s))
        inp.add_vehicle(
            vroom.Vehicle(v, start=0, end=0, capacity=[p.vehicle_types[0].capacity_g], **kw)
        )
    for k, s in enumerate(p.stops, start=1):
        kw = {"default_service": int(s.service_s)}
        if tw:
            kw["time_windows"] = [vroom.TimeWindow(int(s.tw_start), int(s.tw_end))]
        inp.add_job(vroom.Job(k, location=k, delivery=[s.weight_g], **kw))
    sol = inp.solve(exploration_level=5, nb_threads=workers, timeout=timedelta(seconds=tl))
    routes_df = sol.routes
    routes: dict[int, list[int]] = {}
    for _, row in routes_df.iterrows():
        if row["type"] == "job":
            routes.setdefault(int(row["vehicle_id"]), []).append(int(row["id"]))
    unassigned = len(p.stops) - sum(len(r) for r in routes.values())
    return {"routes": list(routes.values()), "vroom_unassigned": unassigned}


def bks_of(path: Path) -> float | None:
    sol = path.with_suffix(".sol")
    if not sol.exists():
        return None
    for line in sol.read_text().splitlines():
        if line.lower().startswith("cost"):
            return float(line.split()[1])
    return None


def bench_file(path: Path, solvers: list[str], tl: float, workers: int, seed: int) -> list[dict]:
    loaded = load_instance(path)
    bks = bks_of(path)
    rows = []
    for solver in solvers:
        if solver == "ortools" and len(loaded.problem.stops) > 5000:
            rows.append({"instance": path.stem, "solver": solver, "note": "skipped (n>5000)"})
            continue
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
                out = {"routes": None, "note": f"error: {exc!r}"[:200]}
        wall = time.perf_counter() - t0
        routes = out.pop("routes")
        row: dict[str, Any] = {
            "instance": path.stem,
            "n": len(loaded.problem.stops),
            "solver": solver,
            "wall_s": round(wall, 1),
            "peak_mem_mb": round(mem.peak / 2**20),
            "bks": bks,
            **out,
        }
        if routes is not None:
            row["cost"] = routes_cost(loaded, routes)
            row["feasible"] = check_vrplib_routes(loaded, routes)
            row["vehicles"] = len(routes)
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
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--city", type=int, default=0, help="also run a generated city of N stops")
    ap.add_argument("--city-depots", type=int, default=20)
    ap.add_argument(
        "--city-solvers",
        default="engine,pyvrp",
        help="plain PyVRP needs the full matrices: ~10 x 8 N^2 bytes",
    )
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args()
    solvers = [s.strip() for s in args.solvers.split(",") if s.strip()]
    files: list[Path] = []
    for pat in args.instances:
        if pat != "none":
            files += sorted(Path(p) for p in glob.glob(str(ROOT / pat)))
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
    out.write_text(
        json.dumps({"time_limit": args.time_limit, "workers": args.workers, "rows": rows}, indent=1)
    )
    print(table(rows))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
