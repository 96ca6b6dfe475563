"""Scenario generator: time and peak memory, side by side with the loop a user would write.

Each variant runs in a fresh subprocess that reports its own wall time and peak RSS
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``), so the numbers do not mix.

* ``relieflink``      -- ``generate_city`` (vectorised numpy draws per block of communities,
                          one string join per block), all seven files.
* ``naive-stream``    -- the same household model written the obvious way: a Python loop per
                          household and per member with ``random``, ``csv.writer.writerow`` per
                          row (households.csv only; the other files are negligible).
* ``naive-list``      -- the same loop, but collecting every row in a list and writing at the
                          end (the other common shape; shows the memory cost of not streaming).

The naive variants run at ``--baseline-scale`` and are extrapolated linearly to the target
scale (their cost is per household); ``relieflink`` runs at both scales. Prints a table and
writes ``benchmarks/results/scenario_generate.json``.

    .venv/bin/python benchmarks/scenario/bench_generate.py --scale 1.0 --baseline-scale 0.05
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

RESULTS = Path(__file__).resolve().parents[1] / "results" / "scenario_generate.json"


# ---------------------------------------------------------------------------------------------
# workers (run in a subprocess)
# ---------------------------------------------------------------------------------------------


def _run_relieflink(scale: float, seed: int, out: Path) -> dict[str, Any]:
    from relieflink.scenario import generate_city

    m = generate_city("shanghai", scale=scale, seed=seed, out=out)
    size = sum(p.stat().st_size for p in m.files.values())
    return {"households": m.households, "population": m.population, "bytes": size}


def _naive_households(scale: float, seed: int, out: Path, *, collect: bool) -> dict[str, Any]:
    from relieflink.scenario import derived_rates, load_districts
    from relieflink.scenario import figures as fg
    from relieflink.scenario.generator import _plan_communities, _select_region, _subset

    rates = derived_rates()
    city = _plan_communities(load_districts("shanghai"), seed)
    comms = _subset(city, _select_region(city, scale))
    rnd = random.Random(seed)
    sizes = list(range(1, len(fg.HOUSEHOLD_SIZE_SHARES) + 1))
    shares = list(fg.HOUSEHOLD_SIZE_SHARES)
    header = ["code", "community_code", "building", "unit", "size", "infants", "pregnant"]
    header += ["chronic", "elderly_80", "disabled", "phone"]
    rows: list[list[object]] = []
    n = 0
    population = 0
    path = out / "households.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for code, residents in zip(comms.codes, comms.residents.tolist(), strict=True):
            left = residents
            local = 0
            while left > 0:
                size = min(rnd.choices(sizes, shares)[0], left)
                left -= size
                infants = pregnant = elderly = chronic = disabled = 0
                if size == 1:
                    elderly = int(rnd.random() < rates.p_alone_80)
                else:
                    infants = sum(rnd.random() < rates.p_infant for _ in range(size - 1))
                    slots = min(size - infants, fg.MAX_80_PLUS_PER_SHARED_HOUSEHOLD)
                    elderly = sum(rnd.random() < rates.p_shared_80 for _ in range(slots))
                    if size - infants - elderly >= 1:
                        pregnant = int(rnd.random() < rates.p_pregnant)
                for _ in range(size - infants):
                    chronic += rnd.random() < rates.p_chronic
                    disabled += rnd.random() < rates.p_disabled
                n += 1
                within = local % fg.HOUSEHOLDS_PER_BUILDING
                row: list[object] = [
                    f"H{n:08d}",
                    code,
                    local // fg.HOUSEHOLDS_PER_BUILDING + 1,
                    (within // fg.DOORS_PER_FLOOR + 1) * 100 + within % fg.DOORS_PER_FLOOR + 1,
                    size,
                    infants,
                    pregnant,
                    chronic,
                    elderly,
                    disabled,
                    f"{fg.PHONE_PREFIX}{n:08d}",
                ]
                local += 1
                population += size
                if collect:
                    rows.append(row)
                else:
                    writer.writerow(row)
        if collect:
            writer.writerows(rows)
    return {"households": n, "population": population, "bytes": path.stat().st_size}


def _worker(variant: str, scale: float, seed: int) -> None:
    import numpy  # noqa: F401  (imports are not part of the measurement)

    import relieflink.scenario  # noqa: F401

    with tempfile.TemporaryDirectory(prefix="bench-scenario-") as tmp:
        out = Path(tmp)
        started = time.perf_counter()
        if variant == "relieflink":
            info = _run_relieflink(scale, seed, out)
        elif variant == "naive-stream":
            info = _naive_households(scale, seed, out, collect=False)
        elif variant == "naive-list":
            info = _naive_households(scale, seed, out, collect=True)
        else:
            raise SystemExit(f"unknown variant {variant!r}")
        seconds = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_kb / 1024, **info}))


# ---------------------------------------------------------------------------------------------
# driver
# ---------------------------------------------------------------------------------------------


def _measure(variant: str, scale: float, seed: int) -> dict[str, Any]:
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        variant,
        "--scale",
        str(scale),
        "--seed",
        str(seed),
    ]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result.update(variant=variant, scale=scale)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--baseline-scale", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker, args.scale, args.seed)
        return

    small, full = args.baseline_scale, args.scale
    factor = full / small
    runs = [
        _measure("relieflink", small, args.seed),
        _measure("naive-stream", small, args.seed),
        _measure("naive-list", small, args.seed),
        _measure("relieflink", full, args.seed),
    ]
    ours_small, stream_small, list_small, ours_full = runs

    rows = []
    for r in runs:
        rows.append(
            (r["variant"], f"{r['scale']:g}", "measured", r["households"], r["seconds"],
             r["peak_rss_mb"])
        )  # fmt: skip
    # time is per household; the list's memory grows per row on top of the streaming loop's
    list_rss = (
        stream_small["peak_rss_mb"]
        + (list_small["peak_rss_mb"] - stream_small["peak_rss_mb"]) * factor
    )
    for r, rss in ((stream_small, stream_small["peak_rss_mb"]), (list_small, list_rss)):
        rows.append(
            (r["variant"], f"{full:g}", "extrapolated", round(r["households"] * factor),
             r["seconds"] * factor, rss)
        )  # fmt: skip

    cpu = psutil.cpu_count(logical=True)
    load = os.getloadavg()
    print(f"scenario generate: {platform.python_version()}, {cpu} CPUs, load {load[0]:.2f}")
    print(
        f"{'variant':<14}{'scale':>7}{'':>14}{'households':>12}{'seconds':>10}{'peak RSS MB':>13}"
    )
    for variant, scale, how, hh, secs, rss in rows:
        rss_s = f"{rss:13.0f}" if rss is not None else f"{'n/a':>13}"
        print(f"{variant:<14}{scale:>7}{how:>14}{hh:>12,}{secs:>10.1f}{rss_s}")
    ratio_small = stream_small["seconds"] / ours_small["seconds"]
    ratio_full = stream_small["seconds"] * factor / ours_full["seconds"]
    print(
        f"speed-up vs naive-stream: {ratio_small:.1f}x at scale {small:g} (measured), "
        f"{ratio_full:.1f}x at scale {full:g} (naive extrapolated)"
    )
    print(
        f"peak RSS at scale {full:g}: relieflink {ours_full['peak_rss_mb']:.0f} MB (measured), "
        f"naive-list ~{list_rss:.0f} MB (extrapolated)"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "python": platform.python_version(),
                "cpus": cpu,
                "load_avg_1m": load[0],
                "runs": runs,
                "extrapolation_factor": factor,
                "speedup_vs_naive_stream_measured": ratio_small,
                "speedup_vs_naive_stream_extrapolated": ratio_full,
                "naive_list_peak_rss_mb_extrapolated": list_rss,
            },
            indent=2,
        )
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
