"""Transfers between warehouses: shipping (first expiry first, never expired or reserved
stock), receiving a shipment, and the gift declaration of a cross-border shipment."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy.orm import Session

from relieflink import clock
from relieflink.audit import service as audit
from relieflink.errors import Conflict, FieldError, Invalid, NotFound
from relieflink.models import (
    MovementKind,
    Organization,
    Pledge,
    Program,
    StockBalance,
    StockTransfer,
    TransferStatus,
    User,
    Warehouse,
)
from relieflink.stock import ledger, repository, rules


@dataclass(frozen=True)
class TransferLine:
    quantity: int
    item_id: int | None = None
    kit_id: int | None = None
    lot_id: int | None = None


def warehouse_country(session: Session, warehouse: Warehouse) -> str | None:
    """A warehouse is in its owner's country (what makes a transfer cross-border)."""
    owner = session.get(Organization, warehouse.owner_id)
    return owner.country if owner is not None else None


def _program_of(
    session: Session, program_id: int | None, pledge_id: int | None, country: str | None
) -> int | None:
    """The program a shipment serves: named, or its pledge's, or the only one in ``country``."""
    if program_id is not None:
        if session.get(Program, program_id) is None:
            raise Invalid(
                "no such program", [FieldError(("program_id",), f"no program {program_id}")]
            )
        return program_id
    if pledge_id is not None:
        pledge = session.get(Pledge, pledge_id)
        if pledge is None:
            error = FieldError(("pledge_id",), f"no pledge with id {pledge_id}")
            raise Invalid("no such pledge", [error])
        return pledge.program_id
    in_country = repository.programs_in_country(session, country) if country else []
    return in_country[0] if len(in_country) == 1 else None


def transfer(
    session: Session,
    *,
    from_warehouse_id: int,
    to_warehouse_id: int,
    lines: Sequence[TransferLine],
    actor: User | None,
    pledge_id: int | None = None,
    program_id: int | None = None,
    note: str | None = None,
    as_of: date | None = None,
) -> StockTransfer:
    """Ship unreserved, unexpired stock to another warehouse (FEFO, or named lots). The stock
    leaves the source at once and is in transit at the destination until received. A transfer
    to a warehouse owned in another country is cross-border (see
    :func:`relieflink.stock.declarations.gift_declaration`); it serves ``program_id``, else the
    pledge's program, else the one program run in the destination country (if only one is)."""
    if from_warehouse_id == to_warehouse_id:
        raise Invalid("a transfer needs two different warehouses")
    if not lines:
        raise Invalid("a transfer needs at least one line")
    today = rules.today(as_of)
    repository.begin_write(session)
    source = ledger.require_warehouse(session, from_warehouse_id)
    dest = ledger.require_warehouse(session, to_warehouse_id)
    src_country, dst_country = warehouse_country(session, source), warehouse_country(session, dest)
    shipment = StockTransfer(
        from_warehouse_id=from_warehouse_id,
        to_warehouse_id=to_warehouse_id,
        status=TransferStatus.in_transit,
        cross_border=src_country != dst_country,
        destination_country=dst_country,
        pledge_id=pledge_id,
        program_id=_program_of(session, program_id, pledge_id, dst_country),
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
