"""Operations reports: the coordinator's day at a glance, the day's map of need and routes, and
a route's sheet as its courier works it.

Read only. Each figure comes from the domain that owns it (open need classed by the allocation's
own rules, stock from the ledger, the consultation queue's counts) or, for counts over dispatch
tables, from this package's repository; row scoping goes through ``users.access``.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from fractions import Fraction

from sqlalchemy.orm import Session

from relieflink.catalog import service as catalog
from relieflink.consult import service as consult
from relieflink.dispatch import tracking
from relieflink.dispatch.codes import MAX_ATTEMPTS
from relieflink.errors import NotFound
from relieflink.models import (
    Community,
    DispatchPlan,
    InnerMode,
    ParcelStatus,
    PriorityClass,
    Role,
    Route,
    RouteStatus,
    User,
    Warehouse,
)
from relieflink.needs import allocation
from relieflink.needs.policy import default_policy, packs_per_period
from relieflink.places import service as places
from relieflink.places.schemas import CommunityFilters, NameFilters
from relieflink.reports import repository as repo
from relieflink.reports.schemas import (
    ClassNeed,
    CommunityNeed,
    ConsultQueue,
    DayMap,
    DistrictArea,
    FailedDelivery,
    FieldDay,
    GateCompound,
    Glance,
    Place,
    PlanProgress,
    RouteSheet,
    RouteView,
    SheetParcel,
    SheetStop,
    StockDays,
    StopPoint,
    group_counts,
)
from relieflink.stock import service as stock
from relieflink.teams import service as teams
from relieflink.users import access

PAGE = 1000

# The simulation's read-only rows: the repository's queries are the whole answer, so the service
# hands them on (the simulation, like every caller, never imports a repository).
community_places = repo.community_places
fleet_mix = repo.fleet_mix
household_facts = repo.household_facts
organization_rows = repo.organization_rows
packs_by_parcel_status = repo.packs_by_parcel_status
parcel_ids_in_status = repo.parcel_ids_in_status
parcel_request_lines = repo.parcel_request_lines
parcels_in_status = repo.parcels_in_status
planned_routes = repo.planned_routes
requests_allocated_in_full = repo.requests_allocated_in_full
kit_totals = repo.kit_totals
route_stops = repo.route_stops
warehouse_rows = repo.warehouse_rows

MAX_COMMUNITIES = 50_000  # a city's communities; beyond that the map shows the first ones
MAX_ROUTES = 5_000
FAILED_SHOWN = 50

_DELIVERABLE = (ParcelStatus.departed, ParcelStatus.at_gate, ParcelStatus.handed_off)
_FAILABLE = (ParcelStatus.loaded, *_DELIVERABLE)


# --- today at a glance ------------------------------------------------------------------------


def glance(session: Session, *, day: date, actor: User) -> Glance:
    """Requests, need by priority class, stock days left, the day's plans and failures, and the
    consultation queue (staff only)."""
    access.ensure_role(actor, access.STAFF)
    return Glance(
        day=day,
        requests_by_status=repo.requests_by_status(session),
        waiting_by_class=waiting_by_class(session, day=day, actor=actor),
        stock=stock_days(session, day=day, actor=actor),
        plans=plans_of_day(session, day=day, actor=actor),
        failed=failed_deliveries(session, day=day, actor=actor),
        failed_total=repo.count_failed(session, day),
        consult=consult_queue(session, actor=actor),
    )


def waiting_by_class(session: Session, *, day: date, actor: User) -> list[ClassNeed]:
    """Open requests still short of stock, each in the class of its most urgent line."""
    access.ensure_role(actor, access.STAFF)
    klass: dict[int, PriorityClass] = {}
    units: dict[int, int] = defaultdict(int)
    for line in allocation.open_lines(session, actor=actor, today=day):
        known = klass.get(line.request_id, line.priority_class)
        klass[line.request_id] = min(known, line.priority_class)
        units[line.request_id] += line.units
    requests: dict[PriorityClass, int] = defaultdict(int)
    total: dict[PriorityClass, int] = defaultdict(int)
    for request_id, c in klass.items():
        requests[c] += 1
        total[c] += units[request_id]
    return [ClassNeed(c, requests[c], total[c]) for c in PriorityClass]


def stock_days(session: Session, *, day: date, actor: User) -> list[StockDays]:
    """Days left of each ration pack of the policy: available stock ÷ what every registered
    household is entitled to per day (the policy's whole packs per household and period)."""
    access.ensure_role(actor, access.STAFF)
    policy = default_policy()
    per_of = {e.kit: e.per for e in policy.entitlements}
    out = []
    for kit in sorted(catalog.get_kits_by_sku(session, list(per_of)), key=lambda k: k.sku):
        per_period = sum(
            n * packs_per_period(policy, count, persons=kit.persons, days=kit.days)
            for count, n in repo.households_by_count(session, per_of[kit.sku]).items()
        )
        need = Fraction(per_period, policy.period_days)
        available = stock.available(session, warehouse_id=None, kit_id=kit.id, as_of=day)
        days = Fraction(available) / need if need else None
        out.append(StockDays(kit.id, kit.sku, kit.name, kit.name_zh, available, need, days))
    return out


def _plan_progress(plan: DispatchPlan, routes: int, counts: dict[str, int]) -> PlanProgress:
    return PlanProgress(
        id=plan.id,
        day=plan.day,
        status=str(plan.status),
        progress=plan.progress,
        message=plan.message,
        created_at=plan.created_at,
        finished_at=plan.finished_at,
        routes=routes,
        parcels=group_counts(counts),
        summary=dict(plan.summary or {}),
    )


def plans_of_day(session: Session, *, day: date, actor: User) -> list[PlanProgress]:
    """The day's dispatch plans: job state, routes, and where their parcels are."""
    access.ensure_role(actor, access.DISPATCH_PLANNERS)
    plans = repo.plans_of_day(session, day)
    ids = [p.id for p in plans]
    counts = repo.parcel_counts(session, plan_ids=ids) if ids else {}
    routes = repo.routes_per_plan(session, ids)
    return [_plan_progress(p, routes.get(p.id, 0), counts.get(p.id, {})) for p in plans]


def plan_progress(session: Session, plan_id: int, *, actor: User) -> PlanProgress:
    """One dispatch plan's job state and where its parcels are (polled while it runs)."""
    access.ensure_role(actor, access.DISPATCH_PLANNERS)
    plan = repo.get_plan(session, plan_id)
    if plan is None:
        raise NotFound(f"no dispatch plan {plan_id}")
    counts = repo.parcel_counts(session, plan_ids=[plan.id])
    routes = repo.routes_per_plan(session, [plan.id])
    return _plan_progress(plan, routes.get(plan.id, 0), counts.get(plan.id, {}))


def failed_deliveries(
    session: Session, *, day: date, actor: User, limit: int = FAILED_SHOWN
) -> list[FailedDelivery]:
    """The day's failed deliveries, newest first, with their reasons."""
    access.ensure_role(actor, access.STAFF)
    return [
        FailedDelivery(
            parcel_id=pid,
            route_id=route_id,
            reason=str(reason) if reason else None,
            household_code=household,
            community=name,
            community_zh=name_zh,
            failed_at=at,
        )
        for pid, route_id, reason, household, name, name_zh, at in repo.failed_parcels(
            session, day, limit=limit
        )
    ]


def consult_queue(session: Session, *, actor: User) -> ConsultQueue:
    """The consultation queue's length (counts only: no health data)."""
    summary = consult.queue_summary(session, actor=actor)
    return ConsultQueue(
        waiting=sum(level.waiting for level in summary.levels),
        overdue=sum(level.overdue for level in summary.levels),
        in_progress=summary.in_progress,
        doctors_on_duty=summary.doctors_on_duty,
    )


# --- the day's map ----------------------------------------------------------------------------


def _place(row: Community | Warehouse) -> Place:
    return Place(row.id, row.code, row.name, row.name_zh, row.lat, row.lon)


def need_level(waiting: int, households: int) -> int:
    """0 none waiting; 1 under a quarter of the households; 2 under half; 3 half or more."""
    if waiting <= 0:
        return 0
    share = waiting / max(households, waiting, 1)
    return 1 if share < 0.25 else 2 if share < 0.5 else 3


def _communities(session: Session) -> list[Community]:
    rows: list[Community] = []
    offset = 0
    while len(rows) < MAX_COMMUNITIES:
        page, total = places.list_communities(
            session, CommunityFilters(), offset=offset, limit=PAGE
        )
        rows.extend(page)
        offset += PAGE
        if offset >= total:
            break
    return rows


def _warehouses(session: Session) -> list[Warehouse]:
    rows: list[Warehouse] = []
    offset = 0
    while True:
        page, total = places.list_warehouses(session, NameFilters(), offset=offset, limit=PAGE)
        rows.extend(page)
        offset += PAGE
        if offset >= total:
            return rows


def day_map(session: Session, *, day: date, actor: User) -> DayMap:
    """Communities with their lockdown status and unmet need, warehouses, and the day's routes
    (staff only)."""
    access.ensure_role(actor, access.STAFF)
    community_of = repo.open_request_communities(session)
    waiting: dict[int, set[int]] = defaultdict(set)
    units: dict[int, int] = defaultdict(int)
    for line in allocation.open_lines(session, actor=actor, today=day):
        community = community_of.get(line.request_id)
        if community is not None:
            waiting[community].add(line.household_id)
            units[community] += line.units
    registered = repo.households_per_community(session)
    rows = _communities(session)
    communities = [
        CommunityNeed(
            c.id,
            c.code,
            c.name,
            c.name_zh,
            c.lat,
            c.lon,
            lockdown=str(c.lockdown_status),
            households=registered.get(c.id, 0),
            waiting_households=len(waiting[c.id]),
            waiting_units=units[c.id],
            level=need_level(len(waiting[c.id]), registered.get(c.id, 0)),
        )
        for c in rows
    ]
    depots = {w.id: _place(w) for w in _warehouses(session)}
    routes = repo.routes_of_day(session, day, actor=actor, limit=MAX_ROUTES)
    return DayMap(
        day=day,
        communities=communities,
        warehouses=list(depots.values()),
        routes=_route_views(session, routes, depots),
        districts=_district_areas(session, rows),
    )


def _district_areas(session: Session, communities: list[Community]) -> list[DistrictArea]:
    """Each district with communities, outlined around them (the map's offline background)."""
    points: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for c in communities:
        points[c.district_id].append((c.lat, c.lon))
    districts, _ = places.list_districts(session, NameFilters(), limit=PAGE)
    return [
        DistrictArea(d.id, d.code, d.name, d.name_zh, d.lat, d.lon, convex_hull(points[d.id]))
        for d in districts
        if d.id in points
    ]


def convex_hull(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The convex hull of ``points`` in order (Andrew's monotone chain); the distinct points
    themselves when there are fewer than three."""
    pts = sorted(set(points))
    if len(pts) < 3:
        return pts

    def cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    def half(seq: list[tuple[float, float]]) -> list[tuple[float, float]]:
        out: list[tuple[float, float]] = []
        for p in seq:
            while len(out) >= 2 and cross(out[-2], out[-1], p) <= 0:
                out.pop()
            out.append(p)
        return out

    lower, upper = half(pts), half(pts[::-1])
    return lower[:-1] + upper[:-1]


def day_routes(session: Session, *, day: date, actor: User) -> list[RouteView]:
    """The day's routes ``actor`` may see (staff every one, a courier its own), with stops."""
    access.ensure_role(actor, access.ROUTE_READERS)
    routes = repo.routes_of_day(session, day, actor=actor, limit=MAX_ROUTES)
    return _route_views(session, routes, {})


def _route_views(
    session: Session, routes: list[Route], depots: dict[int, Place]
) -> list[RouteView]:
    ids = [r.id for r in routes]
    if not ids:
        return []
    stops: dict[int, list[StopPoint]] = defaultdict(list)
    for (
        route_id,
        stop_id,
        seq,
        community_id,
        code,
        name,
        name_zh,
        lat,
        lon,
        mode,
        eta,
        parcels,
        arrived,
        handed,
    ) in repo.stop_rows(session, ids):
        stops[route_id].append(
            StopPoint(
                stop_id,
                seq,
                Place(community_id, code, name, name_zh, lat, lon),
                str(mode),
                eta,
                parcels,
                arrived,
                handed,
            )
        )
    counts = repo.parcel_counts(session, route_ids=ids)
    for depot_id in {r.depot_id for r in routes} - set(depots):
        depots[depot_id] = _place(places.require_warehouse(session, depot_id))
    return [
        RouteView(
            id=r.id,
            plan_id=r.plan_id,
            kind=str(r.kind),
            status=str(r.status),
            carrier_id=r.carrier_id,
            courier_id=r.courier_id,
            vehicle_id=r.vehicle_id,
            depot=depots[r.depot_id],
            start_s=r.start_s,
            end_s=r.end_s,
            distance_m=r.distance_m,
            parcels=group_counts(counts.get(r.id, {})),
            stops=stops[r.id],
        )
        for r in routes
    ]


# --- a courier's route sheet ------------------------------------------------------------------


def _sheet_parcel(
    pid: int,
    household: str,
    building: str | None,
    unit: str | None,
    packs: int,
    grams: int,
    status: ParcelStatus,
    reason: str | None,
    attempts: int,
    *,
    live: bool,
) -> SheetParcel:
    """A parcel as a sheet shows it: which events may be recorded for it next (the tracking
    rules still decide)."""
    left = max(MAX_ATTEMPTS - attempts, 0)
    return SheetParcel(
        id=pid,
        household_code=household,
        building=building,
        unit=unit,
        packs=packs,
        weight_g=grams,
        status=str(status),
        failure_reason=str(reason) if reason else None,
        attempts_left=left,
        can_deliver=live and status in _DELIVERABLE and left > 0,
        can_fail=live and status in _FAILABLE,
    )


def route_sheet(session: Session, route_id: int, *, actor: User) -> RouteSheet:
    """A route's stops in order with their parcels, and which events may be recorded next (the
    tracking service still decides); ``NotFound`` for a route ``actor`` may not see."""
    route = tracking.require_route(session, route_id, actor=actor)
    (view,) = _route_views(session, [route], {})
    live = route.status != RouteStatus.cancelled
    by_stop: dict[int | None, list[SheetParcel]] = defaultdict(list)
    for pid, stop_id, *rest in repo.route_parcel_rows(session, route_id):
        by_stop[stop_id].append(_sheet_parcel(pid, *rest, live=live))
    stops = []
    for stop in view.stops:
        parcels = by_stop.get(stop.id, [])
        at_gate = sum(1 for p in parcels if p.status == ParcelStatus.at_gate)
        stops.append(
            SheetStop(
                stop=stop,
                parcels=parcels,
                can_arrive=live and any(p.status == ParcelStatus.departed for p in parcels),
                can_hand_off=live and stop.inner_mode != InnerMode.courier and at_gate > 0,
                waiting_at_gate=at_gate,
            )
        )
    all_parcels = [p for s in stops for p in s.parcels]
    return RouteSheet(
        route=view,
        stops=stops,
        can_load=route.status == RouteStatus.planned
        and any(p.status == ParcelStatus.planned for p in all_parcels),
        can_depart=route.status == RouteStatus.loaded,
    )


# --- a volunteer leader's gate ----------------------------------------------------------------


def gate_sheet(session: Session, *, day: date, actor: User) -> list[GateCompound]:
    """The day's parcels at the gates of the compounds whose team ``actor`` leads. Parcels the
    courier carries in (inner mode ``courier``) are listed but offer no action: the volunteers
    do not carry them."""
    led = teams.teams_led_by(session, actor)
    compounds = {t.community_id: places.require_community(session, t.community_id) for t in led}
    by_compound: dict[int, list[SheetParcel]] = defaultdict(list)
    for row in repo.gate_parcel_rows(session, list(compounds), day):
        pid, community_id, inner_mode, *sheet_row = row
        # The leader acts once the van has left: not on parcels still at the warehouse.
        ours = inner_mode != InnerMode.courier and row.status in _DELIVERABLE
        by_compound[community_id].append(_sheet_parcel(pid, *sheet_row, live=ours))
    return [
        GateCompound(_place(compounds[t.community_id]), t.code, by_compound[t.community_id])
        for t in led
        if t.community_id in compounds
    ]


# --- the offline field app --------------------------------------------------------------------


def field_day(session: Session, *, day: date, actor: User) -> FieldDay:
    """Everything the field app caches for ``day``: a courier's own routes (as their sheets), a
    volunteer leader's own team's gates; nobody else's."""
    access.ensure_role(actor, access.FIELD_WORKERS)
    routes = []
    if actor.role == Role.courier:
        found = repo.routes_of_day(session, day, actor=actor, limit=MAX_ROUTES)
        routes = [route_sheet(session, r.id, actor=actor) for r in found]
    gates = gate_sheet(session, day=day, actor=actor) if actor.role == Role.volunteer else []
    return FieldDay(day=day, routes=routes, gates=gates)
