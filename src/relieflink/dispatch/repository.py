"""SQL for dispatch: what is left to plan, the fleet's busy vehicles, routes and parcels."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, bindparam, exists, func, insert, select, update
from sqlalchemy.orm import Session

from relieflink import db
from relieflink.models import (
    Allocation,
    AllocationState,
    DispatchPlan,
    Household,
    Item,
    Kit,
    LoginAttempt,
    NeedRequest,
    Parcel,
    ParcelLine,
    ParcelStatus,
    RequestLine,
    RequestStatus,
    Route,
    RouteStatus,
    RouteStop,
    TrackingEvent,
)

if TYPE_CHECKING:
    from relieflink.dispatch.planning import PlanParcel

ACTIVE_ROUTE = (RouteStatus.loaded, RouteStatus.departed)
# Tables for the set-based writes of the tracking hot path (no ORM unit of work).
_PARCELS = cast(Table, Parcel.__table__)
_EVENTS = cast(Table, TrackingEvent.__table__)


def begin_write(session: Session) -> None:
    """Take SQLite's write lock before the first read (see ``relieflink.db.begin_write``)."""
    db.begin_write(session)


def routes_not_loaded(
    session: Session, day: date, *, among: Iterable[int] | None = None
) -> list[int]:
    stmt = (
        select(Route.id)
        .join(DispatchPlan, DispatchPlan.id == Route.plan_id)
        .where(DispatchPlan.day == day, Route.status == RouteStatus.planned)
    )
    if among is not None:
        stmt = stmt.where(Route.id.in_(list(among)))
    return list(session.scalars(stmt.order_by(Route.id)))


def route_status(session: Session, route_id: int) -> str | None:
    return session.scalar(select(Route.status).where(Route.id == route_id))


def busy_vehicles(session: Session, day: date) -> dict[int, int]:
    """Vehicles of each group out on a loaded or departed route of ``day``."""
    rows = session.execute(
        select(Route.vehicle_id, func.count())
        .join(DispatchPlan, DispatchPlan.id == Route.plan_id)
        .where(DispatchPlan.day == day, Route.status.in_(ACTIVE_ROUTE))
        .group_by(Route.vehicle_id)
    )
    return {v: int(n) for v, n in rows}


def vehicles_of_routes(session: Session, route_ids: Iterable[int]) -> list[int]:
    ids = list(route_ids)
    if not ids:
        return []
    return list(session.scalars(select(Route.vehicle_id).where(Route.id.in_(ids))))


def pending_parcels(session: Session, release_routes: Sequence[int]) -> list[PlanParcel]:
    """Parcels waiting for a route, and those of ``release_routes`` (not loaded yet)."""
    from relieflink.dispatch.planning import PlanParcel

    cond = Parcel.status == ParcelStatus.pending
    if release_routes:
        cond = cond | (
            (Parcel.status == ParcelStatus.planned) & Parcel.route_id.in_(list(release_routes))
        )
    rows = session.execute(
        select(
            Parcel.id,
            Parcel.household_id,
            Parcel.community_id,
            Parcel.warehouse_id,
            Parcel.weight_g,
            Parcel.volume_ml,
            Parcel.packs,
        )
        .where(cond)
        .order_by(Parcel.id)
    )
    return [PlanParcel(*r) for r in rows]


def sku_sizes(session: Session) -> tuple[dict[int, tuple[int, int]], dict[int, tuple[int, int]]]:
    """(grams, millilitres) per unit of each kit and item."""
    items = {
        i: (g, ml)
        for i, g, ml in session.execute(select(Item.id, Item.grams_per_unit, Item.ml_per_unit))
    }
    kits: dict[int, tuple[int, int]] = {}
    for kit in session.scalars(select(Kit)):
        g = sum(items[line.item_id][0] * line.quantity for line in kit.lines)
        ml = sum(items[line.item_id][1] * line.quantity for line in kit.lines)
        kits[kit.id] = (g, ml)
    return kits, items


