"""Two-leg delivery to a sealed compound: a van to the gate, the compound's volunteer team the
last 100 m (with the residents' pickup codes), robots where they reach; and the reach rule the
allocation shares with the planner."""

from __future__ import annotations

import numpy as np
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from relieflink.dispatch import fleet, reach
from relieflink.flows import allocation
from relieflink.flows import dispatch as dispatch_flow
from relieflink.models import (
    Allocation,
    AllocationState,
    NeedRequest,
    Parcel,
    ParcelStatus,
    RequestStatus,
    Role,
    Route,
    RouteStop,
    User,
)
from relieflink.stock import service as stock
from relieflink.teams import service as teams
from relieflink.teams.schemas import AvailabilitySet
from tests.dispatch.factories import TODAY, City, make_city, receive_pledged
from tests.dispatch.test_end_to_end import run_routes
from tests.factories import make_user, sign_in
from tests.stock.factories import make_warehouse
from tests.teams.factories import make_team


def sealed_stops(db: Session, community_id: int) -> list[tuple[str, str, int, int]]:
    """(vehicle kind, inner mode, gate ETA, parcels) of every stop at a compound."""
    return [
        (str(kind), str(stop.inner_mode), stop.eta_s, stop.parcels)
        for stop, kind in db.execute(
            select(RouteStop, Route.kind)
            .join(Route, Route.id == RouteStop.route_id)
            .where(RouteStop.community_id == community_id)
        )
    ]


def test_van_to_the_gate_then_the_team_with_codes_and_the_ledger_reconciles(
    db: Session, client: TestClient
) -> None:
    city = make_city(db)
    sealed = city.communities["sealed"]
    # No robot reaches the sealed compound: before its team, its parcels cannot go.
    city.robots.range_m = 500
    db.commit()
    assert not fleet.reach_matrix(
        db, day=TODAY, community_ids=[sealed.id], warehouse_ids=[city.warehouse.id]
    ).any()
    # The committee's volunteer hands over at the gate and delivers with the residents' codes.
    leader = make_user(db, Role.committee, organization_id=city.committee.id)
    make_team(db, sealed, headcount=4, trolley_capacity_kg=30)
    db.commit()
    assert fleet.reach_matrix(
        db, day=TODAY, community_ids=[sealed.id], warehouse_ids=[city.warehouse.id]
    ).all()

    plan = dispatch_flow.plan_dispatch(db, day=TODAY, actor=None, time_limit=0.5)
    db.commit()
    assert plan.summary["violations"] == [] and plan.summary["released"] == {}, plan.summary
    stops = sealed_stops(db, sealed.id)
    assert stops and {(kind, mode) for kind, mode, *_ in stops} == {("van", "volunteer")}
    # The doors' ETA includes the team's inner leg: after the van's arrival at the gate.
    (leg,) = plan.summary["inner_legs"].values()
    assert leg["volunteers"] == 4 and leg["done_s"] >= leg["first_s"] + reach.INNER_TRIP_S

    deliver_everything(db, client, city, leader, plan.id)
    assert all(row.balanced for row in stock.donor_report(db))


def test_robots_and_the_team_both_carry_into_a_sealed_compound(db: Session) -> None:
    city = make_city(db, per_community=6)
    sealed = city.communities["sealed"]
    # One robot of 60 kg (four packs of ~14.6 kg); a team of one with a 60 kg trolley for a
    # quarter of an hour: one trip today. The team takes one load, the robot the other.
    city.robots.capacity_g, city.robots.range_m = 60_000, 8_000
    team = make_team(
        db,
        sealed,
        headcount=3,
        trolley_capacity_kg=60,
        shift_start_s=8 * 3600,
        shift_end_s=8 * 3600 + 900,
    )
    teams.set_availability(
        db, team.id, TODAY, AvailabilitySet(available=1, note="2 in quarantine"), actor=None
    )
    db.commit()
    plan = dispatch_flow.plan_dispatch(db, day=TODAY, actor=None, time_limit=1.0)
    db.commit()
    assert plan.summary["violations"] == []
    modes = {(kind, mode) for kind, mode, *_ in sealed_stops(db, sealed.id)}
    assert modes == {("van", "volunteer"), ("robot", "robot")}, plan.summary
    leg = plan.summary["inner_legs"][str(sealed.id)]
    assert leg["team"] == team.code and leg["volunteers"] == 1


