"""A small simulated day on the test database: its counts must reconcile with the ledger."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relieflink.bulk import service as bulk
from relieflink.catalog import service as catalog
from relieflink.models import AuditEvent, NeedRequest
from relieflink.scenario import generate_city
from relieflink.sim.metrics import GROUPS, outcome, reconcile
from relieflink.sim.simulation import Simulation


@pytest.fixture
def small_city(db: Session, tmp_path: Path) -> Session:
    manifest = generate_city(scale=0.0001, seed=3, out=tmp_path / "city")
    catalog.seed_catalog(db, actor=None)
    for kind in ("organizations", "districts", "communities", "warehouses", "households"):
        bulk.import_file(db, kind, manifest.files[kind], actor=None)
    db.commit()
    return db


@pytest.mark.parametrize("policy", ["priority", "fifo"])
def test_a_simulated_day_reconciles_with_the_ledger(small_city: Session, policy: str) -> None:
    db = small_city
    log = Simulation(db, policy=policy, days=1, seed=3).run()  # type: ignore[arg-type]
    check = reconcile(db, log)
    assert check.ledger_problems == []
    assert check.donors_unbalanced == []
    assert check.delivered_by_ledger == check.delivered_by_simulation > 0
    assert check.ok
    # Every request the simulation counts (accepted from households, or written as a
    # prescription by a doctor) is in the database, and nothing else is.
    prescriptions = log.answers["consultations closed with a prescription"]
    assert prescriptions > 0
    assert db.scalar(select(func.count()).select_from(NeedRequest)) == (
        log.answers["accepted"] + prescriptions
    )
    assert log.answers["refused as invalid"] > 0
    figures = outcome(log, days=1)
    assert figures["delivered_packs"] + figures["unmet_packs"] == sum(
        r.packs for r in log.requests.values()
    )
    assert set(figures["groups"]) == set(GROUPS)
    # The simulation writes through the services: its writes are audited like anyone's.
    assert (
        db.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "deliver")
        )
        > 0
    )
