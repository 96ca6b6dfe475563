from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, NamedTuple, Self

from pydantic import Field, model_validator

from relieflink.common.fields import NO_CONTROL_CHARACTERS, Code, Id
from relieflink.common.schemas import ListQuery, ProblemRead, ReadModel, StrictModel, validate_as
from relieflink.errors import FieldError, Invalid
from relieflink.models import RequestSource, RequestStatus


class RequestLineIn(StrictModel):
    """One line: a kit or an item by SKU, and how many."""

    kit_sku: Code | None = None
    item_sku: Code | None = None
    quantity: int = Field(gt=0, le=100)

    @model_validator(mode="after")
    def _kit_xor_item(self) -> Self:
        if (self.kit_sku is None) == (self.item_sku is None):
            raise ValueError("give exactly one of kit_sku or item_sku")
        return self


class RequestCreate(StrictModel):
    household_id: int
    lines: list[RequestLineIn] = Field(min_length=1, max_length=20)
    note: str | None = Field(default=None, max_length=500)


class RequestLineRead(ReadModel):
    id: int
    kit_id: int | None
    item_id: int | None
    quantity: int
    allocated: int


class RequestRead(ReadModel):
    id: int
    household_id: int
    source: RequestSource
    status: RequestStatus
    period_start: date
    medical_urgency: int
    carried_over: int
    note: str | None
    consultation_id: int | None
    created_at: datetime
    lines: list[RequestLineRead]


class RequestOutcome(ReadModel):
    """The request as stored, and whether the new one was merged into an open one."""

    request: RequestRead
    merged: bool
    message: str


MAX_BATCH = 500


class RequestBatchIn(StrictModel):
    """Requests for many households at once (a committee's round, a resident app's queue). Each
    item is a ``RequestCreate`` validated on its own: an item that does not match the schema is
    answered 422 and the others are still applied."""

    requests: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_BATCH)


class RequestAnswerRead(ReadModel):
    """One request of a batch: ``status`` 201 (created) or 200 (merged) with the ``outcome``, or
    the status and ``problem`` the single endpoint would have answered."""

    index: int
    status: int
    outcome: RequestOutcome | None = None
    problem: ProblemRead | None = None


class RequestBatchRead(ReadModel):
    created: int
    merged: int
    refused: int
    results: list[RequestAnswerRead]


class RequestFilters(ListQuery):
    status: RequestStatus | None = None
    household_id: Id | None = None
    community_id: Id | None = None


class UrgencyUpdate(StrictModel):
    medical_urgency: int = Field(ge=0, le=3)


class BulkRequestRow(StrictModel):
    """A row of a committee's request file: ``household_code,kit_sku,item_sku,quantity,note``."""

    household_code: Code
    kit_sku: Code | None = None
    item_sku: Code | None = None
    quantity: int = Field(gt=0, le=100)
    note: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _kit_xor_item(self) -> Self:
        if (self.kit_sku is None) == (self.item_sku is None):
            raise ValueError("give exactly one of kit_sku or item_sku")
        return self


BULK_COLUMNS = list(BulkRequestRow.model_fields)


class FileRow(NamedTuple):
    """A row of a request file as :class:`BulkRequestRow` accepts it (a tuple: a file of
    millions of rows makes no model for each)."""

    household_code: str
    kit_sku: str | None
    item_sku: str | None
    quantity: int
    note: str | None


def _constraint(name: str, attr: str) -> Any:
    """One constraint of a :class:`BulkRequestRow` field, e.g. ``quantity``'s ``le``."""
    (value,) = [
        getattr(m, attr) for m in BulkRequestRow.model_fields[name].metadata if hasattr(m, attr)
    ]
    return value


