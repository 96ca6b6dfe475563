"""The demo: a synthetic city loaded into a fresh embedded database through the real services.

Later stages (stock, allocation, dispatch, consultations, the simulated days and the HTML report)
add their steps here as they land; each step reports progress through one callback.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from time import perf_counter

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relieflink.bulk import service as bulk
from relieflink.catalog import service as catalog
from relieflink.db.engine import build_engine
from relieflink.db.migrations import upgrade
from relieflink.models import Community, Household, Kit, LockdownStatus
from relieflink.scenario import generate_city

Progress = Callable[[str], None]
IMPORT_ORDER = ("organizations", "districts", "communities", "warehouses", "households")


@dataclass
class DemoSummary:
    seed: int
    scale: float
    database: str
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    vulnerable_households: dict[str, int] = field(default_factory=dict)
    lockdown: dict[str, int] = field(default_factory=dict)
    kits: dict[str, float] = field(default_factory=dict)


def run_demo(
    *, out: Path, seed: int, scale: float, progress: Progress | None = None
) -> DemoSummary:
    """Generate a city, load it into ``out/relieflink-demo.db`` and summarise what is there."""
    step = progress or (lambda _msg: None)
    started = perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    db_path = out / "relieflink-demo.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    url = f"sqlite:///{db_path}"
    summary = DemoSummary(seed=seed, scale=scale, database=str(db_path))

    step("creating the database")
    upgrade(url)
    step(f"generating a synthetic Shanghai at scale {scale}")
    manifest = generate_city(scale=scale, seed=seed, out=out / "city")

    engine = build_engine(url)
    with Session(engine) as session:
        step("loading the reference catalog")
        catalog.seed_catalog(session, actor=None)
        for kind in IMPORT_ORDER:
            step(f"importing {kind}")
            report = bulk.import_file(session, kind, manifest.files[kind], actor=None)
            summary.counts[kind] = report.created
        session.commit()
        _describe(session, summary)
    engine.dispose()
    summary.seconds = round(perf_counter() - started, 2)
    (out / "summary.json").write_text(json.dumps(asdict(summary), indent=2, ensure_ascii=False))
    return summary


def _describe(session: Session, summary: DemoSummary) -> None:
    for name in ("infants", "pregnant", "chronic", "elderly_80", "disabled"):
        column = getattr(Household, name)
        summary.vulnerable_households[name] = (
            session.scalar(select(func.count()).where(column > 0)) or 0
        )
    for status in LockdownStatus:
        summary.lockdown[status.value] = (
            session.scalar(select(func.count()).where(Community.lockdown_status == status)) or 0
        )
    for kit in session.scalars(select(Kit).order_by(Kit.id)):
        summary.kits[kit.sku] = catalog.kit_nutrition(kit).kcal_per_person_day


__all__ = ["DemoSummary", "run_demo"]
