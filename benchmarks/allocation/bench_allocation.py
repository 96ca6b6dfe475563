"""Allocation engine benchmarks: a whole city, and side by side with the HiGHS LP.

Usage::

    .venv/bin/python benchmarks/allocation/bench_allocation.py city --households 10000000
    .venv/bin/python benchmarks/allocation/bench_allocation.py lp --demands 100000

``city`` times the engine (and the first-come-first-served baseline) on a synthetic city and
reports peak resident memory sampled during each solve; ``lp`` compares the engine with the
reference LP (HiGHS via scipy) on the same instance. Both print a table and write JSON to
``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from city import make_city

from relieflink.optim.allocation import (
    CLASS_NAMES,
    AllocationParams,
    AllocationProblem,
    AllocationResult,
    Demands,
    check_allocation,
    evaluate,
    fair_objective,
    solve_allocation,
    solve_fair_lp,
    solve_fcfs,
)

RESULTS = Path(__file__).resolve().parents[1] / "results"
GB = 1024**3


class PeakRSS:
    """Sample this process's resident set size in a background thread."""

    def __init__(self, interval: float = 0.005) -> None:
        self.proc = psutil.Process()
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(self.interval)

    def __enter__(self) -> PeakRSS:
        self.start = self.proc.memory_info().rss
        self.peak = self.start
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)


def timed(
    fn: Callable[[], AllocationResult],
) -> tuple[AllocationResult, float, float, int, int]:
    """Run ``fn``: result, wall seconds, CPU seconds of this process, RSS before and peak."""
    gc.collect()
    with PeakRSS() as mem:
        c0 = time.process_time()
        t0 = time.perf_counter()
        res = fn()
        dt = time.perf_counter() - t0
        cpu = time.process_time() - c0
    return res, dt, cpu, mem.start, mem.peak


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cpus": psutil.cpu_count(),
        "mem_total_gb": round(psutil.virtual_memory().total / GB, 1),
        "load_avg": list(psutil.getloadavg()),
    }


