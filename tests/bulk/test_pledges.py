"""Programmes and pledges from spreadsheets: the scenario's own ``programs.csv`` and
``pledges.csv`` import as generated, export round-trips (CSV and XLSX), retries create nothing,
and a bad file (an unknown programme, a line that disagrees with its pledge, a changed pledge)
is refused whole with each line and column."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from relieflink.bulk import service as bulk
from relieflink.catalog import service as catalog
from relieflink.cli import app
from relieflink.donations import service as donations
from relieflink.donations.schemas import PledgeCreate, PledgeLineIn
from relieflink.errors import Invalid
from relieflink.models import Pledge, PledgeLine, PledgeStatus, Program
from relieflink.scenario import generate_city

runner = CliRunner()


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("city")
    generate_city("shanghai", scale=0.001, seed=7, out=out)
    return out


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _count(db: Session, model: type) -> int:
    return db.scalar(select(func.count()).select_from(model)) or 0


def _load(db: Session, city: Path) -> None:
    catalog.seed_catalog(db, actor=None)
    for kind in ("organizations", "programs", "pledges"):
        bulk.import_file(db, kind, city / f"{kind}.csv", actor=None)
    db.commit()


def test_the_scenario_files_import_as_generated_and_export_round_trips(
    db: Session, city: Path, tmp_path: Path
) -> None:
    catalog.seed_catalog(db, actor=None)
    db.commit()
    for kind in ("organizations", "programs", "pledges"):  # as an operator would, by the CLI
        result = runner.invoke(app, ["import", kind, str(city / f"{kind}.csv")])
        assert result.exit_code == 0, result.output
    generated = _rows(city / "pledges.csv")
    assert _count(db, Program) == len(_rows(city / "programs.csv")) == 4
    assert _count(db, Pledge) == len({r["code"] for r in generated})
    assert _count(db, PledgeLine) == len(generated)
    assert set(db.scalars(select(Pledge.status))) == {PledgeStatus.pledged}
    for suffix in (".csv", ".xlsx"):
        for kind in ("programs", "pledges"):
            out = tmp_path / f"{kind}{suffix}"
            assert bulk.export_file(db, kind, out, actor=None) > 0
            again = bulk.import_file(db, kind, out, actor=None)  # an export imports unchanged
            assert again.created == 0, kind
    exported = tmp_path / "pledges.csv"
    bulk.export_file(db, "pledges", exported, actor=None)
    key = sorted
    assert key(map(tuple, (r.values() for r in _rows(exported)))) == key(
        map(tuple, (r.values() for r in generated))
    )
    assert _count(db, Pledge) == len({r["code"] for r in generated})  # none twice
    db.commit()  # the exports' audit records
    retried = runner.invoke(app, ["import", "pledges", str(city / "pledges.csv")])
    assert retried.exit_code == 0 and "0 created" in retried.output


def _bad(city: Path, tmp_path: Path, edit: dict[int, dict[str, str]]) -> Path:
    rows = _rows(city / "pledges.csv")
    for index, change in edit.items():
        rows[index] |= change
    path = tmp_path / "bad.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_a_bad_file_is_refused_whole_with_lines_and_columns(
    db: Session, city: Path, tmp_path: Path
) -> None:
    catalog.seed_catalog(db, actor=None)
    for kind in ("organizations", "programs"):
        bulk.import_file(db, kind, city / f"{kind}.csv", actor=None)
    db.commit()
    rows = _rows(city / "pledges.csv")
    second = next(i for i, r in enumerate(rows) if i and r["code"] == rows[i - 1]["code"])
    path = _bad(
        city,
        tmp_path,
        {
            0: {"program_code": "space-programme"},  # line 2: an unknown programme
            second: {"donor_code": "DON-99"},  # unknown, and disagrees with its pledge's first line
            len(rows) - 1: {"quantity": "0"},
        },
    )
    with pytest.raises(Invalid) as refused:
        bulk.import_file(db, "pledges", path, actor=None)
    where = {(e.loc[1], e.loc[2]) for e in refused.value.errors}
    assert (2, "program_code") in where
    assert (second + 2, "donor_code") in where
    assert (len(rows) + 1, "quantity") in where
    assert "nothing was imported" in refused.value.message
    reasons = " ".join(e.msg for e in refused.value.errors)
    assert "no programs row with code 'space-programme'" in reasons
    db.rollback()
    assert _count(db, Pledge) == 0  # nothing created

    result = runner.invoke(app, ["import", "pledges", str(path)])
    assert result.exit_code == 1 and "line 2, program_code" in result.output
    skip = runner.invoke(app, ["import", "pledges", str(path), "--skip-invalid"])
    assert skip.exit_code == 1 and "all or nothing" in skip.output


def test_a_gift_of_a_hundred_million_yuan_imports(db: Session, city: Path, tmp_path: Path) -> None:
    """Values in fen are 64-bit: RMB 100 million is 10^10 fen, past a 32-bit integer (the
    scenario at scale 0.05 wrote such lines and its import refused them)."""
    catalog.seed_catalog(db, actor=None)
    for kind in ("organizations", "programs"):
        bulk.import_file(db, kind, city / f"{kind}.csv", actor=None)
    rows = _rows(city / "pledges.csv")
    big = str(10**10 * int(rows[0]["quantity"]))  # a whole number of fen per unit
    path = _bad(city, tmp_path, {0: {"code": "PL-BIG", "declared_value_fen": big}})
    bulk.import_file(db, "pledges", path, actor=None)
    db.commit()
    pledge = db.scalars(select(Pledge).where(Pledge.code == "PL-BIG")).one()
    assert pledge.declared_value_fen == int(big)


def test_a_pledge_changed_in_the_file_is_refused(db: Session, city: Path, tmp_path: Path) -> None:
    _load(db, city)
    before = _count(db, PledgeLine)
    rows = _rows(city / "pledges.csv")
    quantity = int(rows[0]["quantity"]) + 1
    value = quantity * (int(rows[0]["declared_value_fen"]) // int(rows[0]["quantity"]))
    path = _bad(city, tmp_path, {0: {"quantity": str(quantity), "declared_value_fen": str(value)}})
    with pytest.raises(Invalid) as refused:
        bulk.import_file(db, "pledges", path, actor=None)
    (error,) = refused.value.errors
    assert error.loc == ("line", 2, "code") and "exists with other values" in error.msg
    odd = _bad(city, tmp_path, {0: {"declared_value_fen": str(int(rows[0]["quantity"]) * 3 + 1)}})
    with pytest.raises(Invalid) as uneven:
        bulk.import_file(db, "pledges", odd, actor=None)
    assert uneven.value.errors[0].loc == ("line", 2, "declared_value_fen")
    db.rollback()
    assert _count(db, PledgeLine) == before


def test_a_pledge_recorded_in_the_app_exports_and_imports_unchanged(
    db: Session, city: Path, tmp_path: Path
) -> None:
    _load(db, city)
    program = db.scalars(select(Program)).first()
    pledge = db.scalars(select(Pledge)).first()
    assert program is not None and pledge is not None
    rice = catalog.get_items_by_sku(db, ["RICE-5KG"])["RICE-5KG"]
    made = donations.create_pledge(
        db,
        PledgeCreate(
            donor_org_id=pledge.donor_org_id,
            recipient_org_id=pledge.recipient_org_id,
            program_id=program.id,
            declared_value_fen=123_456,  # not the sum of its lines (which carry no unit value)
            lines=[PledgeLineIn(item_id=rice.id, quantity=40)],
        ),
        actor=None,
    )
    assert made.code == f"PLEDGE-{made.id}"
    db.commit()
    out = tmp_path / "pledges.xlsx"
    bulk.export_file(db, "pledges", out, actor=None)
    report = bulk.import_file(db, "pledges", out, actor=None)
    assert report.created == 0 and report.updated == report.rows
