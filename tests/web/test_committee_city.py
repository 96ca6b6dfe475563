"""A committee user on a generated city sees the households of its compounds: the user names its
residents' committee by code (``users create --organization RC-00001``), and a committee user
without one is refused (it would sign in and see no household)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from relieflink.bulk import service as bulk
from relieflink.cli.main import app
from relieflink.errors import Invalid
from relieflink.models import Community, Household, Organization, OrgKind, Role, User
from relieflink.scenario import generate_city
from relieflink.users import service as users
from relieflink.users.schemas import UserCreate, UserUpdate
from tests.factories import PASSWORD, make_org, make_user
from tests.web.helpers import signed_in

runner = CliRunner()


def test_a_committee_user_of_a_generated_city_sees_its_compounds_households(
    db: Session, client: TestClient, tmp_path: Path
) -> None:
    city = generate_city(scale=0.0005, seed=3, out=tmp_path)
    for kind in ("organizations", "districts", "communities", "households"):
        bulk.import_file(db, kind, city.files[kind], actor=None)
    db.commit()
    committee = db.scalars(  # the city's first residents' committee
        select(Organization)
        .where(Organization.kind == OrgKind.committee)
        .order_by(Organization.code)
    ).first()
    assert committee is not None
    compounds = [
        c.id for c in db.scalars(select(Community).where(Community.committee_id == committee.id))
    ]
    theirs = db.scalar(
        select(func.count()).select_from(Household).where(Household.community_id.in_(compounds))
    )
    assert theirs and theirs < db.scalar(select(func.count()).select_from(Household))

    made = runner.invoke(
        app,
        ["users", "create", "rc1", "--role", "committee", "--organization", committee.code,
         "--password", PASSWORD],
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    missing = runner.invoke(
        app,
        ["users", "create", "rc2", "--role", "committee", "--organization", "RC-99999",
         "--password", PASSWORD],
    )  # fmt: skip
    assert missing.exit_code != 0 and "RC-99999" in missing.output
    db.commit()  # end the read snapshot: the CLI wrote in its own transaction
    user = db.scalars(select(User).where(User.username == "rc1")).one()
    assert user.organization_id == committee.id

    page = signed_in(client, user).get("/households").text
    shown = re.search(r"of ([\d,]+)", page)
    assert shown and int(shown.group(1).replace(",", "")) == theirs


def test_a_committee_user_needs_a_committee(db: Session) -> None:
    bare = UserCreate(username="rc9", full_name="rc9", role=Role.committee, password=PASSWORD)
    with pytest.raises(Invalid) as unlinked:
        users.create_user(db, bare, actor=None)
    assert unlinked.value.errors[0].loc == ("organization_id",)
    linked = make_user(db, Role.committee, organization_id=make_org(db).id)
    with pytest.raises(Invalid):
        users.update_user(db, linked.id, UserUpdate(organization_id=None), actor=linked)
