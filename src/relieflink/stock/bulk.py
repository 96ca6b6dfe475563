"""Many reservations in one transaction, for allocation runs over a whole city.

The same rules as :func:`relieflink.stock.service.reserve` (first expiry first, expired lots
never, a reference reserves once), but the balance rows of each (warehouse, item or kit) are
locked once for all its reservations and the movements are inserted in bulk: a million
reservations cost seconds, not the hour a call per reservation would.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from relieflink.db import utcnow
from relieflink.db.bulk import insert_rows
from relieflink.errors import Conflict, FieldError
from relieflink.models import MovementKind, StockMovement, User
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
    today = as_of or utcnow().date()
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
    now = utcnow()
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
