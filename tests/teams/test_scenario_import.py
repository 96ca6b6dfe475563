"""The scenario's committees, compounds and teams import as they are: every compound is under a
committee organization and has its volunteer team."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relieflink.bulk import service as bulk
from relieflink.models import Community, Organization, OrgKind, VolunteerTeam
from relieflink.scenario import generate_city


def test_the_scenario_loads_committees_and_a_team_per_compound(db: Session, tmp_path: Path) -> None:
    city = generate_city(scale=0.0005, seed=2, out=tmp_path)
    for kind in ("organizations", "districts", "communities", "teams"):
        bulk.import_file(db, kind, city.files[kind], actor=None)
    db.commit()
    compounds = db.scalars(select(Community)).all()
    teams = {t.community_id: t for t in db.scalars(select(VolunteerTeam))}
    assert len(compounds) == city.communities and set(teams) == {c.id for c in compounds}
    committees = set(
        db.scalars(select(Organization.id).where(Organization.kind == OrgKind.committee))
    )
    assert {c.committee_id for c in compounds} <= committees
    assert all(t.headcount >= 2 for t in teams.values())
    assert db.scalar(select(func.count()).select_from(VolunteerTeam)) == city.counts["teams"]
