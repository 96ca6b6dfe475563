"""The demo: a synthetic city, loaded once, then two simulated relief days under the priority
policy and under first-come-first-served, on the same city, stock and events; a summary and an
HTML report that shows the difference."""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from time import perf_counter
from typing import Any

from relieflink.bulk import service as bulk
from relieflink.catalog import service as catalog
from relieflink.db import Session
from relieflink.db.engine import build_engine
from relieflink.db.migrations import upgrade
from relieflink.dispatch import fleet
from relieflink.reports import service as reads
from relieflink.scenario import generate_city
from relieflink.sim.assumptions import ASSUMPTIONS, SimAssumptions, with_changes
from relieflink.sim.metrics import (
    donor_trace,
    median_over,
    outcome,
    reconcile,
    spread_over,
    wait_ratio_to_fcfs,
)
from relieflink.sim.report import write_report
from relieflink.sim.simulation import Policy, SimLog, Simulation
from relieflink.users import security

Progress = Callable[[str], None]
IMPORT_ORDER = ("organizations", "districts", "communities", "warehouses", "households", "teams")
POLICIES: tuple[Policy, ...] = ("priority", "fifo")


@dataclass
class DemoResult:
    summary: dict[str, Any]
    report: Path
    seconds: float
    logs: dict[str, SimLog] = field(default_factory=dict)


def _fresh(path: Path) -> str:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{path}"


def _fleet_file(path: Path, extra_trucks: int, out: Path) -> Path:
    """The scenario's ``vehicles.csv``, or a copy of it in ``out`` with ``extra_trucks`` more
    trucks in each truck group."""
    if not extra_trucks:
        return path
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns, rows = reader.fieldnames or [], list(reader)
    for row in rows:
        if row["kind"] == "truck":
            row["count"] = str(int(row["count"]) + extra_trucks)
    what_if = out / "vehicles-what-if.csv"
    with what_if.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows(rows)
    return what_if


def _simulate(
    db_path: Path, policy: Policy, days: int, seed: int, assumptions: SimAssumptions
) -> tuple[dict[str, Any], SimLog, bool]:
    """One policy on its own copy of the loaded city (a separate process)."""
    security.use_low_cost_hashing()  # its residents, couriers and doctor are synthetic
    engine = build_engine(f"sqlite:///{db_path}")
    # The simulation holds the city's rows for its whole run: do not expire them per commit.
    with Session(engine, expire_on_commit=False) as session:
        log = Simulation(
            session, policy=policy, days=days, seed=seed, assumptions=assumptions
        ).run()
        check = reconcile(session, log)
        figures = outcome(log, days=days, fleet=reads.fleet_mix(session)) | {
            "reconciliation": asdict(check),
            "donors": donor_trace(session, log),
        }
    engine.dispose()
    return figures, log, check.ok


