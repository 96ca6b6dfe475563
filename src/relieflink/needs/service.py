"""Requests: creation with deduplication per ration period, scoping, urgency, cancellation."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from relieflink import clock
from relieflink.audit import service as audit
from relieflink.catalog import service as catalog
from relieflink.common import crud, files
from relieflink.common.schemas import validate_as
from relieflink.errors import Conflict, FieldError, Forbidden, Invalid
from relieflink.households import service as households
from relieflink.models import (
    Allocation,
    AllocationState,
    NeedRequest,
    RequestLine,
    RequestSource,
    RequestStatus,
    Role,
    User,
)
from relieflink.needs import repository
from relieflink.needs.policy import Policy, default_policy
from relieflink.needs.schemas import (
    BulkRequestReport,
    BulkRequestRow,
    MergedRow,
    RequestCreate,
    RequestFilters,
    RequestLineIn,
    RequestOutcome,
    RequestRead,
)
from relieflink.notices import service as notices
from relieflink.users import access

# Ration periods are counted from a Monday, so a 7-day period runs Monday to Sunday.
PERIOD_EPOCH = date(2020, 1, 6)
_SOURCE_BY_ROLE = {
    Role.resident: RequestSource.household,
    Role.committee: RequestSource.committee,
    Role.coordinator: RequestSource.ngo,
    Role.admin: RequestSource.ngo,
}


def period_start(today: date, policy: Policy) -> date:
    """The first day of the ration period that contains ``today``."""
    offset = (today - PERIOD_EPOCH).days % policy.period_days
    return today - timedelta(days=offset)


def _resolve_lines(
    session: Session, lines: Sequence[RequestLineIn], *, loc: tuple[str | int, ...] = ("lines",)
) -> list[tuple[int | None, int | None, int]]:
    """``(kit_id, item_id, quantity)`` per line; unknown SKUs and prescription-only items are
    ``Invalid`` at their path."""
    kits = catalog.kit_ids_by_sku(session, [line.kit_sku for line in lines if line.kit_sku])
    items = catalog.get_items_by_sku(session, [line.item_sku for line in lines if line.item_sku])
    errors: list[FieldError] = []
    resolved: list[tuple[int | None, int | None, int]] = []
    for i, line in enumerate(lines):
        if line.kit_sku is not None:
            if line.kit_sku not in kits:
                errors.append(FieldError((*loc, i, "kit_sku"), f"no kit with SKU {line.kit_sku!r}"))
                continue
            resolved.append((kits[line.kit_sku], None, line.quantity))
        else:
            item = items.get(line.item_sku or "")
            if item is None:
                errors.append(
                    FieldError((*loc, i, "item_sku"), f"no item with SKU {line.item_sku!r}")
                )
                continue
            if item.prescription_only:
                # Medicines on prescription reach a household only through a doctor's
                # prescription (create_medical_request), never by asking for them.
                errors.append(
                    FieldError(
                        (*loc, i, "item_sku"),
                        f"{line.item_sku!r} is given on prescription only: request a consultation",
                    )
                )
                continue
            resolved.append((None, item.id, line.quantity))
    if errors:
        raise Invalid("the request names kits or items that may not be requested", errors)
    return resolved


def _ensure_may_request_for(session: Session, actor: User, household_id: int) -> RequestSource:
    if actor.role not in _SOURCE_BY_ROLE:
        raise Forbidden(f"the {actor.role} role may not ask for help on a household's behalf")
    households.require_visible(session, household_id, actor=actor)
    return _SOURCE_BY_ROLE[actor.role]


def line_key(kit_id: int | None, item_id: int | None) -> tuple[int | None, int | None]:
    """What makes two request lines of a household one line: the same kit or item."""
    return (kit_id, item_id)


def merge_lines(
    lines: Sequence[tuple[int | None, int | None, int]],
) -> list[tuple[int | None, int | None, int]]:
    """One line per :func:`line_key`, in first-seen order; a repeated line keeps the larger
    quantity (asking twice is not asking for double)."""
    out: dict[tuple[int | None, int | None], int] = {}
    for kit_id, item_id, quantity in lines:
        key = line_key(kit_id, item_id)
        out[key] = max(out.get(key, 0), quantity)
    return [(kit_id, item_id, quantity) for (kit_id, item_id), quantity in out.items()]


def join_notes(notes: Iterable[str | None]) -> str | None:
    """Distinct notes in order, joined with "; " (None when there is none)."""
    kept: list[str] = []
    for note in notes:
        for part in (note or "").split("; "):
            if part and part not in kept:
                kept.append(part)
    return "; ".join(kept) or None


def add_request(
    session: Session,
    *,
    household_id: int,
    lines: Sequence[tuple[int | None, int | None, int]],
    source: RequestSource,
    actor: User | None,
    today: date,
    note: str | None = None,
    medical_urgency: int = 0,
    policy: Policy | None = None,
    merge: bool = True,
    consultation_id: int | None = None,
) -> tuple[NeedRequest, bool]:
    """Store a request, merging it into the household's open request of the same ration period.

    Returns the request and whether a merge happened. A line for a kit or item already asked for
    in the period keeps the larger quantity (asking twice is not asking for double); other lines
    are added. Callers have checked permissions and resolved SKUs.
    """
    policy = policy or default_policy()
    start = period_start(today, policy)
    lines = merge_lines(lines)
    existing = repository.open_requests_in_period(session, household_id, start) if merge else []
    if existing:
        request = existing[0]
        by_key = {line_key(line.kit_id, line.item_id): line for line in request.lines}
        for kit_id, item_id, quantity in lines:
            line = by_key.get(line_key(kit_id, item_id))
            if line is None:
                request.lines.append(
                    RequestLine(kit_id=kit_id, item_id=item_id, quantity=quantity, allocated=0)
                )
            elif quantity > line.quantity:
                line.quantity = quantity
        if any(line.allocated < line.quantity for line in request.lines):
            request.status = RequestStatus.open
        request.medical_urgency = max(request.medical_urgency, medical_urgency)
        request.note = join_notes([request.note, note])
        merged = True
    else:
        request = NeedRequest(
            household_id=household_id,
            source=source,
            period_start=start,
            note=note,
            medical_urgency=medical_urgency,
            consultation_id=consultation_id,
            created_by_id=actor.id if actor else None,
            lines=[RequestLine(kit_id=k, item_id=i, quantity=q, allocated=0) for k, i, q in lines],
        )
        session.add(request)
        merged = False
    session.flush()
    if notices.enabled():
        event = "request_merged" if merged else "request_received"
        # A merge is an event of its own each time: keyed by the moment it was made.
        key = f"request:{request.id}:" + (
            f"merged:{clock.now().isoformat()}" if merged else "received"
        )
        notices.notify(session, [notices.Notice(key, household_id, event, {"request": request.id})])
    audit.record(
        session,
        actor=actor,
        action="merge" if merged else "create",
        entity="request",
        entity_id=request.id,
        detail={
            "household_id": household_id,
            "source": source,
            "lines": [list(line) for line in lines],
        },
    )
    return request, merged


def create_request(
    session: Session, data: RequestCreate, *, actor: User, today: date
) -> RequestOutcome:
    """Ask for help for a household; a repeat within the ration period is merged and says so."""
    source = _ensure_may_request_for(session, actor, data.household_id)
    lines = _resolve_lines(session, data.lines)
    request, merged = add_request(
        session,
        household_id=data.household_id,
        lines=lines,
        source=source,
        actor=actor,
        today=today,
        note=data.note,
    )
    message = (
        f"merged into request {request.id}, already open for this household in the ration period "
        f"starting {request.period_start.isoformat()}"
        if merged
        else f"request {request.id} created"
    )
    return RequestOutcome(
        request=RequestRead.model_validate(request), merged=merged, message=message
    )


def create_medical_request(
    session: Session,
    *,
    household_id: int,
    items: Sequence[tuple[int, int]],
    actor: User | None,
    today: date,
    note: str,
    consultation_id: int | None = None,
    medical_urgency: int = 2,
) -> NeedRequest:
    """A prescription or a chronic refill becomes a request of its own (never merged into the
    household's food request), in the medical class, linked to its consultation."""
    request, _ = add_request(
        session,
        household_id=household_id,
        lines=[(None, item_id, quantity) for item_id, quantity in items],
        source=RequestSource.prescription,
        actor=actor,
        today=today,
        note=note,
        medical_urgency=medical_urgency,
        merge=False,
        consultation_id=consultation_id,
    )
    return request


def require_request(session: Session, request_id: int, *, actor: User) -> NeedRequest:
    """One request the actor may see (through its household's scoping)."""
    request = crud.require(session, NeedRequest, request_id, label="request")
    households.require_visible(session, request.household_id, actor=actor)
    return request


def list_requests(
    session: Session, filters: RequestFilters, *, actor: User, offset: int = 0, limit: int = 50
) -> tuple[Sequence[NeedRequest], int]:
    """One page of the requests of households the actor may see."""
    stmt = access.scope_by_household(repository.filtered(filters), NeedRequest.household_id, actor)
    return repository.page(session, stmt, offset=offset, limit=limit)


def set_medical_urgency(
    session: Session, request_id: int, urgency: int, *, actor: User
) -> NeedRequest:
    """A doctor's word on how urgent a request is (0-3); it raises the request's priority."""
    access.ensure_role(actor, {Role.doctor, Role.admin, Role.coordinator})
    request = crud.require(session, NeedRequest, request_id, label="request")
    old, request.medical_urgency = request.medical_urgency, urgency
    audit.record(
        session,
        actor=actor,
        action="update",
        entity="request",
        entity_id=request.id,
        detail={"medical_urgency": [old, urgency]},
    )
    return request


def cancel_request(session: Session, request_id: int, *, actor: User) -> NeedRequest:
    """Withdraw a request that is not yet on its way."""
    request = require_request(session, request_id, actor=actor)
    if request.status not in repository.OPEN_STATES:
        raise Conflict(f"request {request_id} is {request.status} and can no longer be cancelled")
    if any(line.allocated for line in request.lines):
        raise Conflict(f"request {request_id} has reserved stock; release its allocation first")
    request.status = RequestStatus.cancelled
    audit.record(session, actor=actor, action="cancel", entity="request", entity_id=request.id)
    return request


BULK_COLUMNS = list(BulkRequestRow.model_fields)


def import_requests(
    session: Session, path: Path, *, actor: User | None, today: date
) -> BulkRequestReport:
    """A committee's (or NGO's) list of requests for many households: all rows valid, or none.

    ``actor`` None is the operator at the command line, acting for the NGO.
    """
    if actor is not None and actor.role not in (Role.committee, Role.coordinator, Role.admin):
        raise Forbidden(f"the {actor.role} role may not import requests")
    header, rows = files.read_rows(path)
    unknown = [h for h in header if h not in BULK_COLUMNS]
    missing = [c for c in ("household_code", "quantity") if c not in header]
    if unknown or missing:
        raise Invalid(
            f"{path.name}: the header row does not match the request format {BULK_COLUMNS}",
            [FieldError(("line", 1), f"unknown columns {unknown}, missing columns {missing}")],
        )
    errors: list[FieldError] = []
    parsed: list[tuple[int, BulkRequestRow]] = []
    for line, cells in rows:
        values = {h: c.strip() for h, c in zip(header, cells, strict=False) if c.strip()}
        try:
            parsed.append((line, validate_as(BulkRequestRow, values)))
        except Invalid as exc:
            errors += [FieldError(("line", line, *e.loc), e.msg) for e in exc.errors]
    codes = {row.household_code for _, row in parsed}
    found = households.ids_by_code(session, codes)
    by_household: dict[int, list[tuple[int, BulkRequestRow]]] = {}
    for line, row in parsed:
        if row.household_code not in found:
            errors.append(
                FieldError(
                    ("line", line, "household_code"),
                    f"no household with code {row.household_code!r}",
                )
            )
            continue
        if actor is not None:
            try:
                _ensure_may_request_for(session, actor, found[row.household_code])
            except Forbidden as exc:
                errors.append(FieldError(("line", line, "household_code"), exc.message))
                continue
        by_household.setdefault(found[row.household_code], []).append((line, row))
    resolved: dict[int, list[tuple[int | None, int | None, int]]] = {}
    for household_id, entries in by_household.items():
        try:
            resolved[household_id] = _resolve_lines(
                session,
                [
                    RequestLineIn(kit_sku=r.kit_sku, item_sku=r.item_sku, quantity=r.quantity)
                    for _, r in entries
                ],
            )
        except Invalid as exc:
            errors += [
                FieldError(("line", entries[int(e.loc[1])][0], e.loc[2]), e.msg) for e in exc.errors
            ]
    if errors:
        errors.sort(key=lambda e: (int(e.loc[1]), str(e.loc[2:])))
        raise Invalid(f"{path.name}: some rows are invalid; no request was created", errors)
    source = _SOURCE_BY_ROLE[actor.role] if actor is not None else RequestSource.ngo
    created = merged = 0
    merged_rows: list[MergedRow] = []
    for household_id, lines in resolved.items():
        entries = by_household[household_id]
        first: dict[tuple[int | None, int | None], int] = {}
        for (line, _), (kit_id, item_id, _) in zip(entries, lines, strict=True):
            into = first.setdefault(line_key(kit_id, item_id), line)
            if into != line:
                merged_rows.append(MergedRow(line=line, into_line=into))
        _, was_merged = add_request(
            session,
            household_id=household_id,
            lines=lines,
            source=source,
            actor=actor,
            today=today,
            note=join_notes(row.note for _, row in entries),
        )
        merged += was_merged
        created += not was_merged
    merged_rows.sort(key=lambda m: m.line)
    return BulkRequestReport(
        rows=len(parsed), created=created, merged=merged, merged_rows=merged_rows
    )


def mark_dispatched(session: Session, *, line_ids: Iterable[int]) -> int:
    """Requests whose allocated lines went onto routes: ``allocated`` → ``dispatched`` (a
    request still partly open stays open and may get more stock). Returns how many moved."""
    return repository.mark_dispatched(session, repository.requests_of_lines(session, line_ids))


def deliver_allocations(
    session: Session, deliveries: Mapping[int, tuple[Sequence[int], Sequence[int]]]
) -> dict[int, list[int]]:
    """Deliveries that reached their households (their stock was issued when they left):
    ``deliveries`` maps a delivery (a parcel) to its allocations and the requests they serve,
    in the order they were made. The allocations become ``delivered``; each request with
    nothing left reserved becomes ``delivered``. Returns the requests closed, per delivery: a
    request that several deliveries carry is credited to the last one (it closed with its last
    reserved allocation). Three statements, however many deliveries."""
    if not deliveries:
        return {}
    repository.deliver_allocations(
        session, sorted({a for allocations, _ in deliveries.values() for a in allocations})
    )
    closed = set(
        repository.close_fully_delivered(
            session, sorted({r for _, requests in deliveries.values() for r in requests})
        )
    )
    last: dict[int, int] = {}
    for key, (_, requests) in deliveries.items():  # later deliveries overwrite earlier ones
        for request in requests:
            if request in closed:
                last[request] = key
    out: dict[int, list[int]] = {key: [] for key in deliveries}
    for request, key in sorted(last.items()):
        out[key].append(request)
    return out


def return_allocations(
    session: Session, failures: Sequence[tuple[Sequence[int], str]], *, actor: User | None
) -> list[list[int]]:
    """Failed deliveries, each (the allocations it carried, the reason); the stock is back
    (the caller moved it). An allocation already returned is left alone, one neither reserved
    nor returned is a ``Conflict``; the others become ``returned`` and leave their lines, and
    each request is reopened and carried over (a raised priority) once per failure that
    returned any of it. Returns, per failure, its requests. Four statements, however many."""
    ids = sorted({a for allocations, _ in failures for a in allocations})
    if not ids:
        return [[] for _ in failures]
    rows = repository.allocations_with_requests(session, ids)
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
            returning[allocation_id] = (allocation, reason)
            carries.add(request_id)
        carried.update(carries)
        requests_of.append(list(requests))
    if returning:
        freed: Counter[int] = Counter()
        for allocation, _ in returning.values():
            freed[allocation.line_id] += allocation.quantity
        for allocation_id, (_, reason) in returning.items():
            audit.record(
                session,
                actor=actor,
                action="return",
                entity="allocation",
                entity_id=allocation_id,
                detail={"reason": reason},
            )
        repository.return_allocations(session, sorted(returning), freed=freed, carried=carried)
    return requests_of


@dataclass(frozen=True)
class DeliveryState:
    """Where a request stands: its status, the units delivered so far and when the last came."""

    status: RequestStatus
    units_delivered: int
    delivered_at: datetime | None


def delivery_state(session: Session, request_id: int) -> DeliveryState:
    """The delivery of one request, for the records that point at it (a prescription)."""
    request = crud.require(session, NeedRequest, request_id, label="request")
    units, last = repository.delivered_totals(session, request_id)
    return DeliveryState(status=request.status, units_delivered=units, delivered_at=last)