def test_parcels_no_route_takes_are_released_and_allocated_again(db: Session) -> None:
    city = make_city(db)
    sealed = city.communities["sealed"]
    city.robots.range_m = 500  # out of range, and no team: nothing reaches the sealed gate
    db.commit()
    plan = dispatch_flow.plan_dispatch(db, day=TODAY, actor=None, time_limit=0.3)
    db.commit()
    released = plan.summary["released"]
    assert len(released) == len(city.homes["sealed"])
    assert all("no volunteer team" in why for why in released.values())
    assert not db.scalars(select(Parcel).where(Parcel.status == ParcelStatus.pending)).all()
    requests = db.scalars(
        select(NeedRequest).where(
            NeedRequest.household_id.in_([h.id for h in city.homes["sealed"]])
        )
    ).all()
    assert {r.status for r in requests} == {RequestStatus.open}
    assert stock.check_ledger(db) == []
    # The next wave: unreachable, the sealed compound is not given stock again...
    again = allocation.run_allocation(db, actor=None, today=TODAY)
    db.commit()
    assert again.units_allocated == 0
    # ...until its team works: then it is, and the plan takes it to the gate.
    make_team(db, sealed, headcount=2, trolley_capacity_kg=40)
    db.commit()
    assert allocation.run_allocation(db, actor=None, today=TODAY).units_allocated > 0
    db.commit()
    plan2 = dispatch_flow.plan_dispatch(db, day=TODAY, actor=None, time_limit=0.3)
    db.commit()
    assert plan2.summary["released"] == {} and plan2.summary["planned_parcels"] == 2


def test_the_reach_rule() -> None:
    van = reach.FleetGroup(
        1, 1, reach.FleetKind.van, 10, 1, 800_000, 5_000_000, 30, None, 7 * 3600, 19 * 3600, 0, 0
    )
    robot = reach.FleetGroup(
        2, 1, reach.FleetKind.robot, 10, 1, 200_000, 2_000_000, 15, 8_000, 7 * 3600, 19 * 3600, 0, 0
    )
    gates = [(31.205, 121.43, "sealed", False), (31.21, 121.42, "open", True)]
    place = {10: (31.20, 121.40)}
    no_team = reach.reachable(gates, [None, None], [place[10]], place, [van])
    assert no_team.tolist() == [[False], [True]]
    assert reach.reachable(gates, [None, None], [place[10]], place, [robot]).all()

    class Team:
        code, available, trolley_capacity_kg = "T", 2, 40
        shift_start_s, shift_end_s = 8 * 3600, 20 * 3600

    assert reach.reachable(gates, [Team(), None], [place[10]], place, [van]).all()
    # A team whose shift is over before the van could come back is no help.
    late = Team()
    late.shift_start_s, late.shift_end_s = 3600, 2 * 3600
    assert not reach.reachable(gates, [late, None], [place[10]], place, [van])[0, 0]
    assert reach.inner_leg_s(100_000, Team()) == 2 * reach.INNER_TRIP_S  # 80 kg per trip
    assert np.isclose(reach.team_day_g(Team()), 80_000 * 72)


def test_the_reach_rule_over_several_warehouses() -> None:
    van = reach.FleetGroup(
        1, 1, reach.FleetKind.van, 10, 1, 800_000, 5_000_000, 30, 20_000, 7 * 3600, 19 * 3600, 0, 0
    )
    gates = [(31.205, 121.43, "sealed", False), (31.21, 121.42, "open", True)]
    place = {10: (31.20, 121.40), 11: (31.60, 121.40)}  # the second ~45 km away
    got = reach.reachable(gates, [None, None], [place[10], place[11]], place, [van])
    assert got.tolist() == [[False, False], [True, False]]