class BulkRowReader:
    """The rows of a request file under its header, checked as :class:`BulkRequestRow` checks
    them. A row plainly valid (every code within its pattern, a quantity written plainly within
    its bounds, a note short enough and free of control characters; the limits read from the
    model's fields) is taken in plain Python; any other row goes through the model itself, so
    what is accepted and every error's message and column are the model's. Cells are stripped
    and empty cells are absent, as the model is given them."""

    def __init__(self, header: Sequence[str]) -> None:
        self.header = list(header)
        # Repeated columns (the last non-empty cell counts): every row through the model.
        self.positions = [self.header.index(c) if c in self.header else -1 for c in BULK_COLUMNS]
        required = (self.positions[0], self.positions[3])  # household_code, quantity
        self.fast = len(set(self.header)) == len(self.header) and min(required) >= 0
        low, high = _constraint("quantity", "gt") + 1, _constraint("quantity", "le")
        self.quantities = {str(n): n for n in range(low, high + 1)}
        self.code = re.compile(_constraint("household_code", "pattern"))
        self.shortest: int = _constraint("household_code", "min_length")
        self.longest: int = _constraint("household_code", "max_length")
        self.note_max: int = _constraint("note", "max_length")
        self.clean = re.compile(NO_CONTROL_CHARACTERS).fullmatch

    def read(
        self, chunk: Sequence[tuple[int, list[str]]]
    ) -> tuple[list[tuple[int, FileRow]], list[FieldError]]:
        """The valid rows of ``chunk`` (line, row) and the errors of the others (at
        ``("line", line, column)``), in the order of the chunk."""
        parsed: list[tuple[int, FileRow]] = []
        errors: list[FieldError] = []
        width = len(self.header)
        at_code, at_kit, at_item, at_quantity, at_note = self.positions
        quantities, clean, note_max = self.quantities, self.clean, self.note_max
        pattern, shortest, longest = self.code.fullmatch, self.shortest, self.longest

        def code_ok(s: str) -> bool:
            return shortest <= len(s) <= longest and pattern(s) is not None

        for line, cells in chunk:
            if self.fast and len(cells) >= width:
                code = cells[at_code].strip()
                kit = cells[at_kit].strip() if at_kit >= 0 else ""
                item = cells[at_item].strip() if at_item >= 0 else ""
                quantity = quantities.get(cells[at_quantity].strip())
                note = cells[at_note].strip() if at_note >= 0 else ""
                if (
                    quantity is not None
                    and code_ok(code)
                    and (code_ok(kit) if kit else code_ok(item))
                    and not (kit and item)
                    and (not note or (len(note) <= note_max and clean(note) is not None))
                ):
                    row = FileRow(code, kit or None, item or None, quantity, note or None)
                    parsed.append((line, row))
                    continue
            values = {h: c.strip() for h, c in zip(self.header, cells, strict=False) if c.strip()}
            try:
                model = validate_as(BulkRequestRow, values)
            except Invalid as exc:
                errors += [FieldError(("line", line, *e.loc), e.msg) for e in exc.errors]
                continue
            fields = (model.kit_sku, model.item_sku, model.quantity, model.note)
            parsed.append((line, FileRow(model.household_code, *fields)))
        return parsed, errors


class MergedRow(ReadModel):
    """A row of a request file asking again for what an earlier row of the same household
    asked for: merged into that row's line (the larger quantity, both notes)."""

    line: int
    into_line: int


class BulkRequestReport(ReadModel):
    rows: int
    created: int
    merged: int  # requests added to the household's request already open this period
    merged_rows: list[MergedRow] = Field(default_factory=list)


class AllocationRunCreate(StrictModel):
    dry_run: bool = False


class CapRead(ReadModel):
    """Stock a warehouse held back because its daily outbound capacity was reached."""

    warehouse_code: str
    sku: str
    held_back_units: int
    reason: str


class AllocationRunRead(ReadModel):
    id: int | None
    dry_run: bool = False
    policy_version: str
    lines: int
    units_requested: int
    units_allocated: int
    runtime_s: float
    summary: dict[str, Any]
    caps: list[CapRead] = Field(default_factory=list)


class AllocationRead(ReadModel):
    id: int
    run_id: int
    line_id: int
    household_id: int
    warehouse_id: int
    kit_id: int | None
    item_id: int | None
    quantity: int
    priority_class: int
    score: int
    reasons: str


class AllocationFilters(ListQuery):
    household_id: Id | None = None
