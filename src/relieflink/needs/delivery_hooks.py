"""What dispatch tells the needs domain: requests dispatched, parcels delivered or failed.

The rules are those of ``needs.service`` (``deliver_allocation``, ``return_allocations``),
applied set-based for the tracking hot path: a batch of courier events costs a few statements,
not a few per allocation. Kept apart from ``needs/service.py`` (the lead's file). Nothing here
commits.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from relieflink import clock
from relieflink.audit import service as audit
from relieflink.errors import Conflict
from relieflink.models import (
    Allocation,
    AllocationState,
    NeedRequest,
    ParcelLine,
    RequestLine,
    RequestStatus,
    User,
)
from relieflink.needs import repository
from relieflink.stock import service as stock

__all__ = ["close_delivered", "close_delivered_many", "mark_dispatched", "return_failed"]


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


# Built once (its cache key and compiled form are reused): it runs for every delivery.
_DELIVER_ALLOCATIONS = (
    update(Allocation)
    .where(
        Allocation.id.in_(
            select(ParcelLine.allocation_id).where(
                ParcelLine.parcel_id.in_(bindparam("parcels", expanding=True))
            )
        ),
        Allocation.state == AllocationState.reserved,
    )
    .values(state=AllocationState.delivered, closed_at=bindparam("at"))
)


def close_delivered(session: Session, *, parcel_id: int) -> list[int]:
    """A parcel reached its household (its stock was issued when it was loaded): its
    allocations become ``delivered``, and each of its requests with nothing left reserved
    becomes ``delivered`` — the rules of ``needs.service.deliver_allocation``, in two set-based
    statements for the tracking hot path. Returns the requests closed."""
    request_ids = (
        select(RequestLine.request_id)
        .join(ParcelLine, ParcelLine.request_line_id == RequestLine.id)
        .where(ParcelLine.parcel_id == parcel_id)
    )
    return close_delivered_many(session, {parcel_id: request_ids})[parcel_id]


def close_delivered_many(
    session: Session, requests_of: Mapping[int, Sequence[int] | Any]
) -> dict[int, list[int]]:
    """:func:`close_delivered` for several parcels delivered in one transaction (``requests_of``:
    parcel id → the requests its lines are for, in the order the deliveries were applied), in
    two statements whatever their number. Returns the requests closed, per parcel: a request
    that several of them carry is credited to the last one (it closed with its last reserved
    allocation)."""
    if not requests_of:
        return {}
    session.connection().execute(
        _DELIVER_ALLOCATIONS, {"parcels": sorted(requests_of), "at": clock.now()}
    )
    if len(requests_of) == 1:
        ((parcel, requests),) = requests_of.items()
        return {parcel: repository.close_fully_delivered(session, requests)}
    closed = set(
        repository.close_fully_delivered(
            session, sorted({r for requests in requests_of.values() for r in requests})
        )
    )
    last: dict[int, int] = {}
    for parcel, requests in requests_of.items():  # later parcels overwrite earlier ones
        for request in requests:
            if request in closed:
                last[request] = parcel
    out: dict[int, list[int]] = {p: [] for p in requests_of}
    for request, parcel in sorted(last.items()):
        out[parcel].append(request)
    return out


def return_failed(
    session: Session,
    failures: Sequence[tuple[Sequence[int], str]],
    *,
    actor: User | None,
    still_reserved: Iterable[str] = (),
) -> list[list[int]]:
    """``needs.service.return_allocations`` for several failed deliveries at once: each of
    ``failures`` is (the allocations one parcel carried, the reason). The stock is back (the
    caller returned it); an allocation already returned is left alone, one neither reserved
    nor returned is a ``Conflict``; each allocation's reference gives up what it still holds
    reserved (only those in ``still_reserved`` hold any), becomes ``returned`` and leaves its
    line; each request is reopened and carried over once per failure that returned any of it.
    Returns, per failure, its requests. Five statements, however many failures."""
    ids = sorted({a for allocations, _ in failures for a in allocations})
    if not ids:
        return [[] for _ in failures]
    rows = {
        a.id: (a, request)
        for a, request in session.execute(
            select(Allocation, RequestLine.request_id)
            .join(RequestLine, RequestLine.id == Allocation.line_id)
            .where(Allocation.id.in_(ids))
        )
    }
    held = set(still_reserved)
    returning: dict[int, tuple[Allocation, str]] = {}
    carried: Counter[int] = Counter()
    requests_of: list[list[int]] = []
    for allocations, reason in failures:
        requests: dict[int, None] = {}
        carries: set[int] = set()
        for allocation_id in allocations:
            if allocation_id not in rows:
                raise Conflict(f"no allocation with id {allocation_id}")
            allocation, request_id = rows[allocation_id]
            requests[request_id] = None
            if allocation.state == AllocationState.returned or allocation_id in returning:
                continue
            if allocation.state != AllocationState.reserved:
                raise Conflict(
                    f"allocation {allocation_id} is {allocation.state}; it cannot be returned"
                )
            if allocation.reference in held:
                stock.release(session, reference=allocation.reference, actor=actor)
            returning[allocation_id] = (allocation, reason)
            carries.add(request_id)
        carried.update(carries)
        requests_of.append(list(requests))
    if returning:
        now = clock.now()
        session.execute(
            update(Allocation)
            .where(Allocation.id.in_(sorted(returning)))
            .values(state=AllocationState.returned, closed_at=now)
            .execution_options(synchronize_session=False)
        )
        freed: dict[int, int] = defaultdict(int)
        for allocation, _ in returning.values():
            freed[allocation.line_id] += allocation.quantity
        session.execute(
            update(RequestLine.__table__)  # type: ignore[arg-type]
            .where(RequestLine.__table__.c.id == bindparam("line"))
            .values(allocated=RequestLine.__table__.c.allocated - bindparam("units")),
            [{"line": line, "units": units} for line, units in sorted(freed.items())],
        )
        session.execute(
            update(NeedRequest.__table__)  # type: ignore[arg-type]
            .where(NeedRequest.__table__.c.id == bindparam("rid"))
            .values(
                status=RequestStatus.open.value,
                carried_over=NeedRequest.__table__.c.carried_over + bindparam("times"),
            ),
            [{"rid": r, "times": n} for r, n in sorted(carried.items())],
        )
        for allocation, reason in returning.values():
            audit.record(
                session,
                actor=actor,
                action="return",
                entity="allocation",
                entity_id=allocation.id,
                detail={"reason": reason},
            )
        _expire(session, Allocation, returning)
        _expire(session, RequestLine, freed)
        _expire(session, NeedRequest, carried)
    return requests_of


def _expire(session: Session, model: Any, ids: Mapping[int, Any]) -> None:
    """Objects of this session written around the ORM above are read again when used."""
    for pk in ids:
        obj = session.identity_map.get(identity_key(model, pk))
        if obj is not None:
            session.expire(obj)
