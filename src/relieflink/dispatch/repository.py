"""SQL for dispatch: what is left to plan, the fleet's busy vehicles, routes and parcels."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, exists, func, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from relieflink import db
from relieflink.catalog import service as catalog
from relieflink.common import repository as common
from relieflink.db import bulk
from relieflink.db.bulk import insert_rows, insert_rows_with_ids
from relieflink.models import (
    Allocation,
    AllocationState,
    Community,
    DispatchPlan,
    EventKind,
    HandoffDiscrepancy,
    Household,
    Item,
    Kit,
    LoginAttempt,
    NeedRequest,
    Organization,
    OrgKind,
    Parcel,
    ParcelLine,
    ParcelStatus,
    RequestLine,
    RequestStatus,
    Route,
    RouteStatus,
    RouteStop,
    TrackingEvent,
    Vehicle,
    VehicleAvailability,
    Warehouse,
)

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


def completed_trips(session: Session, day: date) -> list[tuple[int, int, int, int, int]]:
    """Routes of ``day`` completed, by vehicle group, plan and the warehouse each started (and
    ended) at: (vehicle group, plan, warehouse, routes, the latest planned return in seconds
    into the day), the latest plans first."""
    rows = session.execute(
        select(Route.vehicle_id, Route.plan_id, Route.depot_id, func.count(), func.max(Route.end_s))
        .join(DispatchPlan, DispatchPlan.id == Route.plan_id)
        .where(DispatchPlan.day == day, Route.status == RouteStatus.completed)
        .group_by(Route.vehicle_id, Route.plan_id, Route.depot_id)
        .order_by(Route.plan_id.desc(), Route.depot_id)
    )
    return [(v, p, w, int(n), int(end)) for v, p, w, n, end in rows]


def vehicles_of_routes(session: Session, route_ids: Iterable[int]) -> list[int]:
    ids = list(route_ids)
    if not ids:
        return []
    return list(session.scalars(select(Route.vehicle_id).where(Route.id.in_(ids))))


def pending_parcels(session: Session, release_routes: Sequence[int]) -> list[tuple[Any, ...]]:
    """Parcels waiting for a route, and those of ``release_routes`` (not loaded yet): id,
    household, community, warehouse, grams, millilitres and packs of each, and the priority
    class and score of its most urgent allocation (as the allocation run ranked it)."""
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
            _parcel_rank(func.min(Allocation.priority_class)),
            _parcel_rank(func.max(Allocation.score)),
        )
        .where(cond)
        .order_by(Parcel.id)
    )
    return [tuple(r) for r in rows]


def _parcel_rank(column: Any) -> Any:
    """An aggregate of a parcel's allocations (correlated to the outer ``Parcel``)."""
    return (
        select(column)
        .join(ParcelLine, ParcelLine.allocation_id == Allocation.id)
        .where(ParcelLine.parcel_id == Parcel.id)
        .scalar_subquery()
    )


def sku_sizes(session: Session) -> tuple[dict[int, tuple[int, int]], dict[int, tuple[int, int]]]:
    """(grams, millilitres) per unit of each kit and item."""
    items = {
        i: (g, ml)
        for i, g, ml in session.execute(select(Item.id, Item.grams_per_unit, Item.ml_per_unit))
    }
    kits = {kit.id: catalog.kit_size(kit) for kit in session.scalars(select(Kit))}
    return kits, items


def unparcelled_allocations(session: Session) -> list[tuple[Any, ...]]:
    """Reserved allocations of live requests not yet carried by any parcel, by household,
    warehouse and id: allocation, request line, reference, kit, item, quantity, household,
    warehouse, the household's community, and the allocation's priority class and score."""
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
            Allocation.priority_class,
            Allocation.score,
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
    return [tuple(r) for r in session.execute(stmt)]


def active_vehicles(session: Session) -> list[Vehicle]:
    return list(
        session.scalars(select(Vehicle).where(Vehicle.active.is_(True)).order_by(Vehicle.id))
    )