def unparcelled_allocations(session: Session) -> list[PlanParcel]:
    """Allocations of live requests not yet carried by any parcel, grouped into new parcels
    (one per household and warehouse)."""
    from relieflink.dispatch.planning import PlanParcel

    kits, items = sku_sizes(session)
    stmt = (
        select(
            Allocation.id,
            Allocation.line_id,
            Allocation.reference,
            Allocation.kit_id,
            Allocation.item_id,
            Allocation.quantity,
            Allocation.household_id,
            Allocation.warehouse_id,
            Household.community_id,
        )
        .join(RequestLine, RequestLine.id == Allocation.line_id)
        .join(NeedRequest, NeedRequest.id == RequestLine.request_id)
        .join(Household, Household.id == Allocation.household_id)
        .where(
            NeedRequest.status.in_(
                [RequestStatus.open, RequestStatus.allocated, RequestStatus.dispatched]
            ),
            Allocation.state == AllocationState.reserved,
            ~exists().where(ParcelLine.allocation_id == Allocation.id),
        )
        .order_by(Allocation.household_id, Allocation.warehouse_id, Allocation.id)
    )
    parcels: dict[tuple[int, int], PlanParcel] = {}
    for a, line, ref, kit, item, q, household, warehouse, community in session.execute(stmt):
        key = (household, warehouse)
        p = parcels.get(key)
        if p is None:
            p = parcels[key] = PlanParcel(None, household, community, warehouse, 0, 0, 0)
        g, ml = kits[kit] if kit is not None else items[item or 0]
        p.weight_g += g * q
        p.volume_ml += ml * q
        p.packs += q
        p.lines.append((a, line, ref, kit, item, q))
    return list(parcels.values())


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def lock_parcels(
    session: Session,
    ids: Sequence[int] | None = None,
    *,
    route_id: int | None = None,
    stop_id: int | None = None,
) -> list[Parcel]:
    """The parcels with these ids (or all of a route's or a stop's), locked in id order, read
    afresh (another statement of this transaction may have moved them)."""
    stmt = select(Parcel).order_by(Parcel.id)
    if ids is not None:
        stmt = stmt.where(Parcel.id.in_(list(ids)))
    if route_id is not None:
        stmt = stmt.where(Parcel.route_id == route_id)
    if stop_id is not None:
        stmt = stmt.where(Parcel.stop_id == stop_id)
    if _postgres(session):
        stmt = stmt.with_for_update()
    return list(session.scalars(stmt.execution_options(populate_existing=True)))


def lock_parcel_on_route(session: Session, parcel_id: int) -> tuple[Parcel, Route | None] | None:
    """One parcel, locked, with its route (not locked: many couriers' phones deliver on one
    route at once), in one statement."""
    stmt = (
        select(Parcel, Route)
        .outerjoin(Route, Route.id == Parcel.route_id)
        .where(Parcel.id == parcel_id)
    )
    if _postgres(session):
        stmt = stmt.with_for_update(of=Parcel)
    row = session.execute(stmt.execution_options(populate_existing=True)).one_or_none()
    return (row[0], row[1]) if row is not None else None


def lock_route(session: Session, route_id: int) -> Route | None:
    stmt = select(Route).where(Route.id == route_id)
    if _postgres(session):
        stmt = stmt.with_for_update()
    return session.scalars(stmt.execution_options(populate_existing=True)).one_or_none()


# What a delivery checks, per parcel: its state, its pickup code's nonce and hash, and its route.
PARCEL_STATE = (
    Parcel.id,
    Parcel.route_id,
    Parcel.stop_id,
    Parcel.status,
    Parcel.last_seq,
    Parcel.code_nonce,
    Parcel.code_hash,
    Parcel.code_attempts,
)


def lock_parcel_states(
    session: Session, ids: Sequence[int], *, attempts_key: str | None = None, since: datetime
) -> tuple[list[Any], int]:
    """The state of these parcels as plain rows (``PARCEL_STATE`` then the ``Route``), locked
    in id order, in one statement; and the failed pickup-code attempts under ``attempts_key``
    since ``since`` (the per-account rate limit), read in the same statement."""
    stmt = (
        select(*PARCEL_STATE, Route)
        .outerjoin(Route, Route.id == Parcel.route_id)
        .where(Parcel.id.in_(sorted(set(ids))))
        .order_by(Parcel.id)
    )
    if attempts_key is not None:
        recent = (
            select(func.count())
            .select_from(LoginAttempt)
            .where(LoginAttempt.key == attempts_key, LoginAttempt.attempted_at >= since)
            .scalar_subquery()
        )
        stmt = stmt.add_columns(recent.label("recent"))
    if _postgres(session):
        stmt = stmt.with_for_update(of=Parcel)
    rows: list[Any] = list(session.execute(stmt.execution_options(populate_existing=True)).all())
    if attempts_key is None:
        return rows, 0
    recent_count = rows[0].recent if rows else session.scalar(select(recent))
    return rows, int(recent_count or 0)


def events_by_client_id(session: Session, client_ids: Iterable[str]) -> dict[str, TrackingEvent]:
    ids = sorted(set(client_ids))
    if not ids:
        return {}
    return {
        e.client_event_id: e
        for e in session.scalars(
            select(TrackingEvent).where(TrackingEvent.client_event_id.in_(ids))
        )
    }


