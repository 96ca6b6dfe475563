"""The rules every stock movement obeys, written once for the ledger, transfers and kits.

* A lot has expired when its expiry date is before today; expired lots are never reserved,
  issued, shipped or packed (:func:`expired`).
* First expiry first out: lots are picked by expiry date, lots without one last, then the oldest
  lot (:func:`fefo_key`; the SQL side is :func:`relieflink.stock.repository.fefo_order`).
  Releases and returns give back in the opposite order (latest expiry first).
* A balance row never goes below zero and never has more reserved than on hand
  (:func:`apply`, the one place a movement changes a balance row).
* Bad input is ``Invalid`` with the field at fault; too little stock is ``Conflict``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any, TypeVar

from relieflink import clock
from relieflink.errors import Conflict, FieldError, Invalid
from relieflink.models import AdjustmentReason, MovementKind, StockBalance, User

K = TypeVar("K")


def today(as_of: date | None = None) -> date:
    """The date expiry is judged against: ``as_of``, or today in the configured time zone."""
    return as_of if as_of is not None else clock.today()


def expired(expiry: date | None, today: date) -> bool:
    """Whether a lot with this expiry may no longer leave the warehouse."""
    return expiry is not None and expiry < today


def fefo_key(balance: StockBalance) -> tuple[bool, date, int]:
    """First expiry first; lots without expiry last; then the oldest lot."""
    return (balance.expiry is None, balance.expiry or date.max, balance.lot_id)


def pick(free: Iterable[tuple[K, int]], quantity: int) -> list[tuple[K, int]]:
    """Take ``quantity`` units from ``free`` (key, units) in the order given: (key, taken)."""
    out: list[tuple[K, int]] = []
    left = quantity
    for key, units in free:
        if left == 0:
            break
        take = min(left, units)
        if take > 0:
            out.append((key, take))
            left -= take
    return out


def free_fefo(balances: Sequence[StockBalance], today: date) -> list[StockBalance]:
    """The rows that can give units (not expired, on hand > reserved), first expiry first."""
    good = [b for b in balances if not expired(b.expiry, today) and b.on_hand > b.reserved]
    return sorted(good, key=fefo_key)


# --- input checks (one set of errors for single and batch calls) ------------------------------


def one_of(item_id: int | None, kit_id: int | None) -> None:
    if (item_id is None) == (kit_id is None):
        raise Invalid(
            "give exactly one of item_id and kit_id",
            [FieldError(("item_id",), "exactly one of item_id and kit_id")],
        )


def positive(quantity: int, field: str = "quantity") -> None:
    if quantity <= 0:
        raise Invalid(f"{field} must be positive", [FieldError((field,), "must be > 0")])


def reference(value: str | None, field: str = "reference") -> None:
    if not value or len(value) > 200:
        raise Invalid(
            f"a {field} of 1 to 200 characters is required",
            [FieldError((field,), "1 to 200 characters")],
        )


def what(item_id: int | None, kit_id: int | None) -> str:
    return f"item {item_id}" if item_id is not None else f"kit {kit_id}"


# --- the one way a movement changes a balance row ---------------------------------------------


def apply(
    balance: StockBalance,
    kind: MovementKind,
    *,
    actor: User | None,
    now: datetime,
    d_on_hand: int = 0,
    d_reserved: int = 0,
    d_in_transit: int = 0,
    reference: str | None = None,
    delivery_ref: str | None = None,
    transfer_id: int | None = None,
    reason: AdjustmentReason | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """Apply one movement to its (locked) balance row, checking the invariants, and return the
    movement's row for :func:`relieflink.stock.repository.insert_movements`."""
    on_hand = balance.on_hand + d_on_hand
    reserved = balance.reserved + d_reserved
    in_transit = balance.in_transit + d_in_transit
    if on_hand < 0 or reserved < 0 or in_transit < 0 or reserved > on_hand:
        raise Conflict(
            f"{kind} of lot {balance.lot_id} in warehouse {balance.warehouse_id} would leave "
            f"on hand {on_hand}, reserved {reserved}, in transit {in_transit}"
        )
    # Only what changes is set: a batch applies thousands of movements to ORM rows.
    if d_on_hand:
        balance.on_hand = on_hand
    if d_reserved:
        balance.reserved = reserved
    if d_in_transit:
        balance.in_transit = in_transit
    return {
        "kind": kind,
        "warehouse_id": balance.warehouse_id,
        "lot_id": balance.lot_id,
        "item_id": balance.item_id,
        "kit_id": balance.kit_id,
        "d_on_hand": d_on_hand,
        "d_reserved": d_reserved,
        "d_in_transit": d_in_transit,
        "reference": reference,
        "delivery_ref": delivery_ref,
        "transfer_id": transfer_id,
        "reason": reason,
        "note": note,
        "actor_id": actor.id if actor is not None else None,
        "created_at": now,
    }
