"""A plan made at hour H does not use shift time before H: on today, a vehicle's usable shift
starts no earlier than now (the one clock, local time), and a vehicle whose shift is over gets
no route; the plan says which and why."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from relieflink import clock
from relieflink.dispatch import fleet
from relieflink.flows import allocation as allocation_flow
from relieflink.flows import dispatch as dispatch_flow
from relieflink.models import FleetKind, Route
from tests.dispatch.factories import TODAY, ask, make_city, make_vehicle
from tests.factories import make_household


def _at(hour: int) -> datetime:
    return datetime.combine(TODAY, time(hour), clock.zone())


def _routes(db: Session, plan_id: int) -> list[Route]:
    return list(db.scalars(select(Route).where(Route.plan_id == plan_id)))


def test_a_plan_at_20_gives_no_route_to_a_shift_over_and_starts_the_others_at_20(
    db: Session,
) -> None:
    city = make_city(db)
    # The vans and the robot end their shift at 18:00; an evening van group works 12:00-23:00.
    for group in (city.vans, city.robots):
        group.shift_start_s, group.shift_end_s = 6 * 3600, 18 * 3600
    evening = make_vehicle(
        db,
        city.carrier,
        city.warehouse,
        FleetKind.van,
        count=2,
        shift_start_s=12 * 3600,
        shift_end_s=23 * 3600,
    )
    db.commit()
    with clock.frozen(_at(20)):
        assert clock.today() == TODAY
        plan = dispatch_flow.plan_dispatch(db, day=TODAY, actor=None, time_limit=0.5, seed=1)
        db.commit()
    routes = _routes(db, plan.id)
    assert routes and {r.vehicle_id for r in routes} == {evening.id}, plan.summary
    assert min(r.start_s for r in routes) >= 20 * 3600
    assert max(r.end_s for r in routes) <= 23 * 3600
    # The plan says why the day shift has no route.
    over = plan.summary["shifts_over"]
    assert set(over) == {city.vans.code, city.robots.code}
    assert all("ended at 18:00; planned at 20:00" in why for why in over.values()), over
    # The sealed compound has no team and only the robot could serve it: released, with why.
    released = plan.summary["released"]
    assert len(released) == len(city.homes["sealed"]), plan.summary


def test_a_morning_plan_starts_at_its_hour_and_another_day_has_the_whole_shift(
    db: Session,
) -> None:
    city = make_city(db)
    city.vans.shift_start_s = 6 * 3600
    db.commit()
    with clock.frozen(_at(9)):
        today = fleet.groups_of_day(db, TODAY)
        tomorrow = fleet.groups_of_day(db, TODAY + timedelta(days=1))
        plan = dispatch_flow.plan_dispatch(db, day=TODAY, actor=None, time_limit=0.5, seed=1)
        db.commit()
    assert {g.vehicle_id: g.shift_start_s for g in today}[city.vans.id] == 9 * 3600
    # A day other than today is planned on its whole shift (a plan for tomorrow, made tonight).
    assert {g.vehicle_id: g.shift_start_s for g in tomorrow}[city.vans.id] == 6 * 3600
    routes = _routes(db, plan.id)
    assert routes and min(r.start_s for r in routes) >= 9 * 3600
    assert plan.summary["shifts_over"] == {} and plan.summary["released"] == {}


def test_an_allocation_run_after_the_last_shift_still_reserves_what_the_fleet_reaches(
    db: Session,
) -> None:
    # Reach is where the day's fleet can go at all, not the hours left: a coordinator who runs
    # the allocation at 20:00, after every shift, reserves stock for the next wave (before,
    # nothing was reachable after 18:00 and the run reserved nothing, without a reason).
    city = make_city(db)
    for group in (city.vans, city.robots):
        group.shift_start_s, group.shift_end_s = 6 * 3600, 18 * 3600
    home = make_household(db, city.communities["open"], actor=city.admin, size=3)
    request = ask(db, city, home, (city.rice, 1))
    db.commit()
    with clock.frozen(_at(20)):
        report = allocation_flow.run_allocation(db, actor=None, today=TODAY)
        db.commit()
    assert report.units_allocated == 1, report
    assert [line.allocated for line in request.lines] == [1]
