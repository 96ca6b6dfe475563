"""SQL for requests, their lines and allocation runs (the allocation loader and recorder too)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Row, Select, Table, bindparam, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from relieflink import clock
from relieflink.common import repository as common
from relieflink.db import bulk
from relieflink.db.bulk import add_to_column, copy_rows, copy_rows_with_ids
from relieflink.models import (
    Allocation,
    AllocationRun,
    AllocationState,
    Community,
    District,
    Household,
    Item,
    Kit,
    NeedRequest,
    RequestLine,
    RequestSource,
    RequestStatus,
    Warehouse,
)
from relieflink.needs.schemas import RequestFilters

OPEN_STATES = (RequestStatus.open, RequestStatus.allocated)
_LINES = cast(Table, RequestLine.__table__)
_REQUESTS = cast(Table, NeedRequest.__table__)
_ALLOCATIONS = cast(Table, Allocation.__table__)


def open_requests_in_period(
    session: Session, household_ids: Collection[int], period_start: date
) -> Sequence[Any]:
    """Requests of these households in a ration period that may still take a merge (a doctor's
    prescription is a request of its own and takes none), with their lines: one row per line
    (``line_id`` None for a request without), by request id and line id."""
    stmt = (
        select(
            NeedRequest.id,
            NeedRequest.household_id,
            NeedRequest.status,
            NeedRequest.medical_urgency,
            NeedRequest.note,
            RequestLine.id.label("line_id"),
            RequestLine.kit_id,
            RequestLine.item_id,
            RequestLine.quantity,
            RequestLine.allocated,
        )
        .outerjoin(RequestLine, RequestLine.request_id == NeedRequest.id)
        .where(
            common.one_of(session, NeedRequest.household_id, sorted(household_ids)),
            NeedRequest.period_start == period_start,
            NeedRequest.status.in_(OPEN_STATES),
            NeedRequest.source != RequestSource.prescription,
        )
        .order_by(NeedRequest.id, RequestLine.id)
    )
    return session.execute(stmt).all()


#: The values of a new request, in this order (:func:`insert_requests`).
REQUEST_COLUMNS = (
    "household_id",
    "source",
    "status",
    "period_start",
    "note",
    "medical_urgency",
    "consultation_id",
    "created_by_id",
)
_REQUEST_DEFAULTS = ("carried_over", "created_at", "updated_at")
#: The values of a new request line, in this order (:func:`insert_lines`).
LINE_COLUMNS = ("request_id", "kit_id", "item_id", "quantity", "allocated")


def insert_requests(session: Session, rows: Sequence[tuple[Any, ...]]) -> list[int]:
    """Insert requests in bulk, each the values of ``REQUEST_COLUMNS`` (COPY on PostgreSQL, so
    the columns' defaults are given here); their ids, in order."""
    now = clock.now()
    defaults = (0, now, now)
    columns = [*REQUEST_COLUMNS, *_REQUEST_DEFAULTS]
    return copy_rows_with_ids(session, _REQUESTS, columns, [(*row, *defaults) for row in rows])


def insert_lines(session: Session, rows: Iterable[tuple[Any, ...]]) -> None:
    """Insert request lines in bulk, each the values of ``LINE_COLUMNS``."""
    copy_rows(session, _LINES, LINE_COLUMNS, rows)


def refresh_statistics(session: Session, rows: int) -> None:
    """The planner statistics of requests and lines after a bulk load of ``rows``
    (:func:`relieflink.db.bulk.refresh_statistics`): the allocation's read of every open line
    is planned on them."""
    bulk.refresh_statistics(session, [_REQUESTS, _LINES], rows)


def update_merged(session: Session, requests: list[dict[str, Any]], lines: dict[int, int]) -> None:
    """Merges into stored requests: ``requests`` rows ``{id, status, medical_urgency, note}``,
    and the new quantity of each line raised (by line id)."""
    if requests:
        session.execute(
            update(_REQUESTS)
            .where(_REQUESTS.c.id == bindparam("row_id"))
            .values(
                status=bindparam("status"),
                medical_urgency=bindparam("urgency"),
                note=bindparam("new_note"),
            ),
            [
                {
                    "row_id": r["id"],
                    "status": r["status"],
                    "urgency": r["medical_urgency"],
                    "new_note": r["note"],
                }
                for r in requests
            ],
        )
    if lines:
        session.execute(
            update(_LINES)
            .where(_LINES.c.id == bindparam("row_id"))
            .values(quantity=bindparam("qty")),
            [{"row_id": k, "qty": q} for k, q in lines.items()],
        )
    _expire(session, NeedRequest, [r["id"] for r in requests])
    _expire(session, RequestLine, lines)


def requests_by_id(session: Session, request_ids: Collection[int]) -> dict[int, NeedRequest]:
    """These requests with their lines, read afresh (they may have been written around the ORM)."""
    stmt = (
        select(NeedRequest)
        .where(NeedRequest.id.in_(sorted(request_ids)))
        .execution_options(populate_existing=True)
    )
    return {r.id: r for r in session.scalars(stmt)}


def filtered(filters: RequestFilters) -> Select[NeedRequest]:
    stmt = select(NeedRequest)
    if filters.status is not None:
        stmt = stmt.where(NeedRequest.status == filters.status)
    if filters.household_id is not None:
        stmt = stmt.where(NeedRequest.household_id == filters.household_id)
    if filters.community_id is not None:
        stmt = stmt.join(Household, Household.id == NeedRequest.household_id).where(
            Household.community_id == filters.community_id
        )
    return stmt


def page(
    session: Session, stmt: Select[NeedRequest], *, offset: int, limit: int
) -> tuple[Sequence[NeedRequest], int]:
    return common.page(session, stmt, offset=offset, limit=limit, order_by=NeedRequest.id)


def delivered_totals(session: Session, request_id: int) -> tuple[int, datetime | None]:
    """Units delivered to a request and when the last of them arrived."""
    units, last = session.execute(
        select(func.coalesce(func.sum(Allocation.quantity), 0), func.max(Allocation.closed_at))
        .join(RequestLine, RequestLine.id == Allocation.line_id)
        .where(RequestLine.request_id == request_id, Allocation.state == AllocationState.delivered)
    ).one()
    return int(units), last


# Runs for every delivery, so built once (building it cost a fifth of a delivery's CPU).
_CLOSE_FULLY_DELIVERED = common.Prebuilt(
    lambda one_of: (
        update(_REQUESTS)
        .where(
            one_of(_REQUESTS.c.id, "ids"),
            _REQUESTS.c.status.in_([RequestStatus.allocated.value, RequestStatus.dispatched.value]),
            ~select(_ALLOCATIONS.c.id)
            .join(_LINES, _LINES.c.id == _ALLOCATIONS.c.line_id)
            .where(
                _LINES.c.request_id == _REQUESTS.c.id,
                _ALLOCATIONS.c.state == AllocationState.reserved.value,
            )
            .exists(),
        )
        .values(status=RequestStatus.delivered.value)
        .returning(_REQUESTS.c.id)
    )
)


def close_fully_delivered(session: Session, request_ids: Sequence[int]) -> list[int]:
    """Requests among ``request_ids`` that were allocated or dispatched and have nothing left
    reserved become ``delivered``; returns their ids. The one place this rule lives: a single
    delivery and a courier's parcel event both call it. Request objects of the session are read
    again when used."""
    if not request_ids:
        return []
    closed = sorted(
        session.connection()
        .execute(_CLOSE_FULLY_DELIVERED(session), {"ids": list(request_ids)})
        .scalars()
    )
    _expire(session, NeedRequest, closed)
    return closed


# --- the allocation loader and recorder -------------------------------------------------------

#: The columns of an open request line as the allocation reads it (``open_line_rows``).
OPEN_LINE_COLUMNS = (
    RequestLine.id,
    RequestLine.kit_id,
    RequestLine.item_id,
    RequestLine.quantity,
    RequestLine.allocated,
    NeedRequest.id,
    NeedRequest.household_id,
    NeedRequest.source,
    NeedRequest.medical_urgency,
    NeedRequest.carried_over,
    NeedRequest.created_at,
    Household.size,
    Household.infants,
    Household.pregnant,
    Household.chronic,
    Household.elderly_80,
    Household.disabled,
    Community.id,
    Community.lat,
    Community.lon,
    Community.lockdown_status,
    District.code,
)


def open_line_chunks(session: Session, size: int) -> Iterator[Sequence[Any]]:
    """Every line of an open request with its household, compound and district
    (``OPEN_LINE_COLUMNS``), oldest request first, ``size`` rows at a time (a server-side
    cursor on PostgreSQL: a city's millions of lines are never all Python rows at once)."""
    stmt = (
        select(*OPEN_LINE_COLUMNS)
        .join(NeedRequest, NeedRequest.id == RequestLine.request_id)
        .join(Household, Household.id == NeedRequest.household_id)
        .join(Community, Community.id == Household.community_id)
        .join(District, District.id == Community.district_id)
        .where(NeedRequest.status == RequestStatus.open)
        .order_by(NeedRequest.created_at, RequestLine.id)
        .execution_options(yield_per=size)
    )
    # Read as plain rows (Core): the ORM's loading costs a third more CPU a row.
    yield from session.connection().execute(stmt).partitions()


def all_kits(session: Session) -> Sequence[Kit]:
    return session.scalars(select(Kit)).all()


def all_items(session: Session) -> Sequence[Item]:
    return session.scalars(select(Item)).all()


def warehouses_by_id(session: Session) -> list[Warehouse]:
    return list(session.scalars(select(Warehouse).order_by(Warehouse.id)))


def delivered_since(
    session: Session, since: datetime
) -> Sequence[Row[int, datetime | None, int | None, int]]:
    """(household, closed_at, kit, quantity) of every allocation delivered from ``since`` on."""
    return session.execute(
        select(
            Allocation.household_id, Allocation.closed_at, Allocation.kit_id, Allocation.quantity
        ).where(Allocation.state == AllocationState.delivered, Allocation.closed_at >= since)
    ).all()


#: The values of a new allocation, in this order (:func:`insert_allocations`).
ALLOCATION_COLUMNS = (
    "run_id",
    "line_id",
    "household_id",
    "warehouse_id",
    "kit_id",
    "item_id",
    "quantity",
    "priority_class",
    "score",
    "reference",
    "state",
    "closed_at",
    "reasons",
)


def insert_allocations(session: Session, rows: Iterable[tuple[Any, ...]]) -> None:
    """Insert allocations in bulk, each the values of ``ALLOCATION_COLUMNS``."""
    copy_rows(session, _ALLOCATIONS, ALLOCATION_COLUMNS, rows)


def add_allocated(session: Session, added: dict[int, int]) -> None:
    """Add units to each request line's ``allocated`` (line id → units)."""
    add_to_column(session, cast(Table, RequestLine.__table__), "allocated", added)


def mark_allocated(session: Session, request_ids: list[int]) -> None:
    """These requests become ``allocated``: one statement with one array parameter on
    PostgreSQL (no statement of thousands of placeholders to build and parse), chunks of
    ``IN`` elsewhere (SQLite caps a statement's parameters)."""
    postgres = session.get_bind().dialect.name == "postgresql"
    step = max(len(request_ids), 1) if postgres else 5000
    for start in range(0, len(request_ids), step):
        session.execute(
            update(NeedRequest)
            .where(common.one_of(session, NeedRequest.id, request_ids[start : start + step]))
            .values(status=RequestStatus.allocated)
            .execution_options(synchronize_session=False)
        )


def set_run_runtime(session: Session, run_id: int, runtime_s: float) -> None:
    session.execute(
        update(AllocationRun).where(AllocationRun.id == run_id).values(runtime_s=runtime_s)
    )


def runs_page(session: Session, *, offset: int, limit: int) -> tuple[Sequence[AllocationRun], int]:
    return common.page(
        session, select(AllocationRun), offset=offset, limit=limit, order_by=AllocationRun.id.desc()
    )


def allocations_of_run(run_id: int) -> Select[Allocation]:
    return select(Allocation).where(Allocation.run_id == run_id)


def allocations_page(
    session: Session, stmt: Select[Allocation], *, offset: int, limit: int
) -> tuple[Sequence[Allocation], int]:
    return common.page(session, stmt, offset=offset, limit=limit, order_by=Allocation.id)


def requests_of_lines(session: Session, line_ids: Iterable[int]) -> list[int]:
    """The requests these lines belong to."""
    ids = sorted(set(line_ids))
    out: set[int] = set()
    for start in range(0, len(ids), 5000):
        out.update(
            session.scalars(
                select(RequestLine.request_id).where(RequestLine.id.in_(ids[start : start + 5000]))
            )
        )
    return sorted(out)


def mark_dispatched(session: Session, request_ids: Sequence[int]) -> int:
    """Allocated requests among ``request_ids`` become ``dispatched``; returns how many."""
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


# Built once: it runs for every delivery.
_DELIVER = common.Prebuilt(
    lambda one_of: (
        update(_ALLOCATIONS)
        .where(
            one_of(_ALLOCATIONS.c.id, "ids"),
            _ALLOCATIONS.c.state == AllocationState.reserved.value,
        )
        .values(state=AllocationState.delivered.value, closed_at=bindparam("at"))
    )
)


def deliver_allocations(session: Session, allocation_ids: Sequence[int]) -> None:
    """Reserved allocations among these become ``delivered``, closed now."""
    if allocation_ids:
        session.connection().execute(
            _DELIVER(session), {"ids": list(allocation_ids), "at": clock.now()}
        )
        _expire(session, Allocation, allocation_ids)


def allocations_with_requests(
    session: Session, allocation_ids: Sequence[int]
) -> dict[int, tuple[Allocation, int]]:
    """Allocations by id, each with the request its line belongs to."""
    return {
        a.id: (a, request)
        for a, request in session.execute(
            select(Allocation, RequestLine.request_id)
            .join(RequestLine, RequestLine.id == Allocation.line_id)
            .where(Allocation.id.in_(list(allocation_ids)))
        )
    }


def return_allocations(
    session: Session,
    allocation_ids: Sequence[int],
    *,
    freed: Mapping[int, int],
    carried: Mapping[int, int],
) -> None:
    """Allocations returned (closed now); ``freed``: units each request line gets back;
    ``carried``: how many times each request is carried over (it reopens)."""
    session.execute(
        update(Allocation)
        .where(Allocation.id.in_(list(allocation_ids)))
        .values(state=AllocationState.returned, closed_at=clock.now())
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(_LINES)
        .where(_LINES.c.id == bindparam("line"))
        .values(allocated=_LINES.c.allocated - bindparam("units")),
        [{"line": line, "units": units} for line, units in sorted(freed.items())],
    )
    session.execute(
        update(_REQUESTS)
        .where(_REQUESTS.c.id == bindparam("rid"))
        .values(
            status=RequestStatus.open.value,
            carried_over=_REQUESTS.c.carried_over + bindparam("times"),
        ),
        [{"rid": r, "times": n} for r, n in sorted(carried.items())],
    )
    _expire(session, Allocation, allocation_ids)
    _expire(session, RequestLine, freed)
    _expire(session, NeedRequest, carried)


def _expire(session: Session, model: Any, ids: Iterable[int]) -> None:
    """Objects of this session written around the ORM above are read again when used."""
    for pk in ids:
        obj = session.identity_map.get(identity_key(model, pk))
        if obj is not None:
            session.expire(obj)
