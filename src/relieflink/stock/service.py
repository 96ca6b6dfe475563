"""The stock ledger: receipts, transfers, reservations, issues, returns, adjustments, kit assembly.

Every change is an append-only :class:`StockMovement` carrying the deltas it applies to one
(warehouse, lot) :class:`StockBalance`, which is updated in the same transaction after the balance
rows are locked (``SELECT ... FOR UPDATE`` on PostgreSQL; ``BEGIN IMMEDIATE`` on SQLite, see
:func:`relieflink.stock.repository.begin_write`). Picking is first-expiry-first-out over lots that
have not expired; expired lots are never reserved or issued. Nothing here commits.

Reservations carry a free ``reference`` ("allocation:42:line:7"): reserving again with the same
reference is a no-op, and release/issue/return act on what that reference holds.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction
from typing import Literal

from sqlalchemy.orm import Session

from relieflink import clock
from relieflink.audit import service as audit
from relieflink.catalog import service as catalog
from relieflink.errors import Conflict, FieldError, Invalid, NotFound
from relieflink.models import (
    AdjustmentReason,
    Item,
    Kit,
    LotSource,
    MovementKind,
    Organization,
    Pledge,
    PledgeStatus,
    Receipt,
    StockBalance,
    StockLot,
    StockMovement,
    StockTransfer,
    TransferStatus,
    User,
    Warehouse,
)
from relieflink.stock import repository
from relieflink.stock.schemas import ReceiveIn

__all__ = [
    "DonorFigures",
    "OnHand",
    "Trace",
    "TransferLine",
    "adjust",
    "assemble_kits",
    "available",
    "check_ledger",
    "days_of_supply",
    "donor_report",
    "donor_shares",
    "exact",
    "expiring",
    "gift_declaration",
    "issue",
    "list_movements",
    "list_transfers",
    "org_codes",
    "rebuild_balances",
    "receipt_lots",
    "receive",
    "receive_lot",
    "receive_transfer",
    "release",
    "render_gift_declaration",
    "require_lot",
    "require_receipt",
    "require_transfer",
    "reserve",
    "resolve_org",
    "resolve_sku",
    "resolve_warehouse",
    "return_stock",
    "sku_names",
    "stock_matrix",
    "stock_on_hand",
    "today",
    "trace_lot",
    "trace_reference",
    "transfer",
    "warehouse_codes",
    "warehouse_lots",
]


def exact(value: Fraction | int) -> str:
    """An exact quantity as text: ``"12"`` or ``"7/3"``."""
    f = Fraction(value)
    return str(f.numerator) if f.denominator == 1 else f"{f.numerator}/{f.denominator}"


def _today(as_of: date | None) -> date:
    """``as_of``, or today where the operation runs (the configured time zone)."""
    return as_of if as_of is not None else clock.today()


def _expired(expiry: date | None, today: date) -> bool:
    return expiry is not None and expiry < today


def _one_of(item_id: int | None, kit_id: int | None) -> None:
    if (item_id is None) == (kit_id is None):
        raise Invalid(
            "give exactly one of item_id and kit_id",
            [FieldError(("item_id",), "exactly one of item_id and kit_id")],
        )


def _positive(quantity: int, field: str = "quantity") -> None:
    if quantity <= 0:
        raise Invalid(f"{field} must be positive", [FieldError((field,), "must be > 0")])


def _reference(reference: str) -> None:
    if not reference or len(reference) > 200:
        raise Invalid(
            "a reference of 1 to 200 characters is required",
            [FieldError(("reference",), "1 to 200 characters")],
        )


def _what(item_id: int | None, kit_id: int | None) -> str:
    return f"item {item_id}" if item_id is not None else f"kit {kit_id}"


def _move(
    session: Session,
    balance: StockBalance,
    kind: MovementKind,
    *,
    actor: User | None,
    d_on_hand: int = 0,
    d_reserved: int = 0,
    d_in_transit: int = 0,
    reference: str | None = None,
    delivery_ref: str | None = None,
    transfer_id: int | None = None,
    reason: AdjustmentReason | None = None,
    note: str | None = None,
) -> StockMovement:
    """Append one movement and apply it to its (locked) balance row, checking the invariants."""
    on_hand = balance.on_hand + d_on_hand
    reserved = balance.reserved + d_reserved
    in_transit = balance.in_transit + d_in_transit
    if on_hand < 0 or reserved < 0 or in_transit < 0 or reserved > on_hand:
        raise Conflict(
            f"{kind} of lot {balance.lot_id} in warehouse {balance.warehouse_id} would leave "
            f"on hand {on_hand}, reserved {reserved}, in transit {in_transit}"
        )
    balance.on_hand, balance.reserved, balance.in_transit = on_hand, reserved, in_transit
    movement = StockMovement(
        kind=kind,
        warehouse_id=balance.warehouse_id,
        lot_id=balance.lot_id,
        item_id=balance.item_id,
        kit_id=balance.kit_id,
        d_on_hand=d_on_hand,
        d_reserved=d_reserved,
        d_in_transit=d_in_transit,
        reference=reference,
        delivery_ref=delivery_ref,
        transfer_id=transfer_id,
        reason=reason,
        note=note,
        actor_id=actor.id if actor is not None else None,
    )
    session.add(movement)
    return movement


def _locked_balance(session: Session, warehouse_id: int, lot: StockLot) -> StockBalance:
    repository.ensure_balance(session, warehouse_id=warehouse_id, lot=lot)
    (balance,) = repository.lock_balance_pairs(session, [(warehouse_id, lot.id)])
    return balance


def _require_warehouse(session: Session, warehouse_id: int) -> Warehouse:
    warehouse = session.get(Warehouse, warehouse_id)
    if warehouse is None:
        raise NotFound(f"no warehouse with id {warehouse_id}")
    return warehouse


# --- receipts ---------------------------------------------------------------------------------


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
    _one_of(item_id, kit_id)
    _positive(quantity)
    if unit_value_fen < 0:
        raise Invalid("unit_value_fen must not be negative")
    repository.begin_write(session)
    _require_warehouse(session, warehouse_id)
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
    balance = _locked_balance(session, warehouse_id, lot)
    _move(
        session,
        balance,
        MovementKind.receipt,
        actor=actor,
        d_on_hand=quantity,
        reference=f"receipt:{receipt_id}" if receipt_id is not None else None,
    )
    session.flush()
    return lot


def receive(session: Session, data: ReceiveIn, *, actor: User | None) -> Receipt:
    """Receive goods at a warehouse: one receipt and a lot per line. Against a pledge the donor
    is the pledge's donor; then ``donations.service.settle_receipt`` records discrepancies."""
    repository.begin_write(session)
    _require_warehouse(session, data.warehouse_id)
    donor_org_id = data.donor_org_id
    if data.pledge_id is not None:
        pledge = session.get(Pledge, data.pledge_id)
        if pledge is None:
            raise NotFound(f"no pledge with id {data.pledge_id}")
        if pledge.status in (PledgeStatus.cancelled, PledgeStatus.closed, PledgeStatus.received):
            raise Conflict(f"a {pledge.status} pledge takes no more receipts")
        if donor_org_id is not None and donor_org_id != pledge.donor_org_id:
            raise Invalid(
                "the donor is not the pledge's donor",
                [
                    FieldError(
                        ("donor_org_id",), f"pledge {pledge.id} is from {pledge.donor_org_id}"
                    )
                ],
            )
        donor_org_id = pledge.donor_org_id
    if donor_org_id is None:
        raise Invalid(
            "name the donor or the pledge", [FieldError(("donor_org_id",), "donor or pledge")]
        )
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


