"""Run one benchmark against two checkouts in one run: before and after a change, side by side.

Each checkout runs the benchmark with its own ``.venv`` and working directory (so each measures
its own code), alternately ``--rounds`` times, under the same machine conditions; the load
average is printed before every run. The benchmark's own table is printed as it comes, labelled.

    git worktree add /tmp/before <commit> && make -C /tmp/before install-bench
    .venv/bin/python benchmarks/ab.py --before /tmp/before --after . -- \\
        benchmarks/dispatch/bench_tracking.py --rate 200 --seconds 20

The command after ``--`` is a path relative to the checkout, then its arguments.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path


def run(label: str, checkout: Path, command: list[str]) -> tuple[float, float, int]:
    """Run the benchmark in ``checkout``; returns wall seconds, child CPU seconds, exit code."""
    python = checkout / ".venv" / "bin" / "python"
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\n===== {label}: {checkout} (load average {load})", flush=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    code = subprocess.call([str(python), *command], cwd=checkout)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True)
    parser.add_argument("--after", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the benchmark after --")
    totals: list[tuple[str, int, float, float, int]] = []
    for round_ in range(1, args.rounds + 1):
        for label, checkout in (("before", args.before), ("after", args.after)):
            wall, cpu, code = run(f"{label} #{round_}", checkout.resolve(), command)
            totals.append((label, round_, wall, cpu, code))
    print(f"\n{'checkout':<8} {'round':>5} {'wall s':>8} {'CPU s':>8} {'exit':>4}")
    for label, round_, wall, cpu, code in totals:
        print(f"{label:<8} {round_:>5} {wall:>8.1f} {cpu:>8.1f} {code:>4}")
    return max(code for *_, code in totals)


if __name__ == "__main__":
    sys.exit(main())
