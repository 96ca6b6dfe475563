"""The dispatch plan: access rules, robots' payload and range, availability, re-planning,
manifests, the fleet import and the planning job behind the API."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from relieflink.db import bulk
from relieflink.dispatch import fleet, manifests, planning
from relieflink.dispatch.schemas import EventIn
from relieflink.errors import Invalid
from relieflink.flows import delivery
from relieflink.flows import dispatch as dispatch_flow
from relieflink.models import (
    Allocation,
    AllocationState,
    Community,
    FleetKind,
    Parcel,
    ParcelLine,
    ParcelStatus,
    Role,
    Route,
    RouteStatus,
    RouteStop,
    StockMovement,
    Vehicle,
)
from relieflink.optim.routing import VehicleKind, check_solution, solve_routing
from relieflink.stock.service import check_ledger
from tests.dispatch.factories import TODAY, make_city
from tests.factories import headers_for, make_org, make_user


def routes_into(db: Session, community: Community) -> set[str]:
    return set(
        db.scalars(
            select(Route.kind)
            .join(RouteStop, RouteStop.route_id == Route.id)
            .where(RouteStop.community_id == community.id, Route.status != RouteStatus.cancelled)
        )
    )


def test_no_truck_or_van_enters_a_sealed_compound_and_robots_fit(db: Session) -> None:
    city = make_city(db, per_community=4)
    plan = dispatch_flow.plan_dispatch(db, day=TODAY, actor=None, time_limit=0.5)
    db.commit()
    assert plan.summary["violations"] == []
    assert plan.summary["planned_parcels"] == 12
    assert routes_into(db, city.communities["sealed"]) == {"robot"}
    assert routes_into(db, city.communities["open"])  # any vehicle may serve an open one
    for route in db.scalars(select(Route)):
        vehicle = db.get(Vehicle, route.vehicle_id)
        assert vehicle is not None
        assert route.weight_g <= vehicle.capacity_g
        if vehicle.range_m is not None:
            assert route.distance_m <= vehicle.range_m
        parcels = db.scalar(select(func.sum(Parcel.weight_g)).where(Parcel.route_id == route.id))
        assert parcels == route.weight_g
    # The engine's independent checker on the problems as built (access, payload, range).
    inp = planning.prepare_plan(db, day=TODAY)
    assert inp.parcels == []  # everything is planned already
    stops = db.scalars(select(RouteStop)).all()
    assert {s.inner_mode for s in stops if s.community_id == city.communities["sealed"].id} == {
        "robot"
    }


def test_robot_payload_and_range_are_respected_by_the_checker(db: Session) -> None:
    city = make_city(db, per_community=6)
    # A weaker robot: 60 kg payload (a household's pack is ~14.6 kg), 8 km range (the sealed
    # gate is ~3.1 km away by road).
    city.robots.capacity_g, city.robots.range_m = 60_000, 8_000
    db.commit()
    inp = planning.prepare_plan(db, day=TODAY)
    problems, unassigned = planning.build_problems(inp)
    assert unassigned == {}
    (wp,) = problems
    sealed = [
        s
        for s, c in zip(wp.problem.stops, wp.communities, strict=True)
        if c == city.communities["sealed"].id
    ]
    assert sealed and all(s.allowed_kinds == {VehicleKind.ROBOT, VehicleKind.FOOT} for s in sealed)
    assert all(s.weight_g <= 60_000 for s in sealed)  # loads split to the robot's payload
    result = solve_routing(wp.problem, time_limit=0.5, seed=3)
    assert check_solution(wp.problem, result) == []
    robot_routes = [r for r in result.routes if r.vehicle_type == f"g{city.robots.id}"]
    for r in robot_routes:
        assert sum(v.weight_g for v in r.visits) <= 60_000
        assert r.distance_m <= 8_000
    # Out of range, and no volunteer team: every sealed load is left unassigned with the reason,
    # never given to a van; the parcels are released (their stock free again, their
    # allocations back with their requests), never left pending.
    city.robots.range_m = 500
    db.commit()
    plan = dispatch_flow.plan_dispatch(db, day=TODAY, actor=None, time_limit=0.3)
    db.commit()
    assert routes_into(db, city.communities["sealed"]) == set()
    reasons = plan.summary["unassigned"]
    assert sum(reasons.values()) == 6 and any("range" in r for r in reasons), reasons
    released = db.scalars(
        select(Parcel).where(Parcel.community_id == city.communities["sealed"].id)
    ).all()
    assert {p.status for p in released} == {ParcelStatus.released}
    assert set(plan.summary["released"]) == {str(p.id) for p in released}
    assert all("range" in why for why in plan.summary["released"].values())
    allocations = db.scalars(
        select(Allocation)
        .join(ParcelLine, ParcelLine.allocation_id == Allocation.id)
        .where(ParcelLine.parcel_id.in_([p.id for p in released]))
    ).all()
    assert allocations and {a.state for a in allocations} == {AllocationState.returned}
    assert check_ledger(db) == []


def test_unavailable_couriers_are_left_out(db: Session) -> None:
    city = make_city(db)
    fleet.set_availability(
        db, vehicle_id=city.vans.id, day=TODAY, available=0, note="locked in", actor=None
    )
    with pytest.raises(Invalid):
        fleet.set_availability(
            db, vehicle_id=city.vans.id, day=TODAY, available=9, note=None, actor=None
        )
    plan = dispatch_flow.plan_dispatch(db, day=TODAY, actor=None, time_limit=0.3)
    db.commit()
    assert {r.kind for r in db.scalars(select(Route))} == {"robot"}
    assert plan.summary["planned_parcels"] == 6  # the robot serves everyone, one gate at a time


def test_replan_moves_only_parcels_not_on_board(db: Session) -> None:
    city = make_city(db, per_community=4)
    city.robots.capacity_g = 60_000  # the robot takes the sealed compound only: vans needed
    plan = dispatch_flow.plan_dispatch(db, day=TODAY, actor=None, time_limit=0.3)
    db.commit()
    routes = db.scalars(select(Route).order_by(Route.id)).all()
    assert len(routes) >= 2
    on_board, broken = routes[0], routes[1]
    delivery.record_event(
        db,
        EventIn(client_event_id=f"e-{uuid.uuid4()}", kind="loaded", route_id=on_board.id),
        actor=city.admin,
    )
    db.commit()
    before = {p.id: (p.route_id, p.stop_id) for p in db.scalars(select(Parcel))}
    issued = db.scalar(
        select(func.count()).select_from(StockMovement).where(StockMovement.kind == "issue")
    )
    replan = dispatch_flow.plan_dispatch(
        db,
        day=TODAY,
        actor=None,
        time_limit=0.3,
        replan_of_id=plan.id,
        failed_route_ids=[broken.id],
    )
    db.commit()
    db.expire_all()
    assert replan.replan_of_id == plan.id
    for p in db.scalars(select(Parcel)):
        if before[p.id][0] == on_board.id:
            assert (p.route_id, p.stop_id) == before[p.id]  # untouched
            assert p.status == ParcelStatus.loaded
        else:
            assert p.route_id not in {r.id for r in routes}  # moved to the re-plan's routes
    assert db.get(Route, broken.id).status == RouteStatus.cancelled
    assert db.get(Route, on_board.id).status == RouteStatus.loaded
    assert issued == db.scalar(
        select(func.count()).select_from(StockMovement).where(StockMovement.kind == "issue")
    )
    # The broken vehicle is out for the day: fewer of its group in the re-plan.
    new_routes = db.scalars(select(Route).where(Route.plan_id == replan.id)).all()
    same_group = [r for r in new_routes if r.vehicle_id == broken.vehicle_id]
    busy = 1 if on_board.vehicle_id == broken.vehicle_id else 0
    group = db.get(Vehicle, broken.vehicle_id)
    assert len(same_group) <= group.count - 1 - busy


def test_manifests_list_every_parcel_in_stop_order_without_codes(db: Session) -> None:
    city = make_city(db)
    dispatch_flow.plan_dispatch(db, day=TODAY, actor=None, time_limit=0.3)
    db.commit()
    for route in db.scalars(select(Route)):
        text = manifests.manifest_csv(db, route.id, actor=city.admin)
        lines = text.strip().splitlines()
        parcels = db.scalars(select(Parcel).where(Parcel.route_id == route.id)).all()
        assert len(lines) == 1 + len(parcels)
        stops = [int(line.split(",")[0]) for line in lines[1:]]
        assert stops == sorted(stops)
        page = manifests.manifest_html(db, route.id, actor=city.admin)
        from relieflink.dispatch import codes

        for p in parcels:
            assert f"P{p.id}" in page
            assert codes.derive(p.code_nonce) not in text  # codes are never printed
    stranger = make_user(db, Role.courier, organization_id=city.other_carrier.id)
    route = db.scalars(select(Route)).first()
    with pytest.raises(Exception, match="no route"):
        manifests.manifest_csv(db, route.id, actor=stranger)


def test_import_fleet_from_the_generator_format(db: Session, tmp_path: Path) -> None:
    city = make_city(db, per_community=1)
    carrier = make_org(db, code="CAR-X", kind="carrier")
    db.commit()
    good = tmp_path / "vehicles.csv"
    header = ",".join(fleet.FLEET_COLUMNS) + "\n"
    good.write_text(
        header
        + f"VX1,CAR-X,van,{city.warehouse.code},4,800,5,30,250,07:00,19:00\n"
        + f"VX2,CAR-X,robot,{city.warehouse.code},2,200,2,15,100,06:00,22:00\n"
    )
    assert fleet.import_fleet(db, good, actor=None) == (2, 0)
    assert fleet.import_fleet(db, good, actor=None) == (0, 2)
    robot = db.scalars(select(Vehicle).where(Vehicle.code == "VX2")).one()
    assert (robot.kind, robot.capacity_g, robot.range_m, robot.carrier_id) == (
        FleetKind.robot,
        200_000,
        100_000,
        carrier.id,
    )
    bad = tmp_path / "bad.csv"
    bad.write_text(
        header
        + f"VX3,CAR-X,van,{city.warehouse.code},1,800,5,30,250,07:00,19:00\n"
        + "VX4,NOPE,hovercraft,W?,x,800,5,30,250,19:00,07:00\n"
    )
    with pytest.raises(Invalid) as caught:
        fleet.import_fleet(db, bad, actor=None)
    where = {(e.loc[1], e.loc[2]) for e in caught.value.errors}
    assert {
        (3, "carrier_code"),
        (3, "kind"),
        (3, "depot_code"),
        (3, "count"),
        (3, "shift_end"),
    } <= where
    db.rollback()
    assert db.scalar(select(func.count()).select_from(Vehicle).where(Vehicle.code == "VX3")) == 0


def test_plan_job_through_the_api_reports_progress(db: Session, client: TestClient) -> None:
    city = make_city(db)
    coordinator = headers_for(db, client, Role.coordinator)
    courier = headers_for(db, client, Role.courier, organization_id=city.carrier.id)
    assert (
        client.post(
            "/api/v1/dispatch/plans", json={"day": TODAY.isoformat()}, headers=courier
        ).status_code
        == 403
    )
    response = client.post(
        "/api/v1/dispatch/plans",
        json={"day": TODAY.isoformat(), "time_limit": 0.3},
        headers=coordinator,
    )
    assert response.status_code == 202, response.text
    plan_id = response.json()["id"]
    # TestClient runs background tasks before returning: the job is finished by now.
    polled = client.get(f"/api/v1/dispatch/plans/{plan_id}", headers=coordinator).json()
    assert polled["status"] == "done" and polled["progress"] == 100, polled
    assert polled["summary"]["planned_parcels"] == 6
    mine = client.get("/api/v1/dispatch/routes", headers=courier).json()
    assert mine["total"] == polled["summary"]["routes"]
    other = headers_for(db, client, Role.courier, organization_id=city.other_carrier.id)
    assert client.get("/api/v1/dispatch/routes", headers=other).json()["total"] == 0
    route_id = mine["items"][0]["id"]
    assert client.get(f"/api/v1/dispatch/routes/{route_id}", headers=other).status_code == 404
    csv_text = client.get(f"/api/v1/dispatch/routes/{route_id}/manifest.csv", headers=courier)
    assert csv_text.status_code == 200 and csv_text.text.startswith("stop,eta,")
    stops = client.get(f"/api/v1/dispatch/routes/{route_id}/stops", headers=courier).json()
    assert [s["seq"] for s in stops] == list(range(1, len(stops) + 1))
    assert all(s["eta_s"] >= 7 * 3600 for s in stops)
    # A mid-day re-plan through the API: the broken route is cancelled, nothing is lost.
    again = client.post(
        f"/api/v1/dispatch/plans/{plan_id}/replan",
        json={"failed_route_ids": [route_id], "time_limit": 0.3},
        headers=coordinator,
    )
    assert again.status_code == 202, again.text
    replanned = client.get(f"/api/v1/dispatch/plans/{again.json()['id']}", headers=coordinator)
    assert replanned.json()["status"] == "done", replanned.json()
    assert (
        client.get(f"/api/v1/dispatch/routes/{route_id}", headers=courier).json()["status"]
        == "cancelled"
    )
    db.rollback()
    assert (
        db.scalar(
            select(func.count()).select_from(Parcel).where(Parcel.status == ParcelStatus.planned)
        )
        + db.scalar(
            select(func.count()).select_from(Parcel).where(Parcel.status == ParcelStatus.released)
        )
        == 6
    )
    assert (
        db.scalar(
            select(func.count()).select_from(Parcel).where(Parcel.status == ParcelStatus.pending)
        )
        == 0
    )  # what no route took was released, never left pending


def _robot_routes(db: Session, plan_id: int, robots: Vehicle) -> list[Route]:
    return list(
        db.scalars(select(Route).where(Route.plan_id == plan_id, Route.vehicle_id == robots.id))
    )


def test_a_broken_down_robot_stays_out_of_every_later_replan_that_day(db: Session) -> None:
    city = make_city(db)
    plan = dispatch_flow.plan_dispatch(db, day=TODAY, actor=None, time_limit=0.3)
    db.commit()
    (robot_route,) = _robot_routes(db, plan.id, city.robots)  # the sealed compound's
    replan = dispatch_flow.plan_dispatch(
        db,
        day=TODAY,
        actor=None,
        time_limit=0.3,
        replan_of_id=plan.id,
        failed_route_ids=[robot_route.id],
    )
    db.commit()
    assert _robot_routes(db, replan.id, city.robots) == []
    # with no robot left, the sealed compound's parcels are released, each with its reason
    # (their stock freed and their requests allocated again at the next wave)
    assert replan.summary["released"]
    # The breakdown is the day's availability: the group's one robot is out ...
    assert fleet.available_counts(db, TODAY)[city.robots.id] == 0
    # ... so the next re-plan (nothing else broke) does not put it back on a route.
    again = dispatch_flow.plan_dispatch(
        db, day=TODAY, actor=None, time_limit=0.3, replan_of_id=replan.id
    )
    db.commit()
    assert _robot_routes(db, again.id, city.robots) == []
    # Reporting the same (now cancelled) route again does not count it twice; the next day
    # the robot works again.
    assert fleet.record_breakdowns(db, day=TODAY, route_ids=[robot_route.id], actor=None) == {}
    assert fleet.available_counts(db, TODAY + timedelta(days=1))[city.robots.id] == 1


def test_a_breakdown_reported_through_the_api_lowers_the_days_count(
    db: Session, client: TestClient
) -> None:
    city = make_city(db, per_community=4)
    city.robots.capacity_g = 60_000  # the robot takes the sealed compound only: vans needed
    plan = dispatch_flow.plan_dispatch(db, day=TODAY, actor=None, time_limit=0.3)
    db.commit()
    vans = [
        r
        for r in db.scalars(select(Route).where(Route.plan_id == plan.id))
        if r.vehicle_id == city.vans.id
    ]
    assert vans
    coordinator = headers_for(db, client, Role.coordinator)
    unknown = client.post(
        f"/api/v1/dispatch/plans/{plan.id}/replan",
        json={"failed_route_ids": [vans[0].id, 99_999], "time_limit": 0.3},
        headers=coordinator,
    )
    assert unknown.status_code == 422, unknown.text
    assert unknown.json()["errors"][0]["loc"] == ["failed_route_ids", 1]
    db.rollback()
    assert fleet.available_counts(db, TODAY)[city.vans.id] == 3  # nothing written
    answer = client.post(
        f"/api/v1/dispatch/plans/{plan.id}/replan",
        json={"failed_route_ids": [vans[0].id], "time_limit": 0.3},
        headers=coordinator,
    )
    assert answer.status_code == 202, answer.text
    db.rollback()
    assert fleet.available_counts(db, TODAY)[city.vans.id] == 2
    replanned = db.scalars(select(Route).where(Route.plan_id == answer.json()["id"])).all()
    assert sum(r.vehicle_id == city.vans.id for r in replanned) <= 2


def test_a_large_plan_leaves_the_planner_statistics_of_what_it_wrote(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL a plan of many parcels ends with ANALYZE of its routes, stops, parcels and
    lines, in its own transaction: each route's manifest that follows is planned on them (an
    index lookup, not a scan of every parcel of the city)."""
    if db.get_bind().dialect.name != "postgresql":
        pytest.skip("planner statistics are PostgreSQL's")
    make_city(db)
    monkeypatch.setattr(bulk, "ANALYZE_FROM", 1)
    db.execute(text("ANALYZE dispatch_parcels, dispatch_parcel_lines"))  # of the empty tables
    dispatch_flow.plan_dispatch(db, day=TODAY, actor=None, time_limit=0.5, seed=1)
    names = "('dispatch_parcels', 'dispatch_parcel_lines')"
    sql = f"SELECT relname, reltuples FROM pg_class WHERE relname IN {names}"
    counted = dict(db.execute(text(sql)).all())
    parcels = db.scalar(select(func.count()).select_from(Parcel))
    lines = db.scalar(select(func.count()).select_from(ParcelLine))
    assert parcels and lines
    assert counted == {"dispatch_parcels": parcels, "dispatch_parcel_lines": lines}