def warehouse_places(session: Session) -> dict[int, tuple[float, float]]:
    """(lat, lon) of every warehouse."""
    rows = session.execute(select(Warehouse.id, Warehouse.lat, Warehouse.lon))
    return {w: (lat, lon) for w, lat, lon in rows}


def community_access(
    session: Session, community_ids: Iterable[int]
) -> dict[int, tuple[float, float, str, bool]]:
    """Per community: lat, lon, lockdown status and whether vehicles may enter."""
    ids = sorted(set(community_ids))
    out: dict[int, tuple[float, float, str, bool]] = {}
    for start in range(0, len(ids), 5000):
        for cid, lat, lon, status, allowed in session.execute(
            select(
                Community.id,
                Community.lat,
                Community.lon,
                Community.lockdown_status,
                Community.vehicles_allowed,
            ).where(Community.id.in_(ids[start : start + 5000]))
        ):
            out[cid] = (lat, lon, str(status), bool(allowed))
    return out


def carriers_by_code(session: Session) -> dict[str, Organization]:
    stmt = select(Organization).where(Organization.kind == OrgKind.carrier)
    return {o.code: o for o in session.scalars(stmt)}


def warehouse_ids_by_code(session: Session) -> dict[str, int]:
    return {code: w for w, code in session.execute(select(Warehouse.id, Warehouse.code))}


def vehicles_by_code(session: Session) -> dict[str, Vehicle]:
    return {v.code: v for v in session.scalars(select(Vehicle))}


def vehicles(session: Session, *, carrier_id: int | None = None) -> list[Vehicle]:
    stmt = select(Vehicle).order_by(Vehicle.code)
    if carrier_id is not None:
        stmt = stmt.where(Vehicle.carrier_id == carrier_id)
    return list(session.scalars(stmt))


def availability(session: Session, vehicle_id: int, day: date) -> VehicleAvailability | None:
    return session.scalars(
        select(VehicleAvailability).where(
            VehicleAvailability.vehicle_id == vehicle_id, VehicleAvailability.day == day
        )
    ).one_or_none()


def availabilities(session: Session, day: date) -> list[VehicleAvailability]:
    return list(session.scalars(select(VehicleAvailability).where(VehicleAvailability.day == day)))


# --- writing a plan ---------------------------------------------------------------------------


def cancel_routes(session: Session, route_ids: Sequence[int]) -> None:
    session.execute(
        update(Route)
        .where(Route.id.in_(list(route_ids)))
        .values(status=RouteStatus.cancelled)
        .execution_options(synchronize_session=False)
    )


