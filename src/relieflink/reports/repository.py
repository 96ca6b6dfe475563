"""SQL of the operations reports: counts over requests, households, plans, routes and parcels;
and the simulation's reads of the city and of the dispatch tables (``sim/`` writes no SQL)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from relieflink.models import (
    Community,
    DispatchPlan,
    EventKind,
    Household,
    Kit,
    NeedRequest,
    Organization,
    Parcel,
    ParcelLine,
    ParcelStatus,
    Pledge,
    PledgeLine,
    RequestLine,
    RequestStatus,
    Route,
    RouteStatus,
    RouteStop,
    StockLot,
    StockMovement,
    TrackingEvent,
    User,
    Vehicle,
    VolunteerTeam,
    Warehouse,
)
from relieflink.users import access

CHUNK = 5000


def _chunks(ids: Sequence[int]) -> Iterable[list[int]]:
    for start in range(0, len(ids), CHUNK):
        yield list(ids[start : start + CHUNK])


def requests_by_status(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(NeedRequest.status, func.count()).group_by(NeedRequest.status)
    ).all()
    return {str(status): int(n) for status, n in rows}


def open_request_communities(session: Session) -> dict[int, int]:
    """The community of each open request."""
    rows = session.execute(
        select(NeedRequest.id, Household.community_id)
        .join(Household, Household.id == NeedRequest.household_id)
        .where(NeedRequest.status == RequestStatus.open)
    )
    return {int(r): int(c) for r, c in rows}


def households_by_count(session: Session, per: str) -> dict[int, int]:
    """Registered households by how many of their members count for ``per`` (``person``: the
    household's size; ``infant``, ``pregnant``, ``chronic``)."""
    column = {
        "person": Household.size,
        "infant": Household.infants,
        "pregnant": Household.pregnant,
        "chronic": Household.chronic,
    }[per]
    rows = session.execute(select(column, func.count()).group_by(column))
    return {int(count or 0): int(n) for count, n in rows}


def households_per_community(session: Session) -> dict[int, int]:
    rows = session.execute(
        select(Household.community_id, func.count()).group_by(Household.community_id)
    )
    return {int(c): int(n) for c, n in rows}


def plans_of_day(session: Session, day: date) -> list[DispatchPlan]:
    return list(
        session.scalars(
            select(DispatchPlan).where(DispatchPlan.day == day).order_by(DispatchPlan.id)
        )
    )


def get_plan(session: Session, plan_id: int) -> DispatchPlan | None:
    # Fresh from the database: the job updates the row in transactions of its own.
    return session.get(DispatchPlan, plan_id, populate_existing=True)


def parcel_counts(
    session: Session, *, plan_ids: Sequence[int] = (), route_ids: Sequence[int] = ()
) -> dict[int, dict[str, int]]:
    """Parcels per status, for each plan (``plan_ids``) or each route (``route_ids``)."""
    column = Parcel.plan_id if plan_ids else Parcel.route_id
    ids = list(plan_ids or route_ids)
    out: dict[int, dict[str, int]] = defaultdict(dict)
    for chunk in _chunks(ids):
        rows = session.execute(
            select(column, Parcel.status, func.count())
            .where(column.in_(chunk))
            .group_by(column, Parcel.status)
        )
        for key, status, n in rows:
            out[int(key or 0)][str(status)] = int(n)  # key: one of ``ids``, never null
    return out


def routes_per_plan(session: Session, plan_ids: Sequence[int]) -> dict[int, int]:
    out: dict[int, int] = {}
    for chunk in _chunks(plan_ids):
        rows = session.execute(
            select(Route.plan_id, func.count())
            .where(Route.plan_id.in_(chunk), Route.status != RouteStatus.cancelled)
            .group_by(Route.plan_id)
        )
        out.update((int(p), int(n)) for p, n in rows)
    return out


def failed_parcels(session: Session, day: date, *, limit: int) -> list[Any]:
    """Failed parcels of the day's plans, newest first: parcel, route, reason, household code,
    community names and when the failure was recorded."""
    failed_at = (
        select(func.max(TrackingEvent.recorded_at))
        .where(TrackingEvent.parcel_id == Parcel.id, TrackingEvent.kind == EventKind.failed)
        .scalar_subquery()
    )
    stmt = (
        select(
            Parcel.id,
            Parcel.route_id,
            Parcel.failure_reason,
            Household.code,
            Community.name,
            Community.name_zh,
            failed_at,
        )
        .join(DispatchPlan, DispatchPlan.id == Parcel.plan_id)
        .join(Household, Household.id == Parcel.household_id)
        .join(Community, Community.id == Parcel.community_id)
        .where(DispatchPlan.day == day, Parcel.status == ParcelStatus.failed)
        .order_by(Parcel.id.desc())
        .limit(limit)
    )
    return list(session.execute(stmt))


def count_failed(session: Session, day: date) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Parcel)
            .join(DispatchPlan, DispatchPlan.id == Parcel.plan_id)
            .where(DispatchPlan.day == day, Parcel.status == ParcelStatus.failed)
        )
        or 0
    )