# --- reservations, releases, issues, returns --------------------------------------------------


def reserve(
    session: Session,
    *,
    warehouse_id: int,
    item_id: int | None = None,
    quantity: int,
    reference: str,
    actor: User | None,
    kit_id: int | None = None,
    as_of: date | None = None,
) -> list[StockMovement]:
    """Reserve ``quantity`` of an item (or kit) in a warehouse, first expiry first, for
    ``reference``. Reserving again with the same reference returns the first reservation.

    Raises ``Conflict`` (409) when fewer units are available (on hand − reserved, not expired).
    """
    _one_of(item_id, kit_id)
    _positive(quantity)
    _reference(reference)
    today = _today(as_of)
    repository.begin_write(session)
    # Only the rows that can give units are locked (one statement, plain rows): the API's
    # busiest write is three statements. See ``lock_free_balances`` for the locking.
    free_rows = repository.lock_free_balances(
        session, warehouse_id=warehouse_id, item_id=item_id, kit_id=kit_id, today=today
    )
    free = sum(units for _, _, units in free_rows)
    if free < quantity:
        if repository.has_reservation(session, reference):  # a retry after the last units
            return _same_reservation(session, reference, warehouse_id, item_id, kit_id, quantity)
        raise Conflict(
            f"only {free} of {_what(item_id, kit_id)} available in warehouse {warehouse_id}; "
            f"{quantity} asked",
            [FieldError(("quantity",), f"at most {free} available")],
        )
    rows: list[dict[str, object]] = []
    left = quantity
    for balance_id, lot_id, units in free_rows:
        take = min(left, units)
        # Each UPDATE also checks, after the lock, that the reference reserved nothing yet.
        if not repository.add_reserved(session, balance_id, take, reference=reference):
            if not rows and repository.has_reservation(session, reference):
                return _same_reservation(
                    session, reference, warehouse_id, item_id, kit_id, quantity
                )
            # Units gone from a locked row cannot happen; the reference reserved elsewhere in
            # between (another warehouse or item) is a client bug: refuse, the caller rolls back.
            raise Conflict(
                f"lot {lot_id} in warehouse {warehouse_id} changed, or reference {reference!r} "
                "was reserved meanwhile; try again"
            )
        rows.append(
            {
                "kind": MovementKind.reservation,
                "warehouse_id": warehouse_id,
                "lot_id": lot_id,
                "item_id": item_id,
                "kit_id": kit_id,
                "d_reserved": take,
                "reference": reference,
                "actor_id": actor.id if actor is not None else None,
            }
        )
        left -= take
        if left == 0:
            break
    return repository.append_movements(session, rows)


