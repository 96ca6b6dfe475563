"""What dispatch tells the needs domain: requests dispatched, parcels delivered.

A failed delivery uses ``needs.service.return_allocation``. Kept
apart from ``needs/service.py`` (the lead's file). Nothing here commits.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from relieflink.db import utcnow
from relieflink.models import (
    Allocation,
    AllocationState,
    NeedRequest,
    ParcelLine,
    RequestLine,
    RequestStatus,
)
from relieflink.needs import repository

__all__ = ["close_delivered", "mark_dispatched"]


def _requests_of_lines(session: Session, line_ids: Iterable[int]) -> dict[int, int]:
    ids = list(set(line_ids))
    out: dict[int, int] = {}
    for start in range(0, len(ids), 5000):
        rows = session.execute(
            select(RequestLine.id, RequestLine.request_id).where(
                RequestLine.id.in_(ids[start : start + 5000])
            )
        )
        out.update((line, request) for line, request in rows)
    return out


def mark_dispatched(session: Session, *, line_ids: Iterable[int]) -> int:
    """Requests whose allocated lines went onto routes: ``allocated`` → ``dispatched``
    (a request still partly open stays open and may get more stock). Returns how many moved."""
    request_ids = sorted(set(_requests_of_lines(session, line_ids).values()))
    moved = 0
    for start in range(0, len(request_ids), 5000):
        result = session.execute(
            update(NeedRequest)
            .where(
                NeedRequest.id.in_(request_ids[start : start + 5000]),
                NeedRequest.status == RequestStatus.allocated,
            )
            .values(status=RequestStatus.dispatched)
            .execution_options(synchronize_session=False)
        )
        moved += result.rowcount or 0  # type: ignore[attr-defined]
    return moved


def close_delivered(session: Session, *, parcel_id: int) -> list[int]:
    """A parcel reached its household (its stock was issued when it was loaded): its
    allocations become ``delivered``, and each of its requests with nothing left reserved
    becomes ``delivered`` — the rules of ``needs.service.deliver_allocation``, in two set-based
    statements for the tracking hot path. Returns the requests closed."""
    allocation_ids = select(ParcelLine.allocation_id).where(ParcelLine.parcel_id == parcel_id)
    session.execute(
        update(Allocation)
        .where(Allocation.id.in_(allocation_ids), Allocation.state == AllocationState.reserved)
        .values(state=AllocationState.delivered, closed_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    request_ids = (
        select(RequestLine.request_id)
        .join(ParcelLine, ParcelLine.request_line_id == RequestLine.id)
        .where(ParcelLine.parcel_id == parcel_id)
    )
    return repository.close_fully_delivered(session, request_ids)
