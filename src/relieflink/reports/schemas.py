"""What the operations reports return (read models; plain frozen dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from fractions import Fraction

from relieflink.models import ParcelStatus, PriorityClass

# Parcel states grouped as a coordinator follows a plan.
PARCEL_GROUPS: dict[str, tuple[ParcelStatus, ...]] = {
    "delivered": (ParcelStatus.delivered,),
    "failed": (ParcelStatus.failed,),
    "on_board": (
        ParcelStatus.loaded,
        ParcelStatus.departed,
        ParcelStatus.at_gate,
        ParcelStatus.handed_off,
    ),
    "waiting": (ParcelStatus.planned,),  # on a route, not loaded yet
    # No route: not planned yet, or released by a plan that found none (stock freed, the request
    # waits for the next allocation): counted on the plan that released them.
    "unrouted": (ParcelStatus.pending, ParcelStatus.released),
}


def group_counts(by_status: dict[str, int]) -> dict[str, int]:
    """Counts per parcel status → counts per group of :data:`PARCEL_GROUPS`."""
    return {
        group: sum(by_status.get(str(s), 0) for s in states)
        for group, states in PARCEL_GROUPS.items()
    }


@dataclass(frozen=True)
class ClassNeed:
    """Open requests (and the units they still lack) whose most urgent line is in a class."""

    priority_class: PriorityClass
    requests: int
    units: int


@dataclass(frozen=True)
class StockDays:
    """How long the available stock of a ration pack lasts if every registered household got
    its entitlement: available ÷ the households' daily need at the ration policy."""

    kit_id: int
    sku: str
    name: str
    name_zh: str
    available: int
    daily_need: Fraction
    days: Fraction | None  # None: nobody registered is entitled to it


@dataclass(frozen=True)
class PlanProgress:
    id: int
    day: date
    status: str
    progress: int
    message: str
    created_at: datetime
    finished_at: datetime | None
    routes: int
    parcels: dict[str, int]  # per group of PARCEL_GROUPS
    summary: dict[str, object]

    @property
    def total(self) -> int:
        return sum(self.parcels.values())


@dataclass(frozen=True)
class FailedDelivery:
    parcel_id: int
    route_id: int | None
    reason: str | None
    household_code: str
    community: str
    community_zh: str
    failed_at: datetime | None


@dataclass(frozen=True)
class ConsultQueue:
    waiting: int
    overdue: int
    in_progress: int
    doctors_on_duty: int


@dataclass(frozen=True)
class Glance:
    """Today at a glance, for coordinators."""

    day: date
    requests_by_status: dict[str, int]
    waiting_by_class: list[ClassNeed]
    stock: list[StockDays]
    plans: list[PlanProgress]
    failed: list[FailedDelivery]
    failed_total: int
    consult: ConsultQueue


@dataclass(frozen=True)
class Place:
    id: int
    code: str
    name: str
    name_zh: str
    lat: float
    lon: float


@dataclass(frozen=True)
class CommunityNeed(Place):
    """A community on the map: its lockdown status and how much of it waits for stock."""

    lockdown: str
    households: int  # registered
    waiting_households: int
    waiting_units: int
    level: int  # 0 none, 1 some (< 25 % of households), 2 many (< 50 %), 3 most


@dataclass(frozen=True)
class StopPoint:
    id: int
    seq: int
    community: Place
    inner_mode: str
    eta_s: int
    parcels: int
    arrived_at: datetime | None
    handed_off: int | None


@dataclass(frozen=True)
class RouteView:
    """One route of the day: vehicle, depot, stops in order, and its parcels' progress."""

    id: int
    plan_id: int
    kind: str
    status: str
    carrier_id: int
    courier_id: int | None
    vehicle_id: int
    depot: Place
    start_s: int
    end_s: int
    distance_m: int
    parcels: dict[str, int]  # per group of PARCEL_GROUPS
    stops: list[StopPoint]

    @property
    def total(self) -> int:
        return sum(self.parcels.values())


@dataclass(frozen=True)
class DistrictArea(Place):
    """A district drawn on the map without tiles: the outline (convex hull, lat/lon, in order)
    around its communities; fewer than three points when it has fewer distinct ones."""

    outline: list[tuple[float, float]]


@dataclass(frozen=True)
class DayMap:
    day: date
    communities: list[CommunityNeed]
    warehouses: list[Place]
    routes: list[RouteView]
    districts: list[DistrictArea]


@dataclass(frozen=True)
class SheetParcel:
    """A parcel on its courier's sheet, and what may be recorded for it next."""

    id: int
    household_code: str
    building: str | None
    unit: str | None
    packs: int
    weight_g: int
    status: str
    failure_reason: str | None
    attempts_left: int
    can_deliver: bool
    can_fail: bool


@dataclass(frozen=True)
class SheetStop:
    stop: StopPoint
    parcels: list[SheetParcel]
    can_arrive: bool
    can_hand_off: bool
    waiting_at_gate: int  # parcels at the gate, for the hand-off count


@dataclass(frozen=True)
class GateCompound:
    """One compound's parcels of the day as its volunteer team works them at the gate."""

    community: Place
    team_code: str
    parcels: list[SheetParcel]

    @property
    def waiting(self) -> int:
        """Parcels at the gate or handed off, not yet at the door."""
        return sum(1 for p in self.parcels if p.status in ("at_gate", "handed_off"))


@dataclass(frozen=True)
class RouteSheet:
    """A route as its courier works it."""

    route: RouteView
    stops: list[SheetStop]
    can_load: bool
    can_depart: bool


@dataclass(frozen=True)
class FieldDay:
    """What the offline field app keeps on the phone for a day: a courier's routes as sheets,
    a volunteer leader's gates."""

    day: date
    routes: list[RouteSheet]
    gates: list[GateCompound]
