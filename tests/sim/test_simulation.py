"""A small simulated day on the test database, driven through the dispatch service: its counts
must reconcile with the ledger, the dispatch tables and the tracking events."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relieflink import clock
from relieflink.bulk import service as bulk
from relieflink.catalog import service as catalog
from relieflink.config import get_settings
from relieflink.dispatch import fleet, reach
from relieflink.models import (
    Allocation,
    DispatchPlan,
    EventKind,
    FleetKind,
    InnerMode,
    Kit,
    MovementKind,
    NeedRequest,
    Organization,
    Parcel,
    ParcelLine,
    ParcelStatus,
    Pledge,
    PledgeLine,
    RequestLine,
    RequestSource,
    Role,
    Route,
    RouteStatus,
    RouteStop,
    StockMovement,
    TrackingEvent,
    User,
    Vehicle,
)
from relieflink.scenario import figures as fg
from relieflink.scenario import generate_city
from relieflink.sim.assumptions import ASSUMPTIONS
from relieflink.sim.demo import IMPORT_ORDER
from relieflink.sim.dispatching import Dispatch
from relieflink.sim.metrics import GROUPS, outcome, reconcile
from relieflink.sim.simulation import START, Simulation
from relieflink.teams.service import team_days

WAVES_ONLY = replace(ASSUMPTIONS, trip_waves=False)

ON_BOARD = (
    ParcelStatus.loaded,
    ParcelStatus.departed,
    ParcelStatus.at_gate,
    ParcelStatus.handed_off,
)


@pytest.fixture
def small_city(db: Session, tmp_path: Path) -> Session:
    manifest = generate_city(scale=0.0001, seed=3, out=tmp_path / "city")
    catalog.seed_catalog(db, actor=None)
    for kind in IMPORT_ORDER:
        bulk.import_file(db, kind, manifest.files[kind], actor=None)
    fleet.import_fleet(db, manifest.files["vehicles"], actor=None)
    db.commit()
    return db


def _packs(db: Session, *statuses: ParcelStatus) -> int:
    return int(
        db.scalar(
            select(func.coalesce(func.sum(Parcel.packs), 0)).where(Parcel.status.in_(statuses))
        )
    )


@pytest.mark.parametrize("policy", ["priority", "fifo"])
def test_a_simulated_day_reconciles_with_the_ledger(small_city: Session, policy: str) -> None:
    db = small_city
    log = Simulation(db, policy=policy, days=1, seed=3).run()  # type: ignore[arg-type]
    check = reconcile(db, log)
    assert check.ledger_problems == []
    assert check.donors_unbalanced == []
    assert check.delivered_by_simulation > 0
    # The ledger's "delivered" is what was handed over at the door; what was issued at loading
    # (net of failed deliveries' returns) and is still on board is "on the way".
    assert check.delivered_by_ledger == check.delivered_by_simulation
    assert check.on_the_way_by_ledger == log.on_board_packs
    assert check.delivered_by_dispatch == check.delivered_by_simulation
    assert check.on_board_by_dispatch == log.on_board_packs
    assert check.ok
    # Every request the simulation counts (accepted from households, or written as a
    # prescription by a doctor) is in the database, and nothing else is.
    prescriptions = log.answers["consultations closed with a prescription"]
    assert prescriptions > 0
    assert db.scalar(select(func.count()).select_from(NeedRequest)) == (
        log.answers["accepted"] + prescriptions
    )
    assert log.answers["refused as invalid"] > 0
    figures = outcome(log, days=1)
    assert figures["delivered_packs"] + figures["unmet_packs"] == sum(
        r.packs for r in log.requests.values()
    )
    assert set(figures["groups"]) == set(GROUPS)
    assert figures["routes_driven"] == log.routes_driven > 0
    assert len(log.routes) == log.routes_driven
    # Donors gave what they gave: the family food kits only from the grain companies.
    food_donors = db.scalars(
        select(Organization.code)
        .join(Pledge, Pledge.donor_org_id == Organization.id)
        .join(PledgeLine, PledgeLine.pledge_id == Pledge.id)
        .join(Kit, Kit.id == PledgeLine.kit_id)
        .where(Kit.sku == "KIT-FAMILY-FOOD")
        .distinct()
    ).all()
    assert food_donors and set(food_donors) <= set(fg.GRAIN_COMPANIES)
    # Prescriptions are counted apart from the households' own requests.
    assert figures["requests_by_source"] == {
        "household": log.answers["accepted"],
        "prescription": prescriptions,
    }
    # A day of deliveries followed the day of requests: every request had 24 hours.
    for group in figures["groups"].values():
        assert group["eligible_24h"] == group["requests"]
    # "Allocated in full" is every line allocated up to what was asked, read from the
    # database; a request delivered in full had its stock, so no group is served beyond it.
    short = set(
        db.scalars(
            select(RequestLine.request_id).where(RequestLine.allocated < RequestLine.quantity)
        )
    )
    assert log.allocated_in_full == set(log.requests) - short
    assert {r.request_id for r in log.requests.values() if r.t_delivered is not None} <= (
        log.allocated_in_full
    )
    assert 0 < len(log.allocated_in_full) < len(log.requests)  # stock is scarce
    # Per kit, nothing is allocated beyond what was asked or what was received.
    assert figures["kits"]["KIT-FAMILY-FOOD"]["asked"] > 0
    for sku, kit in figures["kits"].items():
        assert kit["allocated"] <= min(kit["asked"], kit["received"]), sku
    for group in figures["groups"].values():
        if group["eligible_24h"]:
            assert group["served_within_24h"] <= group["allocated_in_full"]
            # The median's floor (the undelivered counted as waiting until the end) is never
            # above the median where it was reached.
            if group["median_hours_to_delivery"] is not None:
                assert group["median_hours_at_least"] <= group["median_hours_to_delivery"]
    # Pending parcels are counted once each: at most the distinct parcels neither delivered
    # nor on board, whatever the number of plans that left them out.
    still = ParcelStatus.released, ParcelStatus.pending, ParcelStatus.planned, ParcelStatus.failed
    parcels = set(db.scalars(select(Parcel.id).where(Parcel.status.in_(still))))
    assert sum(figures["parcels_pending_at_end"].values()) <= len(parcels)
    assert len(log.plans) > 1


@pytest.mark.parametrize("policy", ["priority"])
def test_deliveries_go_through_dispatch_routes_and_courier_events(
    small_city: Session, policy: str
) -> None:
    db = small_city
    log = Simulation(db, policy=policy, days=1, seed=3).run()  # type: ignore[arg-type]
    assert log.delivered_parcels and log.plans
    delivered = set(db.scalars(select(Parcel.id).where(Parcel.status == ParcelStatus.delivered)))
    assert delivered == set(log.delivered_parcels)
    failed = set(db.scalars(select(Parcel.id).where(Parcel.status == ParcelStatus.failed)))
    assert failed == set(log.failed_parcels)
    # Each delivered parcel is on a driven route owned by a courier of the route's carrier,
    # and has exactly one delivered event, posted by that courier.
    rows = db.execute(
        select(Parcel.id, Route.id, Route.status, Route.courier_id, Route.carrier_id)
        .join(Route, Route.id == Parcel.route_id)
        .where(Parcel.id.in_(delivered))
    ).all()
    assert {r[0] for r in rows} == delivered
    events: dict[int, int] = dict(
        db.execute(  # type: ignore[arg-type]
            select(TrackingEvent.parcel_id, TrackingEvent.actor_id).where(
                TrackingEvent.kind == EventKind.delivered
            )
        ).all()
    )
    assert set(events) == delivered
    couriers = {u.id: u for u in db.scalars(select(User).where(User.role == Role.courier))}
    for parcel_id, _route_id, status, courier_id, carrier_id in rows:
        assert status in (RouteStatus.departed, RouteStatus.completed)
        assert events[parcel_id] == courier_id
        assert couriers[courier_id].organization_id == carrier_id
    # Failed parcels have a failed event with one of the tracking service's reasons.
    reasons = set(
        db.scalars(select(TrackingEvent.reason).where(TrackingEvent.kind == EventKind.failed))
    )
    assert len(reasons) <= 4 and None not in reasons
    # The ledger moved through dispatch: issues net of returns equal delivered + on board.
    issued = -int(
        db.scalar(
            select(func.coalesce(func.sum(StockMovement.d_on_hand), 0)).where(
                StockMovement.kind == MovementKind.issue
            )
        )
    )
    returned = int(
        db.scalar(
            select(func.coalesce(func.sum(StockMovement.d_on_hand), 0)).where(
                StockMovement.kind == MovementKind.return_
            )
        )
    )
    assert issued - returned == _packs(db, ParcelStatus.delivered, *ON_BOARD)
    assert _packs(db, ParcelStatus.delivered) == sum(p for _, p, _, _ in log.deliveries)
    # Nothing was planned around the service: every route belongs to one of the sim's plans.
    plan_ids = set(db.scalars(select(Route.plan_id).distinct()))
    assert plan_ids <= set(log.plans)


def test_the_services_read_the_simulated_clock_and_get_the_real_one_back(
    small_city: Session,
) -> None:
    db = small_city
    Simulation(db, policy="priority", days=1, seed=3).run()
    # Records are stamped by the one clock, moved to the simulated days (the day of requests,
    # then a day of deliveries), as are the events the couriers post and the deliveries'
    # closing time.
    first, last = clock.day_start(START), clock.day_start(START + timedelta(days=2))
    stamps = [
        *db.scalars(select(NeedRequest.created_at)),
        *db.scalars(select(TrackingEvent.recorded_at)),
        *db.scalars(select(TrackingEvent.occurred_at)),
    ]
    assert stamps and all(first <= s <= last for s in stamps)
    assert clock.today() > START + timedelta(days=365)  # the real clock is back


def test_the_clock_comes_back_when_the_simulation_fails(
    small_city: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("the planner crashed")

    monkeypatch.setattr(Dispatch, "_plan", broken)  # at the first wave
    with pytest.raises(RuntimeError, match="planner crashed"):
        Simulation(small_city, policy="fifo", days=1, seed=3).run()
    assert clock.today() > START + timedelta(days=365)


def test_the_evening_wave_sends_afternoon_medical_and_infant_requests_the_same_day(
    small_city: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = small_city
    monkeypatch.setenv("RELIEFLINK_DISPATCH_WAVES", "9,15,20")
    get_settings.cache_clear()
    try:
        # The scheduled waves only (no trips of vehicles back between them).
        log = Simulation(db, policy="priority", days=1, seed=3, assumptions=WAVES_ONLY).run()
    finally:
        monkeypatch.delenv("RELIEFLINK_DISPATCH_WAVES")
        get_settings.cache_clear()
    hours = {
        clock.local(created).hour
        for created in db.scalars(
            select(DispatchPlan.created_at).where(DispatchPlan.replan_of_id.is_(None))
        )
    }
    assert hours == {9, 15, 20}
    # Asked between the afternoon and the evening wave by a household with an infant, or
    # written by a doctor: out with the evening wave, not the next day.
    late = [
        r.request_id
        for r in log.requests.values()
        if 15 * 60 < r.t_request < 20 * 60
        and ("infant" in r.groups or r.request_id in _prescribed(db))
    ]
    assert late
    # Out with the evening wave: their parcels were loaded (stock issued) and left, whether or
    # not they reached the door before the simulated day ended. (A request keeps its status
    # while a line of it waits for stock: look at the parcels.)
    out = {ParcelStatus.loaded, ParcelStatus.departed, ParcelStatus.at_gate,
           ParcelStatus.handed_off, ParcelStatus.delivered}  # fmt: skip
    sent = db.scalars(
        select(RequestLine.request_id)
        .join(Allocation, Allocation.line_id == RequestLine.id)
        .join(ParcelLine, ParcelLine.allocation_id == Allocation.id)
        .join(Parcel, Parcel.id == ParcelLine.parcel_id)
        .where(RequestLine.request_id.in_(late), Parcel.status.in_(out))
    ).all()
    assert sent


def _prescribed(db: Session) -> set[int]:
    return set(
        db.scalars(select(NeedRequest.id).where(NeedRequest.source == RequestSource.prescription))
    )


def test_requests_are_posted_through_the_batch_path_before_each_wave(
    small_city: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Residents' requests are collected and posted (``needs.create_requests``) before each
    wave and at the day's end: each stored request is stamped at the first posting after it
    was asked, and every accepted answer is a stored request."""
    db = small_city
    monkeypatch.setenv("RELIEFLINK_DISPATCH_WAVES", "9,15,20")
    get_settings.cache_clear()
    try:
        log = Simulation(db, policy="fifo", days=1, seed=3, assumptions=WAVES_ONLY).run()
    finally:
        monkeypatch.delenv("RELIEFLINK_DISPATCH_WAVES")
        get_settings.cache_clear()
    postings = [9 * 60, 15 * 60, 20 * 60, 24 * 60 - 1]
    stored = dict(
        db.execute(
            select(NeedRequest.id, NeedRequest.created_at).where(
                NeedRequest.source != RequestSource.prescription
            )
        ).all()
    )
    asked = {r.request_id: r for r in log.requests.values() if r.source == "household"}
    assert asked and set(asked) == set(stored)
    assert log.answers["accepted"] == len(stored)
    for request_id, record in asked.items():
        created = clock.local(stored[request_id])
        minute = created.hour * 60 + created.minute
        assert minute == next(p for p in postings if p >= record.t_request)


