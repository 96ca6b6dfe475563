from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from relieflink.cli import app
from relieflink.models import Household, Item, User

runner = CliRunner()


def test_catalog_seed_import_and_bad_file(db: Session, examples_dir: Path, tmp_path: Path) -> None:
    assert runner.invoke(app, ["catalog", "seed"]).exit_code == 0
    for kind in ["organizations", "districts", "communities", "households"]:
        result = runner.invoke(app, ["import", kind, str(examples_dir / f"{kind}.csv")])
        assert result.exit_code == 0, result.output
    bad = tmp_path / "bad.csv"
    bad.write_text(
        (examples_dir / "households.csv")
        .read_text()
        .replace("H0000005,C00003,1,1801,2", "H0000009,C00003,1,1801,zero")
    )
    result = runner.invoke(app, ["import", "households", str(bad)])
    assert result.exit_code == 1
    assert "line 6, size" in result.output
    assert "nothing was imported" in result.output
    assert db.scalar(select(func.count()).select_from(Household)) == 5
    assert db.scalar(select(func.count()).select_from(Item)) > 0


def test_users_create_bootstraps_an_admin(db: Session) -> None:
    result = runner.invoke(
        app, ["users", "create", "root", "--role", "admin", "--password", "a long password"]
    )
    assert result.exit_code == 0, result.output
    assert db.scalars(select(User.role).where(User.username == "root")).one() == "admin"
    weak = runner.invoke(app, ["users", "create", "weak", "--role", "admin", "--password", "short"])
    assert weak.exit_code == 1 and "password" in weak.output


@pytest.mark.parametrize("kind", ["spaceships"])
def test_unknown_kind_is_a_clear_error(db: Session, kind: str, tmp_path: Path) -> None:
    result = runner.invoke(app, ["export", kind, str(tmp_path / "x.csv")])
    assert result.exit_code == 1 and "unknown kind" in result.output
