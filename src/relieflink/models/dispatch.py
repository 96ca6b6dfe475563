"""Dispatch and delivery: fleets, plans (the planning job), routes, stops, parcels, tracking.

A *parcel* is what one household receives from one warehouse in one go: the allocations (stock
reservations) it carries are its lines. Parcels outlive plans: a re-plan moves a parcel that is
not yet on board to a new route and stop; its pickup code stays the same.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from relieflink import clock
from relieflink.db import Base, TimestampMixin


class FleetKind(StrEnum):
    truck = "truck"
    van = "van"
    ebike = "ebike"
    robot = "robot"
    foot = "foot"


class PlanStatus(StrEnum):
    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"


class RouteStatus(StrEnum):
    planned = "planned"
    loaded = "loaded"
    departed = "departed"
    completed = "completed"
    cancelled = "cancelled"  # replaced by a re-plan before loading


class ParcelStatus(StrEnum):
    pending = "pending"  # not on any route (new, or released by a re-plan)
    planned = "planned"
    loaded = "loaded"  # picked: stock issued from the warehouse
    departed = "departed"
    at_gate = "at_gate"
    handed_off = "handed_off"
    delivered = "delivered"
    failed = "failed"
    # No route could take it: its stock went back and its allocations to their requests, to
    # be allocated again at the next wave (the plan's summary says why).
    released = "released"


class EventKind(StrEnum):
    loaded = "loaded"
    departed = "departed"
    arrived = "arrived"
    handed_off = "handed_off"
    delivered = "delivered"
    failed = "failed"


class FailureReason(StrEnum):
    not_home = "not_home"
    refused = "refused"
    damaged = "damaged"
    access_denied = "access_denied"


class InnerMode(StrEnum):
    """Who carries the last 100 metres from the stop to the door."""

    courier = "courier"  # vehicles may enter: the courier goes door to door
    volunteer = "volunteer"  # controlled compound: handed to volunteers at the gate
    robot = "robot"  # sealed compound: a robot (or volunteer on foot) brings it to the gate


class Vehicle(TimestampMixin, Base):
    """A group of identical vehicles (or robots, or volunteers on foot) of one carrier."""

    __tablename__ = "fleet_vehicles"
    __table_args__ = (
        CheckConstraint("count >= 0", name="count_nonneg"),
        CheckConstraint("capacity_g >= 0 AND capacity_ml >= 0", name="capacity_nonneg"),
        CheckConstraint("shift_end_s > shift_start_s", name="shift_order"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    carrier_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    kind: Mapped[FleetKind] = mapped_column(String(20))
    depot_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id"), index=True)
    count: Mapped[int] = mapped_column(default=1)
    capacity_g: Mapped[int]
    capacity_ml: Mapped[int]
    speed_kmh: Mapped[int]
    range_m: Mapped[int | None]
    shift_start_s: Mapped[int] = mapped_column(default=8 * 3600)
    shift_end_s: Mapped[int] = mapped_column(default=18 * 3600)
    fixed_cost_fen: Mapped[int] = mapped_column(default=0)
    cost_per_km_fen: Mapped[int] = mapped_column(default=100)
    active: Mapped[bool] = mapped_column(default=True)


class VehicleAvailability(Base):
    """How many of a vehicle group can work on one day (couriers ill or locked in)."""

    __tablename__ = "fleet_availability"
    __table_args__ = (
        UniqueConstraint("vehicle_id", "day"),
        CheckConstraint("available >= 0", name="available_nonneg"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    vehicle_id: Mapped[int] = mapped_column(ForeignKey("fleet_vehicles.id", ondelete="CASCADE"))
    day: Mapped[date]
    available: Mapped[int]
    note: Mapped[str | None] = mapped_column(Text)


class DispatchPlan(Base):
    """One planning run for a day, and its job state (polled while it runs)."""

    __tablename__ = "dispatch_plans"

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(index=True)
    replan_of_id: Mapped[int | None] = mapped_column(ForeignKey("dispatch_plans.id"))
    status: Mapped[PlanStatus] = mapped_column(String(20), default=PlanStatus.queued)
    progress: Mapped[int] = mapped_column(default=0)  # percent
    message: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    finished_at: Mapped[datetime | None]
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Route(Base):
    """One vehicle's trip of a plan: leave the depot, make the stops in order, return."""

    __tablename__ = "dispatch_routes"

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("dispatch_plans.id"), index=True)
    vehicle_id: Mapped[int] = mapped_column(ForeignKey("fleet_vehicles.id"), index=True)
    vehicle_index: Mapped[int]
    carrier_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    courier_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[FleetKind] = mapped_column(String(20))
    depot_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id"))
    status: Mapped[RouteStatus] = mapped_column(String(20), default=RouteStatus.planned)
    start_s: Mapped[int]
    end_s: Mapped[int]
    distance_m: Mapped[int]
    duration_s: Mapped[int]
    cost_fen: Mapped[int]
    weight_g: Mapped[int]