def _same_reservation(
    session: Session,
    reference: str,
    warehouse_id: int,
    item_id: int | None,
    kit_id: int | None,
    quantity: int,
) -> list[StockMovement]:
    """The first reservation of ``reference``, if it is the same ask; ``Conflict`` if not."""
    existing = repository.movements_by_reference(session, reference, [MovementKind.reservation])
    same = all(
        m.warehouse_id == warehouse_id and m.item_id == item_id and m.kit_id == kit_id
        for m in existing
    )
    if not same or sum(m.d_reserved for m in existing) != quantity:
        raise Conflict(f"reference {reference!r} already reserved other stock; use a new reference")
    return existing


def _outstanding_reserved(session: Session, reference: str) -> dict[tuple[int, int], int]:
    """Reserved and not yet released or issued, per (warehouse, lot), for ``reference``."""
    held = repository.outstanding_by_reference(session, reference, "d_reserved")
    return {k: v for k, v in held.items() if v > 0}


def _lock_for_reference(session: Session, reference: str) -> dict[tuple[int, int], StockBalance]:
    balances = repository.lock_balances_of_reference(session, reference)
    return {(b.warehouse_id, b.lot_id): b for b in balances}


def release(
    session: Session,
    *,
    reference: str,
    quantity: int | None = None,
    actor: User | None,
) -> list[StockMovement]:
    """Release what ``reference`` holds reserved (all of it, or ``quantity`` units; the latest
    expiries first). Releasing a reference that holds nothing is a no-op."""
    _reference(reference)
    if quantity is not None:
        _positive(quantity)
    repository.begin_write(session)
    balances = _lock_for_reference(session, reference)
    held = _outstanding_reserved(session, reference)  # again, under the lock
    total = sum(held.values())
    wanted = total if quantity is None else quantity
    if wanted > total:
        raise Conflict(
            f"reference {reference!r} holds {total} reserved; cannot release {wanted}",
            [FieldError(("quantity",), f"at most {total}")],
        )
    order = sorted(held, key=lambda k: _fefo_key(balances[k]), reverse=True)
    movements: list[StockMovement] = []
    left = wanted
    for key in order:
        if left == 0:
            break
        take = min(left, held[key])
        movements.append(
            _move(
                session,
                balances[key],
                MovementKind.release,
                actor=actor,
                d_reserved=-take,
                reference=reference,
            )
        )
        left -= take
    session.flush()
    return movements


