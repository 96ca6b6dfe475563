"""SQL for requests, their lines and allocation runs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session

from relieflink.common import repository as common
from relieflink.models import (
    Allocation,
    AllocationState,
    Household,
    NeedRequest,
    RequestLine,
    RequestSource,
    RequestStatus,
)
from relieflink.needs.schemas import RequestFilters

OPEN_STATES = (RequestStatus.open, RequestStatus.allocated)


def open_requests_in_period(
    session: Session, household_id: int, period_start: date
) -> Sequence[NeedRequest]:
    """Requests of a household in a ration period that may still take a merge (a doctor's
    prescription is a request of its own and takes none)."""
    stmt = select(NeedRequest).where(
        NeedRequest.household_id == household_id,
        NeedRequest.period_start == period_start,
        NeedRequest.status.in_(OPEN_STATES),
        NeedRequest.source != RequestSource.prescription,
    )
    return session.scalars(stmt.order_by(NeedRequest.id)).all()


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


def close_fully_delivered(session: Session, request_ids: Any) -> list[int]:
    """Requests among ``request_ids`` (ids or a subquery) that were allocated or dispatched and
    have nothing left reserved become ``delivered``; returns their ids. The one place this rule
    lives: a single delivery and a courier's parcel event both call it."""
    reserved_left = (
        select(Allocation.id)
        .join(RequestLine, RequestLine.id == Allocation.line_id)
        .where(
            RequestLine.request_id == NeedRequest.id,
            Allocation.state == AllocationState.reserved,
        )
        .exists()
    )
    closed = session.scalars(
        update(NeedRequest)
        .where(
            NeedRequest.id.in_(request_ids),
            NeedRequest.status.in_([RequestStatus.allocated, RequestStatus.dispatched]),
            ~reserved_left,
        )
        .values(status=RequestStatus.delivered)
        .returning(NeedRequest.id)
        .execution_options(synchronize_session=False)
    )
    return sorted(closed)
