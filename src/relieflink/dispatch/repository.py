"""SQL for dispatch: what is left to plan, the fleet's busy vehicles, routes and parcels."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, bindparam, exists, func, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from relieflink import db
from relieflink.catalog import service as catalog
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
_ROUTES = cast(Table, Route.__table__)


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
    kits = {kit.id: catalog.kit_size(kit) for kit in session.scalars(select(Kit))}
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


# --- the tracking hot path ----------------------------------------------------------------
# Statements built once (SQLAlchemy then reuses their cache key and compiled form) and run on
# the session's connection: a delivery is a handful of them, and building and routing each
# through the ORM cost more CPU than PostgreSQL spends running it. FOR UPDATE is left out by
# SQLite's compiler (its writers hold the database lock instead).

_STATE = (
    select(
        Parcel.id,
        Parcel.route_id,
        Parcel.stop_id,
        Parcel.status,
        Parcel.last_seq,
        Parcel.code_nonce,
        Parcel.code_hash,
        Parcel.code_attempts,
        Route.status.label("route_status"),
        Route.carrier_id,
        Route.courier_id,
        RequestLine.request_id,
    )
    .outerjoin(Route, Route.id == Parcel.route_id)
    .outerjoin(ParcelLine, ParcelLine.parcel_id == Parcel.id)
    .outerjoin(RequestLine, RequestLine.id == ParcelLine.request_line_id)
    .where(Parcel.id.in_(bindparam("ids", expanding=True)))
    .order_by(Parcel.id, ParcelLine.id)
    .with_for_update(of=Parcel)
)
_RECENT = (
    select(func.count())
    .select_from(LoginAttempt)
    .where(LoginAttempt.key == bindparam("key"), LoginAttempt.attempted_at >= bindparam("since"))
    .scalar_subquery()
)
_STATE_RECENT = _STATE.add_columns(_RECENT.label("recent"))


def lock_parcel_states(
    session: Session, ids: Sequence[int], *, attempts_key: str | None = None, since: datetime
) -> tuple[list[Any], int]:
    """What a delivery or a failure checks about these parcels (their state, their pickup
    code's nonce and hash, their route's status, carrier and courier) and the requests their
    lines are for, as plain rows (one per line), locked in id order, in one statement; and the
    failed pickup-code attempts under ``attempts_key`` since ``since`` (the per-account rate
    limit), read in the same statement."""
    conn = session.connection()
    params: dict[str, Any] = {"ids": sorted(set(ids))}
    if attempts_key is None:
        return list(conn.execute(_STATE, params)), 0
    params |= {"key": attempts_key, "since": since}
    rows: list[Any] = list(conn.execute(_STATE_RECENT, params))
    recent = rows[0].recent if rows else conn.execute(select(_RECENT), params).scalar()
    return rows, int(recent or 0)


@dataclass(frozen=True)
class StoredEvent:
    """What a replay answers from: an event as stored."""

    id: int
    client_event_id: str
    kind: str
    fingerprint: str
    result: dict[str, Any]


_STORED = select(
    TrackingEvent.id,
    TrackingEvent.client_event_id,
    TrackingEvent.kind,
    TrackingEvent.fingerprint,
    TrackingEvent.result,
).where(TrackingEvent.client_event_id.in_(bindparam("cids", expanding=True)))


def events_by_client_id(session: Session, client_ids: Iterable[str]) -> dict[str, StoredEvent]:
    ids = sorted(set(client_ids))
    if not ids:
        return {}
    session.flush()  # events the ORM holds for this transaction are stored, so seen
    rows = session.connection().execute(_STORED, {"cids": ids})
    return {row.client_event_id: StoredEvent(*row) for row in rows}


_MARK_DELIVERED = (
    update(_PARCELS)
    .where(_PARCELS.c.id == bindparam("pid"))
    .values(
        status=ParcelStatus.delivered.value,
        last_seq=bindparam("seq"),
        delivered_at=bindparam("at"),
        delivered_by_id=bindparam("by"),
    )
)


def mark_delivered(session: Session, actor_id: int, rows: Sequence[dict[str, Any]]) -> None:
    """Parcels delivered by ``actor_id``: ``rows`` of ``pid``, ``seq`` (the new last_seq) and
    ``at`` (when), in one executemany."""
    session.connection().execute(_MARK_DELIVERED, [r | {"by": actor_id} for r in rows])


def mark_failed(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Parcels whose delivery failed: ``rows`` of ``pid``, ``seq`` and ``why`` (the reason)."""
    session.execute(
        update(_PARCELS)
        .where(_PARCELS.c.id == bindparam("pid"))
        .values(
            status=ParcelStatus.failed.value,
            last_seq=bindparam("seq"),
            failure_reason=bindparam("why"),
        ),
        list(rows),
    )


