"""Hand over at the gate where a team works: in an open compound whose volunteer team works that
day the load is counted over at the gate and the team carries it in (the 2022 lockdown's
practice); where no team works, the courier still walks each parcel to its building door."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from relieflink.dispatch import planning, reach
from relieflink.flows import dispatch as dispatch_flow
from relieflink.models import (
    Role,
)
from relieflink.teams import service as teams
from relieflink.teams.schemas import AvailabilitySet
from tests.dispatch.factories import TODAY, make_city
from tests.dispatch.test_two_legs import deliver_everything, sealed_stops
from tests.factories import make_user
from tests.teams.factories import make_team


def open_gate_service_s(db: Session, community_id: int) -> set[int]:
    """The service time per household of the routing problem's stops at a compound, as the
    plan builds them (parking at the gate aside)."""
    inp = planning.prepare_plan(db, day=TODAY)
    problems, _ = planning.build_problems(inp)
    out = set()
    for wp in problems:
        for stop, parcels, c in zip(wp.problem.stops, wp.stop_parcels, wp.communities, strict=True):
            if c == community_id:
                households = len({inp.parcels[i].household_id for i in parcels})
                out.add((stop.service_s - reach.GATE_SERVICE_S) // households)
    return out


def test_an_open_compound_whose_team_works_gets_the_load_at_the_gate(
    db: Session, client: TestClient
) -> None:
    city = make_city(db)
    open_ = city.communities["open"]
    leader = make_user(db, Role.committee, organization_id=city.committee.id)
    make_team(db, open_, headcount=4, trolley_capacity_kg=30)
    db.commit()
    # The stop is timed as a hand-over at the gate, not the courier's walk to each door.
    assert open_gate_service_s(db, open_.id) == {reach.HANDOFF_DOOR_S}

    plan = dispatch_flow.plan_dispatch(db, day=TODAY, actor=None, time_limit=0.5)
    db.commit()
    assert plan.summary["violations"] == [] and plan.summary["released"] == {}, plan.summary
    stops = sealed_stops(db, open_.id)
    assert stops and {mode for _, mode, *_ in stops} == {"volunteer"}, stops

    # The team's leader delivers them with the residents' codes; the ledger reconciles.
    deliver_everything(db, client, city, leader, plan.id)


def test_an_open_compound_without_a_team_at_work_keeps_the_courier_at_the_doors(
    db: Session,
) -> None:
    city = make_city(db)
    open_ = city.communities["open"]
    # The team exists but nobody works today (all in quarantine): the courier walks.
    team = make_team(db, open_, headcount=4, trolley_capacity_kg=30)
    teams.set_availability(
        db, team.id, TODAY, AvailabilitySet(available=0, note="all in quarantine"), actor=None
    )
    db.commit()
    assert open_gate_service_s(db, open_.id) == {reach.COURIER_DOOR_S}
    plan = dispatch_flow.plan_dispatch(db, day=TODAY, actor=None, time_limit=0.5)
    db.commit()
    assert plan.summary["violations"] == [] and plan.summary["released"] == {}, plan.summary
    stops = sealed_stops(db, open_.id)
    assert stops and {mode for _, mode, *_ in stops} == {"courier"}, stops
    # The controlled compound next door (no team either) is still handed over at its gate.
    controlled = sealed_stops(db, city.communities["controlled"].id)
    assert controlled and {mode for _, mode, *_ in controlled} == {"volunteer"}


def test_beyond_what_an_open_compounds_team_carries_today_the_courier_walks(db: Session) -> None:
    city = make_city(db)
    open_ = city.communities["open"]
    # One volunteer with a 10 kg trolley for ten minutes: one trip of 10 kg today, less than
    # the gate's load (two households' ~14.6 kg parcels).
    make_team(
        db,
        open_,
        headcount=1,
        trolley_capacity_kg=10,
        shift_start_s=8 * 3600,
        shift_end_s=8 * 3600 + reach.INNER_TRIP_S,
    )
    db.commit()
    plan = dispatch_flow.plan_dispatch(db, day=TODAY, actor=None, time_limit=0.5)
    db.commit()
    assert plan.summary["released"] == {} and plan.summary["inner_legs"] == {}, plan.summary
    assert {mode for _, mode, *_ in sealed_stops(db, open_.id)} == {"courier"}
