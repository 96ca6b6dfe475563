"""Tracking events from drivers' and robots' apps, contactless proof of delivery, the last
100 metres at the gate, and the trace from a delivered pack back to its donors.

Every event carries a ``client_event_id``: a retry with the same id and the same content gets
the first answer back (``replayed``) and moves nothing; the same id with other content is
refused. Events are applied in order per parcel (``Parcel.last_seq``); an event that the parcel
has already passed (a stale or replayed event under a new id) is refused and moves nothing.

Ledger moves: ``loaded`` issues the reserved stock (picked); ``delivered`` closes the request
when all of it is delivered; ``failed`` returns the stock to the warehouse (written off as
damaged if the reason is ``damaged``) and carries the request to the next allocation with a
raised priority.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from relieflink.audit import service as audit
from relieflink.db import utcnow
from relieflink.dispatch import codes
from relieflink.dispatch import repository as repo
from relieflink.dispatch.schemas import EventIn
from relieflink.errors import Conflict, FieldError, Forbidden, Invalid, NotFound, TooManyRequests
from relieflink.models import (
    AdjustmentReason,
    Community,
    EventKind,
    FailureReason,
    HandoffDiscrepancy,
    InnerMode,
    LoginAttempt,
    MovementKind,
    Parcel,
    ParcelStatus,
    Role,
    Route,
    RouteStatus,
    RouteStop,
    TrackingEvent,
    User,
)
from relieflink.needs import delivery_hooks
from relieflink.needs import service as needs
from relieflink.stock import service as stock
from relieflink.users import access

# From which parcel states each event may move a parcel, and where to.
_FROM: dict[EventKind, tuple[ParcelStatus, ...]] = {
    EventKind.loaded: (ParcelStatus.planned,),
    EventKind.departed: (ParcelStatus.loaded,),
    EventKind.arrived: (ParcelStatus.departed,),
    EventKind.handed_off: (ParcelStatus.at_gate,),
    EventKind.delivered: (ParcelStatus.departed, ParcelStatus.at_gate, ParcelStatus.handed_off),
    EventKind.failed: (
        ParcelStatus.loaded,
        ParcelStatus.departed,
        ParcelStatus.at_gate,
        ParcelStatus.handed_off,
    ),
}
_TO = {
    EventKind.loaded: ParcelStatus.loaded,
    EventKind.departed: ParcelStatus.departed,
    EventKind.arrived: ParcelStatus.at_gate,
    EventKind.handed_off: ParcelStatus.handed_off,
    EventKind.delivered: ParcelStatus.delivered,
    EventKind.failed: ParcelStatus.failed,
}


class CodeRefused(Forbidden):
    """A wrong pickup code. The failed attempt must be kept: entry points commit, then raise."""

    title = "Pickup code refused"


@dataclass
class EventOutcome:
    event_id: int
    client_event_id: str
    kind: EventKind
    replayed: bool
    parcels: list[int]
    result: dict[str, Any]


def _fingerprint(data: EventIn, actor: User) -> str:
    body = data.model_dump(mode="json", exclude={"code", "occurred_at"})
    body["actor"] = actor.id
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


# --- who may post what ------------------------------------------------------------------------


def _volunteer_of(session: Session, actor: User, stop: RouteStop) -> bool:
    """A community committee's volunteer carries the last 100 metres at its compounds."""
    if actor.role != Role.committee or actor.organization_id is None:
        return False
    committee = session.scalar(
        select(Community.committee_id).where(Community.id == stop.community_id)
    )
    return committee == actor.organization_id and stop.inner_mode != InnerMode.courier


def _ensure_may(
    session: Session,
    actor: User,
    route: Route,
    stop: RouteStop | None,
    parcels: list[Parcel],
    kind: EventKind,
) -> RouteStop | None:
    """Raise ``Forbidden`` unless ``actor`` may post ``kind`` here; returns the stop (read only
    when a volunteer's right depends on it)."""
    if access.can_drive(actor, route):
        return stop
    if stop is None and parcels and parcels[0].stop_id is not None:
        stop = session.get(RouteStop, parcels[0].stop_id)
    if (
        stop is not None
        and kind in (EventKind.handed_off, EventKind.delivered, EventKind.failed)
        and _volunteer_of(session, actor, stop)
    ):
        return stop
    raise Forbidden(f"route {route.id} is not yours: only its courier or carrier may post events")


