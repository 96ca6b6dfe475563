"""Requests: creation with deduplication per ration period, scoping, urgency, cancellation."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Protocol, cast

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.orm import Session

from relieflink import clock
from relieflink.audit import service as audit
from relieflink.catalog import service as catalog
from relieflink.common import crud, files
from relieflink.common.streaming import MAX_REPORTED_ERRORS, SeenKeys, chunks
from relieflink.config import get_settings
from relieflink.errors import Conflict, FieldError, Forbidden, Invalid, RelieflinkError
from relieflink.households import service as households
from relieflink.models import (
    Allocation,
    AllocationState,
    NeedRequest,
    RequestSource,
    RequestStatus,
    Role,
    User,
)
from relieflink.needs import repository
from relieflink.needs.policy import Policy, default_policy
from relieflink.needs.schemas import BULK_COLUMNS as BULK_COLUMNS  # the file's columns, for the web
from relieflink.needs.schemas import (
    MAX_BATCH,
    BulkRequestReport,
    BulkRowReader,
    FileRow,
    MergedRow,
    RequestCreate,
    RequestFilters,
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


Lines = Sequence[tuple[int | None, int | None, int]]


class LineAsked(Protocol):
    """A line as asked for: a :class:`RequestLineIn`, or a row of a request file."""

    @property
    def kit_sku(self) -> str | None: ...
    @property
    def item_sku(self) -> str | None: ...
    @property
    def quantity(self) -> int: ...


class Asked(Protocol):
    """A request as asked for: a :class:`RequestCreate`, or a household's rows of a file."""

    @property
    def household_id(self) -> int: ...
    @property
    def lines(self) -> Sequence[LineAsked]: ...
    @property
    def note(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class _FileAsk:
    """A household's rows in one chunk of a request file (already valid rows)."""

    household_id: int
    lines: Sequence[FileRow]
    note: str | None


def _resolve_lines(
    session: Session,
    line_lists: Sequence[Sequence[LineAsked]],
    locs: Sequence[tuple[str | int, ...]],
) -> list[list[tuple[int | None, int | None, int]] | Invalid]:
    """Per list of lines, ``(kit_id, item_id, quantity)`` per line, or ``Invalid`` naming the
    unknown SKUs and prescription-only items at their path (under the list's ``loc``). The SKUs
    of all lists are looked up once."""
    every = [line for lines in line_lists for line in lines]
    kits = catalog.kit_ids_by_sku(session, [line.kit_sku for line in every if line.kit_sku])
    items = catalog.get_items_by_sku(session, [line.item_sku for line in every if line.item_sku])
    out: list[list[tuple[int | None, int | None, int]] | Invalid] = []
    for lines, loc in zip(line_lists, locs, strict=True):
        errors: list[FieldError] = []
        resolved: list[tuple[int | None, int | None, int]] = []
        for i, line in enumerate(lines):
            if line.kit_sku is not None:
                if line.kit_sku not in kits:
                    errors.append(
                        FieldError((*loc, i, "kit_sku"), f"no kit with SKU {line.kit_sku!r}")
                    )
                    continue
                resolved.append((kits[line.kit_sku], None, line.quantity))
                continue
            item = items.get(line.item_sku or "")
            if item is None:
                errors.append(
                    FieldError((*loc, i, "item_sku"), f"no item with SKU {line.item_sku!r}")
                )
            elif item.prescription_only:
                # Medicines on prescription reach a household only through a doctor's
                # prescription (create_medical_request), never by asking for them.
                errors.append(
                    FieldError(
                        (*loc, i, "item_sku"),
                        f"{line.item_sku!r} is given on prescription only: request a consultation",
                    )
                )
            else:
                resolved.append((None, item.id, line.quantity))
        out.append(
            Invalid("the request names kits or items that may not be requested", errors)
            if errors
            else resolved
        )
    return out


def _source_of(actor: User) -> RequestSource:
    if actor.role not in _SOURCE_BY_ROLE:
        raise Forbidden(f"the {actor.role} role may not ask for help on a household's behalf")
    return _SOURCE_BY_ROLE[actor.role]


def line_key(kit_id: int | None, item_id: int | None) -> tuple[int | None, int | None]:
    """What makes two request lines of a household one line: the same kit or item."""
    return (kit_id, item_id)


def merge_lines(
    lines: Sequence[tuple[int | None, int | None, int]],
) -> list[tuple[int | None, int | None, int]]:
    """One line per :func:`line_key`, in first-seen order; a repeated line keeps the larger
    quantity (asking twice is not asking for double)."""
    if len(lines) == 1:  # most requests: nothing to merge
        return list(lines)
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


@dataclass(frozen=True)
class Draft:
    """A request to store, its permissions checked and its SKUs resolved. ``merge`` False: a
    request of its own, neither merged into an open one nor taking later merges."""

    household_id: int
    lines: Lines
    source: RequestSource
    note: str | None = None
    medical_urgency: int = 0
    merge: bool = True
    consultation_id: int | None = None


@dataclass
class _Line:
    id: int | None  # None: not stored yet
    kit_id: int | None
    item_id: int | None
    quantity: int
    allocated: int = 0


@dataclass
class _Request:
    """A request as a batch leaves it: a stored open one (``id`` known) or a new one."""

    id: int | None
    lines: list[_Line]
    status: RequestStatus
    medical_urgency: int
    note: str | None = None
    merged_into: bool = False
    raised: set[int] = field(default_factory=set)  # ids of stored lines whose quantity rose


def add_requests(
    session: Session,
    drafts: Sequence[Draft],
    *,
    actor: User | None,
    today: date,
    policy: Policy | None = None,
) -> list[tuple[int, bool]]:
    """Store requests, each merged into its household's open request of the same ration period
    (one stored before, or one made earlier in ``drafts``). Returns, per draft, the request id
    and whether a merge happened.

    A line for a kit or item already asked for in the period keeps the larger quantity (asking
    twice is not asking for double); other lines are added, and the request is open again.
    Set-based whatever the number of drafts: one read of the open requests, one insert of
    requests, one of lines, one update of the merged, audit events and notices in bulk."""
    if not drafts:
        return []
    policy = policy or default_policy()
    start = period_start(today, policy)
    session.flush()  # the reads and writes below go around the ORM
    open_: dict[int, _Request] = {}
    for row in repository.open_requests_in_period(
        session, {d.household_id for d in drafts if d.merge}, start
    ):
        request = open_.get(row.household_id)
        if request is None:  # the first open request of the household takes the merges
            request = _Request(row.id, [], RequestStatus(row.status), row.medical_urgency, row.note)
            open_[row.household_id] = request
        if request.id == row.id and row.line_id is not None:
            line = _Line(row.line_id, row.kit_id, row.item_id, row.quantity, row.allocated)
            request.lines.append(line)
    stored = list(open_.values())
    made: list[tuple[Draft, _Request]] = []
    answers: list[tuple[_Request, bool]] = []
    for draft in drafts:
        request = open_.get(draft.household_id) if draft.merge else None
        if request is None:
            lines = [_Line(None, k, i, q) for k, i, q in merge_lines(draft.lines)]
            request = _Request(
                None, lines, RequestStatus.open, draft.medical_urgency, join_notes([draft.note])
            )
            made.append((draft, request))
            if draft.merge:
                open_[draft.household_id] = request
            answers.append((request, False))
            continue
        by_key = {line_key(line.kit_id, line.item_id): line for line in request.lines}
        for kit_id, item_id, quantity in merge_lines(draft.lines):
            asked = by_key.get(line_key(kit_id, item_id))
            if asked is None:
                request.lines.append(_Line(None, kit_id, item_id, quantity))
            elif quantity > asked.quantity:
                asked.quantity = quantity
                if asked.id is not None:
                    request.raised.add(asked.id)
        if any(line.allocated < line.quantity for line in request.lines):
            request.status = RequestStatus.open
        request.medical_urgency = max(request.medical_urgency, draft.medical_urgency)
        request.note = join_notes([request.note, draft.note])
        request.merged_into = True
        answers.append((request, True))
    _store(session, made, [r for r in stored if r.merged_into], actor=actor, start=start)
    _record(session, drafts, answers, actor=actor)
    return [(cast(int, request.id), merged) for request, merged in answers]


def _store(
    session: Session,
    made: list[tuple[Draft, _Request]],
    merged: list[_Request],
    *,
    actor: User | None,
    start: date,
) -> None:
    created_by = actor.id if actor else None
    ids = repository.insert_requests(
        session,
        [
            (
                d.household_id,
                d.source,
                r.status,
                start,
                r.note,
                r.medical_urgency,
                d.consultation_id,
                created_by,
            )
            for d, r in made
        ],
    )
    for (_, request), request_id in zip(made, ids, strict=True):
        request.id = request_id
    repository.insert_lines(
        session,
        [
            (r.id, line.kit_id, line.item_id, line.quantity, 0)
            for r in [r for _, r in made] + merged
            for line in r.lines
            if line.id is None
        ],
    )
    repository.update_merged(
        session,
        [
            {"id": r.id, "status": r.status, "medical_urgency": r.medical_urgency, "note": r.note}
            for r in merged
        ],
        {line.id: line.quantity for r in merged for line in r.lines if line.id in r.raised},
    )


def _record(
    session: Session,
    drafts: Sequence[Draft],
    answers: list[tuple[_Request, bool]],
    *,
    actor: User | None,
) -> None:
    """The audit events and the households' notices of the drafts just stored."""
    audit.record_many(
        session,
        actor=actor,
        events=[
            (
                "merge" if merged else "create",
                "request",
                request.id,
                {
                    "household_id": draft.household_id,
                    "source": draft.source,
                    "lines": [list(line) for line in draft.lines],
                },
            )
            for draft, (request, merged) in zip(drafts, answers, strict=True)
        ],
    )
    if notices.enabled():
        # A merge is an event of its own each time: keyed by the moment it was made.
        moment = clock.now().isoformat()
        notices.notify(
            session,
            [
                notices.Notice(
                    f"request:{request.id}:" + (f"merged:{moment}" if merged else "received"),
                    draft.household_id,
                    "request_merged" if merged else "request_received",
                    {"request": request.id},
                )
                for draft, (request, merged) in zip(drafts, answers, strict=True)
            ],
        )


@dataclass(frozen=True)
class RequestAnswer:
    """One request of a batch: its outcome, or the error that refused it (nothing of it stored)."""

    outcome: RequestOutcome | None = None
    error: RelieflinkError | None = None


def create_request(
    session: Session, data: RequestCreate, *, actor: User, today: date
) -> RequestOutcome:
    """Ask for help for a household; a repeat within the ration period is merged and says so."""
    (answer,) = _create(session, [data], actor=actor, today=today, locs=[("lines",)])
    if answer.error is not None:
        raise answer.error
    assert answer.outcome is not None
    return answer.outcome


def create_requests(
    session: Session,
    items: Sequence[RequestCreate],
    *,
    actor: User,
    today: date,
    indexes: Sequence[int] | None = None,
) -> list[RequestAnswer]:
    """Ask for help for many households at once, as :func:`create_request` would one at a time
    in this order (a second request for a household merges into the first): each answered on its
    own, a refused one (at its path ``["requests", index, ...]``; ``indexes``: each item's index
    in the caller's list, if not its place here) does not stop the others."""
    if len(items) > MAX_BATCH:
        raise Invalid(
            f"at most {MAX_BATCH} requests a batch", [FieldError(("requests",), "too many")]
        )
    locs = [("requests", index, "lines") for index in indexes or range(len(items))]
    return _create(session, items, actor=actor, today=today, locs=locs)


def _create(
    session: Session,
    items: Sequence[RequestCreate],
    *,
    actor: User,
    today: date,
    locs: Sequence[tuple[str | int, ...]],
) -> list[RequestAnswer]:
    """Check every item (:func:`_check`), store the good ones together; ``locs``: the path of
    each item's lines."""
    errors, drafts = _check(session, items, actor=actor, locs=locs)
    stored = add_requests(session, [d for _, d in drafts], actor=actor, today=today)
    requests = repository.requests_by_id(session, {request_id for request_id, _ in stored})
    outcomes = dict(zip([index for index, _ in drafts], stored, strict=True))
    return [
        RequestAnswer(error=errors[index])
        if index in errors
        else RequestAnswer(outcome=_outcome(requests[outcomes[index][0]], outcomes[index][1]))
        for index in range(len(items))
    ]


def _check(
    session: Session,
    items: Sequence[Asked],
    *,
    actor: User | None,
    locs: Sequence[tuple[str | int, ...]],
) -> tuple[dict[int, RelieflinkError], list[tuple[int, Draft]]]:
    """The rules every request passes, one at a time, in a batch or in a file: the actor's role
    may ask, the actor sees the household (all in one read), and the SKUs exist and may be asked
    for (looked up once). Returns the refused items' errors and the others' drafts, by index.
    ``actor`` None is the operator at the command line, acting for the NGO, who sees every
    household (the caller names existing ones)."""
    source = _source_of(actor) if actor is not None else RequestSource.ngo
    seen = (
        households.visibility(session, [data.household_id for data in items], actor=actor)
        if actor is not None
        else {}
    )
    resolved = _resolve_lines(session, [data.lines for data in items], locs)
    errors: dict[int, RelieflinkError] = {}
    drafts: list[tuple[int, Draft]] = []
    for index, (data, lines) in enumerate(zip(items, resolved, strict=True)):
        error = seen.get(data.household_id) or (lines if isinstance(lines, Invalid) else None)
        if error is not None:
            errors[index] = error
        elif not isinstance(lines, Invalid):
            drafts.append((index, Draft(data.household_id, lines, source, note=data.note)))
    return errors, drafts


def _outcome(request: NeedRequest, merged: bool) -> RequestOutcome:
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
    draft = Draft(
        household_id,
        [(None, item_id, quantity) for item_id, quantity in items],
        RequestSource.prescription,
        note=note,
        medical_urgency=medical_urgency,
        merge=False,
        consultation_id=consultation_id,
    )
    ((request_id, _),) = add_requests(session, [draft], actor=actor, today=today)
    return crud.require(session, NeedRequest, request_id, label="request")


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


@dataclass
class _FileImport:
    """What an import carries from one chunk of the file to the next."""

    actor: User | None
    today: date
    errors: list[FieldError] = field(default_factory=list)
    refused: int = 0  # errors found, reported or not
    rows: int = 0
    created: int = 0
    merged: int = 0
    merged_rows: list[MergedRow] = field(default_factory=list)
    households: SeenKeys = field(default_factory=SeenKeys)  # the households met so far
    asked: SeenKeys = field(default_factory=SeenKeys)  # (household, line key): its first line

    def refuse(self, errors: Sequence[FieldError]) -> None:
        self.refused += len(errors)
        self.errors += errors[: max(0, MAX_REPORTED_ERRORS - len(self.errors))]


def import_requests(
    session: Session,
    path: Path,
    *,
    actor: User | None,
    today: date,
    chunk_rows: int | None = None,
) -> BulkRequestReport:
    """A committee's (or NGO's) list of requests for many households: all rows valid, or none.

    ``actor`` None is the operator at the command line, acting for the NGO. The file streams:
    it is read, checked and written ``chunk_rows`` rows at a time (by default
    ``RELIEFLINK_IMPORT_CHUNK_ROWS``) in the caller's one transaction, each chunk one batch of
    the batch path (:func:`_check`, then :func:`add_requests`): a household's rows in a chunk are
    one request, and its rows in a later chunk merge into it. After a bad row the rest of the
    file is still checked (every error is reported, up to ``MAX_REPORTED_ERRORS``, at its line
    and column) but nothing more is written, and ``Invalid`` is raised for the caller to roll
    back.
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
    state = _FileImport(actor, today)
    reader = BulkRowReader(header)
    for chunk in chunks(rows, chunk_rows or get_settings().import_chunk_rows):
        _import_chunk(session, reader, chunk, state)
    if state.refused:
        raise Invalid(
            f"{path.name}: {state.refused} errors in the rows; no request was created",
            state.errors,
        )
    repository.refresh_statistics(session, state.rows)
    state.merged_rows.sort(key=lambda m: m.line)
    return BulkRequestReport(
        rows=state.rows,
        created=state.created,
        merged=state.merged,
        merged_rows=state.merged_rows,
    )


def _import_chunk(
    session: Session,
    reader: BulkRowReader,
    chunk: list[tuple[int, list[str]]],
    state: _FileImport,
) -> None:
    """Check one chunk of a request file and, if the file has no error so far, store it."""
    parsed, errors = reader.read(chunk)
    state.rows += len(chunk)
    found = households.ids_by_code(session, {row.household_code for _, row in parsed})
    by_household: dict[int, list[tuple[int, FileRow]]] = {}
    for line, row in parsed:
        if row.household_code not in found:
            message = f"no household with code {row.household_code!r}"
            errors.append(FieldError(("line", line, "household_code"), message))
            continue
        by_household.setdefault(found[row.household_code], []).append((line, row))
    entries_of = list(by_household.values())
    items = [
        _FileAsk(household_id, [row for _, row in entries], join_notes(r.note for _, r in entries))
        for household_id, entries in by_household.items()
    ]
    refused, drafts = _check(
        session, items, actor=state.actor, locs=[(index,) for index in range(len(items))]
    )
    for index, error in refused.items():
        entries = entries_of[index]
        if isinstance(error, Invalid):  # at (index, line of the item, column)
            errors += [
                FieldError(("line", entries[int(e.loc[1])][0], e.loc[2]), e.msg)
                for e in error.errors
            ]
        else:  # the household is not the actor's
            errors += [
                FieldError(("line", line, "household_code"), error.message) for line, _ in entries
            ]
    errors.sort(key=lambda e: (int(e.loc[1]), str(e.loc[2:])))
    state.refuse(errors)
    if state.refused:
        return  # the file is refused: check on, write nothing more
    first = _first_seen(state, [(entries_of[index], draft) for index, draft in drafts])
    stored = add_requests(session, [d for _, d in drafts], actor=state.actor, today=state.today)
    for new, (_, was_merged) in zip(first.tolist(), stored, strict=True):
        if new:  # a household's later chunks merge into the request its first one made
            state.merged += was_merged
            state.created += not was_merged


def _line_code(household_id: int, kit_id: int | None, item_id: int | None) -> int:
    """A household's :func:`line_key` as one exact 64-bit integer (ids are 32-bit: the
    household above, the kit's or item's id with a bit that says which below)."""
    return household_id << 32 | (kit_id << 1 if kit_id is not None else (item_id or 0) << 1 | 1)


def _first_seen(
    state: _FileImport, drafts: Sequence[tuple[Sequence[tuple[int, FileRow]], Draft]]
) -> NDArray[np.bool_]:
    """Record which rows of a chunk ask again for a line an earlier row of their household
    asked for (in this chunk or an earlier one: ``merged_rows``), and return, per draft (its
    rows and itself), whether its household is met here first."""
    codes: list[int] = []
    lines: list[int] = []
    for entries, draft in drafts:
        for (line, _), (kit_id, item_id, _) in zip(entries, draft.lines, strict=True):
            codes.append(_line_code(draft.household_id, kit_id, item_id))
            lines.append(line)
    keys, at = np.array(codes, dtype=np.uint64), np.array(lines, dtype=np.int64)
    before = state.asked.first_lines(keys)
    # A key's rows all belong to one household, in line order: its first row is its first.
    unique, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    into = np.where(before >= 0, before, at[first][inverse])
    again = np.flatnonzero(into != at)
    state.merged_rows += [
        MergedRow(line=line, into_line=other)
        for line, other in zip(at[again].tolist(), into[again].tolist(), strict=True)
    ]
    fresh = before[first] < 0
    state.asked.add_many(unique[fresh], at[first][fresh])
    households = np.array([draft.household_id for _, draft in drafts], dtype=np.uint64)
    new = state.households.first_lines(households) < 0
    starts = np.array([entries[0][0] for entries, _ in drafts], dtype=np.int64)
    state.households.add_many(households[new], starts[new])
    return new


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
        audit.record_many(  # one statement, not an ORM object and an INSERT each
            session,
            actor=actor,
            events=[
                ("return", "allocation", allocation_id, {"reason": reason})
                for allocation_id, (_, reason) in returning.items()
            ],
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
