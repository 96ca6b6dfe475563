"""Many reservations (or issues) in one transaction, for allocation runs over a whole city and
for loading a vehicle.

The same rules as :func:`relieflink.stock.service.reserve` (first expiry first, expired lots
never, a reference reserves once), but the balance rows of each (warehouse, item or kit) are
locked once for all its reservations and the movements are inserted in bulk: a million
reservations cost seconds, not the hour a call per reservation would. :func:`issue_many` is
:func:`relieflink.stock.service.issue` for a vehicle's worth of references in five statements.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Table, case, func, select, tuple_
from sqlalchemy.orm import Session

from relieflink import clock
from relieflink.db.bulk import insert_rows
from relieflink.errors import Conflict, FieldError
from relieflink.models import AdjustmentReason, MovementKind, StockBalance, StockMovement, User
from relieflink.stock import repository


@dataclass(frozen=True)
class Reservation:
    """Reserve ``quantity`` of an item (or kit) in a warehouse under ``reference``."""

    warehouse_id: int
    item_id: int | None
    kit_id: int | None
    quantity: int
    reference: str


def _already_reserved(session: Session, references: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(references), 5000):
        chunk = references[start : start + 5000]
        found.update(
            session.scalars(
                select(StockMovement.reference).where(
                    StockMovement.reference.in_(chunk),
                    StockMovement.kind == MovementKind.reservation,
                )
            )
        )
    return found


def reserve_many(
    session: Session,
    reservations: Sequence[Reservation],
    *,
    actor: User | None,
    as_of: date | None = None,
    new_references: bool = False,
) -> int:
    """Reserve all of ``reservations`` or none (``Conflict`` naming the first short one).

    References reserved before are skipped (a retried run does not reserve twice); a caller
    whose references cannot exist yet (they name a row it has just created) may say so with
    ``new_references`` and save the look-up. Returns the number of movements written.
    """
    today = as_of or clock.today()
    for r in reservations:
        if (r.item_id is None) == (r.kit_id is None) or r.quantity <= 0 or not r.reference:
            raise ValueError(f"invalid reservation {r}")
    repository.begin_write(session)
    done = (
        set() if new_references else _already_reserved(session, [r.reference for r in reservations])
    )
    groups: dict[tuple[int, int | None, int | None], list[Reservation]] = defaultdict(list)
    for r in reservations:
        if r.reference not in done:
            groups[(r.warehouse_id, r.item_id, r.kit_id)].append(r)
    now = clock.now()
    actor_id = actor.id if actor is not None else None
    rows: list[dict[str, Any]] = []
    for warehouse_id, item_id, kit_id in sorted(groups, key=lambda k: (k[0], k[1] or 0, k[2] or 0)):
        balances = [
            b
            for b in repository.lock_balances_of(
                session, warehouse_id=warehouse_id, item_id=item_id, kit_id=kit_id
            )
            if (b.expiry is None or b.expiry >= today) and b.on_hand > b.reserved
        ]
        free = [b.on_hand - b.reserved for b in balances]
        position = 0
        for r in groups[(warehouse_id, item_id, kit_id)]:
            left = r.quantity
            while left:
                while position < len(free) and free[position] == 0:
                    position += 1
                if position == len(free):
                    what = f"kit {kit_id}" if kit_id is not None else f"item {item_id}"
                    raise Conflict(
                        f"not enough {what} available in warehouse {warehouse_id} for "
                        f"{r.reference}; nothing was reserved",
                        [FieldError(("quantity",), f"{r.quantity} asked")],
                    )
                take = min(left, free[position])
                free[position] -= take
                balance = balances[position]
                balance.reserved += take
                left -= take
                rows.append(
                    {
                        "kind": MovementKind.reservation,
                        "warehouse_id": warehouse_id,
                        "lot_id": balance.lot_id,
                        "item_id": item_id,
                        "kit_id": kit_id,
                        "d_on_hand": 0,
                        "d_reserved": take,
                        "d_in_transit": 0,
                        "reference": r.reference,
                        "actor_id": actor_id,
                        "created_at": now,
                    }
                )
    session.flush()  # the balance rows, updated in memory above
    insert_rows(session, cast(Table, StockMovement.__table__), rows)
    return len(rows)


@dataclass(frozen=True)
class Issue:
    """Issue ``quantity`` units reserved under ``reference`` to the delivery ``delivery_ref``."""

    reference: str
    quantity: int
    delivery_ref: str


def _expired(balance: StockBalance, today: date) -> bool:
    return balance.expiry is not None and balance.expiry < today


def _fefo(balance: StockBalance) -> tuple[bool, date, int]:
    return (balance.expiry is None, balance.expiry or date.max, balance.lot_id)


def issue_many(
    session: Session, issues: Sequence[Issue], *, actor: User | None, as_of: date | None = None
) -> int:
    """Issue all of ``issues`` or none: :func:`relieflink.stock.service.issue`'s rules (first
    expiry first, expired lots never, ``Conflict`` when the still-good reserved units do not
    cover the quantity, an issue already made under the same ``delivery_ref`` is not made
    again), with the balance rows of every reference locked in one statement (in id order, as
    ``issue`` locks them) and the movements inserted in bulk. Returns the movements written."""
    for i in issues:
        if i.quantity <= 0 or not i.reference or not i.delivery_ref:
            raise ValueError(f"invalid issue {i}")
    if not issues:
        return 0
    today = as_of if as_of is not None else clock.today()
    repository.begin_write(session)
    references = sorted({i.reference for i in issues})
    balances = _lock_balances_of_references(session, references)
    held: dict[str, dict[tuple[int, int], int]] = defaultdict(dict)
    done: set[tuple[str, str]] = set()
    for reference, warehouse_id, lot_id, reserved, delivery_ref in session.execute(
        select(
            StockMovement.reference,
            StockMovement.warehouse_id,
            StockMovement.lot_id,
            func.sum(StockMovement.d_reserved),
            StockMovement.delivery_ref,
        )
        .where(StockMovement.reference.in_(references))
        .group_by(
            StockMovement.reference,
            StockMovement.warehouse_id,
            StockMovement.lot_id,
            # issues carry their delivery (reservations and releases none, returns no
            # reserved units): a group with a delivery and units taken is an issue made
            StockMovement.delivery_ref,
        )
        .having(func.sum(StockMovement.d_reserved) != 0)
    ):
        assert reference is not None
        key = (warehouse_id, lot_id)
        held[reference][key] = held[reference].get(key, 0) + int(reserved)
        if delivery_ref is not None and int(reserved) < 0:
            done.add((reference, delivery_ref))
    now = clock.now()
    actor_id = actor.id if actor is not None else None
    rows: list[dict[str, Any]] = []
    for i in issues:
        if (i.reference, i.delivery_ref) in done:
            continue
        mine = {k: v for k, v in held[i.reference].items() if v > 0}
        good = {k: v for k, v in mine.items() if not _expired(balances[k], today)}
        usable = sum(good.values())
        if i.quantity > usable:
            expired = sum(mine.values()) - usable
            detail = f" ({expired} in expired lots: release and reserve again)" if expired else ""
            raise Conflict(
                f"reference {i.reference!r} holds {usable} issuable units; cannot issue "
                f"{i.quantity}" + detail,
                [FieldError(("quantity",), f"at most {usable}")],
            )
        left = i.quantity
        for key in sorted(good, key=lambda k: _fefo(balances[k])):
            if left == 0:
                break
            take = min(left, good[key])
            balance = balances[key]
            if balance.reserved < take or balance.on_hand < take:
                raise Conflict(
                    f"issue of lot {balance.lot_id} in warehouse {balance.warehouse_id} would "
                    f"leave on hand {balance.on_hand - take}, reserved {balance.reserved - take}"
                )
            balance.on_hand -= take
            balance.reserved -= take
            held[i.reference][key] -= take
            left -= take
            rows.append(
                {
                    "kind": MovementKind.issue,
                    "warehouse_id": balance.warehouse_id,
                    "lot_id": balance.lot_id,
                    "item_id": balance.item_id,
                    "kit_id": balance.kit_id,
                    "d_on_hand": -take,
                    "d_reserved": -take,
                    "d_in_transit": 0,
                    "reference": i.reference,
                    "delivery_ref": i.delivery_ref,
                    "actor_id": actor_id,
                    "created_at": now,
                }
            )
        done.add((i.reference, i.delivery_ref))
    session.flush()  # the balance rows, updated in memory above
    insert_rows(session, cast(Table, StockMovement.__table__), rows)
    return len(rows)


@dataclass(frozen=True)
class Return:
    """Put back ``quantity`` units issued under ``reference`` to ``delivery_ref``; with
    ``write_off`` (damaged on the way) they are written off at once, noted so."""

    reference: str
    quantity: int
    delivery_ref: str
    note: str | None = None
    write_off: str | None = None


@dataclass
class Returned:
    written_off: list[int]  # units written off, per return (in the order given)
    still_reserved: set[str]  # references that hold reserved units besides what was issued


def return_many(session: Session, returns: Sequence[Return], *, actor: User | None) -> Returned:
    """:func:`relieflink.stock.service.return_stock` for many references (into the lots and
    warehouses they were issued from, latest expiry first; ``Conflict`` if more is returned
    than is out), followed for ``write_off`` returns by the damage adjustment
    :func:`relieflink.stock.service.adjust` would write. All or nothing, in four statements."""
    for r in returns:
        if r.quantity <= 0 or not r.reference:
            raise ValueError(f"invalid return {r}")
    if not returns:
        return Returned([], set())
    repository.begin_write(session)
    references = sorted({r.reference for r in returns})
    balances = _lock_balances_of_references(session, references)
    out: dict[str, dict[tuple[int, int], int]] = defaultdict(dict)
    reserved: dict[str, int] = defaultdict(int)
    moved = StockMovement.kind.in_([MovementKind.issue, MovementKind.return_])
    for reference, warehouse_id, lot_id, on_hand, held in session.execute(
        select(
            StockMovement.reference,
            StockMovement.warehouse_id,
            StockMovement.lot_id,
            func.sum(case((moved, StockMovement.d_on_hand), else_=0)),
            func.sum(StockMovement.d_reserved),
        )
        .where(StockMovement.reference.in_(references))
        .group_by(StockMovement.reference, StockMovement.warehouse_id, StockMovement.lot_id)
    ):
        assert reference is not None
        if on_hand:
            out[reference][(warehouse_id, lot_id)] = -int(on_hand)
        reserved[reference] += int(held or 0)
    now = clock.now()
    actor_id = actor.id if actor is not None else None
    rows: list[dict[str, Any]] = []
    written_off: list[int] = []
    for r in returns:
        mine = {k: v for k, v in out[r.reference].items() if v > 0}
        total = sum(mine.values())
        if r.quantity > total:
            raise Conflict(
                f"reference {r.reference!r} has {total} issued units out; cannot return "
                f"{r.quantity}",
                [FieldError(("quantity",), f"at most {total}")],
            )
        left, lost = r.quantity, 0
        for key in sorted(mine, key=lambda k: _fefo(balances[k]), reverse=True):
            if left == 0:
                break
            take = min(left, mine[key])
            balance = balances[key]
            out[r.reference][key] -= take
            left -= take
            balance.on_hand += take
            rows.append(
                _movement(balance, MovementKind.return_, take, r.reference, actor_id, now)
                | {"delivery_ref": r.delivery_ref, "note": r.note}
            )
            if r.write_off is not None:
                if balance.on_hand - take < balance.reserved:
                    raise Conflict(
                        f"writing off lot {balance.lot_id} in warehouse {balance.warehouse_id} "
                        f"would leave on hand {balance.on_hand - take} below reserved "
                        f"{balance.reserved}"
                    )
                balance.on_hand -= take
                lost += take
                rows.append(
                    _movement(balance, MovementKind.adjustment, take, None, actor_id, now)
                    | {"reason": AdjustmentReason.damage, "note": r.write_off}
                )
        written_off.append(lost)
    session.flush()  # the balance rows, updated in memory above
    insert_rows(session, cast(Table, StockMovement.__table__), _uniform(rows))
    return Returned(written_off, {ref for ref, n in reserved.items() if n > 0})


def _lock_balances_of_references(
    session: Session, references: Sequence[str]
) -> dict[tuple[int, int], StockBalance]:
    """The balance rows these references ever moved, locked in id order (as the ledger's
    single-reference operations lock them), read afresh."""
    touched = (
        select(StockMovement.warehouse_id, StockMovement.lot_id)
        .where(StockMovement.reference.in_(list(references)))
        .distinct()
    )
    return {
        (b.warehouse_id, b.lot_id): b
        for b in session.scalars(
            select(StockBalance)
            .where(tuple_(StockBalance.warehouse_id, StockBalance.lot_id).in_(touched))
            .order_by(StockBalance.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    }


def _movement(
    balance: StockBalance,
    kind: MovementKind,
    units: int,
    reference: str | None,
    actor_id: int | None,
    now: datetime,
) -> dict[str, Any]:
    """A movement row putting ``units`` on hand (returns) or taking them off (adjustments)."""
    return {
        "kind": kind,
        "warehouse_id": balance.warehouse_id,
        "lot_id": balance.lot_id,
        "item_id": balance.item_id,
        "kit_id": balance.kit_id,
        "d_on_hand": units if kind == MovementKind.return_ else -units,
        "d_reserved": 0,
        "d_in_transit": 0,
        "reference": reference,
        "actor_id": actor_id,
        "created_at": now,
    }


_OPTIONAL = ("delivery_ref", "note", "reason")


def _uniform(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with the same keys (one COPY or executemany needs them)."""
    return [{k: row.get(k) for k in (*rows[0], *_OPTIONAL)} | row for row in rows] if rows else []
