"""Goods in and corrections: a receipt of lots from a donor (each lot with its donor source),
and adjustments (count corrections, damage and expiry write-offs)."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from relieflink import clock
from relieflink.audit import service as audit
from relieflink.catalog import service as catalog
from relieflink.errors import FieldError, Invalid, NotFound
from relieflink.models import (
    AdjustmentReason,
    Item,
    Kit,
    LotSource,
    MovementKind,
    Organization,
    Receipt,
    StockLot,
    StockMovement,
    User,
)
from relieflink.stock import repository, rules
from relieflink.stock.ledger import locked_balance, require_warehouse
from relieflink.stock.schemas import ReceiveIn


def receive_lot(
    session: Session,
    *,
    warehouse_id: int,
    quantity: int,
    donor_org_id: int,
    actor: User | None,
    item_id: int | None = None,
    kit_id: int | None = None,
    expiry: date | None = None,
    unit_value_fen: int = 0,
    pledge_id: int | None = None,
    receipt_id: int | None = None,
) -> StockLot:
    """Create a lot from received goods: the lot, its donor source, its balance and a receipt."""
    rules.one_of(item_id, kit_id)
    rules.positive(quantity)
    if unit_value_fen < 0:
        raise Invalid("unit_value_fen must not be negative")
    repository.begin_write(session)
    require_warehouse(session, warehouse_id)
    if item_id is not None:
        catalog.require_item(session, item_id)
    else:
        catalog.require_kit(session, kit_id)  # type: ignore[arg-type]
    if session.get(Organization, donor_org_id) is None:
        raise Invalid(
            "no such donor", [FieldError(("donor_org_id",), f"no organization {donor_org_id}")]
        )
    lot = StockLot(
        item_id=item_id,
        kit_id=kit_id,
        expiry=expiry,
        donor_org_id=donor_org_id,
        pledge_id=pledge_id,
        receipt_id=receipt_id,
        origin="receipt",
        quantity=quantity,
        unit_value_fen=unit_value_fen,
    )
    session.add(lot)
    session.flush()
    session.add(
        LotSource(
            lot_id=lot.id,
            donor_org_id=donor_org_id,
            item_id=item_id,
            kit_id=kit_id,
            quantity=quantity,
            value_fen=quantity * unit_value_fen,
        )
    )
    balance = locked_balance(session, warehouse_id, lot)
    row = rules.apply(
        balance,
        MovementKind.receipt,
        actor=actor,
        now=clock.now(),
        d_on_hand=quantity,
        reference=f"receipt:{receipt_id}" if receipt_id is not None else None,
    )
    repository.insert_movements(session, [row], returning=False)
    return lot


def receive(session: Session, data: ReceiveIn, *, actor: User | None) -> Receipt:
    """Receive goods from a donor at a warehouse: one receipt and a lot per line.

    Receiving against a pledge (which statuses take receipts, the pledge's donor, the
    discrepancies) is :func:`relieflink.flows.receipts.receive_against_pledge`; here the pledge
    is only recorded on the receipt and its lots."""
    repository.begin_write(session)
    require_warehouse(session, data.warehouse_id)
    if data.donor_org_id is None:
        raise Invalid(
            "name the donor or the pledge", [FieldError(("donor_org_id",), "donor or pledge")]
        )
    donor_org_id = data.donor_org_id
    receipt = Receipt(
        warehouse_id=data.warehouse_id,
        pledge_id=data.pledge_id,
        donor_org_id=donor_org_id,
        actor_id=actor.id if actor is not None else None,
        note=data.note,
    )
    session.add(receipt)
    session.flush()
    missing = [
        FieldError(("lots", i, "item_id" if line.item_id else "kit_id"), "does not exist")
        for i, line in enumerate(data.lots)
        if (line.item_id is not None and session.get(Item, line.item_id) is None)
        or (line.kit_id is not None and session.get(Kit, line.kit_id) is None)
    ]
    if missing:
        raise Invalid("the receipt names items or kits that do not exist", missing)
    for line in data.lots:
        receive_lot(
            session,
            warehouse_id=data.warehouse_id,
            quantity=line.quantity,
            donor_org_id=donor_org_id,
            actor=actor,
            item_id=line.item_id,
            kit_id=line.kit_id,
            expiry=line.expiry,
            unit_value_fen=line.unit_value_fen,
            pledge_id=data.pledge_id,
            receipt_id=receipt.id,
        )
    audit.record(session, actor=actor, action="create", entity="receipt", entity_id=receipt.id)
    return receipt


def receipt_lots(session: Session, receipt_id: int) -> list[StockLot]:
    return repository.lots_of_receipt(session, receipt_id)


# --- adjustments ------------------------------------------------------------------------------


def adjust(
    session: Session,
    *,
    warehouse_id: int,
    lot_id: int,
    delta: int,
    reason: AdjustmentReason,
    actor: User | None,
    note: str | None = None,
) -> StockMovement:
    """Correct the stock of one lot in one warehouse. Damage and expiry write-offs remove units;
    a count correction may add or remove. Reserved units cannot be written off."""
    if delta == 0:
        raise Invalid("an adjustment must change the stock", [FieldError(("delta",), "not 0")])
    reason = AdjustmentReason(reason)
    if reason != AdjustmentReason.count_correction and delta > 0:
        raise Invalid(
            f"a {reason} write-off removes units: delta must be negative",
            [FieldError(("delta",), "must be negative for damage or expiry")],
        )
    repository.begin_write(session)
    balances = repository.lock_balance_pairs(session, [(warehouse_id, lot_id)])
    if not balances:
        raise NotFound(f"lot {lot_id} has never been in warehouse {warehouse_id}")
    row = rules.apply(
        balances[0],
        MovementKind.adjustment,
        actor=actor,
        now=clock.now(),
        d_on_hand=delta,
        reason=reason,
        note=note,
    )
    (movement,) = repository.insert_movements(session, [row], returning=True)
    return movement