def routes_of_day(session: Session, day: date, *, actor: User, limit: int) -> list[Route]:
    """The day's routes ``actor`` may see (a courier only its own), not those a re-plan
    replaced."""
    stmt = (
        select(Route)
        .join(DispatchPlan, DispatchPlan.id == Route.plan_id)
        .where(DispatchPlan.day == day, Route.status != RouteStatus.cancelled)
    )
    stmt = access.scope_routes(stmt, actor)
    return list(session.scalars(stmt.order_by(Route.id).limit(limit)))


def stop_rows(session: Session, route_ids: Sequence[int]) -> list[Any]:
    """Each route's stops in order, with their community's names and gate."""
    rows: list[Any] = []
    for chunk in _chunks(route_ids):
        rows.extend(
            session.execute(
                select(
                    RouteStop.route_id,
                    RouteStop.id,
                    RouteStop.seq,
                    RouteStop.community_id,
                    Community.code,
                    Community.name,
                    Community.name_zh,
                    Community.lat,
                    Community.lon,
                    RouteStop.inner_mode,
                    RouteStop.eta_s,
                    RouteStop.parcels,
                    RouteStop.arrived_at,
                    RouteStop.handed_off,
                )
                .join(Community, Community.id == RouteStop.community_id)
                .where(RouteStop.route_id.in_(chunk))
                .order_by(RouteStop.route_id, RouteStop.seq)
            )
        )
    return rows


# A parcel as a phone sheet shows it (a courier's route, a volunteer leader's gate).
_SHEET_PARCEL = (
    Household.code,
    Household.building,
    Household.unit,
    Parcel.packs,
    Parcel.weight_g,
    Parcel.status,
    Parcel.failure_reason,
    Parcel.code_attempts,
)


def route_parcel_rows(session: Session, route_id: int) -> list[Any]:
    """A route's parcels by stop, with their household's code and address inside the compound."""
    return list(
        session.execute(
            select(
                Parcel.id,
                Parcel.stop_id,
                *_SHEET_PARCEL,
            )
            .join(Household, Household.id == Parcel.household_id)
            .where(Parcel.route_id == route_id)
            .order_by(Parcel.stop_id, Household.code, Parcel.id)
        )
    )


# --- what the simulation reads of the city and of the dispatch tables (read only) --------------


def household_facts(session: Session) -> list[Any]:
    """Every household's members that its entitlement and priority depend on, by id."""
    return list(
        session.execute(
            select(
                Household.id,
                Household.community_id,
                Household.size,
                Household.infants,
                Household.pregnant,
                Household.chronic,
                Household.elderly_80,
                Household.disabled,
            ).order_by(Household.id)
        )
    )


def community_places(session: Session) -> list[Any]:
    """Every community's name, gate and lockdown status."""
    return list(
        session.execute(
            select(
                Community.id,
                Community.name,
                Community.lat,
                Community.lon,
                Community.lockdown_status,
            )
        )
    )


def warehouse_rows(session: Session) -> list[Any]:
    """Every warehouse's code, place and outbound capacity, by id."""
    return list(
        session.execute(
            select(
                Warehouse.id,
                Warehouse.code,
                Warehouse.lat,
                Warehouse.lon,
                Warehouse.daily_outbound_kg,
            ).order_by(Warehouse.id)
        )
    )


def organization_rows(session: Session) -> list[Any]:
    """Every organization's kind, code and name, by id."""
    return list(
        session.execute(
            select(
                Organization.id, Organization.kind, Organization.code, Organization.name
            ).order_by(Organization.id)
        )
    )


def planned_routes(session: Session, plan_id: int) -> list[Any]:
    """A plan's routes still to be driven: vehicle, carrier, depot, start, distance and cost."""
    return list(
        session.execute(
            select(
                Route.id,
                Route.vehicle_id,
                Route.vehicle_index,
                Route.carrier_id,
                Route.kind,
                Route.depot_id,
                Route.start_s,
                Route.distance_m,
                Route.duration_s,
                Route.cost_fen,
            )
            .where(Route.plan_id == plan_id, Route.status == RouteStatus.planned)
            .order_by(Route.id)
        )
    )


def route_stops(session: Session, route_id: int) -> list[Any]:
    """A route's stops in order: community, how the last 100 metres go, and the planned ETA."""
    return list(
        session.execute(
            select(RouteStop.id, RouteStop.community_id, RouteStop.inner_mode, RouteStop.eta_s)
            .where(RouteStop.route_id == route_id)
            .order_by(RouteStop.seq)
        )
    )


def parcel_request_lines(session: Session, route_id: int) -> list[Any]:
    """(parcel, request, packs) of each parcel line on a route."""
    return list(
        session.execute(
            select(ParcelLine.parcel_id, RequestLine.request_id, ParcelLine.quantity)
            .join(RequestLine, RequestLine.id == ParcelLine.request_line_id)
            .join(Parcel, Parcel.id == ParcelLine.parcel_id)
            .where(Parcel.route_id == route_id)
            .order_by(ParcelLine.id)
        )
    )