# --- events -----------------------------------------------------------------------------------


def record_event(session: Session, data: EventIn, *, actor: User) -> EventOutcome:
    """Apply one tracking event (idempotent by ``client_event_id``)."""
    access.ensure_role(actor, access.DELIVERY_ACTORS)
    repo.begin_write(session)
    fingerprint = _fingerprint(data, actor)
    # Lock first, then look for the client event id: a concurrent twin of this request (a
    # retry racing the original) has committed by the time we hold the lock, so it is seen.
    route, stop, parcels = _target(session, data)
    known = session.scalars(
        select(TrackingEvent).where(TrackingEvent.client_event_id == data.client_event_id)
    ).one_or_none()
    if known is not None:
        return _replay(known, fingerprint)
    stop = _ensure_may(session, actor, route, stop, parcels, data.kind)
    allowed = _FROM[data.kind]
    moving = [p for p in parcels if p.status in allowed]
    if not moving:
        states = sorted({str(p.status) for p in parcels}) or ["none"]
        raise Conflict(
            f"{data.kind} refused: the parcels are {', '.join(states)}; {data.kind} needs "
            f"{' or '.join(allowed)} (already applied, out of order or replayed)"
        )
    result: dict[str, Any] = {}
    now = utcnow()
    if data.kind == EventKind.loaded:
        _load(session, moving, actor)
        if route.status == RouteStatus.planned:
            route.status = RouteStatus.loaded
    elif data.kind == EventKind.departed:
        if route.status not in (RouteStatus.loaded, RouteStatus.departed):
            raise Conflict(f"route {route.id} is {route.status}: load it before it departs")
        route.status = RouteStatus.departed
    elif data.kind == EventKind.arrived:
        assert stop is not None
        stop.arrived_at = data.occurred_at or now
    elif data.kind == EventKind.handed_off:
        assert stop is not None
        result = _hand_off(session, stop, len(moving), data, actor)
    elif data.kind == EventKind.delivered:
        (parcel,) = moving
        result = _deliver(session, parcel, data, actor)
    elif data.kind == EventKind.failed:
        (parcel,) = moving
        result = _fail(session, parcel, data, actor)
    for p in moving:
        p.status = _TO[data.kind]
        p.last_seq += 1
    if data.kind in (EventKind.delivered, EventKind.failed):
        _maybe_complete(session, route)
    event = TrackingEvent(
        client_event_id=data.client_event_id,
        kind=data.kind,
        parcel_id=data.parcel_id,
        route_id=route.id,
        stop_id=stop.id if stop is not None else parcels[0].stop_id if data.parcel_id else None,
        seq=moving[0].last_seq if data.parcel_id is not None else 0,
        reason=data.reason,
        fingerprint=fingerprint,
        actor_id=actor.id,
        occurred_at=data.occurred_at,
        recorded_at=now,
        result={"parcels": [p.id for p in moving], **result},
    )
    session.add(event)
    try:
        session.flush()
    except IntegrityError:
        # The same client event id applied concurrently to another target: the entry point
        # rolls this transaction back, nothing of ours stays.
        raise Conflict(
            f"event {data.client_event_id!r} is being applied by another request; retry"
        ) from None
    return EventOutcome(
        event.id, event.client_event_id, data.kind, False, [p.id for p in moving], event.result
    )


def _replay(known: TrackingEvent, fingerprint: str) -> EventOutcome:
    if known.fingerprint != fingerprint:
        raise Conflict(
            f"client event id {known.client_event_id!r} was already used for another event",
            [FieldError(("client_event_id",), "reused with different content")],
        )
    return EventOutcome(
        known.id,
        known.client_event_id,
        EventKind(known.kind),
        True,
        list(known.result.get("parcels", [])),
        known.result,
    )