def test_a_household_is_sourced_only_from_warehouses_that_can_reach_it(db: Session) -> None:
    city = make_city(db, rice=4)  # the near warehouse's rice is gone after the first run
    city.robots.range_m = 8_000  # the robots reach the sealed gate from the near warehouse only
    far = make_warehouse(db, owner=city.carrier, lat=31.60, lon=121.40, daily_outbound_kg=100_000)
    receive_pledged(db, city.ngo, city.donors[0], far, [(city.rice, 100, 3000)])
    db.commit()
    allocation.run_allocation(db, actor=None, today=TODAY)
    db.commit()
    sealed = {h.id for h in city.homes["sealed"]}
    rows = db.execute(
        select(Allocation.household_id, Allocation.warehouse_id, Allocation.quantity).where(
            Allocation.state == AllocationState.reserved
        )
    ).all()
    from_far = {hh for hh, w, _ in rows if w == far.id}
    assert from_far and not from_far & sealed  # vans bring it to the others, none to the sealed
    plan = dispatch_flow.plan_dispatch(db, day=TODAY, actor=None, time_limit=0.5)
    db.commit()
    assert plan.summary["released"] == {}, plan.summary


def test_a_team_at_an_open_compound_does_not_hold_its_couriers_back(db: Session) -> None:
    city = make_city(db)
    # A team off duty at dawn: the couriers go door to door at an open compound all the same.
    make_team(
        db,
        city.communities["open"],
        headcount=10,
        trolley_capacity_kg=100,
        shift_start_s=3600,
        shift_end_s=3 * 3600,
    )
    db.commit()
    plan = dispatch_flow.plan_dispatch(db, day=TODAY, actor=None, time_limit=0.5)
    db.commit()
    assert plan.summary["released"] == {} and plan.summary["inner_legs"] == {}
    modes = {mode for _, mode, *_ in sealed_stops(db, city.communities["open"].id)}
    assert modes == {"courier"}


def test_a_robot_based_far_away_does_not_reach_by_its_range_alone() -> None:
    robot = reach.FleetGroup(
        2, 1, reach.FleetKind.robot, 11, 1, 200_000, 2_000_000, 15, 8_000, 0, 86_000, 0, 0
    )
    gates = [(31.205, 121.43, "sealed", False)]
    place = {10: (31.20, 121.40), 11: (31.60, 121.40)}
    # A 3 km loop from warehouse 10 fits its 8 km range, the ~58 km deadhead from 11 does not.
    assert not reach.reachable(gates, [None], [place[10]], place, [robot]).any()
    at_home = reach.FleetGroup(
        3, 1, reach.FleetKind.robot, 10, 1, 200_000, 2_000_000, 15, 8_000, 0, 86_000, 0, 0
    )
    assert reach.reachable(gates, [None], [place[10]], place, [at_home]).all()


def deliver_everything(
    db: Session, client: TestClient, city: City, leader: User, plan_id: int
) -> None:
    """A courier drives every route of the plan and the team's ``leader`` hands out at its
    gates, with the residents' codes, through the API: every parcel and request is delivered
    and the ledger reconciles."""
    courier_user = make_user(db, Role.courier, organization_id=city.carrier.id)
    db.commit()
    courier, volunteer = sign_in(client, courier_user), sign_in(client, leader)
    run_routes(db, client, city, courier, volunteer, plan_id)
    db.rollback()
    assert {p.status for p in db.scalars(select(Parcel))} == {ParcelStatus.delivered}
    assert {r.status for r in db.scalars(select(NeedRequest))} == {RequestStatus.delivered}
    assert stock.check_ledger(db) == []