def mark_delivered(session: Session, actor_id: int, rows: Sequence[dict[str, Any]]) -> None:
    """Parcels delivered by ``actor_id``: ``rows`` of ``pid``, ``seq`` (the new last_seq) and
    ``at`` (when), in one executemany."""
    session.execute(
        update(_PARCELS)
        .where(_PARCELS.c.id == bindparam("pid"))
        .values(
            status=ParcelStatus.delivered.value,
            last_seq=bindparam("seq"),
            delivered_at=bindparam("at"),
            delivered_by_id=actor_id,
        ),
        list(rows),
    )


def set_override(session: Session, parcel_id: int, reason: str, photo_ref: str | None) -> None:
    session.execute(
        update(_PARCELS)
        .where(_PARCELS.c.id == parcel_id)
        .values(override_reason=reason, photo_ref=photo_ref)
    )


def set_code_attempts(session: Session, attempts: dict[int, int]) -> None:
    """Wrong pickup codes counted per parcel (parcel id → attempts so far)."""
    session.execute(
        update(_PARCELS)
        .where(_PARCELS.c.id == bindparam("pid"))
        .values(code_attempts=bindparam("n")),
        [{"pid": p, "n": n} for p, n in attempts.items()],
    )


def insert_events(session: Session, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Store tracking events (one statement); returns their ids by client event id."""
    stored = session.execute(
        insert(_EVENTS).returning(_EVENTS.c.id, _EVENTS.c.client_event_id), list(rows)
    )
    return {cid: event_id for event_id, cid in stored}


def advance_parcels(session: Session, parcels: Sequence[Parcel], status: ParcelStatus) -> None:
    """Move ``parcels`` to ``status``, one step on in their event sequence (one UPDATE; the
    objects are updated in memory too)."""
    session.execute(
        update(Parcel)
        .where(Parcel.id.in_([p.id for p in parcels]))
        .values(status=status, last_seq=Parcel.last_seq + 1)
        .execution_options(synchronize_session="evaluate")
    )


def complete_routes(session: Session, route_ids: Iterable[int]) -> None:
    """Routes among ``route_ids`` whose parcels are all delivered or failed become
    ``completed`` (one conditional UPDATE; route objects of the session are updated too)."""
    ids = sorted(set(route_ids))
    if not ids:
        return
    open_left = (
        select(Parcel.id)
        .where(
            Parcel.route_id == Route.id,
            Parcel.status.notin_([ParcelStatus.delivered, ParcelStatus.failed]),
        )
        .exists()
    )
    session.execute(
        update(Route)
        .where(Route.id.in_(ids), Route.status != RouteStatus.completed, ~open_left)
        .values(status=RouteStatus.completed)
        .execution_options(synchronize_session="fetch")
    )


def parcel_ids_of(
    session: Session, *, route_id: int | None = None, stop_id: int | None = None
) -> list[int]:
    stmt = select(Parcel.id)
    if route_id is not None:
        stmt = stmt.where(Parcel.route_id == route_id)
    if stop_id is not None:
        stmt = stmt.where(Parcel.stop_id == stop_id)
    return list(session.scalars(stmt.order_by(Parcel.id)))


def lines_of(session: Session, parcel_ids: Sequence[int]) -> dict[int, list[ParcelLine]]:
    out: dict[int, list[ParcelLine]] = defaultdict(list)
    for line in session.scalars(
        select(ParcelLine).where(ParcelLine.parcel_id.in_(list(parcel_ids))).order_by(ParcelLine.id)
    ):
        out[line.parcel_id].append(line)
    return out


def stops_of_route(session: Session, route_id: int) -> list[RouteStop]:
    return list(
        session.scalars(
            select(RouteStop).where(RouteStop.route_id == route_id).order_by(RouteStop.seq)
        )
    )


def manifest_rows(session: Session, route_id: int) -> list[tuple[Any, ...]]:
    from relieflink.models import Community

    stmt = (
        select(
            RouteStop.seq,
            RouteStop.eta_s,
            RouteStop.inner_mode,
            Community.code,
            Community.name,
            Community.name_zh,
            Household.code,
            Household.building,
            Household.unit,
            Parcel.id,
            Parcel.packs,
            Parcel.weight_g,
            Parcel.status,
        )
        .join(Parcel, Parcel.stop_id == RouteStop.id)
        .join(Community, Community.id == RouteStop.community_id)
        .join(Household, Household.id == Parcel.household_id)
        .where(RouteStop.route_id == route_id)
        .order_by(RouteStop.seq, Household.code)
    )
    return [tuple(r) for r in session.execute(stmt)]