def _target(session: Session, data: EventIn) -> tuple[Route, RouteStop | None, list[Parcel]]:
    """The route, stop (for stop events) and locked parcels an event is about. Route and stop
    events lock the route; a parcel event locks only its parcel (many couriers' phones deliver
    on one route at once)."""
    stop: RouteStop | None = None
    if data.parcel_id is not None:
        parcels = repo.lock_parcels(session, [data.parcel_id])
        if not parcels:
            raise NotFound(f"no parcel {data.parcel_id}")
        if parcels[0].route_id is None:
            raise Conflict(f"parcel {data.parcel_id} is not on any route")
        route = session.get(Route, parcels[0].route_id)
    else:
        if data.stop_id is not None:
            stop = session.get(RouteStop, data.stop_id)
            if stop is None:
                raise NotFound(f"no stop {data.stop_id}")
            route_id = stop.route_id
        else:
            assert data.route_id is not None
            route_id = data.route_id
        route = repo.lock_route(session, route_id)
        if route is None:
            raise NotFound(f"no route {route_id}")
        ids = repo.parcel_ids_of(
            session, route_id=route.id if stop is None else None, stop_id=stop.id if stop else None
        )
        parcels = repo.lock_parcels(session, ids)
    assert route is not None
    if route.status == RouteStatus.cancelled:
        raise Conflict(f"route {route.id} was replaced by a re-plan; use the new route")
    return route, stop, parcels


def _load(session: Session, parcels: list[Parcel], actor: User) -> None:
    """Picked: issue the reserved stock of each parcel from its warehouse."""
    lines = repo.lines_of(session, [p.id for p in parcels])
    for p in parcels:
        for line in lines[p.id]:
            stock.issue(
                session,
                reference=line.reference,
                quantity=line.quantity,
                delivery_ref=f"parcel:{p.id}",
                actor=actor,
            )


def _hand_off(
    session: Session, stop: RouteStop, expected: int, data: EventIn, actor: User
) -> dict[str, Any]:
    if data.counted is None:
        raise Invalid(
            "a hand-off gives the count of parcels handed over",
            [FieldError(("counted",), "required")],
        )
    stop.handed_off = data.counted
    if data.counted == expected:
        return {"expected": expected, "counted": data.counted}
    discrepancy = HandoffDiscrepancy(
        stop_id=stop.id, expected=expected, counted=data.counted, note=data.note, actor_id=actor.id
    )
    session.add(discrepancy)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="discrepancy",
        entity="dispatch_stop",
        entity_id=stop.id,
        detail={"expected": expected, "counted": data.counted},
    )
    return {"expected": expected, "counted": data.counted, "discrepancy_id": discrepancy.id}


def _deliver(session: Session, parcel: Parcel, data: EventIn, actor: User) -> dict[str, Any]:
    """Proof of delivery: the resident's code, or a supervisor's override with a reason."""
    if data.override_reason is not None:
        if actor.role not in access.STAFF:
            raise Forbidden("only a supervisor (coordinator) may confirm without the code")
        if not data.photo_ref:
            raise Invalid("an override needs a photo", [FieldError(("photo_ref",), "required")])
        parcel.override_reason = data.override_reason
        parcel.photo_ref = data.photo_ref
        audit.record(
            session,
            actor=actor,
            action="override",
            entity="parcel",
            entity_id=parcel.id,
            detail={"reason": data.override_reason, "photo": data.photo_ref},
        )
    else:
        if not data.code:
            raise Invalid("give the resident's pickup code", [FieldError(("code",), "required")])
        if parcel.code_attempts >= codes.MAX_ATTEMPTS:
            raise Conflict(
                f"parcel {parcel.id} is locked after {codes.MAX_ATTEMPTS} wrong codes: ask a "
                "supervisor to confirm with a photo"
            )
        key = f"pickup:{actor.id}"
        since = utcnow() - codes.WINDOW
        recent = session.scalar(
            select(func.count())
            .select_from(LoginAttempt)
            .where(LoginAttempt.key == key, LoginAttempt.attempted_at >= since)
        )
        if (recent or 0) >= codes.MAX_PER_ACTOR:
            raise TooManyRequests("too many wrong pickup codes from this account; wait a while")
        if not codes.matches(parcel.code_nonce, data.code, parcel.code_hash):
            parcel.code_attempts += 1
            session.add(LoginAttempt(key=key))
            session.flush()
            left = codes.MAX_ATTEMPTS - parcel.code_attempts
            raise CodeRefused(
                f"wrong pickup code for parcel {parcel.id}; {left} attempts left",
                [FieldError(("code",), "does not match")],
            )
    parcel.delivered_at = data.occurred_at or utcnow()
    parcel.delivered_by_id = actor.id
    # The stock was issued at loading: close the parcel's allocations and the requests with
    # nothing left reserved (needs.service.deliver_allocation's rules, set-based).
    closed = delivery_hooks.close_delivered(session, parcel_id=parcel.id)
    return {"closed_requests": closed}


