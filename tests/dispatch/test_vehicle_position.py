"""A plan knows where a free vehicle waits: a route ends at the warehouse it started from, so a
vehicle back from a route of the day from warehouse B is at B. A truck based at A with the
stock at B starts the day's first route late by the drive from A to B; the next plan of the
day, once that route is completed, starts it at B with no drive. A group's vehicles are
counted at B no more than drove from B at once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from relieflink import clock
from relieflink.dispatch import fleet, planning
from relieflink.flows import allocation, delivery
from relieflink.flows import dispatch as dispatch_flow
from relieflink.models import FleetKind, Route, RouteStatus, Warehouse
from relieflink.optim.geo import haversine_m
from relieflink.optim.routing import VehicleType
from tests.dispatch.factories import City, ask, make_city, make_vehicle
from tests.dispatch.test_pipeline import _day
from tests.stock.factories import make_warehouse

# Plans made today: the clock at a morning hour, whatever the hour the suite runs at.
pytestmark = pytest.mark.usefixtures("morning")

SPEED_KMH = 30


def _truck_based_away(db: Session, count: int) -> tuple[City, Warehouse]:
    """The city's stock warehouse B, and a truck group based at A, about 11 km north (no stock
    there); the city's own vans and robot are retired."""
    city = make_city(db)
    home = make_warehouse(db, owner=city.carrier, lat=31.30, lon=121.40)
    city.vans.active = city.robots.active = False
    make_vehicle(
        db,
        city.carrier,
        home,
        FleetKind.truck,
        count=count,
        capacity_g=3_000_000,
        capacity_ml=16_000_000,
        speed_kmh=SPEED_KMH,
        range_m=None,
        shift_start_s=6 * 3600,
        shift_end_s=18 * 3600,
        fixed_cost_fen=30_000,  # one truck is cheaper than two for the day's few parcels
        cost_per_km_fen=400,
    )
    db.commit()
    return city, home


def _drive_s(a: Warehouse, b: Warehouse) -> int:
    metres = int(float(haversine_m(a.lat, a.lon, b.lat, b.lon)) * planning.CIRCUITY)
    return int(metres / (SPEED_KMH / 3.6))


def _types_at(db: Session, warehouse: Warehouse) -> tuple[planning.PlanInput, list[VehicleType]]:
    """What the next plan would give the routing at ``warehouse`` (the functions a plan runs)."""
    inp = planning.prepare_plan(db, day=clock.today())
    problems, _ = planning.build_problems(inp)
    (wp,) = [p for p in problems if p.warehouse_id == warehouse.id]
    return inp, list(wp.problem.vehicle_types)


def _plan(db: Session) -> list[Route]:
    plan = dispatch_flow.plan_dispatch(db, day=clock.today(), actor=None, time_limit=0.5, seed=1)
    db.commit()
    return list(db.scalars(select(Route).where(Route.plan_id == plan.id)))


def _complete(db: Session, city: City, routes: list[Route]) -> None:
    """Load, drive and post every door of ``routes`` (tracking events, as the phones send)."""
    for route in routes:
        delivery.record_events(db, _day(db, route), actor=city.admin)
        db.commit()
        db.refresh(route)
        assert route.status == RouteStatus.completed


def _more_requests(db: Session, city: City) -> None:
    for home in city.homes["open"] + city.homes["controlled"]:
        ask(db, city, home, (city.rice, 1))
    allocation.run_allocation(db, actor=None, today=clock.today())
    db.commit()


def test_the_first_trip_starts_after_the_drive_from_home_and_the_next_one_at_the_stock(
    db: Session,
) -> None:
    city, home = _truck_based_away(db, count=1)
    drive = _drive_s(home, city.warehouse)
    assert drive > 1000  # about 11 km at 30 km/h: a gap no tolerance hides
    inp, types = _types_at(db, city.warehouse)
    (group,) = inp.fleet
    assert (group.depot_id, group.count) == (home.id, 1)
    (vt,) = types
    assert vt.shift_start == group.shift_start_s + drive
    (first,) = _plan(db)
    assert first.depot_id == city.warehouse.id and first.start_s >= group.shift_start_s + drive

    # Its last doors posted, the route is completed: the truck is at B (its route ends where
    # it started) from the route's planned return; the next plan today starts it there.
    _complete(db, city, [first])
    _more_requests(db, city)
    inp, types = _types_at(db, city.warehouse)
    (group,) = inp.fleet
    assert (group.depot_id, group.home_id, group.count) == (city.warehouse.id, home.id, 1)
    assert group.shift_start_s == first.end_s > fleet.shift_from_s(clock.today())
    (vt,) = types
    assert vt.shift_start == first.end_s  # no drive
    (second,) = _plan(db)
    assert first.end_s <= second.start_s < first.end_s + drive

    # Another day starts at home again (the driver went home for the night).
    tomorrow = fleet.groups_of_day(db, clock.today() + timedelta(days=1))
    assert [(g.depot_id, g.count) for g in tomorrow] == [(home.id, 1)]


def test_a_group_counts_at_the_stock_only_the_vehicles_that_drove_from_it_at_once(
    db: Session,
) -> None:
    city, home = _truck_based_away(db, count=3)
    drive = _drive_s(home, city.warehouse)
    (first,) = _plan(db)  # the day's few parcels: one truck of three
    _complete(db, city, [first])
    _more_requests(db, city)
    inp, types = _types_at(db, city.warehouse)
    at = {g.depot_id: g for g in inp.fleet}
    assert {w: g.count for w, g in at.items()} == {city.warehouse.id: 1, home.id: 2}
    start = at[home.id].shift_start_s  # now: the two that stayed home
    assert sorted((t.count, t.shift_start) for t in types) == [
        (1, first.end_s),  # at B from its return: no drive
        (2, start + drive),  # at home: the drive from A first
    ]

    # A second trip from B by one truck, completed: still one truck at B, not two.
    (second,) = _plan(db)
    _complete(db, city, [second])
    free = fleet.groups_of_day(db, clock.today())
    assert sorted((g.depot_id, g.count) for g in free) == sorted(
        [(city.warehouse.id, 1), (home.id, 2)]
    )
