"""The demo: a synthetic city, loaded once, then two simulated relief days under the priority
policy and under first-come-first-served, on the same city, stock and events; a summary and an
HTML report that shows the difference."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
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
from relieflink.scenario import generate_city
from relieflink.sim.metrics import donor_trace, outcome, reconcile
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


def _simulate(
    db_path: Path, policy: Policy, days: int, seed: int
) -> tuple[dict[str, Any], SimLog, bool]:
    """One policy on its own copy of the loaded city (a separate process)."""
    security.use_low_cost_hashing()  # its residents, couriers and doctor are synthetic
    engine = build_engine(f"sqlite:///{db_path}")
    # The simulation holds the city's rows for its whole run: do not expire them per commit.
    with Session(engine, expire_on_commit=False) as session:
        log = Simulation(session, policy=policy, days=days, seed=seed).run()
        check = reconcile(session, log)
        figures = outcome(log, days=days) | {
            "reconciliation": asdict(check),
            "donors": donor_trace(session, log),
        }
    engine.dispose()
    return figures, log, check.ok


def run_demo(
    *, out: Path, seed: int, scale: float, days: int, progress: Progress | None = None
) -> DemoResult:
    """Generate, load, simulate both policies and write ``summary.json`` and ``index.html``."""
    step = progress or (lambda _msg: None)
    started = perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    step(f"generating a synthetic Shanghai at scale {scale}")
    manifest = generate_city(scale=scale, seed=seed, out=out / "city")
    base = out / "city.db"
    url = _fresh(base)
    step("creating the database and loading the city")
    upgrade(url)
    engine = build_engine(url)
    with Session(engine) as session:
        catalog.seed_catalog(session, actor=None)
        counts = {
            kind: bulk.import_file(session, kind, manifest.files[kind], actor=None).created
            for kind in IMPORT_ORDER
        }
        # The carriers' fleets as the scenario sized them (no factor), through the fleet service.
        fleet.import_fleet(session, manifest.files["vehicles"], actor=None)
        counts["vehicles"] = sum(v.count for v in fleet.list_vehicles(session))
        session.commit()
    engine.dispose()

    summary: dict[str, Any] = {"seed": seed, "scale": scale, "days": days, "city": counts}
    step(f"simulating {days} days under each policy (in parallel)")
    jobs = {}
    for policy in POLICIES:
        db_path = out / f"relieflink-{policy}.db"
        _fresh(db_path)
        shutil.copyfile(base, db_path)
        jobs[policy] = (db_path, policy, days, seed)
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
    summary["seconds"] = round(perf_counter() - started, 1)
    step("writing the report")
    (out / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    report = write_report(out, summary, logs)
    return DemoResult(summary=summary, report=report, seconds=summary["seconds"], logs=logs)
