"""The stock service: look-ups (by code for the CLI, by id for the pages) and the public
names of the stock domain, so that callers write ``from relieflink.stock import service as
stock`` and ``stock.reserve(...)``.

Where each rule lives: :mod:`~relieflink.stock.rules` (first expiry first out, expiry, the
balance invariants, the errors), :mod:`~relieflink.stock.ledger` (reservations, releases, issues,
returns; each a batch, a single call is a batch of one), :mod:`~relieflink.stock.receipts`
(receipts, adjustments),
:mod:`~relieflink.stock.balances` (availability, on hand, the ledger check),
:mod:`~relieflink.stock.transfers`, :mod:`~relieflink.stock.kits` and
:mod:`~relieflink.stock.trace`.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from relieflink.errors import FieldError, Invalid, NotFound
from relieflink.models import Receipt, StockBalance, StockLot
from relieflink.stock import repository
from relieflink.stock.balances import (
    OnHand,
    available,
    check_ledger,
    days_of_supply,
    expiring,
    list_movements,
    rebuild_balances,
    stock_matrix,
    stock_on_hand,
)
from relieflink.stock.declarations import (
    gift_declaration,
    gift_declaration_html,
    gift_declaration_pdf,
    render_gift_declaration,
)
from relieflink.stock.kits import assemble_kits
from relieflink.stock.ledger import (
    Issue,
    Release,
    Reservation,
    Return,
    Returned,
    issue,
    issue_many,
    release,
    release_many,
    reserve,
    reserve_many,
    return_many,
    return_stock,
)
from relieflink.stock.receipts import adjust, receipt_lots, receive, receive_lot
from relieflink.stock.rules import today
from relieflink.stock.trace import (
    DonorFigures,
    Trace,
    donor_report,
    donor_shares,
    exact,
    named_shares,
    trace_lot,
    trace_reference,
    whole_units,
)
from relieflink.stock.transfers import (
    TransferLine,
    list_transfers,
    receive_transfer,
    require_transfer,
    transfer,
)

__all__ = [
    "DonorFigures",
    "Issue",
    "OnHand",
    "Release",
    "Reservation",
    "Return",
    "Returned",
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
    "gift_declaration_html",
    "gift_declaration_pdf",
    "issue",
    "issue_many",
    "list_movements",
    "list_transfers",
    "named_shares",
    "org_codes",
    "rebuild_balances",
    "receipt_lots",
    "receive",
    "receive_lot",
    "receive_transfer",
    "release",
    "release_many",
    "render_gift_declaration",
    "require_lot",
    "require_receipt",
    "require_transfer",
    "reserve",
    "reserve_many",
    "resolve_org",
    "resolve_sku",
    "resolve_warehouse",
    "return_many",
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
    "whole_units",
]


def require_lot(session: Session, lot_id: int) -> StockLot:
    lot = session.get(StockLot, lot_id)
    if lot is None:
        raise NotFound(f"no lot with id {lot_id}")
    return lot


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


def warehouse_lots(session: Session, *, warehouse_id: int | None = None) -> list[StockBalance]:
    """The lots with units on hand in a warehouse (all when None), first expiry first: what an
    adjustment can correct."""
    return repository.balances_with_stock(session, warehouse_id=warehouse_id)


def require_receipt(session: Session, receipt_id: int) -> Receipt:
    receipt = session.get(Receipt, receipt_id)
    if receipt is None:
        raise NotFound(f"no receipt with id {receipt_id}")
    return receipt
