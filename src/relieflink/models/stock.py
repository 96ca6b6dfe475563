"""The stock ledger: lots, append-only movements, derived balances, transfers and lot sources.

Every change of stock is a :class:`StockMovement` (never updated or deleted; corrections are new
movements). Each movement carries the deltas it applies to one (warehouse, lot) balance row:
``d_on_hand``, ``d_reserved``, ``d_in_transit``; :class:`StockBalance` holds their running sums,
updated in the same transaction. :class:`LotSource` keeps the donors behind every lot (a kit lot
lists each donor's contributed component quantities), so traceability survives repacking.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import Mapped, mapped_column

from relieflink import clock
from relieflink.db import Base


class MovementKind(StrEnum):
    receipt = "receipt"
    transfer_out = "transfer_out"
    transfer_in_transit = "transfer_in_transit"
    transfer_in = "transfer_in"
    reservation = "reservation"
    release = "release"
    issue = "issue"
    return_ = "return"
    adjustment = "adjustment"
    assembly_consume = "assembly_consume"
    assembly_produce = "assembly_produce"
    # Units issued under (reference, delivery) reached the household's door. Changes no
    # balance (the stock left the warehouse when it was issued, at loading); it is what
    # reports count as delivered, apart from what is on the way.
    handover = "handover"


class AdjustmentReason(StrEnum):
    damage = "damage"
    expiry = "expiry"
    count_correction = "count_correction"


class TransferStatus(StrEnum):
    in_transit = "in_transit"
    received = "received"


class StockLot(Base):
    """A batch of one item (or one kit) with one expiry; it keeps its id across warehouses."""

    __tablename__ = "stock_lots"
    __table_args__ = (
        CheckConstraint("(item_id IS NULL) <> (kit_id IS NULL)", name="item_xor_kit"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_value_fen >= 0", name="value_nonneg"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"), index=True)
    kit_id: Mapped[int | None] = mapped_column(ForeignKey("kits.id"), index=True)
    expiry: Mapped[date | None]
    # Receipt lots have one donor and (usually) a pledge; assembled kit lots have neither here:
    # their donors are in lot_sources.
    donor_org_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"), index=True)
    pledge_id: Mapped[int | None] = mapped_column(ForeignKey("pledges.id"), index=True)
    receipt_id: Mapped[int | None] = mapped_column(ForeignKey("receipts.id"), index=True)
    origin: Mapped[str] = mapped_column(String(20))  # "receipt" or "assembly"
    quantity: Mapped[int]  # as received or assembled
    # Whole fen per unit (an assembled kit's exact value is in lot_sources.value_fen).
    unit_value_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class LotSource(Base):
    """What one donor put into a lot: ``quantity`` units of ``item_id`` worth ``value_fen``.

    A receipt lot has one row (its donor, its own item or kit, the whole quantity). An assembled
    kit lot has one row per (donor, component item) with the component units that donor's lots
    contributed to the whole kit lot; a donor's share of any part of the lot is exact integer
    arithmetic over these rows.
    """

    __tablename__ = "lot_sources"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("value_fen >= 0", name="value_nonneg"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("stock_lots.id"), index=True)
    donor_org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"))
    kit_id: Mapped[int | None] = mapped_column(ForeignKey("kits.id"))
    source_lot_id: Mapped[int | None] = mapped_column(ForeignKey("stock_lots.id"))
    quantity: Mapped[int]
    value_fen: Mapped[int] = mapped_column(BigInteger, default=0)


class StockTransfer(Base):
    """A shipment between two warehouses; its stock is in transit until received."""

    __tablename__ = "stock_transfers"

    id: Mapped[int] = mapped_column(primary_key=True)
    from_warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id"), index=True)
    to_warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id"), index=True)
    status: Mapped[TransferStatus] = mapped_column(String(20), default=TransferStatus.in_transit)
    cross_border: Mapped[bool] = mapped_column(default=False)
    destination_country: Mapped[str | None] = mapped_column(String(2))
    pledge_id: Mapped[int | None] = mapped_column(ForeignKey("pledges.id"))
    # The relief program the shipment serves (its gift declaration and IATI disbursements).
    program_id: Mapped[int | None] = mapped_column(ForeignKey("programs.id"), index=True)
    note: Mapped[str | None] = mapped_column(String(500))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    received_at: Mapped[datetime | None]


class StockMovement(Base):
    """One append-only change to one (warehouse, lot) balance. Never updated, never deleted."""

    __tablename__ = "stock_movements"
    __table_args__ = (
        CheckConstraint("kind <> 'adjustment' OR reason IS NOT NULL", name="adjustment_has_reason"),
        Index("ix_stock_movements_warehouse_id_lot_id", "warehouse_id", "lot_id"),
        Index("ix_stock_movements_warehouse_id_item_id", "warehouse_id", "item_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[MovementKind] = mapped_column(String(24), index=True)
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id"))
    lot_id: Mapped[int] = mapped_column(ForeignKey("stock_lots.id"), index=True)
    # Copied from the lot so reports need no join.
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"))
    kit_id: Mapped[int | None] = mapped_column(ForeignKey("kits.id"))
    d_on_hand: Mapped[int] = mapped_column(default=0)
    d_reserved: Mapped[int] = mapped_column(default=0)
    d_in_transit: Mapped[int] = mapped_column(default=0)
    reference: Mapped[str | None] = mapped_column(String(200), index=True)
    delivery_ref: Mapped[str | None] = mapped_column(String(200), index=True)
    transfer_id: Mapped[int | None] = mapped_column(ForeignKey("stock_transfers.id"), index=True)
    reason: Mapped[AdjustmentReason | None] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(String(500))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class StockBalance(Base):
    """The running sums of the movements of one lot in one warehouse (derived; same transaction).

    Invariants enforced by the database too: on hand and reserved never negative, reserved never
    above on hand.
    """

    __tablename__ = "stock_balances"
    __table_args__ = (
        UniqueConstraint("warehouse_id", "lot_id"),
        CheckConstraint("on_hand >= 0", name="on_hand_nonneg"),
        CheckConstraint("reserved >= 0", name="reserved_nonneg"),
        CheckConstraint("reserved <= on_hand", name="reserved_within_on_hand"),
        CheckConstraint("in_transit >= 0", name="in_transit_nonneg"),
        Index("ix_stock_balances_warehouse_id_item_id", "warehouse_id", "item_id", "expiry"),
        Index("ix_stock_balances_warehouse_id_kit_id", "warehouse_id", "kit_id", "expiry"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id"))
    lot_id: Mapped[int] = mapped_column(ForeignKey("stock_lots.id"), index=True)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"), index=True)
    kit_id: Mapped[int | None] = mapped_column(ForeignKey("kits.id"), index=True)
    expiry: Mapped[date | None]
    on_hand: Mapped[int] = mapped_column(default=0)
    reserved: Mapped[int] = mapped_column(default=0)
    in_transit: Mapped[int] = mapped_column(default=0)


def _refuse_change(_mapper: object, _connection: object, target: StockMovement) -> None:
    raise ValueError(
        f"stock movement {target.id} is append-only: record a correcting movement instead"
    )


event.listen(StockMovement, "before_update", _refuse_change)
event.listen(StockMovement, "before_delete", _refuse_change)