def _fail(session: Session, parcel: Parcel, data: EventIn, actor: User) -> dict[str, Any]:
    """Return the stock (write it off if damaged) and carry the request over."""
    if data.reason is None:
        raise Invalid(
            "a failed delivery needs a reason",
            [FieldError(("reason",), ", ".join(r.value for r in FailureReason))],
        )
    reason = FailureReason(data.reason)
    parcel.failure_reason = reason
    lines = repo.lines_of(session, [parcel.id])[parcel.id]
    written_off = 0
    for line in lines:
        moved = stock.return_stock(
            session,
            reference=line.reference,
            quantity=line.quantity,
            delivery_ref=f"parcel:{parcel.id}",
            actor=actor,
            note=f"delivery failed: {reason}",
        )
        if reason == FailureReason.damaged:
            for m in moved:
                if m.kind == MovementKind.return_ and m.d_on_hand > 0:
                    stock.adjust(
                        session,
                        warehouse_id=m.warehouse_id,
                        lot_id=m.lot_id,
                        delta=-m.d_on_hand,
                        reason=AdjustmentReason.damage,
                        actor=actor,
                        note=f"parcel {parcel.id} damaged in delivery",
                    )
                    written_off += m.d_on_hand
    # Stock is back (above); this closes the allocations as returned, takes their units off
    # the lines and carries each request (once) to the next allocation with a raised priority.
    requests = needs.return_allocations(
        session, [line.allocation_id for line in lines], reason=str(reason), actor=actor
    )
    reopened = [request.id for request in requests]
    return {"reason": str(reason), "carried_over": reopened, "written_off": written_off}


def _maybe_complete(session: Session, route: Route) -> None:
    """A route whose parcels are all delivered or failed is completed (one conditional UPDATE;
    under concurrent last deliveries the route may stay ``departed`` until its next event)."""
    session.flush()
    open_left = (
        select(Parcel.id)
        .where(
            Parcel.route_id == route.id,
            Parcel.status.notin_([ParcelStatus.delivered, ParcelStatus.failed]),
        )
        .exists()
    )
    session.execute(
        update(Route)
        .where(Route.id == route.id, ~open_left)
        .values(status=RouteStatus.completed)
        .execution_options(synchronize_session=False)
    )


# --- reading ----------------------------------------------------------------------------------


def require_route(session: Session, route_id: int, *, actor: User) -> Route:
    route = session.scalars(
        access.scope_routes(select(Route).where(Route.id == route_id), actor)
    ).one_or_none()
    if route is None:
        raise NotFound(f"no route {route_id} that you may see")
    return route


def my_deliveries(session: Session, *, actor: User) -> list[tuple[Parcel, str | None, int | None]]:
    """A resident's own parcels with their pickup codes (shown only here) and ETAs."""
    if actor.role != Role.resident or actor.household_id is None:
        raise Forbidden("only a household's resident sees its deliveries and pickup codes")
    rows = session.execute(
        select(Parcel, RouteStop.eta_s)
        .outerjoin(RouteStop, RouteStop.id == Parcel.stop_id)
        .where(Parcel.household_id == actor.household_id)
        .order_by(Parcel.id)
    ).all()
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
    events = session.scalars(
        select(TrackingEvent)
        .where(TrackingEvent.route_id == parcel.route_id)
        .order_by(TrackingEvent.id)
    ).all()
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
    donors: dict[int, str]


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
        who = route.courier_id or session.scalar(
            select(TrackingEvent.actor_id)
            .where(TrackingEvent.route_id == route.id, TrackingEvent.kind == EventKind.loaded)
            .order_by(TrackingEvent.id)
            .limit(1)
        )
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
                "donors": {d: stock.exact(u) for d, u in shares.items()},
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
        {d: stock.exact(u) for d, u in sorted(totals.items())},
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
    return list(session.scalars(select(HandoffDiscrepancy).order_by(HandoffDiscrepancy.id)))


def since(minutes: int) -> datetime:
    return utcnow() - timedelta(minutes=minutes)
