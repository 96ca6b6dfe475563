"""What dispatch tells the needs domain: requests dispatched, parcels delivered.

A failed delivery uses ``needs.service.return_allocation``. Kept
apart from ``needs/service.py`` (the lead's file). Nothing here commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

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

__all__ = ["close_delivered", "close_delivered_many", "mark_dispatched"]


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


def close_delivered_many(session: Session, parcel_ids: Sequence[int]) -> dict[int, list[int]]:
    """:func:`close_delivered` for several parcels delivered in one transaction, in three
    statements whatever their number. Returns the requests closed, per parcel: a request that
    several of them carry is credited to the last one in ``parcel_ids`` (the order the events
    were applied in; the request closed with its last reserved allocation)."""
    if len(parcel_ids) <= 1:
        return {p: close_delivered(session, parcel_id=p) for p in parcel_ids}
    ids = sorted(set(parcel_ids))
    carried = session.execute(
        select(ParcelLine.parcel_id, RequestLine.request_id)
        .join(RequestLine, RequestLine.id == ParcelLine.request_line_id)
        .where(ParcelLine.parcel_id.in_(ids))
    ).all()
    session.execute(
        update(Allocation)
        .where(
            Allocation.id.in_(
                select(ParcelLine.allocation_id).where(ParcelLine.parcel_id.in_(ids))
            ),
            Allocation.state == AllocationState.reserved,
        )
        .values(state=AllocationState.delivered, closed_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    closed = set(repository.close_fully_delivered(session, sorted({r for _, r in carried})))
    order = {p: k for k, p in enumerate(parcel_ids)}
    last: dict[int, int] = {}
    for parcel, request in carried:
        if request in closed and order[parcel] >= order.get(last.get(request, parcel), -1):
            last[request] = parcel
    out: dict[int, list[int]] = {p: [] for p in parcel_ids}
    for request, parcel in sorted(last.items()):
        out[parcel].append(request)
    return out
