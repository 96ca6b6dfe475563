"""Household import: ``relieflink import`` (bulk) side by side with a per-row import a user would
write (one validated ``create_household`` service call per row, the API's path), on SQLite and
PostgreSQL, in one run.

The bulk import runs on the full file; the per-row baseline runs on the first ``--baseline-rows``
rows of the same file, in a fresh database, and is extrapolated linearly (its cost is per row).
Targets (issue 2): 1,000,000 households in ≤ 60 s on PostgreSQL and ≤ 120 s on SQLite.

    .venv/bin/python benchmarks/bulk/bench_import.py --households 1000000
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sqlalchemy.orm import Session

from _db import fresh_database as shared_fresh_database

RESULTS = Path(__file__).resolve().parents[1] / "results" / "bulk_import.json"
HOUSEHOLDS_AT_FULL_SCALE = 10_726_539
PREREQUISITES = ("organizations", "districts", "communities")


def fresh_database(kind: str, workdir: Path, name: str) -> str:
    return shared_fresh_database(kind, name, workdir)


def prepare(url: str, city: Path) -> None:
    from relieflink.bulk import service as bulk
    from relieflink.db.engine import build_engine
    from relieflink.db.migrations import upgrade

    upgrade(url)
    engine = build_engine(url)
    with Session(engine) as session:
        for kind in PREREQUISITES:
            bulk.import_file(session, kind, city / f"{kind}.csv", actor=None)
        session.commit()
    engine.dispose()


def bulk_import(url: str, path: Path) -> dict[str, Any]:
    from relieflink.bulk import service as bulk
    from relieflink.db.engine import build_engine

    engine = build_engine(url)
    started = time.perf_counter()
    with Session(engine) as session:
        report = bulk.import_file(session, "households", path, actor=None)
        session.commit()
    seconds = time.perf_counter() - started
    engine.dispose()
    return {"rows": report.created, "seconds": seconds}


def per_row_import(url: str, path: Path, rows: int) -> dict[str, Any]:
    """What a user without a bulk path does: validate and create one household at a time."""
    from relieflink.common import repository as common
    from relieflink.db.engine import build_engine
    from relieflink.households import service as households
    from relieflink.households.schemas import HouseholdCreate
    from relieflink.models import Community, Role, User

    engine = build_engine(url)
    with Session(engine) as session:
        actor = User(username="bench", full_name="bench", role=Role.admin, password_hash="x")
        session.add(actor)
        session.flush()
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            sample = list(itertools.islice(reader, rows))
        ids = common.ids_by_code(session, Community, {r["community_code"] for r in sample})
        started = time.perf_counter()
        for row in sample:
            values = {k: v for k, v in row.items() if v != ""}
            values["community_id"] = ids[values.pop("community_code")]
            households.create_household(
                session, HouseholdCreate.model_validate(values), actor=actor
            )
        session.commit()
        seconds = time.perf_counter() - started
    engine.dispose()
    return {"rows": len(sample), "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=1_000_000)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--baseline-rows", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    from relieflink.scenario import generate_city

    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        scale = min(1.0, args.households / HOUSEHOLDS_AT_FULL_SCALE * 1.002)
        manifest = generate_city(scale=scale, seed=args.seed, out=workdir / "city")
        path = manifest.files["households"]
        print(f"generated {manifest.households:,} households at scale {scale:.4f}", flush=True)
        for kind in args.databases.split(","):
            url = fresh_database(kind, workdir, "bench_import_bulk")
            prepare(url, workdir / "city")
            bulk = bulk_import(url, path)
            url = fresh_database(kind, workdir, "bench_import_rows")
            prepare(url, workdir / "city")
            rows = per_row_import(url, path, args.baseline_rows)
            per_row_total = rows["seconds"] / rows["rows"] * bulk["rows"]
            results.append(
                {
                    "database": kind,
                    "households": bulk["rows"],
                    "bulk_seconds": round(bulk["seconds"], 1),
                    "bulk_rows_per_second": round(bulk["rows"] / bulk["seconds"]),
                    "per_row_sample": rows["rows"],
                    "per_row_seconds_extrapolated": round(per_row_total, 1),
                    "speed_up": round(per_row_total / bulk["seconds"], 1),
                    "target_seconds": 60 if kind == "postgresql" else 120,
                }
            )
            print(results[-1], flush=True)

    print()
    print(
        f"{'database':<11}{'households':>12}{'bulk s':>9}{'rows/s':>10}"
        f"{'per-row s*':>12}{'speed-up':>10}{'target s':>10}"
    )
    for r in results:
        print(
            f"{r['database']:<11}{r['households']:>12,}{r['bulk_seconds']:>9}{r['bulk_rows_per_second']:>10,}"
            f"{r['per_row_seconds_extrapolated']:>12}{r['speed_up']:>9}x{r['target_seconds']:>10}"
        )
    print("* per-row: one validated create_household call per row, extrapolated from the sample")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "results": results,
                "peak_rss_mb": round(peak),
                "python": sys.version.split()[0],
                "machine": platform.machine(),
                "cpus": os.cpu_count(),
            },
            indent=2,
        )
    )
    print(f"peak RSS {peak:.0f} MB; wrote {RESULTS}")


if __name__ == "__main__":
    main()
