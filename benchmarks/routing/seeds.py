"""Mean over seeds of `run.py` results: one row per instance and solver, and the issue's verdict.

    .venv/bin/python benchmarks/routing/seeds.py RUN.json [RUN.json ...] [--markdown OUT.md]

Each file is one `run.py` run (its seed is read from the command it records). A row gives the
mean gap over the seeds whose plan was feasible, the seeds' gaps, the mean CPU seconds and the
load at each run's start. "Engine not worse than PyVRP" is the issue's rule: the engine's mean
over seeds is not higher than plain PyVRP's, or within 0.1 percentage point of it. Gaps are to
the BKS, or to the reference where the run marked it so, or to the reference file's cost
(`--reference`, default `reference.json` beside this script) for instances with no BKS whose
runs predate the reference; with neither, the mean cost is shown, and the engine's mean cost
over PyVRP's.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path
from statistics import mean
from typing import Any

from run import load_reference

ORDER = ["engine", "pyvrp", "ortools", "vroom"]
NOT_WORSE_PP = 0.1  # "not worse": within this many percentage points


def _seed(command: str) -> int:
    found = re.search(r"--seed\s+(\d+)", command)
    return int(found.group(1)) if found else 1


def load(files: list[Path]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The rows of every file, each with its run's seed; and each run's meta (seed, loads)."""
    rows, runs = [], []
    for f in files:
        data = json.loads(f.read_text())
        seed = _seed(data.get("command", ""))
        runs.append(
            {"file": f.name, "seed": seed, **{k: data.get(k) for k in ("load_start", "load_end")}}
        )
        rows += [r | {"seed": seed} for r in data["rows"]]
    return rows, runs


def with_reference(rows: list[dict[str, Any]], reference: dict[str, float]) -> None:
    """Give a gap to ``reference`` to the feasible rows that have no gap (no BKS, and no
    reference when they ran)."""
    for r in rows:
        ref = reference.get(r["instance"])
        if ref and r.get("gap_pct") is None and r.get("feasible") == "ok" and not r.get("bks"):
            r["gap_pct"] = round(100 * (r["cost"] / ref - 1), 2)
            r["gap_to"] = "reference"


def aggregate(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (instance, solver): per-seed gaps (None where infeasible) and costs, mean gap, CPU."""
    # A seed run twice for a solver (e.g. again after it failed to start): its feasible row.
    best: dict[tuple[str, str, int], dict[str, Any]] = {}
    for r in rows:
        key = (r["instance"], r["solver"], r["seed"])
        if key not in best or (r.get("feasible") == "ok") > (best[key].get("feasible") == "ok"):
            best[key] = r
    cells: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for (instance, solver, _), r in best.items():
        cells[instance, solver].append(r)
    out = {}
    for key, rs in cells.items():
        rs.sort(key=lambda r: r["seed"])
        gaps = [r.get("gap_pct") if r.get("feasible") == "ok" else None for r in rs]
        failed = [str(r.get("note", "")).startswith("error") for r in rs]
        known = [g for g in gaps if g is not None]
        out[key] = {
            "n": rs[0].get("n"),
            "regime": rs[0].get("regime", "-"),
            "gaps": gaps,
            "costs": [r.get("cost") for r in rs],
            "failed": failed,
            "mean_gap": mean(known) if len(known) == len(gaps) and known else None,
            # Without a BKS or reference there is no gap: the feasible plans' mean cost instead.
            "mean_cost": mean(r["cost"] for r in rs)
            if all(r.get("feasible") == "ok" for r in rs)
            else None,
            "cpu_s": mean(r.get("cpu_s", 0.0) for r in rs),
            "peak_mb": max(r.get("peak_mem_mb", 0) for r in rs),
        }
    return out


def markdown(rows: list[dict[str, Any]], runs: list[dict[str, Any]]) -> str:
    cells = aggregate(rows)
    instances = list(dict.fromkeys(r["instance"] for r in rows))
    solvers = sorted({s for _, s in cells}, key=lambda s: ORDER.index(s) if s in ORDER else 99)
    head = "| instance | n | regime | " + " | ".join(f"{s}: mean gap % (per seed)" for s in solvers)
    lines = [head + " | engine vs PyVRP |", "|---|---:|---|" + "---|" * len(solvers) + "---|"]
    for inst in instances:
        any_cell = next(cells[inst, s] for s in solvers if (inst, s) in cells)
        texts = []
        for s in solvers:
            c = cells.get((inst, s))
            if c is None:
                texts.append("—")
                continue
            per = " / ".join(
                ("failed to run" if bad else "infeasible") if g is None else f"{g:.2f}"
                for g, bad in zip(c["gaps"], c["failed"], strict=True)
            )
            m = "—" if c["mean_gap"] is None else f"**{c['mean_gap']:.2f}**"
            if c["mean_gap"] is None and c["mean_cost"] is not None:
                per = " / ".join(f"{r:,.0f}" for r in c["costs"])
                m = f"cost **{c['mean_cost']:,.0f}**"
            texts.append(f"{m} ({per}; {c['cpu_s']:.0f} CPU s, {c['peak_mb']} MB)")
        eng, pyv = cells.get((inst, "engine")), cells.get((inst, "pyvrp"))
        verdict = "—"
        if eng and pyv and eng["mean_gap"] is not None and pyv["mean_gap"] is not None:
            d = eng["mean_gap"] - pyv["mean_gap"]
            verdict = f"{d:+.2f} pp: " + ("not worse" if d <= NOT_WORSE_PP else "worse")
        elif eng and pyv and eng["mean_cost"] and pyv["mean_cost"]:
            ratio = eng["mean_cost"] / pyv["mean_cost"]
            verdict = f"cost ratio {ratio:.4f}: " + ("better" if ratio < 1 else "not better")
        lines.append(
            f"| {inst} | {any_cell['n']} | {any_cell['regime']} | "
            + " | ".join(texts)
            + f" | {verdict} |"
        )
    lines.append("")
    for regime in sorted({c["regime"] for c in cells.values()}):
        for s in solvers:
            means = [
                c["mean_gap"]
                for (_, solver), c in cells.items()
                if solver == s and c["regime"] == regime and c["mean_gap"] is not None
            ]
            if means:
                lines.append(
                    f"- regime {regime}, {s}: mean of the instances' mean gaps "
                    f"**{mean(means):.2f} %** over {len(means)} instances"
                )
    referenced = sorted({r["instance"] for r in rows if r.get("gap_to") == "reference"})
    if referenced:
        lines.append(
            f"- gaps of {', '.join(referenced)} are to a *reference* plan of our own runs "
            "(reference.json: its cost and how it was found), not to a published best known"
        )
    lines.append("")
    lines.append(
        "Runs: "
        + "; ".join(
            f"seed {r['seed']} ({r['file']}, load {r['load_start']} → {r['load_end']})"
            for r in runs
        )
    )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--markdown", type=Path, help="also write the table here")
    ap.add_argument(
        "--reference",
        type=Path,
        default=Path(__file__).with_name("reference.json"),
        help="JSON {instance: {cost, how}} for instances with no BKS (see run.py)",
    )
    args = ap.parse_args()
    rows, runs = load(args.files)
    with_reference(rows, load_reference(args.reference))
    text = markdown(rows, runs)
    print(text)
    if args.markdown:
        args.markdown.write_text(text)


if __name__ == "__main__":
    main()