def write_json(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"allocation_{name}_{stamp}.json"
    path.write_text(json.dumps(payload, indent=2))
    return path


def shuffled(p: AllocationProblem, seed: int) -> AllocationProblem:
    """The same problem with demand lines in random order (no location ordering to exploit)."""
    d = p.demands
    perm = np.random.default_rng(seed + 1).permutation(d.n)
    fields = {
        f: (None if getattr(d, f) is None else np.asarray(getattr(d, f))[perm])
        for f in d.__dataclass_fields__
    }
    return replace(p, demands=Demands(**fields))


def cmd_city(args: argparse.Namespace) -> None:
    t0 = time.perf_counter()
    p = make_city(
        households=args.households,
        items=args.items,
        warehouses=args.warehouses,
        locations=args.locations,
        scarcity=args.scarcity,
        capacity_ratio=None if args.capacity_ratio <= 0 else args.capacity_ratio,
        seed=args.seed,
    )
    if args.shuffle:
        p = shuffled(p, args.seed)
    gen_s = time.perf_counter() - t0
    n = p.demands.n
    input_bytes = sum(
        np.asarray(getattr(p.demands, f)).nbytes
        for f in p.demands.__dataclass_fields__
        if getattr(p.demands, f) is not None
    )
    print(
        f"city: {args.households:,} households, {n:,} demand lines, {args.items} items, "
        f"{args.warehouses} warehouses, {p.locations.size:,} locations "
        f"(generated in {gen_s:.1f} s, demand arrays {input_bytes / GB:.2f} GB, "
        f"lines {'shuffled' if args.shuffle else 'ordered by location'})"
    )
    runs: dict[str, dict[str, Any]] = {}
    results: dict[str, AllocationResult] = {}
    load0 = ", ".join(f"{x:.1f}" for x in psutil.getloadavg())
    for name, fn in (
        ("engine", lambda: solve_allocation(p)),
        ("fcfs", lambda: solve_fcfs(p)),
    ):
        times = []
        cpus = []
        for _ in range(args.repeat):
            res, dt, cpu, rss0, peak = timed(fn)
            times.append(dt)
            cpus.append(cpu)
            results[name] = res
            del res
        gc.collect()
        runs[name] = {
            "seconds": min(times),
            "all_seconds": times,
            "cpu_seconds": min(cpus),
            "all_cpu_seconds": cpus,
            "rss_before_gb": rss0 / GB,
            "rss_peak_gb": peak / GB,
            "rss_added_gb": (peak - rss0) / GB,
        }
    for name, res in results.items():
        if not args.skip_check:
            errs = check_allocation(p, res)
            runs[name]["feasible"] = not errs
            if errs:
                print(f"{name}: INFEASIBLE {errs[:3]}")
        out = evaluate(p, res)
        runs[name].update(
            {
                "allocated_units": int(res.group_allocated.sum()),
                "requested_units": int(res.group_requested.sum()),
                "class_coverage": out.class_coverage.tolist(),
                "class_lines_served": out.class_lines_served.tolist(),
                "gini": out.gini.tolist(),
                "class_level": res.class_level.tolist(),
                "mean_distance_m": out.mean_distance_m,
                "split_lines": int(np.unique(res.split_line).shape[0]),
                "capacity_limited_groups": int(np.count_nonzero(res.group_limit == 2)),
            }
        )
    e, f = runs["engine"], runs["fcfs"]
    rows = [
        ("solve wall time (s, best)", f"{e['seconds']:.2f}", f"{f['seconds']:.2f}"),
        ("solve CPU time (s, best)", f"{e['cpu_seconds']:.2f}", f"{f['cpu_seconds']:.2f}"),
        ("peak RSS during solve (GB)", f"{e['rss_peak_gb']:.2f}", f"{f['rss_peak_gb']:.2f}"),
        ("RSS added by solve (GB)", f"{e['rss_added_gb']:.2f}", f"{f['rss_added_gb']:.2f}"),
        ("units allocated", f"{e['allocated_units']:,}", f"{f['allocated_units']:,}"),
    ]
    for c, cname in enumerate(CLASS_NAMES):
        rows.append(
            (f"coverage {cname}", f"{e['class_coverage'][c]:.3f}", f"{f['class_coverage'][c]:.3f}")
        )
    for c, cname in enumerate(CLASS_NAMES):
        rows.append(
            (
                f"lines served {cname}",
                f"{e['class_lines_served'][c]:.3f}",
                f"{f['class_lines_served'][c]:.3f}",
            )
        )
    for c, cname in enumerate(CLASS_NAMES):
        rows.append((f"gini {cname}", f"{e['gini'][c]:.3f}", f"{f['gini'][c]:.3f}"))
    rows.append(
        ("mean distance per unit (m)", f"{e['mean_distance_m']:.0f}", f"{f['mean_distance_m']:.0f}")
    )
    rows.append(("lines split over warehouses", f"{e['split_lines']:,}", f"{f['split_lines']:,}"))
    print(f"\n{'measure':<32}{'engine':>14}{'fcfs':>14}")
    for label, a, b in rows:
        print(f"{label:<32}{a:>14}{b:>14}")
    print(
        f"\nload average before: {load0}; engine / fcfs time ratio: "
        f"{e['seconds'] / f['seconds']:.2f}; "
        f"targets: engine <= 10 s -> {'met' if e['seconds'] <= 10 else 'NOT met'}, "
        f"peak RSS <= 4 GB -> {'met' if e['rss_peak_gb'] <= 4 else 'NOT met'}"
    )
    path = write_json(
        "city",
        {
            "args": vars(args),
            "lines": n,
            "locations": p.locations.size,
            "generate_seconds": gen_s,
            "demand_arrays_gb": input_bytes / GB,
            "machine": machine(),
            "runs": runs,
        },
    )
    print(f"wrote {path}")


def cmd_lp(args: argparse.Namespace) -> None:
    households = max(1, round(args.demands / 3.0))
    p = make_city(
        households=households,
        items=args.items,
        warehouses=args.warehouses,
        locations=args.locations,
        scarcity=args.scarcity,
        capacity_ratio=None if args.capacity_ratio <= 0 else args.capacity_ratio,
        min_ration=False,
        seed=args.seed,
    )
    params = AllocationParams(use_min_ration=False)
    load0 = ", ".join(f"{x:.1f}" for x in psutil.getloadavg())
    eng_times = []
    eng_cpu = []
    for _ in range(args.repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        r = solve_allocation(p, params=params)
        eng_times.append(time.perf_counter() - t0)
        eng_cpu.append(time.process_time() - c0)
    lp_times, lp_cpu, lpj_times, lpj_cpu = [], [], [], []
    for _ in range(args.lp_repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        lp = solve_fair_lp(p, params=params)
        lp_times.append(time.perf_counter() - t0)
        lp_cpu.append(time.process_time() - c0)
        c0, t0 = time.process_time(), time.perf_counter()
        lpj = solve_fair_lp(p, params=params, per_item=False)
        lpj_times.append(time.perf_counter() - t0)
        lpj_cpu.append(time.process_time() - c0)
    lp_s, lpj_s = min(lp_times), min(lpj_times)
    eng_obj = fair_objective(p, r.allocated, params=params)
    lp_obj = lp.objective
    eng_s = min(eng_times)

    def gap(ref: float, val: float) -> float:
        return 100.0 * (ref - val) / ref if ref else 0.0

    print(
        f"instance: {p.demands.n:,} demand lines, {args.items} items, {args.warehouses} "
        f"warehouses, capacity_ratio={args.capacity_ratio}"
    )
    print(
        "objective = sum over allocated units of (C - level before the unit), per class;\n"
        "LP(stages): one HiGHS LP per (class, item), the engine's semantics;\n"
        "LP(joint): one HiGHS LP per class, capacity shared between items freely\n"
    )
    hdr = f"{'class':<18}{'engine':>13}{'LP(stages)':>13}{'gap %':>9}{'LP(joint)':>13}{'gap %':>9}"
    print(hdr)
    for c, cname in enumerate(CLASS_NAMES):
        print(
            f"{cname:<18}{eng_obj[c]:>13.1f}{lp_obj[c]:>13.1f}{gap(lp_obj[c], eng_obj[c]):>9.4f}"
            f"{lpj.objective[c]:>13.1f}{gap(lpj.objective[c], eng_obj[c]):>9.4f}"
        )
    tot_gap = gap(lp_obj.sum(), eng_obj.sum())
    totj_gap = gap(lpj.objective.sum(), eng_obj.sum())
    print(
        f"{'total':<18}{eng_obj.sum():>13.1f}{lp_obj.sum():>13.1f}{tot_gap:>9.4f}"
        f"{lpj.objective.sum():>13.1f}{totj_gap:>9.4f}"
    )
    print(
        f"\nunits allocated: engine {int(r.allocated.sum()):,}, LP(stages) "
        f"{float(lp.allocated.sum()):,.1f}, LP(joint) {float(lpj.allocated.sum()):,.1f}"
    )
    e_cpu, l_cpu, j_cpu = min(eng_cpu), min(lp_cpu), min(lpj_cpu)
    print(
        f"wall time (best of {args.repeat} / {args.lp_repeat}): engine {eng_s:.3f} s (incl. "
        f"validation and nearest-first sourcing), LP(stages) {lp_s:.2f} s "
        f"({lp_s / eng_s:.1f}x), LP(joint) {lpj_s:.2f} s ({lpj_s / eng_s:.1f}x)"
    )
    print(
        f"CPU time: engine {e_cpu:.3f} s, LP(stages) {l_cpu:.2f} s ({l_cpu / e_cpu:.1f}x), "
        f"LP(joint) {j_cpu:.2f} s ({j_cpu / e_cpu:.1f}x); load average before: {load0}"
    )
    path = write_json(
        "lp",
        {
            "args": vars(args),
            "lines": p.demands.n,
            "machine": machine(),
            "engine_seconds": eng_s,
            "engine_all_seconds": eng_times,
            "engine_cpu_seconds": e_cpu,
            "lp_stages_cpu_seconds": l_cpu,
            "lp_joint_cpu_seconds": j_cpu,
            "lp_stages_seconds": lp_s,
            "lp_joint_seconds": lpj_s,
            "speedup_vs_lp_stages": lp_s / eng_s,
            "speedup_vs_lp_joint": lpj_s / eng_s,
            "engine_objective": eng_obj.tolist(),
            "lp_stages_objective": lp_obj.tolist(),
            "lp_joint_objective": lpj.objective.tolist(),
            "gap_pct_vs_lp_stages": tot_gap,
            "gap_pct_vs_lp_joint": totj_gap,
        },
    )
    print(f"wrote {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("city", "lp"):
        s = sub.add_parser(name)
        s.add_argument("--items", type=int, default=20)
        s.add_argument("--warehouses", type=int, default=50)
        s.add_argument("--locations", type=int, default=None, help="default: households / 500")
        s.add_argument("--scarcity", type=float, default=0.6, help="stock / demand per item")
        s.add_argument(
            "--capacity-ratio",
            type=float,
            default=0.8,
            help="outbound capacity / weight of stock held (<= 0: unlimited)",
        )
        s.add_argument("--seed", type=int, default=0)
        s.add_argument("--repeat", type=int, default=3 if name == "city" else 7)
    sub.choices["city"].add_argument("--households", type=int, default=10_000_000)
    sub.choices["city"].add_argument("--skip-check", action="store_true")
    sub.choices["city"].add_argument(
        "--shuffle", action="store_true", help="random line order (not grouped by location)"
    )
    sub.choices["lp"].add_argument("--demands", type=int, default=100_000)
    sub.choices["lp"].add_argument("--lp-repeat", type=int, default=3)
    args = ap.parse_args()
    if args.cmd == "city":
        cmd_city(args)
    else:
        cmd_lp(args)


if __name__ == "__main__":
    main()
