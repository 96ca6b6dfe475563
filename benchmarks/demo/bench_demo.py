"""The demo end to end (``relieflink demo``: generate, load, both policies in parallel, report)
at several sizes: scale → wall time, CPU time, peak memory, households.

Each size runs the real CLI in a fresh process tree; CPU is user + system of the whole tree
(``RUSAGE_CHILDREN`` after it ended), peak memory is polled every 0.1 s with psutil per
process: the main process, the largest policy worker, and the tree's sum. The machine's load
average is printed before and after each run (shared machines skew wall time, not CPU).
Writes ``benchmarks/results/demo.json``.

    .venv/bin/python benchmarks/demo/bench_demo.py --households 5000 25000 100000 --days 2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from relieflink.scenario import figures as fg

RESULTS = Path(__file__).resolve().parents[1] / "results" / "demo.json"
HOUSEHOLDS_AT_SCALE_1 = fg.POPULATION_2020 / fg.PERSONS_PER_HOUSEHOLD


def _cli() -> str:
    return str(Path(sys.executable).with_name("relieflink"))


def run(households: int, days: int, seed: int) -> dict[str, Any]:
    scale = round(households / HOUSEHOLDS_AT_SCALE_1, 7)
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as tmp:
        out = Path(tmp)
        load_before = os.getloadavg()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        cmd = [_cli(), "demo", "--scale", str(scale), "--days", str(days), "--seed", str(seed)]
        proc = subprocess.Popen([*cmd, "--out", str(out)], stdout=subprocess.DEVNULL)
        root = psutil.Process(proc.pid)
        peak: dict[int, int] = {}
        peak_tree = 0
        while proc.poll() is None:
            try:
                tree = [root, *root.children(recursive=True)]
                total = 0
                for p in tree:
                    rss = p.memory_info().rss
                    peak[p.pid] = max(peak.get(p.pid, 0), rss)
                    total += rss
                peak_tree = max(peak_tree, total)
            except psutil.Error:
                pass
            time.sleep(0.1)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            raise SystemExit(f"demo failed at scale {scale}: exit {proc.returncode}")
        summary = json.loads((out / "summary.json").read_text())
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    workers = [v for pid, v in peak.items() if pid != proc.pid]
    n = int(summary["city"]["households"])
    return {
        "scale": scale,
        "households": n,
        "days": days,
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "cpu_ms_per_household": round(1000 * cpu / n, 2),
        "peak_main_mb": round(peak.get(proc.pid, 0) / 2**20),
        "peak_worker_mb": round(max(workers, default=0) / 2**20),
        "peak_tree_mb": round(peak_tree / 2**20),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, nargs="+", default=[5_000, 25_000, 100_000])
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rows = []
    header = (
        f"{'households':>10} {'scale':>9} {'wall s':>7} {'CPU s':>7} {'CPU ms/hh':>9} "
        f"{'main MB':>7} {'worker MB':>9} {'tree MB':>7}  load avg before/after (1 min)"
    )
    print(header)
    for households in args.households:
        r = run(households, args.days, args.seed)
        rows.append(r)
        print(
            f"{r['households']:>10,} {r['scale']:>9} {r['wall_s']:>7} {r['cpu_s']:>7} "
            f"{r['cpu_ms_per_household']:>9} {r['peak_main_mb']:>7} {r['peak_worker_mb']:>9} "
            f"{r['peak_tree_mb']:>7}  {r['load_before'][0]} / {r['load_after'][0]}",
            flush=True,
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"cpus": os.cpu_count(), "runs": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
