"""Transfers between warehouses: shipping (first expiry first, never expired or reserved
stock), receiving a shipment, and the gift declaration of a cross-border shipment."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from fractions import Fraction

from sqlalchemy.orm import Session

from relieflink import clock
from relieflink.audit import service as audit
from relieflink.catalog import service as catalog
from relieflink.errors import Conflict, FieldError, Invalid, NotFound
from relieflink.models import (
    MovementKind,
    Organization,
    StockBalance,
    StockLot,
    StockTransfer,
    TransferStatus,
    User,
    Warehouse,
)
from relieflink.stock import ledger, repository, rules, trace


@dataclass(frozen=True)
class TransferLine:
    quantity: int
    item_id: int | None = None
    kit_id: int | None = None
    lot_id: int | None = None


def _country(session: Session, warehouse: Warehouse) -> str | None:
    owner = session.get(Organization, warehouse.owner_id)
    return owner.country if owner is not None else None


def transfer(
    session: Session,
    *,
    from_warehouse_id: int,
    to_warehouse_id: int,
    lines: Sequence[TransferLine],
    actor: User | None,
    pledge_id: int | None = None,
    note: str | None = None,
    as_of: date | None = None,
) -> StockTransfer:
    """Ship unreserved, unexpired stock to another warehouse (FEFO, or named lots). The stock
    leaves the source at once and is in transit at the destination until received. A transfer
    to a warehouse owned in another country is cross-border (see :func:`gift_declaration`)."""
    if from_warehouse_id == to_warehouse_id:
        raise Invalid("a transfer needs two different warehouses")
    if not lines:
        raise Invalid("a transfer needs at least one line")
    today = rules.today(as_of)
    repository.begin_write(session)
    source = ledger.require_warehouse(session, from_warehouse_id)
    dest = ledger.require_warehouse(session, to_warehouse_id)
    src_country, dst_country = _country(session, source), _country(session, dest)
    shipment = StockTransfer(
        from_warehouse_id=from_warehouse_id,
        to_warehouse_id=to_warehouse_id,
        status=TransferStatus.in_transit,
        cross_border=src_country != dst_country,
        destination_country=dst_country,
        pledge_id=pledge_id,
        note=note,
        created_by_id=actor.id if actor is not None else None,
    )
    session.add(shipment)
    session.flush()
    errors: list[FieldError] = []
    picks: list[tuple[StockBalance, int]] = []
    for i, line in enumerate(lines):
        rules.positive(line.quantity, f"lines.{i}.quantity")
        if line.lot_id is not None:
            candidates = repository.lock_balance_pairs(session, [(from_warehouse_id, line.lot_id)])
        else:
            rules.one_of(line.item_id, line.kit_id)
            candidates = repository.lock_balances_of(
                session, warehouse_id=from_warehouse_id, item_id=line.item_id, kit_id=line.kit_id
            )
        already: dict[int, int] = defaultdict(int)
        for b, q in picks:
            already[b.id] += q
        usable = [
            (b, b.on_hand - b.reserved - already[b.id])
            for b in candidates  # in FEFO order
            if not rules.expired(b.expiry, today)
        ]
        free = sum(units for _, units in usable if units > 0)
        if free < line.quantity:
            errors.append(FieldError(("lines", i, "quantity"), f"only {free} available"))
            continue
        picks.extend(rules.pick(usable, line.quantity))
    if errors:
        raise Conflict("not enough unreserved stock to ship", errors)
    lots = repository.lots_by_id(session, [b.lot_id for b, _ in picks])
    now = clock.now()
    rows: list[dict[str, object]] = []
    for balance, quantity in picks:
        rows.append(
            rules.apply(
                balance,
                MovementKind.transfer_out,
                actor=actor,
                now=now,
                d_on_hand=-quantity,
                transfer_id=shipment.id,
            )
        )
        inbound = ledger.locked_balance(session, to_warehouse_id, lots[balance.lot_id])
        rows.append(
            rules.apply(
                inbound,
                MovementKind.transfer_in_transit,
                actor=actor,
                now=now,
                d_in_transit=quantity,
                transfer_id=shipment.id,
            )
        )
    repository.insert_movements(session, rows, returning=False)
    audit.record(
        session,
        actor=actor,
        action="create",
        entity="stock_transfer",
        entity_id=shipment.id,
        detail={"from": from_warehouse_id, "to": to_warehouse_id},
    )
    return shipment


def require_transfer(session: Session, transfer_id: int) -> StockTransfer:
    shipment = session.get(StockTransfer, transfer_id)
    if shipment is None:
        raise NotFound(f"no transfer with id {transfer_id}")
    return shipment


def receive_transfer(session: Session, *, transfer_id: int, actor: User | None) -> StockTransfer:
    """Receive a shipment in full at its destination (receiving it twice is a no-op)."""
    repository.begin_write(session)
    shipment = repository.lock_transfer(session, transfer_id)
    if shipment is None:
        raise NotFound(f"no transfer with id {transfer_id}")
    if shipment.status == TransferStatus.received:
        return shipment
    lines = repository.transfer_lines(session, transfer_id)
    balances = {
        b.lot_id: b
        for b in repository.lock_balance_pairs(
            session, [(shipment.to_warehouse_id, m.lot_id) for m in lines]
        )
    }
    now = clock.now()
    rows = [
        rules.apply(
            balances[line.lot_id],
            MovementKind.transfer_in,
            actor=actor,
            now=now,
            d_in_transit=-line.d_in_transit,
            d_on_hand=line.d_in_transit,
            transfer_id=transfer_id,
        )
        for line in lines
    ]
    repository.insert_movements(session, rows, returning=False)
    shipment.status = TransferStatus.received
    shipment.received_at = clock.now()
    session.flush()
    return shipment


def gift_declaration(session: Session, *, transfer_id: int) -> dict[str, object]:
    """The gift declaration of a (cross-border) shipment: items, quantities, values, donors."""
    shipment = require_transfer(session, transfer_id)
    source = ledger.require_warehouse(session, shipment.from_warehouse_id)
    dest = ledger.require_warehouse(session, shipment.to_warehouse_id)
    lines = repository.transfer_lines(session, transfer_id)
    lots = repository.lots_by_id(session, [m.lot_id for m in lines])
    rows = []
    total = Fraction(0)
    for m in lines:
        lot = lots[m.lot_id]
        shares = trace.lot_shares(session, [lot.id])[lot.id]
        sku, name = _sku_name(session, lot)
        value = _lot_value(session, lot) * m.d_in_transit / lot.quantity
        total += value
        rows.append(
            {
                "sku": sku,
                "description": name,
                "lot_id": lot.id,
                "expiry": lot.expiry.isoformat() if lot.expiry else None,
                "quantity": m.d_in_transit,
                "value_fen": trace.exact(value),
                "donors": [
                    {
                        "organization": _org_name(session, d),
                        "share_of_units": trace.exact(f * m.d_in_transit),
                    }
                    for d, f in sorted(shares.items())
                ],
            }
        )
    return {
        "transfer_id": shipment.id,
        "date": shipment.created_at.date().isoformat(),
        "cross_border": shipment.cross_border,
        "from": {"warehouse": source.name, "country": _country(session, source)},
        "to": {"warehouse": dest.name, "country": shipment.destination_country},
        "declaration": "Humanitarian gift: no commercial value is charged to the consignee.",
        "lines": rows,
        "total_value_fen": trace.exact(total),
    }


def render_gift_declaration(declaration: dict[str, object]) -> str:
    """A printable plain-text rendering of :func:`gift_declaration`."""
    d = declaration
    src, dst = d["from"], d["to"]
    assert isinstance(src, dict) and isinstance(dst, dict)
    out = [
        "GIFT DECLARATION / 捐赠物资申报单",
        f"Shipment {d['transfer_id']} dated {d['date']}",
        f"From: {src['warehouse']} ({src['country']})   To: {dst['warehouse']} ({dst['country']})",
        str(d["declaration"]),
        "",
        f"{'SKU':<20} {'Description':<30} {'Lot':>6} {'Expiry':<10} {'Qty':>8} {'Value CNY':>14}",
    ]
    lines = d["lines"]
    assert isinstance(lines, list)
    for row in lines:
        value = Fraction(row["value_fen"]) / 100
        out.append(
            f"{row['sku']:<20} {row['description'][:30]:<30} {row['lot_id']:>6} "
            f"{row['expiry'] or '-':<10} {row['quantity']:>8} {float(value):>14,.2f}"
        )
        donors = "; ".join(f"{x['organization']} ({x['share_of_units']})" for x in row["donors"])
        out.append(f"    donors: {donors}")
    total = Fraction(str(d["total_value_fen"])) / 100
    out += ["", f"Total declared value: CNY {float(total):,.2f}", "", "Signed: ____________"]
    return "\n".join(out)


def _org_name(session: Session, org_id: int) -> str:
    org = session.get(Organization, org_id)
    return org.name if org is not None else f"organization {org_id}"


def _sku_name(session: Session, lot: StockLot) -> tuple[str, str]:
    if lot.item_id is not None:
        item = catalog.require_item(session, lot.item_id)
        return item.sku, item.name
    kit = catalog.require_kit(session, lot.kit_id)  # type: ignore[arg-type]
    return kit.sku, kit.name


def _lot_value(session: Session, lot: StockLot) -> Fraction:
    sources = repository.sources_of(session, [lot.id])[lot.id]
    return Fraction(sum(s.value_fen for s in sources))


def list_transfers(
    session: Session,
    *,
    warehouse_id: int | None = None,
    status: TransferStatus | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[StockTransfer], int]:
    """Shipments leaving or reaching a warehouse (all when None), newest first."""
    return repository.list_transfers(
        session, warehouse_id=warehouse_id, status=status, offset=offset, limit=limit
    )
