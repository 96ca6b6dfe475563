"""Request and response bodies of dispatch and delivery tracking."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, model_validator

from relieflink.common.schemas import ProblemRead, ReadModel, StrictModel
from relieflink.models import EventKind, FailureReason
from relieflink.optim.routing import MAX_SEED

# The routing engine's seed: refused here, not inside the job that would fail with it.
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]

_ROUTE_EVENTS = {EventKind.loaded, EventKind.departed}
_STOP_EVENTS = {EventKind.arrived, EventKind.handed_off}
_PARCEL_EVENTS = {EventKind.delivered, EventKind.failed}


class PlanCreate(StrictModel):
    day: date
    time_limit: float | None = Field(default=None, gt=0, le=600)
    seed: Seed = 1


class ReplanCreate(StrictModel):
    failed_route_ids: list[int] = Field(default_factory=list)
    time_limit: float | None = Field(default=None, gt=0, le=600)
    seed: Seed = 1


class PlanRead(ReadModel):
    id: int
    day: date
    replan_of_id: int | None
    status: str
    progress: int
    message: str
    created_at: datetime
    finished_at: datetime | None
    summary: dict[str, Any]


class AvailabilityUpdate(StrictModel):
    day: date
    available: int = Field(ge=0)
    note: str | None = Field(default=None, max_length=500)


class VehicleRead(ReadModel):
    id: int
    code: str
    carrier_id: int
    kind: str
    depot_id: int
    count: int
    capacity_g: int
    capacity_ml: int
    speed_kmh: int
    range_m: int | None
    shift_start_s: int
    shift_end_s: int


class RouteRead(ReadModel):
    id: int
    plan_id: int
    vehicle_id: int
    vehicle_index: int
    carrier_id: int
    courier_id: int | None
    kind: str
    depot_id: int
    status: str
    start_s: int
    end_s: int
    distance_m: int
    duration_s: int
    cost_fen: int
    weight_g: int


class StopRead(ReadModel):
    id: int
    route_id: int
    seq: int
    community_id: int
    inner_mode: str
    eta_s: int
    weight_g: int
    parcels: int
    arrived_at: datetime | None
    handed_off: int | None


class CourierAssign(StrictModel):
    courier_id: int


class EventIn(StrictModel):
    """One tracking event. ``loaded``/``departed`` name a route (or one parcel), ``arrived``/
    ``handed_off`` a stop, ``delivered``/``failed`` a parcel."""

    client_event_id: str = Field(min_length=8, max_length=80)
    kind: EventKind
    route_id: int | None = None
    stop_id: int | None = None
    parcel_id: int | None = None
    code: str | None = Field(default=None, max_length=12)
    reason: FailureReason | None = None
    counted: int | None = Field(default=None, ge=0)
    override_reason: str | None = Field(default=None, min_length=5, max_length=500)
    photo_ref: str | None = Field(default=None, max_length=200)
    note: str | None = Field(default=None, max_length=500)
    occurred_at: datetime | None = None

    @model_validator(mode="after")
    def _one_target(self) -> EventIn:
        given = [n for n in ("route_id", "stop_id", "parcel_id") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError("name exactly one of route_id, stop_id, parcel_id")
        target = given[0]
        if self.kind in _PARCEL_EVENTS and target != "parcel_id":
            raise ValueError(f"a {self.kind} event names a parcel_id")
        if self.kind in _STOP_EVENTS and target != "stop_id":
            raise ValueError(f"a {self.kind} event names a stop_id")
        if self.kind in _ROUTE_EVENTS and target == "stop_id":
            raise ValueError(f"a {self.kind} event names a route_id or a parcel_id")
        if self.kind == EventKind.failed and self.reason is None:
            raise ValueError("a failed event gives a reason")
        return self


class EventRead(ReadModel):
    id: int
    client_event_id: str
    kind: str
    replayed: bool
    parcels: list[int]
    result: dict[str, Any]


class EventBatchIn(StrictModel):
    """Events a phone buffered while offline, in the order they happened. Each item is an
    ``EventIn`` (see ``POST /dispatch/events``), validated on its own: an item that does not
    match the schema is answered 422 and the others are still applied."""

    events: list[dict[str, Any]] = Field(min_length=1, max_length=500)


class EventAnswerRead(BaseModel):
    """One event of a batch: ``status`` 200 with the ``event`` (``replayed`` if it was applied
    before), or the status and ``problem`` the single endpoint would have answered."""

    index: int
    client_event_id: str | None
    status: int
    event: EventRead | None = None
    problem: ProblemRead | None = None


class EventBatchRead(BaseModel):
    applied: int
    replayed: int
    refused: int
    results: list[EventAnswerRead]


class TrackingEventRead(ReadModel):
    id: int
    client_event_id: str
    kind: str
    parcel_id: int | None
    route_id: int | None
    stop_id: int | None
    seq: int
    reason: str | None
    occurred_at: datetime | None
    recorded_at: datetime


class MyDelivery(ReadModel):
    parcel_id: int
    status: str
    packs: int
    eta_s: int | None
    pickup_code: str | None


class DiscrepancyRead(ReadModel):
    id: int
    stop_id: int
    expected: int
    counted: int
    note: str | None
    created_at: datetime


class TraceRead(ReadModel):
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
    # Each donor behind the pack: donor_org_id, name, name_zh, quantity (exact, "155/393") and
    # quantity_decimal (0.394); each line's donors alike.
    donors: list[dict[str, Any]]
