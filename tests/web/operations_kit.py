"""Helpers of the dashboard and courier page tests: a planned city, the forms of a page, the
pickup code a resident sees, and a bare route for the role tests."""

from __future__ import annotations

import re
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from relieflink import clock
from relieflink.dispatch import tracking
from relieflink.flows import dispatch as dispatch_flow
from relieflink.models import (
    DispatchPlan,
    FleetKind,
    InnerMode,
    OrgKind,
    Parcel,
    PlanStatus,
    Role,
    Route,
    RouteStop,
    User,
)
from tests.dispatch.factories import City, make_city, make_vehicle
from tests.factories import make_org, make_user
from tests.stock.factories import make_warehouse

_FORM = re.compile(r"<form\b[^>]*>(.*?)</form>", re.S)
_INPUT = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def today() -> date:
    return clock.today()


def planned_city(db: Session, day: date | None = None) -> tuple[City, DispatchPlan]:
    """The dispatch tests' city (allocation done) with the day's plan written."""
    city = make_city(db)
    plan = dispatch_flow.plan_dispatch(db, day=day or today(), actor=None, time_limit=0.5, seed=1)
    db.commit()
    assert plan.summary["violations"] == [], plan.summary
    return city, plan


def courier_route(db: Session, plan: DispatchPlan) -> tuple[Route, RouteStop, Parcel]:
    """A route of the plan with a stop where the courier goes to the door, and a parcel there."""
    stop = db.scalars(
        select(RouteStop)
        .join(Route, Route.id == RouteStop.route_id)
        .where(Route.plan_id == plan.id, RouteStop.inner_mode == InnerMode.courier)
        .order_by(RouteStop.id)
    ).first()
    assert stop is not None, "no stop with the courier to the door"
    route = db.get(Route, stop.route_id)
    parcel = db.scalars(select(Parcel).where(Parcel.stop_id == stop.id).order_by(Parcel.id)).first()
    assert route is not None and parcel is not None
    return route, stop, parcel


def pickup_code(db: Session, city: City, parcel: Parcel) -> str:
    """The code the parcel's resident sees, read as the resident's own view reads it."""
    resident = city.residents[parcel.household_id]
    (code,) = [c for p, c, _ in tracking.my_deliveries(db, actor=resident) if p.id == parcel.id]
    db.commit()  # the view audits the read, as the resident's page would
    assert code is not None
    return code


def forms(html: str) -> list[dict[str, str]]:
    """The hidden fields of each form of a page."""
    return [dict(_INPUT.findall(body)) for body in _FORM.findall(html)]


def event_form(html: str, kind: str, **target: int) -> dict[str, str]:
    """The hidden fields of the page's form for ``kind`` (on ``stop_id``/``parcel_id``)."""
    found = [
        f
        for f in forms(html)
        if f.get("kind") == kind and all(f.get(k) == str(v) for k, v in target.items())
    ]
    assert len(found) == 1, (kind, target, forms(html))
    return found[0]


def make_route(db: Session, *, courier: User, day: date | None = None) -> Route:
    """A planned route with no stops, given to ``courier`` (for the role tests)."""
    carrier = make_org(db, OrgKind.carrier)
    warehouse = make_warehouse(db, owner=carrier)
    vehicle = make_vehicle(db, carrier, warehouse, FleetKind.van)
    plan = DispatchPlan(day=day or today(), status=PlanStatus.done, progress=100, summary={})
    db.add(plan)
    db.flush()
    route = Route(
        plan_id=plan.id,
        vehicle_id=vehicle.id,
        vehicle_index=0,
        carrier_id=carrier.id,
        courier_id=courier.id,
        kind=FleetKind.van,
        depot_id=warehouse.id,
        start_s=8 * 3600,
        end_s=9 * 3600,
        distance_m=0,
        duration_s=3600,
        cost_fen=0,
        weight_g=0,
    )
    db.add(route)
    db.flush()
    return route


def courier_of(db: Session, city: City, **overrides: object) -> User:
    return make_user(db, Role.courier, organization_id=city.carrier.id, **overrides)
