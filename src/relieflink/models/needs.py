from __future__ import annotations

from datetime import date, datetime
from enum import IntEnum, StrEnum
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from relieflink import clock
from relieflink.db import Base, TimestampMixin


class RequestSource(StrEnum):
    household = "household"
    committee = "committee"
    ngo = "ngo"
    prescription = "prescription"


class RequestStatus(StrEnum):
    open = "open"
    allocated = "allocated"
    dispatched = "dispatched"
    delivered = "delivered"
    failed = "failed"
    cancelled = "cancelled"


class AllocationState(StrEnum):
    """Reserved in the ledger, then delivered (issued) or returned (released after a failure)."""

    reserved = "reserved"
    delivered = "delivered"
    returned = "returned"


class PriorityClass(IntEnum):
    """Served strictly in this order: all of class 0 before any of class 1, and so on."""

    medical = 0
    infant_maternity = 1
    vulnerable = 2
    everyone = 3


class NeedRequest(TimestampMixin, Base):
    """A household's request for kits or items within one ration period."""

    __tablename__ = "need_requests"
    __table_args__ = (
        CheckConstraint("medical_urgency BETWEEN 0 AND 3", name="urgency_range"),
        Index("ix_need_requests_household_period", "household_id", "period_start"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"))
    source: Mapped[RequestSource] = mapped_column(String(20))
    status: Mapped[RequestStatus] = mapped_column(
        String(20), default=RequestStatus.open, index=True
    )
    period_start: Mapped[date]
    medical_urgency: Mapped[int] = mapped_column(default=0)
    carried_over: Mapped[int] = mapped_column(default=0)  # failed deliveries carried to a new plan
    note: Mapped[str | None] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # A prescription's request points back at its consultation (and the prescription at it).
    consultation_id: Mapped[int | None] = mapped_column(ForeignKey("consultations.id"), index=True)
    # A request is always read with its lines (a handful): load them together.
    lines: Mapped[list[RequestLine]] = relationship(
        back_populates="request",
        cascade="all, delete-orphan",
        lazy="selectin",
        order_by="RequestLine.id",
    )


class RequestLine(Base):
    """One kit or item asked for; ``allocated`` counts what allocation runs have reserved."""

    __tablename__ = "need_request_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("allocated >= 0", name="allocated_nonneg"),
        CheckConstraint("(kit_id IS NULL) <> (item_id IS NULL)", name="kit_xor_item"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("need_requests.id", ondelete="CASCADE"), index=True
    )
    kit_id: Mapped[int | None] = mapped_column(ForeignKey("kits.id"))
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"))
    quantity: Mapped[int]
    allocated: Mapped[int] = mapped_column(default=0)
    request: Mapped[NeedRequest] = relationship(back_populates="lines", lazy="raise")


class AllocationRun(Base):
    """One run of the allocation engine over the open requests, with what it decided and why."""

    __tablename__ = "allocation_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    policy_version: Mapped[str] = mapped_column(String(40))
    method: Mapped[str] = mapped_column(String(20))
    lines_considered: Mapped[int]
    units_requested: Mapped[int]
    units_allocated: Mapped[int]
    runtime_s: Mapped[float]
    summary: Mapped[dict[str, Any]] = mapped_column(JSON)


class Allocation(Base):
    """Units of one request line reserved at one warehouse by one run, with the reasons."""

    __tablename__ = "allocations"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("allocation_runs.id"), index=True)
    line_id: Mapped[int] = mapped_column(ForeignKey("need_request_lines.id"), index=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"), index=True)
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id"))
    kit_id: Mapped[int | None] = mapped_column(ForeignKey("kits.id"))
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"))
    quantity: Mapped[int]
    priority_class: Mapped[int]
    score: Mapped[int]
    reasons: Mapped[str] = mapped_column(Text)
    reference: Mapped[str] = mapped_column(String(80), unique=True)
    state: Mapped[AllocationState] = mapped_column(String(20), default="reserved", index=True)
    closed_at: Mapped[datetime | None]