@dataclass
class ReturnLine:
    """A parcel line as a failed delivery returns it: its allocation, reference, units and
    the allocation's state."""

    parcel_id: int
    allocation_id: int
    reference: str
    quantity: int
    state: str


def return_lines(session: Session, parcel_ids: Sequence[int]) -> dict[int, list[ReturnLine]]:
    """The lines of these parcels with their allocations' states, by parcel, in line order."""
    out: dict[int, list[ReturnLine]] = defaultdict(list)
    rows = session.execute(
        select(
            ParcelLine.parcel_id,
            ParcelLine.allocation_id,
            ParcelLine.reference,
            ParcelLine.quantity,
            Allocation.state,
        )
        .join(Allocation, Allocation.id == ParcelLine.allocation_id)
        .where(ParcelLine.parcel_id.in_(sorted(set(parcel_ids))))
        .order_by(ParcelLine.id)
    )
    for parcel_id, allocation_id, reference, quantity, state in rows:
        out[parcel_id].append(ReturnLine(parcel_id, allocation_id, reference, quantity, state))
    return out


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


_INSERT_EVENTS = insert(_EVENTS).returning(_EVENTS.c.id, _EVENTS.c.client_event_id)
_EVENT_COLUMNS = (
    ("client_event_id", "varchar"),
    ("kind", "varchar"),
    ("parcel_id", "int"),
    ("route_id", "int"),
    ("stop_id", "int"),
    ("seq", "int"),
    ("reason", "varchar"),
    ("fingerprint", "varchar"),
    ("actor_id", "int"),
    ("occurred_at", "timestamptz"),
    ("recorded_at", "timestamptz"),
    ("result", "text"),
)
# PostgreSQL: one array per column, so the statement's text is the same for any number of
# events (parsed and planned once per connection; a multi-row VALUES list is a new statement
# for each count, and psycopg does not cache one with more than 50 parameters).
_INSERT_EVENTS_PG = (
    f"INSERT INTO {_EVENTS.name} ({', '.join(c for c, _ in _EVENT_COLUMNS)}) "
    f"SELECT {', '.join(c + '::json' if c == 'result' else c for c, _ in _EVENT_COLUMNS)} "
    f"FROM unnest({', '.join(f'%({c})s::{t}[]' for c, t in _EVENT_COLUMNS)}) "
    f"AS e({', '.join(c for c, _ in _EVENT_COLUMNS)}) RETURNING id, client_event_id"
)


def insert_events(session: Session, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Store tracking events (one statement); returns their ids by client event id."""
    conn = session.connection()
    if _postgres(session):
        columns = {
            c: [json.dumps(r[c]) if c == "result" else r[c] for r in rows]
            for c, _ in _EVENT_COLUMNS
        }
        stored = conn.exec_driver_sql(_INSERT_EVENTS_PG, columns)
    else:
        stored = conn.execute(_INSERT_EVENTS, list(rows))
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


_COMPLETE = (
    update(_ROUTES)
    .where(
        _ROUTES.c.id.in_(bindparam("ids", expanding=True)),
        _ROUTES.c.status != RouteStatus.completed.value,
        ~select(_PARCELS.c.id)
        .where(
            _PARCELS.c.route_id == _ROUTES.c.id,
            _PARCELS.c.status.notin_([ParcelStatus.delivered.value, ParcelStatus.failed.value]),
        )
        .exists(),
    )
    .values(status=RouteStatus.completed.value)
)


def complete_routes(session: Session, route_ids: Iterable[int]) -> None:
    """Routes among ``route_ids`` whose parcels are all delivered or failed become
    ``completed`` (one conditional UPDATE; route objects of the session are read again)."""
    ids = sorted(set(route_ids))
    if not ids:
        return
    session.connection().execute(_COMPLETE, {"ids": ids})
    for route_id in ids:
        route = session.identity_map.get(identity_key(Route, route_id))
        if route is not None:
            session.expire(route, ["status"])


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
