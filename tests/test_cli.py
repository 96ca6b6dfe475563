from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from relieflink.cli import app
from relieflink.models import Household, Item, Organization, User

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


def test_registry_create_show_update_list_and_bad_input(db: Session) -> None:
    created = runner.invoke(
        app,
        [
            "registry",
            "create",
            "organizations",
            "--set",
            "code=NGO-1",
            "--set",
            "kind=ngo",
            "--set",
            "name=Relief NGO",
            "--set",
            "country=CN",
        ],
    )
    assert created.exit_code == 0, created.output
    org_id = json.loads(created.output)["id"]
    changed = runner.invoke(
        app, ["registry", "update", "organizations", str(org_id), "--set", "name=Renamed"]
    )
    assert json.loads(changed.output)["name"] == "Renamed"
    assert (
        "Renamed"
        in runner.invoke(app, ["registry", "list", "organizations", "--where", "kind=ngo"]).output
    )
    assert (
        json.loads(runner.invoke(app, ["registry", "show", "organizations", str(org_id)]).output)[
            "code"
        ]
        == "NGO-1"
    )
    bad = runner.invoke(
        app, ["registry", "create", "organizations", "--set", "code=X", "--set", "kind=alien"]
    )
    assert bad.exit_code == 1
    assert "kind" in bad.output and "country" in bad.output
    assert runner.invoke(app, ["registry", "show", "organizations", "9999"]).exit_code == 1
    assert db.scalar(select(func.count()).select_from(Organization)) == 1
