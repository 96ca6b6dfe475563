"""Where a demo's time goes, by stage, from a py-spy profile of the whole process tree.

    .venv/bin/py-spy record -r 40 -f raw --subprocesses -o demo.txt -- \\
        .venv/bin/relieflink demo --scale 0.0028 --days 2 --out /tmp/demo
    .venv/bin/python benchmarks/demo/stages.py [--only _simulate] demo.txt [more.txt ...]

(py-spy is a measuring tool, not a dependency: install it into the venv to use this.) Each
sample goes to the first stage, in the order below, whose marker is on its stack: the outer
callers (a consultation, a courier's phone posting, the residents' batch) before what they
call, so that a medical request written by a consultation counts as the consultation's. Shares
of samples; on a busy machine a sample is a moment the process was running or waiting for a
core, so compare shares, and CPU seconds from ``bench_demo.py``. The main process waiting for
the policies' workers shows as samples too (under "imports and start-up", its outermost
frame): ``--only _simulate`` keeps the samples of the policies' workers.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

STAGES = (
    ("routing search (PyVRP)", "optim/routing/_pyvrp.py"),
    ("allocation: open lines read (load_lines)", "needs/allocation.py:"),
    ("allocation: the rest", "flows/allocation.py"),
    ("dispatch plan: write and the rest", "flows/dispatch.py"),
    ("consultations (and their medical requests)", "Residents._consult"),
    ("tracking events (loading, gates, doors)", "flows/delivery.py"),
    ("reconciliation and donor trace", "sim/metrics.py"),
    ("requests posted (create_requests)", "Residents.flush"),
    ("requests asked (the simulation's draws)", "Residents.requests"),
    ("simulation: fleet, trips, roll call", "sim/dispatching.py"),
    ("city generation", "relieflink/scenario/"),
    ("city load (bulk import)", "relieflink/bulk/"),
    ("report", "sim/report.py"),
    ("imports and start-up", "<module>"),
)


def shares(path: Path, only: str = "") -> tuple[Counter[str], int]:
    """Samples by stage in one py-spy raw file (collapsed stacks, one ``stack count`` a line),
    of the stacks that contain ``only``."""
    out: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or only not in stack:
            continue
        n = int(count)
        total += n
        out[next((name for name, marker in STAGES if marker in stack), "other")] += n
    return out, total


def main() -> None:
    args = sys.argv[1:]
    only = ""
    if args[:1] == ["--only"]:
        only, args = args[1], args[2:]
    paths = [Path(p) for p in args]
    tables = [shares(p, only) for p in paths]
    names = [name for name, _ in STAGES] + ["other"]
    print(f"{'stage':<45}" + "".join(f"{str(p)[-24:]:>26}" for p in paths))
    for name in names:
        cells = "".join(f"{100 * c[name] / max(t, 1):>25.1f}%" for c, t in tables)
        print(f"{name:<45}{cells}")


if __name__ == "__main__":
    main()
