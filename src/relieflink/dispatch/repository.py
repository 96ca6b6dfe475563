"""SQL for dispatch: what is left to plan, the fleet's busy vehicles, routes and parcels."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from relieflink import db
from relieflink.models import (
    Allocation,
    AllocationState,
    DispatchPlan,
    Household,
    Item,
    Kit,
    NeedRequest,
    Parcel,
    ParcelLine,
    ParcelStatus,
    RequestLine,
    RequestStatus,
    Route,
    RouteStatus,
    RouteStop,
)

if TYPE_CHECKING:
    from relieflink.dispatch.planning import PlanParcel

ACTIVE_ROUTE = (RouteStatus.loaded, RouteStatus.departed)


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


def lock_parcels(session: Session, ids: Sequence[int]) -> list[Parcel]:
    stmt = select(Parcel).where(Parcel.id.in_(list(ids))).order_by(Parcel.id)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return list(session.scalars(stmt))


def lock_route(session: Session, route_id: int) -> Route | None:
    stmt = select(Route).where(Route.id == route_id)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return session.scalars(stmt).one_or_none()


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
