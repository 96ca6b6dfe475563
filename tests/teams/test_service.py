from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy.orm import Session

from relieflink.errors import Conflict, Invalid
from relieflink.models import OrgKind, Role
from relieflink.teams import service as teams
from relieflink.teams.schemas import AvailabilitySet, TeamCreate, TeamFilters, TeamUpdate
from tests.factories import make_community, make_org, make_user
from tests.teams.factories import make_team

DAY = date(2022, 4, 12)


def test_a_team_per_compound_with_its_leader_and_availability(db: Session) -> None:
    committee = make_org(db, OrgKind.committee)
    compound = make_community(db, committee=committee)
    leader = make_user(db, Role.volunteer, organization_id=committee.id)
    team = make_team(db, compound, leader=leader, headcount=40, trolley_capacity_kg=30)
    db.commit()

    assert teams.get_team(db, team.id) is team
    assert teams.team_of_community(db, compound.id) is team
    assert list(teams.teams_led_by(db, leader)) == [team]
    rows, total = teams.list_teams(db, TeamFilters(committee_id=committee.id))
    assert (list(rows), total) == ([team], 1)

    # No record for the day: the whole team works.
    assert teams.available_members(db, team, DAY) == 40
    teams.set_availability(
        db, team.id, DAY, AvailabilitySet(available=33, note="7 in quarantine"), actor=None
    )
    db.commit()
    assert teams.available_members(db, team, DAY) == 33
    day = teams.team_days(db, day=DAY)[compound.id]
    assert (day.team_id, day.available, day.capacity_kg) == (team.id, 33, 33 * 30)
    assert teams.team_days(db, day=date(2022, 4, 13))[compound.id].available == 40


def test_one_team_per_compound(db: Session) -> None:
    compound = make_community(db)
    make_team(db, compound)
    with pytest.raises(Conflict) as exc:
        make_team(db, compound)
    assert exc.value.errors[0].loc == ("community_id",)


def test_bad_teams_are_refused_with_the_field(db: Session) -> None:
    compound = make_community(db)
    courier = make_user(db, Role.courier)
    with pytest.raises(Invalid) as exc:
        make_team(db, compound, leader=courier)
    assert exc.value.errors[0].loc == ("leader_id",)
    with pytest.raises(Invalid) as exc:
        teams.create_team(
            db,
            TeamCreate(code="TX", community_id=999_999, headcount=3, trolley_capacity_kg=10),
            actor=None,
        )
    assert exc.value.errors[0].loc == ("community_id",)
    with pytest.raises(ValueError, match="headcount"):
        TeamCreate(code="TX", community_id=compound.id, headcount=0, trolley_capacity_kg=10)
    with pytest.raises(ValueError, match="trolley_capacity_kg"):
        TeamCreate(code="TX", community_id=compound.id, headcount=3, trolley_capacity_kg=-1)


def test_update_and_availability_limits(db: Session) -> None:
    team = make_team(db, make_community(db), headcount=10)
    teams.update_team(db, team.id, TeamUpdate(headcount=12, shift_end_s=22 * 3600), actor=None)
    assert (team.headcount, team.shift_end_s) == (12, 22 * 3600)
    with pytest.raises(Invalid) as exc:
        teams.update_team(db, team.id, TeamUpdate(shift_end_s=3600), actor=None)
    assert exc.value.errors[0].loc == ("shift_end_s",)
    with pytest.raises(Invalid) as exc:
        teams.set_availability(db, team.id, DAY, AvailabilitySet(available=13), actor=None)
    assert exc.value.errors[0].loc == ("available",)