def _fefo_key(balance: StockBalance) -> tuple[bool, date, int]:
    return (balance.expiry is None, balance.expiry or date.max, balance.lot_id)


def issue(
    session: Session,
    *,
    reference: str,
    quantity: int | None = None,
    delivery_ref: str | None = None,
    actor: User | None,
    as_of: date | None = None,
) -> list[StockMovement]:
    """Issue (hand out to a delivery) stock reserved under ``reference``, first expiry first.

    Expired lots are never issued: if the reserved units that are still good do not cover the
    quantity, ``Conflict`` asks to release and reserve again. Issuing again with the same
    ``delivery_ref`` returns the first issue.
    """
    _reference(reference)
    if quantity is not None:
        _positive(quantity)
    today = _today(as_of)
    repository.begin_write(session)
    balances = _lock_for_reference(session, reference)
    if delivery_ref is not None:
        done = [
            m
            for m in repository.movements_by_reference(session, reference, [MovementKind.issue])
            if m.delivery_ref == delivery_ref
        ]
        if done:
            return done
    held = _outstanding_reserved(session, reference)
    good = {k: v for k, v in held.items() if not _expired(balances[k].expiry, today)}
    total, usable = sum(held.values()), sum(good.values())
    wanted = total if quantity is None else quantity
    if wanted == 0:
        return []
    if wanted > usable:
        expired = total - usable
        detail = f" ({expired} in expired lots: release and reserve again)" if expired else ""
        raise Conflict(
            f"reference {reference!r} holds {usable} issuable units; cannot issue {wanted}"
            + detail,
            [FieldError(("quantity",), f"at most {usable}")],
        )
    movements: list[StockMovement] = []
    left = wanted
    for key in sorted(good, key=lambda k: _fefo_key(balances[k])):
        if left == 0:
            break
        take = min(left, good[key])
        movements.append(
            _move(
                session,
                balances[key],
                MovementKind.issue,
                actor=actor,
                d_on_hand=-take,
                d_reserved=-take,
                reference=reference,
                delivery_ref=delivery_ref,
            )
        )
        left -= take
    session.flush()
    return movements


def return_stock(
    session: Session,
    *,
    reference: str,
    quantity: int,
    actor: User | None,
    delivery_ref: str | None = None,
    note: str | None = None,
) -> list[StockMovement]:
    """Put back ``quantity`` units issued under ``reference`` (not delivered) into the lots and
    warehouses they were issued from, latest expiry first."""
    _reference(reference)
    _positive(quantity)
    repository.begin_write(session)
    balances = _lock_for_reference(session, reference)
    out = {k: v for k, v in repository.issued_by_reference(session, reference).items() if v > 0}
    total = sum(out.values())
    if quantity > total:
        raise Conflict(
            f"reference {reference!r} has {total} issued units out; cannot return {quantity}",
            [FieldError(("quantity",), f"at most {total}")],
        )
    movements: list[StockMovement] = []
    left = quantity
    for key in sorted(out, key=lambda k: _fefo_key(balances[k]), reverse=True):
        if left == 0:
            break
        take = min(left, out[key])
        movements.append(
            _move(
                session,
                balances[key],
                MovementKind.return_,
                actor=actor,
                d_on_hand=take,
                reference=reference,
                delivery_ref=delivery_ref,
                note=note,
            )
        )
        left -= take
    session.flush()
    return movements


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
    movement = _move(
        session,
        balances[0],
        MovementKind.adjustment,
        actor=actor,
        d_on_hand=delta,
        reason=reason,
        note=note,
    )
    session.flush()
    return movement


