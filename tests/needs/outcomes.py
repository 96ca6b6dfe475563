"""Delivery outcomes for service tests that allocate without planning routes: each helper
wraps the functions the tracking flow itself calls (``relieflink.flows.delivery``), as if the
allocation's parcel was loaded then delivered, or loaded then failed. Nothing is reimplemented
here: a test that uses these breaks when the live path breaks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from relieflink.flows import delivery
from relieflink.models import Allocation, FailureReason, RequestLine


@dataclass(frozen=True)
class Line:
    """A parcel line (``flows.delivery.ParcelLine``) for an allocation."""

    parcel_id: int
    allocation_id: int
    reference: str
    quantity: int
    state: str


def _lines(parcel: int, allocations: Sequence[Allocation]) -> list[Line]:
    return [Line(parcel, a.id, a.reference, a.quantity, a.state) for a in allocations]


def deliver(db: Session, parcel: int, allocations: Sequence[Allocation]) -> list[int]:
    """One parcel carrying ``allocations``, loaded (its stock issued) and delivered; returns
    the requests it closed."""
    delivery.issue_loaded(db, _lines(parcel, allocations), actor=None)
    return close(db, parcel, allocations)


def close(db: Session, parcel: int, allocations: Sequence[Allocation]) -> list[int]:
    """The delivered outcome alone (a parcel whose stock was issued)."""
    requests = sorted({db.get(RequestLine, a.line_id).request_id for a in allocations})  # type: ignore[union-attr]
    closed = delivery.close_delivered(
        db, {parcel: ([a.id for a in allocations], requests)}, actor=None
    )
    return closed[parcel]


def fail(
    db: Session,
    parcel: int,
    allocations: Sequence[Allocation],
    reason: FailureReason = FailureReason.not_home,
) -> tuple[list[int], int]:
    """One parcel carrying ``allocations``, loaded then failed; returns the requests carried
    over and the units written off."""
    delivery.issue_loaded(db, _lines(parcel, allocations), actor=None)
    ((requests, lost),) = delivery.return_failed(
        db, [(parcel, reason, _lines(parcel, allocations))], actor=None
    )
    return requests, lost
