"""Delivery tracking as people read it: a route and its stops, a resident's own parcels and
pickup codes, a parcel's history and the trace from a delivered pack back to its donors, couriers
assigned, hand-off discrepancies.

Events are checked by :mod:`relieflink.dispatch.tracking_rules` and applied set-based by
:mod:`relieflink.dispatch.tracking_apply`; ``relieflink.flows.delivery`` records them with their
outcomes on the ledger and the requests.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from relieflink import clock
from relieflink.audit import service as audit
from relieflink.dispatch import codes
from relieflink.dispatch import repository as repo
from relieflink.errors import FieldError, Forbidden, Invalid, NotFound
from relieflink.models import (
    HandoffDiscrepancy,
    Parcel,
    ParcelStatus,
    Role,
    Route,
    RouteStop,
    TrackingEvent,
    User,
)
from relieflink.stock import service as stock
from relieflink.users import access

# --- reading ----------------------------------------------------------------------------------


def parcel_recipients(session: Session, parcel_ids: list[int]) -> dict[int, tuple[int, str]]:
    """Parcel id → (the household it is for, its pickup code): for that household's notice
    only, never to be shown to anyone else."""
    return {
        parcel_id: (household_id, codes.derive(nonce))
        for parcel_id, (household_id, nonce) in repo.parcel_recipients(session, parcel_ids).items()
    }


def require_route(session: Session, route_id: int, *, actor: User) -> Route:
    route = repo.scoped_route(session, access.scope_routes, route_id, actor)
    if route is None:
        raise NotFound(f"no route {route_id} that you may see")
    return route


def list_routes(
    session: Session, *, actor: User, plan_id: int | None, offset: int, limit: int
) -> tuple[list[Route], int]:
    """A page of the routes ``actor`` may see (a courier only its own), and their total."""
    return repo.routes_page(
        session, access.scope_routes, actor, plan_id=plan_id, offset=offset, limit=limit
    )


def route_stops(session: Session, route_id: int, *, actor: User) -> list[RouteStop]:
    """A route's stops in order, for whoever may see the route."""
    require_route(session, route_id, actor=actor)
    return repo.stops_of_route(session, route_id)


def my_deliveries(session: Session, *, actor: User) -> list[tuple[Parcel, str | None, int | None]]:
    """A resident's own parcels with their pickup codes (shown only here) and ETAs."""
    if actor.role != Role.resident or actor.household_id is None:
        raise Forbidden("only a household's resident sees its deliveries and pickup codes")
    rows = repo.parcels_of_household(session, actor.household_id)
    out: list[tuple[Parcel, str | None, int | None]] = []
    for parcel, eta in rows:
        live = parcel.status not in (ParcelStatus.delivered, ParcelStatus.failed)
        out.append((parcel, codes.derive(parcel.code_nonce) if live else None, eta))
    audit.record(
        session, actor=actor, action="read", entity="pickup_codes", entity_id=actor.household_id
    )
    return out


def parcel_events(session: Session, parcel_id: int, *, actor: User) -> list[TrackingEvent]:
    """The ordered history of one parcel (its own events, then its stop's and route's)."""
    parcel = session.get(Parcel, parcel_id)
    if parcel is None:
        raise NotFound(f"no parcel {parcel_id}")
    if not (actor.role == Role.resident and actor.household_id == parcel.household_id):
        if parcel.route_id is None:
            access.ensure_role(actor, access.STAFF)
        else:
            require_route(session, parcel.route_id, actor=actor)
    events = repo.events_of_route(session, parcel.route_id)
    return [e for e in events if parcel.id in e.result.get("parcels", [])]


@dataclass
class ParcelTrace:
    parcel_id: int
    household_id: int
    status: str
    delivered_at: datetime | None
    route_id: int | None
    carrier_id: int | None
    courier_id: int | None
    vehicle_id: int | None
    kind: str | None
    lines: list[dict[str, Any]]
    donors: list[dict[str, Any]]  # see ``stock.named_shares``


def trace_parcel(session: Session, parcel_id: int, *, actor: User) -> ParcelTrace:
    """For a household pack: the donors behind it (from the ledger), and the route and
    courier that brought it."""
    parcel = session.get(Parcel, parcel_id)
    if parcel is None:
        raise NotFound(f"no parcel {parcel_id}")
    if not (
        actor.role in access.STAFF
        or (actor.role == Role.resident and actor.household_id == parcel.household_id)
    ):
        raise Forbidden("the trace of a household's pack is for staff and that household")
    route = session.get(Route, parcel.route_id) if parcel.route_id else None
    who = None
    if route is not None:
        who = route.courier_id or repo.first_loader(session, route.id)
    lines = []
    totals: dict[int, Any] = defaultdict(int)
    for line in repo.lines_of(session, [parcel.id])[parcel.id]:
        shares = stock.donor_shares(session, reference=line.reference)
        for donor, units in shares.items():
            totals[donor] += units
        lines.append(
            {
                "reference": line.reference,
                "kit_id": line.kit_id,
                "item_id": line.item_id,
                "quantity": line.quantity,
                "donors": stock.named_shares(session, shares),
            }
        )
    return ParcelTrace(
        parcel.id,
        parcel.household_id,
        str(parcel.status),
        parcel.delivered_at,
        route.id if route else None,
        route.carrier_id if route else None,
        who,
        route.vehicle_id if route else None,
        str(route.kind) if route else None,
        lines,
        stock.named_shares(session, dict(sorted(totals.items()))),
    )


def assign_courier(session: Session, route_id: int, courier_id: int, *, actor: User) -> Route:
    """Give a route to one courier of its carrier."""
    access.ensure_role(actor, access.STAFF)
    route = require_route(session, route_id, actor=actor)
    courier = session.get(User, courier_id)
    if (
        courier is None
        or courier.role != Role.courier
        or courier.organization_id != route.carrier_id
    ):
        raise Invalid(
            f"user {courier_id} is not a courier of carrier {route.carrier_id}",
            [FieldError(("courier_id",), "a courier of the route's carrier")],
        )
    route.courier_id = courier_id
    session.flush()
    return route


def list_discrepancies(session: Session, *, actor: User) -> list[HandoffDiscrepancy]:
    access.ensure_role(actor, access.STAFF)
    return repo.discrepancies(session)


def since(minutes: int) -> datetime:
    return clock.now() - timedelta(minutes=minutes)
