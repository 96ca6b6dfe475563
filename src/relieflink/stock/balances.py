"""Balances: what can be reserved (for allocation), stock on hand by expiry, days of supply,
expiring lots, the ledger's pages, and the ledger check and rebuild."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction
from typing import Literal

from sqlalchemy.orm import Session

from relieflink.errors import Invalid
from relieflink.models import StockBalance, StockMovement
from relieflink.stock import repository, rules


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
    rules.one_of(item_id, kit_id)
    rows = repository.available_rows(
        session, today=rules.today(as_of), warehouse_id=warehouse_id, item_id=item_id, kit_id=kit_id
    )
    return sum(q for *_, q in rows)


def stock_matrix(
    session: Session, *, kind: Literal["item", "kit"] = "item", as_of: date | None = None
) -> dict[tuple[int, int], int]:
    """Available units per (warehouse, item) — or per (warehouse, kit) with ``kind="kit"``."""
    rows = repository.available_rows(session, today=rules.today(as_of), kits=kind == "kit")
    out: dict[tuple[int, int], int] = {}
    for w, item_id, kit_id, q in rows:
        key = item_id if kind == "item" else kit_id
        assert key is not None
        if q > 0:
            out[(w, key)] = out.get((w, key), 0) + q
    return out


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
    today = rules.today(as_of)
    return [
        OnHand(
            r.warehouse_id,
            r.item_id,
            r.kit_id,
            r.expiry,
            int(r.on_hand),
            int(r.reserved),
            int(r.in_transit),
            rules.expired(r.expiry, today),
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
    rules.positive(daily_consumption, "daily_consumption")
    units = available(
        session, warehouse_id=warehouse_id, item_id=item_id, kit_id=kit_id, as_of=as_of
    )
    return Fraction(units, daily_consumption)


def expiring(
    session: Session, *, within_days: int, as_of: date | None = None
) -> list[StockBalance]:
    """Balance rows with stock whose lot expires within ``within_days`` (or already expired)."""
    if within_days < 0:
        raise Invalid("within_days must not be negative")
    return repository.expiring_balances(
        session, until=rules.today(as_of) + timedelta(days=within_days)
    )


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