def _one_seed(
    out: Path, *, seed: int, scale: float, days: int, assumptions: SimAssumptions, step: Progress
) -> tuple[dict[str, Any], dict[str, SimLog]]:
    """Generate and load the city of ``seed``, and simulate both policies on copies of it."""
    out.mkdir(parents=True, exist_ok=True)
    step(f"seed {seed}: generating a synthetic Shanghai at scale {scale}")
    manifest = generate_city(scale=scale, seed=seed, out=out / "city")
    base = out / "city.db"
    url = _fresh(base)
    step(f"seed {seed}: creating the database and loading the city")
    upgrade(url)
    engine = build_engine(url)
    with Session(engine) as session:
        catalog.seed_catalog(session, actor=None)
        counts = {
            kind: bulk.import_file(session, kind, manifest.files[kind], actor=None).created
            for kind in IMPORT_ORDER
        }
        # The carriers' fleets as the scenario sized them (no factor), through the fleet service;
        # a what-if's extra trucks as a fleet file a coordinator would import.
        vehicles = _fleet_file(manifest.files["vehicles"], assumptions.extra_trucks, out)
        fleet.import_fleet(session, vehicles, actor=None)
        counts["vehicles"] = sum(v.count for v in fleet.list_vehicles(session))
        session.commit()
    engine.dispose()

    summary: dict[str, Any] = {"seed": seed, "city": counts}
    step(f"seed {seed}: simulating {days} days under each policy (in parallel)")
    jobs = {}
    for policy in POLICIES:
        db_path = out / f"relieflink-{policy}.db"
        _fresh(db_path)
        shutil.copyfile(base, db_path)
        jobs[policy] = (db_path, policy, days, seed, assumptions)
    with ProcessPoolExecutor(max_workers=len(POLICIES)) as pool:
        futures = {policy: pool.submit(_simulate, *job) for policy, job in jobs.items()}
        results = {policy: future.result() for policy, future in futures.items()}
    logs: dict[str, SimLog] = {}
    reconciled = True
    for policy, (figures, log, ok) in results.items():
        logs[policy] = log
        summary[policy] = figures
        reconciled = reconciled and ok
    summary["ledger_reconciled"] = reconciled
    wait_ratio_to_fcfs(summary["priority"]["groups"], summary["fifo"]["groups"])
    return summary, logs


def run_demo(
    *,
    out: Path,
    seed: int,
    scale: float,
    days: int,
    seeds: int = 1,
    supply: float | None = None,
    assume: Mapping[str, str] | None = None,
    progress: Progress | None = None,
) -> DemoResult:
    """Generate, load and simulate both policies for seeds ``seed … seed+seeds-1``; write
    ``summary.json`` (each figure the median over the seeds, its range under ``spread``) and
    ``index.html`` (the maps and curves of the first seed). ``assume`` changes assumptions by
    name (a what-if; :func:`relieflink.sim.assumptions.with_changes`): it is checked before
    anything is written, and the summary lists what it changed."""
    step = progress or (lambda _msg: None)
    started = perf_counter()
    changes = dict(assume or {})
    if supply is not None:
        changes["supply_ratio"] = str(supply)
    assumptions = with_changes(ASSUMPTIONS, changes)
    changed = {
        name: getattr(assumptions, name)
        for name in sorted(changes)
        if getattr(assumptions, name) != getattr(ASSUMPTIONS, name)
    }
    out.mkdir(parents=True, exist_ok=True)
    runs = []
    first_logs: dict[str, SimLog] = {}
    for k in range(seeds):
        folder = out if seeds == 1 else out / f"seed-{seed + k}"
        figures, logs = _one_seed(
            folder, seed=seed + k, scale=scale, days=days, assumptions=assumptions, step=step
        )
        runs.append(figures)
        first_logs = first_logs or logs
    first = runs[0]
    summary: dict[str, Any] = {
        "seed": seed,
        "seeds": [r["seed"] for r in runs],
        "scale": scale,
        "days": days,
        "delivery_days_after_last_request": assumptions.delivery_days_after_last_request,
        "supply_ratio": assumptions.supply_ratio,
        # What this run assumed differently from ``sim/assumptions.py`` (``--assume``).
        "assumptions_changed": changed,
        "households": first["city"]["households"],
        "city": first["city"],
    }
    for policy in POLICIES:
        summary[policy] = median_over([r[policy] for r in runs])
    summary["spread"] = {policy: spread_over([r[policy] for r in runs]) for policy in POLICIES}
    summary["per_seed"] = [
        {"seed": r["seed"], "households": r["city"]["households"]}
        | {
            policy: {"groups": r[policy]["groups"], "kits": r[policy]["kits"]}
            for policy in POLICIES
        }
        for r in runs
    ]
    summary["ledger_reconciled"] = all(r["ledger_reconciled"] for r in runs)
    summary["seconds"] = round(perf_counter() - started, 1)
    step("writing the report")
    (out / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    report = write_report(out, summary, first_logs)
    return DemoResult(summary=summary, report=report, seconds=summary["seconds"], logs=first_logs)
