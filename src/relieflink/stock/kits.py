"""Kit assembly: unreserved, unexpired component lots (first expiry first) packed into one
kit lot that keeps every contributing donor."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from relieflink import clock
from relieflink.audit import service as audit
from relieflink.catalog import service as catalog
from relieflink.errors import Conflict, FieldError, Invalid
from relieflink.models import LotSource, MovementKind, StockBalance, StockLot, User
from relieflink.stock import ledger, repository, rules


def assemble_kits(
    session: Session,
    *,
    warehouse_id: int,
    kit_id: int,
    quantity: int,
    actor: User | None,
    as_of: date | None = None,
) -> StockLot:
    """Build ``quantity`` kits from unreserved, unexpired component lots (FEFO) into one kit lot
    that keeps every contributing donor (exact component quantities and values per donor) and
    expires with its earliest component."""
    rules.positive(quantity)
    today = rules.today(as_of)
    repository.begin_write(session)
    ledger.require_warehouse(session, warehouse_id)
    kit = catalog.require_kit(session, kit_id)
    if not kit.lines:
        raise Invalid(f"kit {kit.sku} has no lines")
    picks: list[tuple[StockBalance, int]] = []
    errors: list[FieldError] = []
    for line in sorted(kit.lines, key=lambda kl: kl.item_id):  # fixed lock order
        need = line.quantity * quantity
        balances = repository.lock_balances_of(
            session, warehouse_id=warehouse_id, item_id=line.item_id, kit_id=None
        )
        usable = rules.free_fefo(balances, today)
        free = sum(b.on_hand - b.reserved for b in usable)
        if free < need:
            errors.append(
                FieldError(("components", line.item.sku), f"need {need}, {free} available")
            )
            continue
        picks.extend(rules.pick(((b, b.on_hand - b.reserved) for b in usable), need))
    if errors:
        raise Conflict(f"not enough components to assemble {quantity} × {kit.sku}", errors)
    sources = repository.sources_of(session, [b.lot_id for b, _ in picks])
    lots = repository.lots_by_id(session, [b.lot_id for b, _ in picks])
    expiries = [e for b, _ in picks if (e := lots[b.lot_id].expiry) is not None]
    kit_lot = StockLot(
        kit_id=kit_id,
        expiry=min(expiries) if expiries else None,
        origin="assembly",
        quantity=quantity,
        unit_value_fen=0,
    )
    session.add(kit_lot)
    session.flush()
    total_value = 0
    reference = f"assembly:lot:{kit_lot.id}"
    now = clock.now()
    rows: list[dict[str, object]] = []
    for balance, take in picks:
        lot = lots[balance.lot_id]
        for donor_org_id, part, value in _split(sources[lot.id], take, lot):
            session.add(
                LotSource(
                    lot_id=kit_lot.id,
                    donor_org_id=donor_org_id,
                    item_id=lot.item_id,
                    source_lot_id=lot.id,
                    quantity=part,
                    value_fen=value,
                )
            )
            total_value += value
        rows.append(
            rules.apply(
                balance,
                MovementKind.assembly_consume,
                actor=actor,
                now=now,
                d_on_hand=-take,
                reference=reference,
            )
        )
    kit_lot.unit_value_fen = total_value // quantity
    produced = ledger.locked_balance(session, warehouse_id, kit_lot)
    rows.append(
        rules.apply(
            produced,
            MovementKind.assembly_produce,
            actor=actor,
            now=now,
            d_on_hand=quantity,
            reference=reference,
        )
    )
    repository.insert_movements(session, rows, returning=False)
    audit.record(
        session,
        actor=actor,
        action="assemble",
        entity="stock_lot",
        entity_id=kit_lot.id,
        detail={"kit": kit.sku, "quantity": quantity, "warehouse_id": warehouse_id},
    )
    return kit_lot


def _split(sources: list[LotSource], take: int, lot: StockLot) -> list[tuple[int, int, int]]:
    """Who gave the ``take`` units drawn from an item lot: (donor, units, value in fen).

    Receipt lots have exactly one source, so the split is exact; value is units × unit value.
    """
    if len(sources) != 1:
        raise Conflict(f"lot {lot.id} has {len(sources)} sources; only receipt lots are packed")
    return [(sources[0].donor_org_id, take, take * lot.unit_value_fen)]