def test_a_volunteer_team_carries_a_gates_doors_in_parallel(small_city: Session) -> None:
    """At a volunteer gate, the team's members at work each take one door per trip
    (``INNER_TRIP_S``), all in parallel: doors of a stop are done together, and never more trips
    at once at a gate than the team has members."""
    db = small_city
    Simulation(db, policy="priority", days=1, seed=3).run()
    doors: dict[int, list[tuple[int, datetime]]] = {}
    for community_id, stop_id, at in db.execute(
        select(RouteStop.community_id, Parcel.stop_id, TrackingEvent.occurred_at)
        .join(TrackingEvent, TrackingEvent.parcel_id == Parcel.id)
        .join(RouteStop, RouteStop.id == Parcel.stop_id)
        .where(
            RouteStop.inner_mode == InnerMode.volunteer,
            TrackingEvent.kind.in_([EventKind.delivered, EventKind.failed]),
        )
    ):
        doors.setdefault(community_id, []).append((stop_id, at))
    assert doors
    teams = team_days(db, day=START, community_ids=set(doors))
    together = 0
    for community_id, done in doors.items():
        members = max(1, teams[community_id].available)
        trip = timedelta(seconds=reach.INNER_TRIP_S)
        ends = sorted(at for _, at in done)
        for at in ends:  # trips under way when this one ended
            assert sum(1 for end in ends if at - trip < end <= at) <= members
        per_stop = Counter(done)
        together += any(n > 1 for n in per_stop.values())
    assert together  # several doors of one stop done at the same moment


