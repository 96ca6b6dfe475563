"""Inputs and outputs of programs, pledges, threads and webhooks."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import Field, model_validator

from relieflink.common.fields import Code, Fen, Id, Name, PositiveInt
from relieflink.common.schemas import ListQuery, ReadModel, StrictModel
from relieflink.models import MessageKind, PledgeStatus


class ProgramCreate(StrictModel):
    code: Code
    name: Name
    name_zh: str | None = Field(default=None, max_length=200)
    region: str = Field(min_length=1, max_length=200)
    country: str = Field(min_length=2, max_length=2, pattern=r"^[A-Z]{2}$")
    organization_id: PositiveInt
    start_date: date | None = None
    end_date: date | None = None


class ProgramRead(ReadModel):
    id: int
    code: str
    name: str
    name_zh: str | None
    region: str
    country: str
    organization_id: int
    start_date: date | None
    end_date: date | None


class PledgeLineIn(StrictModel):
    item_id: PositiveInt | None = None
    kit_id: PositiveInt | None = None
    quantity: PositiveInt
    unit_value_fen: Fen = 0

    @model_validator(mode="after")
    def _one_of(self) -> PledgeLineIn:
        if (self.item_id is None) == (self.kit_id is None):
            raise ValueError("give exactly one of item_id and kit_id")
        return self


class PledgeCreate(StrictModel):
    code: Code | None = None  # PLEDGE-<id> when not given
    donor_org_id: PositiveInt
    recipient_org_id: PositiveInt
    program_id: PositiveInt
    declared_value_fen: Fen
    expected_arrival: date | None = None
    note: str | None = Field(default=None, max_length=1000)
    lines: list[PledgeLineIn] = Field(min_length=1, max_length=500)


class PledgeLineRead(ReadModel):
    id: int
    item_id: int | None
    kit_id: int | None
    quantity: int
    unit_value_fen: int


class StatusChangeRead(ReadModel):
    from_status: PledgeStatus | None
    to_status: PledgeStatus
    actor_id: int | None
    at: datetime
    note: str | None


class PledgeRead(ReadModel):
    id: int
    code: str
    donor_org_id: int
    recipient_org_id: int
    program_id: int
    declared_value_fen: int
    expected_arrival: date | None
    status: PledgeStatus
    note: str | None
    created_at: datetime
    lines: list[PledgeLineRead] = Field(default_factory=list)
    history: list[StatusChangeRead] = Field(default_factory=list)


class PledgeFilters(ListQuery):
    program_id: Id | None = None
    donor_org_id: Id | None = None
    status: PledgeStatus | None = None


class StatusChangeIn(StrictModel):
    status: PledgeStatus
    note: str | None = Field(default=None, max_length=500)


class ReceiptSettleIn(StrictModel):
    final: bool = Field(
        default=False, description="the last delivery: shortfalls become discrepancies"
    )


class DiscrepancyRead(ReadModel):
    id: int
    pledge_id: int
    receipt_id: int | None
    item_id: int | None
    kit_id: int | None
    pledged: int
    received: int
    note: str | None
    created_at: datetime


class MessageIn(StrictModel):
    body: str = Field(min_length=1, max_length=5000)
    transfer_id: PositiveInt | None = None
    receipt_id: PositiveInt | None = None
    discrepancy_id: PositiveInt | None = None


class MessageRead(ReadModel):
    id: int
    thread: str
    kind: MessageKind
    author_id: int | None
    body: str
    transfer_id: int | None
    receipt_id: int | None
    discrepancy_id: int | None
    created_at: datetime


class UnreadRead(ReadModel):
    thread: str
    unread: int


class WebhookIn(StrictModel):
    url: str = Field(min_length=8, max_length=500, pattern=r"^https?://")
    secret: str = Field(min_length=16, max_length=200)
    active: bool = True


class WebhookRead(ReadModel):
    id: int
    organization_id: int
    url: str
    active: bool