class RouteStop(Base):
    """A visit of a route: a community gate (or a household door), with its ETA."""

    __tablename__ = "dispatch_stops"
    __table_args__ = (UniqueConstraint("route_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    route_id: Mapped[int] = mapped_column(ForeignKey("dispatch_routes.id"), index=True)
    seq: Mapped[int]
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"), index=True)
    household_id: Mapped[int | None] = mapped_column(ForeignKey("households.id"))
    inner_mode: Mapped[InnerMode] = mapped_column(String(20))
    eta_s: Mapped[int]
    weight_g: Mapped[int]
    parcels: Mapped[int]
    arrived_at: Mapped[datetime | None]
    handed_off: Mapped[int | None]  # parcels counted at the gate hand-off


class Parcel(Base):
    """What one household gets from one warehouse: its lines are allocations (reservations)."""

    __tablename__ = "dispatch_parcels"
    __table_args__ = (
        Index("ix_dispatch_parcels_status", "status"),
        CheckConstraint("code_attempts >= 0", name="attempts_nonneg"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"), index=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"))
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id"))
    plan_id: Mapped[int] = mapped_column(ForeignKey("dispatch_plans.id"), index=True)
    route_id: Mapped[int | None] = mapped_column(ForeignKey("dispatch_routes.id"), index=True)
    stop_id: Mapped[int | None] = mapped_column(ForeignKey("dispatch_stops.id"), index=True)
    status: Mapped[ParcelStatus] = mapped_column(String(20), default=ParcelStatus.pending)
    packs: Mapped[int]
    weight_g: Mapped[int]
    volume_ml: Mapped[int]
    # The pickup code is HMAC(secret, "pickup:{id}:{nonce}"), shown only to the resident; only
    # a keyed hash of it is stored for checking (see dispatch/codes.py).
    code_nonce: Mapped[str] = mapped_column(String(32))
    code_hash: Mapped[str] = mapped_column(String(64))
    code_attempts: Mapped[int] = mapped_column(default=0)
    last_seq: Mapped[int] = mapped_column(default=0)
    failure_reason: Mapped[FailureReason | None] = mapped_column(String(20))
    delivered_at: Mapped[datetime | None]
    delivered_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    override_reason: Mapped[str | None] = mapped_column(Text)
    photo_ref: Mapped[str | None] = mapped_column(String(200))


class ParcelLine(Base):
    """One allocation (all its units) carried by a parcel."""

    __tablename__ = "dispatch_parcel_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    parcel_id: Mapped[int] = mapped_column(ForeignKey("dispatch_parcels.id"), index=True)
    allocation_id: Mapped[int] = mapped_column(ForeignKey("allocations.id"), unique=True)
    request_line_id: Mapped[int] = mapped_column(ForeignKey("need_request_lines.id"))
    reference: Mapped[str] = mapped_column(String(80))
    kit_id: Mapped[int | None] = mapped_column(ForeignKey("kits.id"))
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"))
    quantity: Mapped[int]


class TrackingEvent(Base):
    """An applied tracking event; ``client_event_id`` makes retries from a phone safe."""

    __tablename__ = "dispatch_events"
    __table_args__ = (
        UniqueConstraint("client_event_id"),
        Index("ix_dispatch_events_parcel_seq", "parcel_id", "seq"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    client_event_id: Mapped[str] = mapped_column(String(80))
    kind: Mapped[EventKind] = mapped_column(String(20))
    parcel_id: Mapped[int | None] = mapped_column(ForeignKey("dispatch_parcels.id"))
    route_id: Mapped[int | None] = mapped_column(ForeignKey("dispatch_routes.id"), index=True)
    stop_id: Mapped[int | None] = mapped_column(ForeignKey("dispatch_stops.id"))
    seq: Mapped[int] = mapped_column(default=0)  # per parcel; 0 for route or stop events
    reason: Mapped[str | None] = mapped_column(String(40))
    fingerprint: Mapped[str] = mapped_column(String(64))  # of the request, to spot reuse
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    occurred_at: Mapped[datetime | None]
    recorded_at: Mapped[datetime] = mapped_column(default=clock.now)
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class HandoffDiscrepancy(Base):
    """Parcels counted at a gate hand-off differ from what the stop should hand over."""

    __tablename__ = "dispatch_discrepancies"

    id: Mapped[int] = mapped_column(primary_key=True)
    stop_id: Mapped[int] = mapped_column(ForeignKey("dispatch_stops.id"), index=True)
    expected: Mapped[int]
    counted: Mapped[int]
    note: Mapped[str | None] = mapped_column(Text)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    resolved: Mapped[bool] = mapped_column(default=False)
