"""Inputs and outputs of the stock ledger."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import Field, field_validator, model_validator

from relieflink.common.fields import Fen, Id, PositiveInt, Text
from relieflink.common.schemas import ListQuery, ReadModel, StrictModel
from relieflink.models import AdjustmentReason, MovementKind, TransferStatus

Reference = str


class _ItemOrKit(StrictModel):
    item_id: PositiveInt | None = None
    kit_id: PositiveInt | None = None

    @model_validator(mode="after")
    def _one_of(self) -> _ItemOrKit:
        if (self.item_id is None) == (self.kit_id is None):
            raise ValueError("give exactly one of item_id and kit_id")
        return self


class LotIn(_ItemOrKit):
    """One received lot."""

    quantity: PositiveInt
    expiry: date | None = None
    unit_value_fen: Fen = 0


class ReceiveIn(StrictModel):
    """Goods received at a warehouse, from a donor (and against a pledge, if any)."""

    warehouse_id: PositiveInt
    donor_org_id: PositiveInt | None = None
    pledge_id: PositiveInt | None = None
    note: str | None = Field(default=None, max_length=500)
    lots: list[LotIn] = Field(min_length=1, max_length=500)


class ReserveIn(_ItemOrKit):
    warehouse_id: PositiveInt
    quantity: PositiveInt
    reference: str = Field(min_length=1, max_length=200)


class ReleaseIn(StrictModel):
    reference: str = Field(min_length=1, max_length=200)
    quantity: PositiveInt | None = None


class IssueIn(StrictModel):
    reference: str = Field(min_length=1, max_length=200)
    quantity: PositiveInt | None = None
    delivery_ref: str | None = Field(default=None, max_length=200)


class HandoverIn(StrictModel):
    """Goods issued to these deliveries reached the household (handed out at a distribution
    point, or delivered outside the dispatch module); the tracking app's ``delivered`` event
    records the same for planned parcels."""

    delivery_refs: list[str] = Field(min_length=1, max_length=500)

    @field_validator("delivery_refs")
    @classmethod
    def _each_given(cls, refs: list[str]) -> list[str]:
        for ref in refs:
            if not ref or len(ref) > 200:
                raise ValueError("each delivery_ref is 1 to 200 characters")
        return refs


class HandoverRead(ReadModel):
    movements: int = Field(description="handover movements written (0: all handed over before)")


class ReturnIn(StrictModel):
    reference: str = Field(min_length=1, max_length=200)
    quantity: PositiveInt
    note: str | None = Field(default=None, max_length=500)


class AdjustIn(StrictModel):
    warehouse_id: PositiveInt
    lot_id: PositiveInt
    delta: int = Field(description="units added (count found more) or removed (negative)")
    reason: AdjustmentReason
    note: str | None = Field(default=None, max_length=500)


class TransferLineIn(StrictModel):
    item_id: PositiveInt | None = None
    kit_id: PositiveInt | None = None
    lot_id: PositiveInt | None = None
    quantity: PositiveInt

    @model_validator(mode="after")
    def _one_of(self) -> TransferLineIn:
        if sum(x is not None for x in (self.item_id, self.kit_id, self.lot_id)) != 1:
            raise ValueError("give exactly one of item_id, kit_id and lot_id")
        return self


class TransferIn(StrictModel):
    from_warehouse_id: PositiveInt
    to_warehouse_id: PositiveInt
    lines: list[TransferLineIn] = Field(min_length=1, max_length=200)
    pledge_id: PositiveInt | None = None
    program_id: PositiveInt | None = None
    note: str | None = Field(default=None, max_length=500)


class AssembleIn(StrictModel):
    warehouse_id: PositiveInt
    kit_id: PositiveInt
    quantity: PositiveInt


class MovementRead(ReadModel):
    id: int
    kind: MovementKind
    warehouse_id: int
    lot_id: int
    item_id: int | None
    kit_id: int | None
    d_on_hand: int
    d_reserved: int
    d_in_transit: int
    reference: str | None
    delivery_ref: str | None
    transfer_id: int | None
    reason: AdjustmentReason | None
    note: str | None
    actor_id: int | None
    created_at: datetime


class LotRead(ReadModel):
    id: int
    item_id: int | None
    kit_id: int | None
    expiry: date | None
    donor_org_id: int | None
    pledge_id: int | None
    receipt_id: int | None
    origin: str
    quantity: int
    unit_value_fen: int


class ReceiptRead(ReadModel):
    id: int
    warehouse_id: int
    pledge_id: int | None
    donor_org_id: int
    received_at: datetime
    lots: list[LotRead]


class TransferRead(ReadModel):
    id: int
    from_warehouse_id: int
    to_warehouse_id: int
    status: TransferStatus
    cross_border: bool
    destination_country: str | None
    pledge_id: int | None
    program_id: int | None
    created_at: datetime
    received_at: datetime | None


class MovementFilters(ListQuery):
    warehouse_id: Id | None = None
    lot_id: Id | None = None
    reference: Text | None = None


class OnHandRow(ReadModel):
    warehouse_id: int
    item_id: int | None
    kit_id: int | None
    expiry: date | None
    on_hand: int
    reserved: int
    in_transit: int
    available: int
    expired: bool


class SupplyRead(ReadModel):
    warehouse_id: int | None
    item_id: int | None
    kit_id: int | None
    available: int
    daily_consumption: int
    days_of_supply: str = Field(description="exact, as an integer or a fraction a/b")
    whole_days: int


class DonorLine(ReadModel):
    """One donor's figures for one item or kit. Quantities are exact (int or "a/b")."""

    donor_org_id: int
    donor_code: str
    item_id: int | None
    kit_id: int | None
    sku: str
    pledged: int
    pledged_value_fen: int
    received: int
    received_value_fen: int
    in_stock: str
    in_transit: str = Field(description="between warehouses (a transfer)")
    on_the_way: str = Field(description="issued from a warehouse: on a vehicle, not at the door")
    delivered: str = Field(description="handed over at the household's door")
    written_off: str
    in_stock_value_fen: str
    delivered_value_fen: str
    balanced: bool = Field(
        description="received = in stock + in transit + on the way + delivered + written off"
    )


class ShareRead(ReadModel):
    """A donor's share, named; ``quantity`` exact (``"155/393"``), ``quantity_decimal`` for a
    reader (0.394)."""

    donor_org_id: int
    name: str | None
    name_zh: str | None
    quantity: str
    quantity_decimal: float


class TraceSource(ReadModel):
    donor_org_id: int
    item_id: int | None
    kit_id: int | None
    source_lot_id: int | None
    quantity: str
    value_fen: str


class TraceRead(ReadModel):
    """The donors and quantities behind a lot or a reference (reservation/delivery)."""

    subject: str
    units: int
    donors: list[ShareRead]
    sources: list[TraceSource]