# --- transfers --------------------------------------------------------------------------------


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
    today = _today(as_of)
    repository.begin_write(session)
    source = _require_warehouse(session, from_warehouse_id)
    dest = _require_warehouse(session, to_warehouse_id)
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
        _positive(line.quantity, f"lines.{i}.quantity")
        if line.lot_id is not None:
            candidates = repository.lock_balance_pairs(session, [(from_warehouse_id, line.lot_id)])
        else:
            _one_of(line.item_id, line.kit_id)
            candidates = repository.lock_balances_of(
                session, warehouse_id=from_warehouse_id, item_id=line.item_id, kit_id=line.kit_id
            )
        already: dict[int, int] = defaultdict(int)
        for b, q in picks:
            already[b.id] += q
        usable = [
            b
            for b in candidates
            if not _expired(b.expiry, today) and b.on_hand - b.reserved - already[b.id] > 0
        ]
        free = sum(b.on_hand - b.reserved - already[b.id] for b in usable)
        if free < line.quantity:
            errors.append(FieldError(("lines", i, "quantity"), f"only {free} available"))
            continue
        left = line.quantity
        for b in usable:
            take = min(left, b.on_hand - b.reserved - already[b.id])
            picks.append((b, take))
            left -= take
            if left == 0:
                break
    if errors:
        raise Conflict("not enough unreserved stock to ship", errors)
    lots = repository.lots_by_id(session, [b.lot_id for b, _ in picks])
    for balance, quantity in picks:
        _move(
            session,
            balance,
            MovementKind.transfer_out,
            actor=actor,
            d_on_hand=-quantity,
            transfer_id=shipment.id,
        )
        inbound = _locked_balance(session, to_warehouse_id, lots[balance.lot_id])
        _move(
            session,
            inbound,
            MovementKind.transfer_in_transit,
            actor=actor,
            d_in_transit=quantity,
            transfer_id=shipment.id,
        )
    session.flush()
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
    for line in lines:
        _move(
            session,
            balances[line.lot_id],
            MovementKind.transfer_in,
            actor=actor,
            d_in_transit=-line.d_in_transit,
            d_on_hand=line.d_in_transit,
            transfer_id=transfer_id,
        )
    shipment.status = TransferStatus.received
    shipment.received_at = clock.now()
    session.flush()
    return shipment


