"""The CLI end to end (import a fleet, plan, write a manifest) and a damaged parcel."""

from __future__ import annotations

import uuid
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from relieflink.cli.main import app
from relieflink.dispatch import fleet
from relieflink.dispatch.schemas import EventIn
from relieflink.flows import delivery
from relieflink.flows import dispatch as dispatch_flow
from relieflink.models import (
    AdjustmentReason,
    NeedRequest,
    Parcel,
    ParcelLine,
    Route,
    StockMovement,
    Vehicle,
)
from relieflink.stock import service as stock
from tests.dispatch.factories import TODAY, make_city


def test_cli_imports_a_fleet_plans_and_prints_a_manifest(db: Session, tmp_path: Path) -> None:
    city = make_city(db)
    db.execute(Vehicle.__table__.delete())  # the CLI brings its own fleet
    db.commit()
    fleet_csv = tmp_path / "vehicles.csv"
    fleet_csv.write_text(
        ",".join(fleet.FLEET_COLUMNS)
        + "\n"
        + f"V1,{city.carrier.code},van,{city.warehouse.code},2,800,5,30,250,07:00,19:00\n"
        + f"V2,{city.carrier.code},robot,{city.warehouse.code},1,200,2,15,100,06:00,22:00\n"
    )
    runner = CliRunner()
    result = runner.invoke(app, ["dispatch", "import-fleet", str(fleet_csv)])
    assert result.exit_code == 0, result.output
    day = ["dispatch", "plan", "--date", TODAY.isoformat()]
    result = runner.invoke(app, [*day, "--time-limit", "0.3", "--iterations", "30"])
    assert result.exit_code == 2
    assert "only one of --time-limit and --iterations" in result.output
    result = runner.invoke(app, [*day, "--iterations", "30", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "6 of 6 parcels planned" in result.output
    db.rollback()  # see what the CLI committed
    route = db.scalars(select(Route)).first()
    assert route is not None
    out = tmp_path / "route.html"
    result = runner.invoke(app, ["dispatch", "manifest", str(route.id), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Manifest" in out.read_text(encoding="utf-8")
    result = runner.invoke(
        app, ["dispatch", "manifests", str(route.plan_id), "--out", str(tmp_path / "all")]
    )
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in (tmp_path / "all").iterdir())
    routes = db.scalars(select(Route.id).where(Route.plan_id == route.plan_id)).all()
    assert written == sorted(f"route-{r}.csv" for r in routes)
    bad = tmp_path / "bad.csv"
    bad.write_text(",".join(fleet.FLEET_COLUMNS) + "\nV3,NOPE,van,W,1,1,1,1,1,07:00,08:00\n")
    result = runner.invoke(app, ["dispatch", "import-fleet", str(bad)])
    assert result.exit_code == 1
    assert "line 2, carrier_code" in result.output


def test_a_damaged_parcel_is_written_off_and_the_request_carried_over(db: Session) -> None:
    city = make_city(db)
    dispatch_flow.plan_dispatch(db, day=TODAY, actor=None, time_limit=0.3)
    db.commit()
    parcel = db.scalars(select(Parcel)).first()
    assert parcel is not None
    for kind, target in (
        ("loaded", {"parcel_id": parcel.id}),
        ("departed", {"route_id": parcel.route_id}),
    ):
        delivery.record_event(
            db,
            EventIn.model_validate(
                {"client_event_id": f"e-{uuid.uuid4()}", "kind": kind, **target}
            ),
            actor=city.admin,
        )
    out = delivery.record_event(
        db,
        EventIn(
            client_event_id=f"e-{uuid.uuid4()}",
            kind="failed",
            parcel_id=parcel.id,
            reason="damaged",
        ),
        actor=city.admin,
    )
    db.commit()
    lines = db.scalars(select(ParcelLine).where(ParcelLine.parcel_id == parcel.id)).all()
    assert out.result["written_off"] == sum(line.quantity for line in lines)
    for line in lines:
        moved = db.scalars(
            select(StockMovement).where(StockMovement.reference == line.reference)
        ).all()
        assert sum(m.d_on_hand for m in moved) == 0  # issued, then returned
    damage = db.scalar(
        select(func.sum(StockMovement.d_on_hand)).where(
            StockMovement.reason == AdjustmentReason.damage
        )
    )
    assert -damage == out.result["written_off"]
    request = db.scalars(
        select(NeedRequest).where(NeedRequest.household_id == parcel.household_id)
    ).one()
    assert request.status == "open" and request.carried_over >= 1
    assert stock.check_ledger(db) == []
    assert all(row.balanced for row in stock.donor_report(db))