def insert_routes(session: Session, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Store routes (COPY on PostgreSQL); returns their ids in the order given."""
    return insert_rows_with_ids(session, cast(Table, Route.__table__), rows)


def insert_stops(session: Session, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Store stops (COPY on PostgreSQL); returns their ids in the order given."""
    return insert_rows_with_ids(session, cast(Table, RouteStop.__table__), rows)


def insert_parcels(session: Session, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Store new parcels of a plan (COPY on PostgreSQL); returns their ids in the order given."""
    return insert_rows_with_ids(session, _PARCELS, rows)


def insert_parcel_lines(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Store parcel lines; an allocation already in a parcel raises ``IntegrityError``."""
    insert_rows(session, cast(Table, ParcelLine.__table__), rows)


def refresh_statistics(session: Session, rows: int) -> None:
    """The planner statistics of routes, stops, parcels and their lines after a plan wrote
    ``rows`` parcels (:func:`relieflink.db.bulk.refresh_statistics`): the manifests, the
    couriers' pages and the tracking events that follow look them up by route and stop."""
    tables = [Route.__table__, RouteStop.__table__, _PARCELS, ParcelLine.__table__]
    bulk.refresh_statistics(session, [cast(Table, t) for t in tables], rows)


def place_parcels(session: Session, moves: Sequence[dict[str, Any]]) -> None:
    """Parcels of released routes put on new ones: ``moves`` of ``pid``, route ``r``, stop
    ``s`` and plan ``p``."""
    if moves:
        session.execute(
            update(_PARCELS)
            .where(_PARCELS.c.id == bindparam("pid"))
            .values(
                route_id=bindparam("r"),
                stop_id=bindparam("s"),
                plan_id=bindparam("p"),
                status=ParcelStatus.planned,
            ),
            list(moves),
        )


def release_parcels(session: Session, parcel_ids: Sequence[int], plan_id: int) -> None:
    """Parcels that found no route leave every route: ``released`` by plan ``plan_id``."""
    for start in range(0, len(parcel_ids), 5000):
        session.execute(
            update(Parcel)
            .where(Parcel.id.in_(list(parcel_ids[start : start + 5000])))
            .values(route_id=None, stop_id=None, status=ParcelStatus.released, plan_id=plan_id)
            .execution_options(synchronize_session=False)
        )


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

_STATE_COLUMNS = (
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
    ParcelLine.allocation_id,
)


def _state(*where: Any) -> Any:
    return (
        select(*_STATE_COLUMNS)
        .outerjoin(Route, Route.id == Parcel.route_id)
        .outerjoin(ParcelLine, ParcelLine.parcel_id == Parcel.id)
        .outerjoin(RequestLine, RequestLine.id == ParcelLine.request_line_id)
        .where(*where)
        .order_by(Parcel.id, ParcelLine.id)
        .with_for_update(of=Parcel)
    )


_RECENT = (
    select(func.count())
    .select_from(LoginAttempt)
    .where(LoginAttempt.key == bindparam("key"), LoginAttempt.attempted_at >= bindparam("since"))
    .scalar_subquery()
)
_STATE = common.Prebuilt(lambda one_of: _state(one_of(Parcel.id, "ids")))
# Route and stop events move every parcel of their routes.
_STATE_OF_ROUTES = common.Prebuilt(
    lambda one_of: _state(one_of(Parcel.id, "ids") | one_of(Parcel.route_id, "routes"))
)
_STATE_RECENT = common.Prebuilt(
    lambda one_of: _state(one_of(Parcel.id, "ids")).add_columns(_RECENT.label("recent"))
)
_STATE_OF_ROUTES_RECENT = common.Prebuilt(
    lambda one_of: _state(one_of(Parcel.id, "ids") | one_of(Parcel.route_id, "routes")).add_columns(
        _RECENT.label("recent")
    )
)


def lock_parcel_states(
    session: Session,
    ids: Iterable[int],
    *,
    route_ids: Iterable[int] = (),
    attempts_key: str | None = None,
    since: datetime,
) -> tuple[list[Any], int]:
    """What a tracking event checks about these parcels and every parcel of ``route_ids``
    (their state, their pickup code's nonce and hash, their route's status, carrier and
    courier) with the request and allocation of each of their lines, as plain rows (one per
    line), locked in id order, in one statement; and the failed pickup-code attempts under
    ``attempts_key`` since ``since`` (the per-account rate limit), read in the same statement."""
    conn = session.connection()
    params: dict[str, Any] = {"ids": sorted(set(ids))}
    routes = sorted(set(route_ids))
    if routes:
        params["routes"] = routes
    if attempts_key is None:
        return list(conn.execute((_STATE_OF_ROUTES if routes else _STATE)(session), params)), 0
    params |= {"key": attempts_key, "since": since}
    stmt = (_STATE_OF_ROUTES_RECENT if routes else _STATE_RECENT)(session)
    rows: list[Any] = list(conn.execute(stmt, params))
    recent = rows[0].recent if rows else conn.execute(select(_RECENT), params).scalar()
    return rows, int(recent or 0)


@dataclass(frozen=True)
class StopRow:
    """What a stop event checks about its stop."""

    id: int
    route_id: int
    community_id: int
    inner_mode: str


def stops_by_id(session: Session, ids: Iterable[int]) -> dict[int, StopRow]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = session.execute(
        select(
            RouteStop.id, RouteStop.route_id, RouteStop.community_id, RouteStop.inner_mode
        ).where(RouteStop.id.in_(wanted))
    )
    return {row.id: StopRow(*row) for row in rows}


def lock_routes(session: Session, ids: Iterable[int]) -> list[Any]:
    """Routes (id, status, carrier_id, courier_id) as plain rows, locked in id order: a route
    or stop event holds its route while it moves the route's parcels."""
    wanted = sorted(set(ids))
    if not wanted:
        return []
    stmt = (
        select(Route.id, Route.status, Route.carrier_id, Route.courier_id)
        .where(Route.id.in_(wanted))
        .order_by(Route.id)
        .with_for_update()
    )
    return list(session.execute(stmt))


def committee_of_community(session: Session, community_id: int) -> int | None:
    return session.scalar(select(Community.committee_id).where(Community.id == community_id))


@dataclass(frozen=True)
class StoredEvent:
    """What a replay answers from: an event as stored."""

    id: int
    client_event_id: str
    kind: str
    fingerprint: str
    result: dict[str, Any]


_STORED = common.Prebuilt(
    lambda one_of: select(
        TrackingEvent.id,
        TrackingEvent.client_event_id,
        TrackingEvent.kind,
        TrackingEvent.fingerprint,
        TrackingEvent.result,
    ).where(one_of(TrackingEvent.client_event_id, "cids"))
)


def events_by_client_id(session: Session, client_ids: Iterable[str]) -> dict[str, StoredEvent]:
    ids = sorted(set(client_ids))
    if not ids:
        return {}
    session.flush()  # events the ORM holds for this transaction are stored, so seen
    rows = session.connection().execute(_STORED(session), {"cids": ids})
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
class LineState:
    """A parcel line as loading issues it and a failed delivery returns it: its allocation,
    reference, units and the allocation's state."""

    parcel_id: int
    allocation_id: int
    reference: str
    quantity: int
    state: str


def parcel_lines(session: Session, parcel_ids: Iterable[int]) -> dict[int, list[LineState]]:
    """The lines of these parcels with their allocations' states, by parcel, in line order."""
    out: dict[int, list[LineState]] = defaultdict(list)
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
        out[parcel_id].append(LineState(parcel_id, allocation_id, reference, quantity, state))
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


def advance_parcels(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Parcels moved on by route, stop or loading events: ``rows`` of ``pid``, ``status`` and
    ``seq`` (the new last_seq), in one executemany."""
    session.connection().execute(
        update(_PARCELS)
        .where(_PARCELS.c.id == bindparam("pid"))
        .values(status=bindparam("status"), last_seq=bindparam("seq")),
        list(rows),
    )


def set_route_statuses(session: Session, statuses: dict[int, str]) -> None:
    """Routes loaded or departed (route id → status), in one executemany."""
    session.connection().execute(
        update(_ROUTES).where(_ROUTES.c.id == bindparam("rid")).values(status=bindparam("st")),
        [{"rid": r, "st": s} for r, s in sorted(statuses.items())],
    )
    expire(session, Route, statuses)


def set_stop_arrivals(session: Session, arrivals: dict[int, datetime]) -> None:
    stops = cast(Table, RouteStop.__table__)
    session.connection().execute(
        update(stops).where(stops.c.id == bindparam("sid")).values(arrived_at=bindparam("at")),
        [{"sid": s, "at": at} for s, at in sorted(arrivals.items())],
    )
    expire(session, RouteStop, arrivals)


def set_stop_handoffs(session: Session, counted: dict[int, int]) -> None:
    stops = cast(Table, RouteStop.__table__)
    session.connection().execute(
        update(stops).where(stops.c.id == bindparam("sid")).values(handed_off=bindparam("n")),
        [{"sid": s, "n": n} for s, n in sorted(counted.items())],
    )
    expire(session, RouteStop, counted)


def add_discrepancy(
    session: Session, *, stop_id: int, expected: int, counted: int, note: str | None, actor_id: int
) -> int:
    discrepancy = HandoffDiscrepancy(
        stop_id=stop_id, expected=expected, counted=counted, note=note, actor_id=actor_id
    )
    session.add(discrepancy)
    session.flush()
    return discrepancy.id


def add_login_attempts(session: Session, key: str, count: int) -> None:
    session.add_all([LoginAttempt(key=key) for _ in range(count)])


def expire(session: Session, model: Any, ids: Iterable[int]) -> None:
    """Objects of this session written around the ORM are read again when used."""
    for pk in ids:
        obj = session.identity_map.get(identity_key(model, pk))
        if obj is not None:
            session.expire(obj)


_COMPLETE = common.Prebuilt(
    lambda one_of: (
        update(_ROUTES)
        .where(
            one_of(_ROUTES.c.id, "ids"),
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
)


def complete_routes(session: Session, route_ids: Iterable[int]) -> None:
    """Routes among ``route_ids`` whose parcels are all delivered or failed become
    ``completed`` (one conditional UPDATE; route objects of the session are read again)."""
    ids = sorted(set(route_ids))
    if not ids:
        return
    session.connection().execute(_COMPLETE(session), {"ids": ids})
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


def routes_page(
    session: Session,
    scope: Any,
    actor: Any,
    *,
    plan_id: int | None,
    offset: int,
    limit: int,
) -> tuple[list[Route], int]:
    stmt = scope(select(Route), actor)
    if plan_id is not None:
        stmt = stmt.where(Route.plan_id == plan_id)
    rows, total = common.page(session, stmt, offset=offset, limit=limit, order_by=Route.id)
    return list(rows), total


def stops_of_route(session: Session, route_id: int) -> list[RouteStop]:
    return list(
        session.scalars(
            select(RouteStop).where(RouteStop.route_id == route_id).order_by(RouteStop.seq)
        )
    )


def manifest_rows(session: Session, route_id: int) -> list[tuple[Any, ...]]:
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


def scoped_route(session: Session, scope: Any, route_id: int, actor: Any) -> Route | None:
    """One route, through ``scope`` (the actor's row scoping of routes)."""
    return session.scalars(scope(select(Route).where(Route.id == route_id), actor)).one_or_none()


def parcels_of_household(session: Session, household_id: int) -> list[tuple[Parcel, int | None]]:
    """A household's parcels with their stops' ETAs."""
    rows = session.execute(
        select(Parcel, RouteStop.eta_s)
        .outerjoin(RouteStop, RouteStop.id == Parcel.stop_id)
        .where(Parcel.household_id == household_id, Parcel.status != ParcelStatus.released)
        .order_by(Parcel.id)
    )
    return [(p, eta) for p, eta in rows]


def events_of_route(session: Session, route_id: int | None) -> list[TrackingEvent]:
    return list(
        session.scalars(
            select(TrackingEvent)
            .where(TrackingEvent.route_id == route_id)
            .order_by(TrackingEvent.id)
        )
    )


def first_loader(session: Session, route_id: int) -> int | None:
    """Who posted a route's first loading."""
    return session.scalar(
        select(TrackingEvent.actor_id)
        .where(TrackingEvent.route_id == route_id, TrackingEvent.kind == EventKind.loaded)
        .order_by(TrackingEvent.id)
        .limit(1)
    )


def discrepancies(session: Session) -> list[HandoffDiscrepancy]:
    return list(session.scalars(select(HandoffDiscrepancy).order_by(HandoffDiscrepancy.id)))


def parcel_recipients(session: Session, parcel_ids: Iterable[int]) -> dict[int, tuple[int, str]]:
    """Parcel id → (its household id, its code's nonce)."""
    ids = sorted(set(parcel_ids))
    found: dict[int, tuple[int, str]] = {}
    for start in range(0, len(ids), 5_000):
        rows = session.execute(
            select(Parcel.id, Parcel.household_id, Parcel.code_nonce).where(
                Parcel.id.in_(ids[start : start + 5_000])
            )
        )
        found.update({parcel_id: (household, nonce) for parcel_id, household, nonce in rows})
    return found