def gift_declaration(session: Session, *, transfer_id: int) -> dict[str, object]:
    """The gift declaration of a (cross-border) shipment: items, quantities, values, donors."""
    shipment = require_transfer(session, transfer_id)
    source = _require_warehouse(session, shipment.from_warehouse_id)
    dest = _require_warehouse(session, shipment.to_warehouse_id)
    lines = repository.transfer_lines(session, transfer_id)
    lots = repository.lots_by_id(session, [m.lot_id for m in lines])
    rows = []
    total = Fraction(0)
    for m in lines:
        lot = lots[m.lot_id]
        shares = _lot_shares(session, [lot.id])[lot.id]
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
                "value_fen": exact(value),
                "donors": [
                    {
                        "organization": _org_name(session, d),
                        "share_of_units": exact(f * m.d_in_transit),
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
        "total_value_fen": exact(total),
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


# --- kit assembly -----------------------------------------------------------------------------


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
    _positive(quantity)
    today = _today(as_of)
    repository.begin_write(session)
    _require_warehouse(session, warehouse_id)
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
        usable = [b for b in balances if not _expired(b.expiry, today) and b.on_hand > b.reserved]
        free = sum(b.on_hand - b.reserved for b in usable)
        if free < need:
            errors.append(
                FieldError(("components", line.item.sku), f"need {need}, {free} available")
            )
            continue
        for b in usable:
            take = min(need, b.on_hand - b.reserved)
            picks.append((b, take))
            need -= take
            if need == 0:
                break
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
        _move(
            session,
            balance,
            MovementKind.assembly_consume,
            actor=actor,
            d_on_hand=-take,
            reference=reference,
        )
    kit_lot.unit_value_fen = total_value // quantity
    produced = _locked_balance(session, warehouse_id, kit_lot)
    _move(
        session,
        produced,
        MovementKind.assembly_produce,
        actor=actor,
        d_on_hand=quantity,
        reference=reference,
    )
    session.flush()
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


# --- availability (for allocation) ------------------------------------------------------------


def available(
    session: Session,
    *,
    warehouse_id: int | None,
    item_id: int | None = None,
    kit_id: int | None = None,
    as_of: date | None = None,
) -> int:
    """Units that can still be reserved: on hand − reserved over non-expired lots (all
    warehouses when ``warehouse_id`` is None)."""
    _one_of(item_id, kit_id)
    rows = repository.available_rows(
        session, today=_today(as_of), warehouse_id=warehouse_id, item_id=item_id, kit_id=kit_id
    )
    return sum(q for *_, q in rows)


def stock_matrix(
    session: Session, *, kind: Literal["item", "kit"] = "item", as_of: date | None = None
) -> dict[tuple[int, int], int]:
    """Available units per (warehouse, item) — or per (warehouse, kit) with ``kind="kit"``."""
    rows = repository.available_rows(session, today=_today(as_of), kits=kind == "kit")
    out: dict[tuple[int, int], int] = {}
    for w, item_id, kit_id, q in rows:
        key = item_id if kind == "item" else kit_id
        assert key is not None
        if q > 0:
            out[(w, key)] = out.get((w, key), 0) + q
    return out


# --- traceability -----------------------------------------------------------------------------


def _lot_shares(session: Session, lot_ids: Iterable[int]) -> dict[int, dict[int, Fraction]]:
    """Each lot's donor shares (fractions summing to 1): by value, or by units if valueless."""
    out: dict[int, dict[int, Fraction]] = {}
    for lot_id, sources in repository.sources_of(session, lot_ids).items():
        total_value = sum(s.value_fen for s in sources)
        weights: dict[int, int] = defaultdict(int)
        for s in sources:
            weights[s.donor_org_id] += s.value_fen if total_value > 0 else s.quantity
        total = sum(weights.values())
        out[lot_id] = {d: Fraction(w, total) for d, w in weights.items()} if total else {}
    return out


def _reference_units(session: Session, reference: str) -> dict[int, int]:
    """Per lot: units ``reference`` holds or delivered (reserved − released − returned)."""
    per_lot: dict[int, int] = defaultdict(int)
    for m in repository.movements_by_reference(session, reference):
        if m.kind == MovementKind.reservation or m.kind == MovementKind.release:
            per_lot[m.lot_id] += m.d_reserved
        elif m.kind == MovementKind.return_:
            per_lot[m.lot_id] -= m.d_on_hand
    return {k: v for k, v in per_lot.items() if v}


def donor_shares(session: Session, *, reference: str) -> dict[int, Fraction | int]:
    """The donors behind what ``reference`` reserved or issued (net of releases and returns):
    donor organization id → units of the reserved item or kit (exact; ints when whole)."""
    units = _reference_units(session, reference)
    shares = _lot_shares(session, units)
    out: dict[int, Fraction] = defaultdict(Fraction)
    for lot_id, q in units.items():
        for donor, fraction in shares[lot_id].items():
            out[donor] += fraction * q
    return {d: (int(v) if v.denominator == 1 else v) for d, v in sorted(out.items())}


@dataclass(frozen=True)
class Trace:
    subject: str
    units: int
    donors: dict[int, Fraction]
    # (donor, item, kit, source lot, component quantity, value in fen), exact.
    sources: list[tuple[int, int | None, int | None, int | None, Fraction, Fraction]]


def _trace(session: Session, subject: str, units: dict[int, int]) -> Trace:
    lots = repository.lots_by_id(session, units)
    sources = repository.sources_of(session, units)
    shares = _lot_shares(session, units)
    donors: dict[int, Fraction] = defaultdict(Fraction)
    rows = []
    for lot_id, q in sorted(units.items()):
        lot = lots[lot_id]
        for donor, fraction in shares[lot_id].items():
            donors[donor] += fraction * q
        for s in sources[lot_id]:
            scale = Fraction(q, lot.quantity)
            rows.append(
                (
                    s.donor_org_id,
                    s.item_id,
                    s.kit_id,
                    s.source_lot_id,
                    s.quantity * scale,
                    s.value_fen * scale,
                )
            )
    return Trace(subject, sum(units.values()), dict(sorted(donors.items())), rows)


def trace_lot(session: Session, *, lot_id: int) -> Trace:
    """The donors and component quantities behind a whole lot (a kit lot lists every donor)."""
    lot = session.get(StockLot, lot_id)
    if lot is None:
        raise NotFound(f"no lot with id {lot_id}")
    return _trace(session, f"lot:{lot_id}", {lot_id: lot.quantity})


def trace_reference(session: Session, *, reference: str) -> Trace:
    """The donors and component quantities behind what a reference reserved or delivered."""
    return _trace(session, reference, _reference_units(session, reference))


@dataclass
class DonorFigures:
    donor_org_id: int
    item_id: int | None
    kit_id: int | None
    pledged: int = 0
    pledged_value_fen: int = 0
    received: int = 0
    received_value_fen: int = 0
    in_stock: Fraction = Fraction(0)
    in_transit: Fraction = Fraction(0)
    delivered: Fraction = Fraction(0)
    written_off: Fraction = Fraction(0)
    in_stock_value_fen: Fraction = Fraction(0)
    delivered_value_fen: Fraction = Fraction(0)

    @property
    def balanced(self) -> bool:
        return self.received == (
            self.in_stock + self.in_transit + self.delivered + self.written_off
        )


def donor_report(
    session: Session, *, donor_org_id: int | None = None, program_id: int | None = None
) -> list[DonorFigures]:
    """Per donor and item (or kit as received): pledged, received, in stock, in transit,
    delivered, written off — exact, so that received = in stock + in transit + delivered +
    written off. Kits assembled from a donor's items count that donor's component units.
    With ``program_id``: only what was pledged and received for that program's pledges."""
    figures: dict[tuple[int, int | None, int | None], DonorFigures] = {}

    def row(d: int, item: int | None, kit: int | None) -> DonorFigures:
        key = (d, item, kit)
        if key not in figures:
            figures[key] = DonorFigures(d, item, kit)
        return figures[key]

    for d, item, kit, q, v in repository.pledged_lines(session, donor_org_id, program_id):
        r = row(d, item, kit)
        r.pledged += q
        r.pledged_value_fen += v
    pairs = repository.all_sources(session, donor_org_id)
    if program_id is not None:
        pairs = _of_program(session, pairs, program_id)
    states = repository.lot_state_totals(session, {lot.id for _, lot in pairs})
    for source, lot in pairs:
        r = row(source.donor_org_id, source.item_id, source.kit_id)
        if lot.origin == "receipt":
            r.received += source.quantity
            r.received_value_fen += source.value_fen
        st = states.get(lot.id, {})
        scale = Fraction(source.quantity, lot.quantity)
        vscale = Fraction(source.value_fen, lot.quantity)
        delivered = -st.get(MovementKind.issue, 0) - st.get(MovementKind.return_, 0)
        r.in_stock += scale * st.get("on_hand", 0)
        r.in_transit += scale * st.get("in_transit", 0)
        r.delivered += scale * delivered
        r.written_off += scale * -st.get(MovementKind.adjustment, 0)
        r.in_stock_value_fen += vscale * st.get("on_hand", 0)
        r.delivered_value_fen += vscale * delivered
    return [figures[k] for k in sorted(figures, key=lambda k: (k[0], k[1] or 0, k[2] or 0))]


def _of_program(
    session: Session, pairs: list[tuple[LotSource, StockLot]], program_id: int
) -> list[tuple[LotSource, StockLot]]:
    """The (source, lot) pairs given for ``program_id``: a receipt lot belongs to its pledge's
    program; a kit's component units to the program of the lot they were drawn from (so a
    program's received units and where they went stay in the same subset and still add up)."""

    def origin(source: LotSource, lot: StockLot) -> int | None:
        return lot.id if lot.origin == "receipt" else source.source_lot_id

    programs = repository.lot_programs(
        session, {o for s, lot in pairs if (o := origin(s, lot)) is not None}
    )
    return [
        (s, lot)
        for s, lot in pairs
        if (o := origin(s, lot)) is not None and programs.get(o) == program_id
    ]


# --- stock reports ----------------------------------------------------------------------------


@dataclass(frozen=True)
class OnHand:
    warehouse_id: int
    item_id: int | None
    kit_id: int | None
    expiry: date | None
    on_hand: int
    reserved: int
    in_transit: int
    expired: bool

    @property
    def available(self) -> int:
        return 0 if self.expired else self.on_hand - self.reserved


def stock_on_hand(
    session: Session,
    *,
    warehouse_id: int | None = None,
    item_id: int | None = None,
    kit_id: int | None = None,
    as_of: date | None = None,
) -> list[OnHand]:
    """Stock on hand by warehouse, item (or kit) and expiry, from the balance table."""
    today = _today(as_of)
    return [
        OnHand(
            r.warehouse_id,
            r.item_id,
            r.kit_id,
            r.expiry,
            int(r.on_hand),
            int(r.reserved),
            int(r.in_transit),
            _expired(r.expiry, today),
        )
        for r in repository.on_hand_rows(
            session, warehouse_id=warehouse_id, item_id=item_id, kit_id=kit_id
        )
    ]


def days_of_supply(
    session: Session,
    *,
    daily_consumption: int,
    warehouse_id: int | None = None,
    item_id: int | None = None,
    kit_id: int | None = None,
    as_of: date | None = None,
) -> Fraction:
    """Days the available stock lasts at ``daily_consumption`` units a day (exact)."""
    _positive(daily_consumption, "daily_consumption")
    units = available(
        session, warehouse_id=warehouse_id, item_id=item_id, kit_id=kit_id, as_of=as_of
    )
    return Fraction(units, daily_consumption)


def today(as_of: date | None = None) -> date:
    """The date expiry is judged against (``as_of`` or the operation's today)."""
    return _today(as_of)


def expiring(
    session: Session, *, within_days: int, as_of: date | None = None
) -> list[StockBalance]:
    """Balance rows with stock whose lot expires within ``within_days`` (or already expired)."""
    if within_days < 0:
        raise Invalid("within_days must not be negative")
    return repository.expiring_balances(session, until=_today(as_of) + timedelta(days=within_days))


def list_movements(
    session: Session,
    *,
    warehouse_id: int | None = None,
    lot_id: int | None = None,
    reference: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[StockMovement], int]:
    """One page of the ledger, oldest first."""
    return repository.list_movements(
        session,
        warehouse_id=warehouse_id,
        lot_id=lot_id,
        reference=reference,
        offset=offset,
        limit=limit,
    )


def require_lot(session: Session, lot_id: int) -> StockLot:
    lot = session.get(StockLot, lot_id)
    if lot is None:
        raise NotFound(f"no lot with id {lot_id}")
    return lot


def rebuild_balances(session: Session) -> int:
    """Recompute the balance table from the movements (after a bulk load of historical
    movements, or to repair); the database's checks refuse a history that ever oversold in sum.
    Returns the number of balance rows."""
    repository.begin_write(session)
    return repository.rebuild_balances(session)


def check_ledger(session: Session) -> list[str]:
    """Every violated ledger invariant, as text (empty when the ledger is sound)."""
    return [
        f"warehouse {w} lot {lot}: balance ({oh}, {rs}, {it}) != movements ({soh}, {srs}, {sit})"
        for w, lot, oh, soh, rs, srs, it, sit in repository.ledger_mismatches(session)
    ]


# --- look-ups by code (for the CLI) ------------------------------------------------------------


def resolve_sku(session: Session, sku: str) -> tuple[int | None, int | None]:
    """(item_id, None) or (None, kit_id) for a SKU; ``Invalid`` if neither exists."""
    found = repository.sku_ids(session, sku)
    if found is None:
        raise Invalid(f"no item or kit with SKU {sku!r}", [FieldError(("sku",), "unknown")])
    return found


def resolve_warehouse(session: Session, code: str) -> int:
    found = repository.warehouse_id(session, code)
    if found is None:
        raise Invalid(f"no warehouse with code {code!r}", [FieldError(("warehouse",), "unknown")])
    return found


def resolve_org(session: Session, code: str) -> int:
    found = repository.org_id(session, code)
    if found is None:
        raise Invalid(f"no organization with code {code!r}", [FieldError(("org",), "unknown")])
    return found


def sku_names(session: Session) -> dict[tuple[str, int | None], str]:
    """("item"|"kit", id) → SKU, for reports."""
    return repository.sku_names(session)


def warehouse_codes(session: Session) -> dict[int, str]:
    return repository.warehouse_codes(session)


def org_codes(session: Session) -> dict[int, str]:
    return repository.org_codes(session)


# --- for the web pages ------------------------------------------------------------------------


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


def warehouse_lots(session: Session, *, warehouse_id: int | None = None) -> list[StockBalance]:
    """The lots with units on hand in a warehouse (all when None), first expiry first: what an
    adjustment can correct."""
    return repository.balances_with_stock(session, warehouse_id=warehouse_id)


def require_receipt(session: Session, receipt_id: int) -> Receipt:
    receipt = session.get(Receipt, receipt_id)
    if receipt is None:
        raise NotFound(f"no receipt with id {receipt_id}")
    return receipt