def test_a_vehicle_back_before_the_next_wave_takes_another_trip(
    small_city: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between the scheduled waves, once a route is completed (its vehicle back), the
    coordinator allocates and plans again: a plan made off the wave hours sends out a vehicle
    of a group that had already completed a route that day, after that route ended, and
    within the group's shift."""
    db = small_city
    monkeypatch.setenv("RELIEFLINK_DISPATCH_WAVES", "9,20")
    get_settings.cache_clear()
    try:
        log = Simulation(db, policy="priority", days=1, seed=3).run()
    finally:
        monkeypatch.delenv("RELIEFLINK_DISPATCH_WAVES")
        get_settings.cache_clear()
    plans = dict(
        db.execute(
            select(DispatchPlan.id, DispatchPlan.created_at).where(
                DispatchPlan.replan_of_id.is_(None)
            )
        ).all()
    )
    assert log.waves == len(plans)
    trips = {i for i, at in plans.items() if clock.local(at).hour not in (9, 20)}
    assert trips  # plans between the waves
    routes = db.execute(
        select(Route.plan_id, Route.vehicle_id, Route.status).where(
            Route.status != RouteStatus.cancelled
        )
    ).all()
    completed_first = {
        v for p, v, status in routes if p not in trips and status == RouteStatus.completed
    }
    again = [v for p, v, _ in routes if p in trips and v in completed_first]
    assert again  # a vehicle that finished a route went out again before the evening wave
    ends = {v.id: v.shift_end_s for v in db.scalars(select(Vehicle))}
    for p, v, _ in routes:
        if p in trips:
            at = clock.local(plans[p])
            assert at.hour * 3600 + at.minute * 60 < ends[v]


def test_the_couriers_who_came_drive_the_biggest_vehicles_they_may(
    small_city: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The truck's driver is locked in today; the van's driver came. The coordinator puts the
    # van's driver on the depot's truck (3 t, not 0.8 t) and the van stays: a driver may drive
    # either, a rider only the e-bikes, so the e-bike riders stay on theirs.
    db = small_city
    groups = {v.kind: v for v in fleet.list_vehicles(db)}
    truck, van = groups[FleetKind.truck], groups[FleetKind.van]
    assert (truck.carrier_id, truck.depot_id) == (van.carrier_id, van.depot_id)
    assert truck.count == van.count == 1
    sim = Simulation(db, policy="priority", days=1, seed=3)

    def stream(kind: str, *key: int) -> random.Random:
        locked_in = kind == "absence" and key[0] == truck.id
        return _Fixed(0.0 if locked_in else 0.99)

    monkeypatch.setattr(sim.world, "stream", stream)
    with sim.world.clock():
        sim.dispatch._roll_call()
        counts = fleet.available_counts(db, clock.today())
    assert counts[truck.id] == 1 and counts[van.id] == 0
    assert [code for _, code in sim.log.absences] == [f"{truck.code} #0"]
    others = {
        v.id: v.count for v in groups.values() if v.kind not in (FleetKind.truck, FleetKind.van)
    }
    assert all(counts[vid] == n for vid, n in others.items())


class _Fixed(random.Random):
    """A stream whose every draw is ``value``."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value
