from __future__ import annotations

from datetime import date, datetime
from typing import Any, Self

from pydantic import Field, model_validator

from relieflink.common.fields import Code, Id
from relieflink.common.schemas import ListQuery, ProblemRead, ReadModel, StrictModel
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