def parcels_in_status(session: Session, route_id: int, status: ParcelStatus) -> list[Any]:
    """A route's parcels in ``status``: stop, household, packs and pickup-code nonce."""
    return list(
        session.execute(
            select(Parcel.id, Parcel.stop_id, Parcel.household_id, Parcel.packs, Parcel.code_nonce)
            .where(Parcel.route_id == route_id, Parcel.status == status)
            .order_by(Parcel.id)
        )
    )


def packs_by_parcel_status(session: Session) -> dict[ParcelStatus, int]:
    """Packs of all parcels, per status."""
    rows = session.execute(
        select(Parcel.status, func.coalesce(func.sum(Parcel.packs), 0)).group_by(Parcel.status)
    )
    return {ParcelStatus(status): int(packs) for status, packs in rows}


def parcel_ids_in_status(session: Session, statuses: Sequence[ParcelStatus]) -> list[int]:
    """The ids of all parcels in one of ``statuses``."""
    return list(session.scalars(select(Parcel.id).where(Parcel.status.in_(statuses))))


def requests_allocated_in_full(session: Session) -> set[int]:
    """The requests every line of which has had its stock allocated (``allocated`` up to the
    quantity asked)."""
    short = func.sum(case((RequestLine.allocated < RequestLine.quantity, 1), else_=0))
    rows = session.scalars(
        select(RequestLine.request_id).group_by(RequestLine.request_id).having(short == 0)
    )
    return set(rows)


def kit_totals(session: Session) -> dict[str, dict[str, int]]:
    """Per kit (SKU): the units asked on request lines, allocated to them, and received into
    the warehouses (receipt lots): where received is below asked, no policy serves every
    request that asks for that kit."""
    out: dict[str, dict[str, int]] = {}
    asked = session.execute(
        select(Kit.sku, func.sum(RequestLine.quantity), func.sum(RequestLine.allocated))
        .join(Kit, Kit.id == RequestLine.kit_id)
        .group_by(Kit.sku)
    )
    for sku, quantity, allocated in asked:
        out[sku] = {"asked": int(quantity), "allocated": int(allocated), "received": 0}
    received = session.execute(
        select(Kit.sku, func.sum(StockLot.quantity))
        .join(Kit, Kit.id == StockLot.kit_id)
        .where(StockLot.origin == "receipt")
        .group_by(Kit.sku)
    )
    for sku, quantity in received:
        out.setdefault(sku, {"asked": 0, "allocated": 0, "received": 0})["received"] = int(quantity)
    return dict(sorted(out.items()))


def fleet_mix(session: Session) -> dict[str, int]:
    """Active vehicles by kind, and the active volunteer teams' people (``volunteers``)."""
    rows = session.execute(
        select(Vehicle.kind, func.coalesce(func.sum(Vehicle.count), 0))
        .where(Vehicle.active)
        .group_by(Vehicle.kind)
    )
    mix = {str(kind): int(n) for kind, n in rows}
    volunteers = session.scalar(
        select(func.coalesce(func.sum(VolunteerTeam.headcount), 0)).where(VolunteerTeam.active)
    )
    mix["volunteers"] = int(volunteers or 0)
    return mix


def gate_parcel_rows(session: Session, community_ids: Sequence[int], day: date) -> list[Any]:
    """The day's routed parcels for these compounds, with their household's address inside
    the compound and how the stop's last 100 metres go (a volunteer leader's gate list)."""
    if not community_ids:
        return []
    return list(
        session.execute(
            select(
                Parcel.id,
                Parcel.community_id,
                RouteStop.inner_mode,
                *_SHEET_PARCEL,
            )
            .join(Household, Household.id == Parcel.household_id)
            .join(RouteStop, RouteStop.id == Parcel.stop_id)
            .join(Route, Route.id == Parcel.route_id)
            .join(DispatchPlan, DispatchPlan.id == Route.plan_id)
            .where(
                Parcel.community_id.in_(list(community_ids)),
                DispatchPlan.day == day,
                Route.status != RouteStatus.cancelled,
            )
            .order_by(Parcel.community_id, Household.building, Household.unit, Parcel.id)
        )
    )


def delivered_households(session: Session) -> list[Any]:
    """(district id, household id, delivered at) of every parcel delivered at the door."""
    return list(
        session.execute(
            select(Community.district_id, Parcel.household_id, Parcel.delivered_at)
            .join(Community, Community.id == Parcel.community_id)
            .where(Parcel.status == ParcelStatus.delivered, Parcel.delivered_at.is_not(None))
        )
    )


def ledger_state(session: Session) -> tuple[Any, ...]:
    """What changes whenever a public figure may change: the stock ledger's and the pledges'
    last rows and counts, and the deliveries."""
    return (
        *session.execute(select(func.max(StockMovement.id), func.count(StockMovement.id))).one(),
        *session.execute(select(func.max(PledgeLine.id), func.count(PledgeLine.id))).one(),
        *session.execute(select(func.max(Pledge.updated_at), func.count(Pledge.id))).one(),
        session.scalar(
            select(func.count()).select_from(Parcel).where(Parcel.status == ParcelStatus.delivered)
        ),
    )
