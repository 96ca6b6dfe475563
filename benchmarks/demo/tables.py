"""Print the outcome tables of benchmarks/demo/README.md from demo runs' summary.json files.

    .venv/bin/python benchmarks/demo/tables.py NAME=DIR/summary.json [NAME=DIR/summary.json ...]

Each cell: the median over the run's seeds (range); waits in hours from asking to the whole
request delivered; "not reached": fewer than half delivered by the end (for that seed).
"Reserved in full": the eligible requests every line of which got its stock reserved by the end
(bounded by the stock and by what the free vehicles could carry at each wave); the ratio of
median waits is a lower bound where FCFS's median was not reached (24 h stands in for it).
Under each table, per kit: units received per unit asked (median over seeds, range).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from statistics import median
from typing import Any

GROUPS = ("infant", "pregnant", "chronic", "elderly", "other")


def _share(values: list[float | None]) -> str:
    known = [v for v in values if v is not None]  # None: no request of the group counted
    if not known:
        return "—"
    return f"{median(known) * 100:.1f}% ({min(known) * 100:.1f}%–{max(known) * 100:.1f}%)"


def _kit(seed: dict[str, Any], sku: str) -> float:
    return float(seed["priority"]["kits"][sku]["received_per_asked"] or 0)


def _ratio(values: list[float | None]) -> str:
    known = [v for v in values if v is not None]
    if not known:
        return "—"
    return f"{median(known):.1f}× ({min(known):.1f}–{max(known):.1f})"


def _wait(values: list[float | None]) -> str:
    reached = [v for v in values if v is not None]
    mid = median([math.inf if v is None else v for v in values])
    if not reached:
        return "not reached"
    span = f"{min(reached):.1f}–{max(reached):.1f}"
    missing = len(values) - len(reached)
    if mid == math.inf:
        return f"not reached ({span}, {missing} not reached)"
    return f"{mid:.1f} ({span})" + (f", {missing} not reached" if missing else "")


def table(name: str, summary: dict[str, Any]) -> str:
    seeds = summary["per_seed"]
    head = (
        f"### {name}: seeds {summary['seeds']}, supply {summary['supply_ratio']}, households "
        f"{[s['households'] for s in seeds]}, ledger {summary['ledger_reconciled']}"
    )
    rows = [
        head,
        "| group | priority 24 h served, median (range) | priority: reserved in full | priority: "
        "24 h served of those reserved in full | FCFS 24 h served | priority median wait h "
        "| FCFS median wait h | FCFS / priority median wait, at least |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for group in GROUPS:
        mine = [s["priority"]["groups"][group] for s in seeds]
        fcfs = [s["fifo"]["groups"][group] for s in seeds]
        cells = [
            _share([g["served_within_24h"] for g in mine]),
            _share([g["allocated_in_full"] for g in mine]),
            _share([g["served_within_24h_of_allocated"] for g in mine]),
            _share([g["served_within_24h"] for g in fcfs]),
            _wait([g["median_hours_to_delivery"] for g in mine]),
            _wait([g["median_hours_to_delivery"] for g in fcfs]),
            _ratio([g["fcfs_median_wait_ratio_at_least"] for g in mine]),
        ]
        rows.append(f"| {group} | " + " | ".join(cells) + " |")
    cost = {p: summary[p]["cost_per_delivered_pack_yuan"] for p in ("priority", "fifo")}
    spread = {p: summary["spread"][p]["cost_per_delivered_pack_yuan"] for p in cost}
    rows.append(
        f"| cost ¥/pack (median over seeds; range) | {cost['priority']} ({spread['priority']}) "
        f"| | | {cost['fifo']} ({spread['fifo']}) | ratio {cost['priority'] / cost['fifo']:.2f} "
        "| | |"
    )
    rows.append(
        "| routes driven, waves (median) | "
        f"{summary['priority']['routes_driven']}, {summary['priority']['waves']} | "
        f"| | {summary['fifo']['routes_driven']}, {summary['fifo']['waves']} | | | |"
    )
    kits = sorted({sku for s in seeds for sku in s["priority"]["kits"]})
    rows.append("")
    rows.append(
        "Kits received per unit asked (priority): "
        + "; ".join(f"{sku} {_share([_kit(s, sku) for s in seeds])}" for sku in kits)
    )
    return "\n".join(rows)


def main(args: list[str]) -> None:
    for arg in args:
        name, _, path = arg.partition("=")
        print(table(name, json.loads(Path(path).read_text())))
        print()


if __name__ == "__main__":
    main(sys.argv[1:])
