"""Warehouse: receive goods against a pledge, stock by item and expiry, transfers, adjustments.

Every write goes through the stock ledger service (``stock.service``) in the request's
transaction: a form with any bad field writes nothing and comes back with each problem next to
its field; a good one redirects (303) to what it made, and sending the same form twice (its
hidden ``form_key``) does the work once. Receiving against a pledge is one flow
(``flows.receipts.receive_against_pledge``), which posts any discrepancy to the pledge's thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction
from itertools import zip_longest
from typing import Annotated, Any, cast

from fastapi import Form
from fastapi.responses import RedirectResponse, Response

from relieflink import db
from relieflink.common.schemas import validate_as
from relieflink.donations import service as donations
from relieflink.errors import RelieflinkError
from relieflink.flows import receipts
from relieflink.models import AdjustmentReason, TransferStatus
from relieflink.stock import service as stock
from relieflink.stock.schemas import ReceiveIn
from relieflink.users import access
from relieflink.web import formats
from relieflink.web.forms import (
    FORM_KEY,
    Errors,
    done,
    money,
    new_form_key,
    parse_money_fen,
    parse_quantity,
    replayed,
    row_errors,
)
from relieflink.web.listing import PAGE_SIZE, parse_offset
from relieflink.web.pages import N_, PageRouter, Web, WebDep
from relieflink.web.rendering import SECURITY_HEADERS
from relieflink.web.supply import (
    PLEDGE_STATUS_LABELS,
    REASON_LABELS,
    TRANSFER_STATUS_LABELS,
    Names,
    parse_sku_value,
    sku_choices,
    sku_value,
    warehouse_choices,
)

router = PageRouter()
EXTRA_ROWS = 3  # blank lines under a pledge's lines on the receipt form (for goods not pledged)
TRANSFER_ROWS = 4
EXPIRING_DAYS = 30  # stock expiring within this many days is marked on the stock page
TABS = [
    ("/warehouse", N_("Stock"), access.STOCK_READERS),
    ("/warehouse/receive", N_("Receive"), access.STOCK_WRITERS),
    ("/warehouse/transfers", N_("Transfers"), access.STOCK_READERS),
    ("/warehouse/adjustments", N_("Adjustments"), access.STOCK_WRITERS),
]


def _render(web: Web, template: str, context: dict[str, Any], status_code: int = 200) -> Response:
    tabs = [(href, label) for href, label, roles in TABS if web.user.role in roles]
    return web.render(template, {"tabs": tabs} | context, status_code=status_code)


def _refused(web: Web) -> None:
    """Undo everything the refused form did (its key too), and take the write lock again."""
    web.session.rollback()
    db.begin_write(web.session)


def _int(raw: str | None) -> int | None:
    text = (raw or "").strip()
    return int(text) if text.isdigit() else None


def _parse_date(raw: str, name: str, errors: Errors) -> date | None:
    text = raw.strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        errors.add(name, N_("Enter a date as YYYY-MM-DD."))
        return None


def _warehouse(raw: str, name: str, choices: list[tuple[int, str]], errors: Errors) -> int | None:
    chosen = _int(raw)
    if chosen is None or chosen not in dict(choices):
        errors.add(name, N_("Choose a warehouse."))
        return None
    return chosen


# --- stock ------------------------------------------------------------------------------------


@router.page("/warehouse", roles=access.STOCK_READERS, nav=N_("Stock and receiving"), order=33)
def stock_page(web: WebDep) -> Response:
    """Stock by warehouse, item and expiry (from the balance table): on hand, reserved,
    available, in transit; expired and soon-expiring lots marked."""
    warehouses = warehouse_choices(web.session, web.lang)
    warehouse_id = _int(web.request.query_params.get("warehouse_id"))
    rows = stock.stock_on_hand(web.session, warehouse_id=warehouse_id)
    names = Names(web.session, web.lang)
    soon = stock.today() + timedelta(days=EXPIRING_DAYS)
    groups: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(r.warehouse_id, []).append(
            {
                "label": names.sku(r.item_id, r.kit_id),
                "unit": names.unit(r.item_id),
                "expiry": r.expiry,
                "on_hand": r.on_hand,
                "reserved": r.reserved,
                "available": r.available,
                "in_transit": r.in_transit,
                "expired": r.expired,
                "expiring": not r.expired and r.expiry is not None and r.expiry <= soon,
            }
        )
    return _render(
        web,
        "warehouse/stock.html",
        {
            "warehouses": warehouses,
            "warehouse_id": warehouse_id,
            "groups": [(names.warehouse(w), w, g) for w, g in groups.items()],
            "expiring_days": EXPIRING_DAYS,
        },
    )


# --- receive against a pledge -----------------------------------------------------------------


@dataclass
class LotRow:
    """One line of the receipt form, as typed (so that a refused form comes back as it was)."""

    sku: str = ""
    quantity: str = ""
    expiry: str = ""
    unit_value: str = ""
    pledged: int | None = None  # this line's outstanding pledged quantity (a hint)


def _pledge_rows(web: Web, pledge_id: int) -> list[LotRow]:
    """The form's first lines: what is still to come on each pledged line."""
    received = donations.received_so_far(web.session, pledge_id)
    rows = []
    for line in donations.pledge_lines(web.session, pledge_id):
        key = (line.item_id, line.kit_id)
        left = line.quantity - received.get(key, 0)
        received[key] = max(received.get(key, 0) - line.quantity, 0)
        if left <= 0:
            continue
        rows.append(
            LotRow(
                sku=sku_value(*key),
                quantity=str(left),
                unit_value=money(line.unit_value_fen).replace(",", ""),
                pledged=left,
            )
        )
    return rows


def _receive_form(
    web: Web,
    pledge_id: int,
    *,
    rows: list[LotRow] | None = None,
    warehouse_id: int | None = None,
    note: str = "",
    final: bool = False,
    form_key: str | None = None,
    errors: Errors | None = None,
    status_code: int = 200,
) -> Response:
    pledge = donations.require_pledge(web.session, pledge_id, actor=web.user)
    names = Names(web.session, web.lang)
    if rows is None:
        rows = _pledge_rows(web, pledge_id) + [LotRow() for _ in range(EXTRA_ROWS)]
    return _render(
        web,
        "warehouse/receive.html",
        {
            "pledge": pledge,
            "pledge_status": PLEDGE_STATUS_LABELS[pledge.status],
            "receivable": donations.accepts_receipts(pledge),
            "donor": names.org(pledge.donor_org_id),
            "program": names.program(pledge.program_id),
            "rows": rows,
            "skus": sku_choices(web.session, web.lang),
            "warehouses": warehouse_choices(web.session, web.lang),
            "warehouse_id": warehouse_id,
            "note": note,
            "final": final,
            "form_key": form_key or new_form_key(),
            "errors": errors or Errors(),
        },
        status_code=status_code,
    )


@router.page("/warehouse/receive", roles=access.STOCK_WRITERS)
def receive_page(web: WebDep) -> Response:
    """Choose a pledge that still takes receipts; with ``pledge_id``, the receipt form."""
    pledge_id = _int(web.request.query_params.get("pledge_id"))
    if pledge_id is not None:
        return _receive_form(web, pledge_id)
    names = Names(web.session, web.lang)
    pledges = [
        {
            "id": p.id,
            "donor": names.org(p.donor_org_id),
            "program": names.program(p.program_id),
            "status": PLEDGE_STATUS_LABELS[p.status],
            "expected": p.expected_arrival,
        }
        for p in donations.receivable_pledges(web.session, actor=web.user)
    ]
    return _render(web, "warehouse/receive_choose.html", {"pledges": pledges})


@router.action("/warehouse/receive", roles=access.STOCK_WRITERS)
def receive(
    web: WebDep,
    pledge_id: Annotated[int, Form()],
    warehouse_id: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
    final: Annotated[bool, Form()] = False,
    sku: Annotated[list[str] | None, Form()] = None,
    quantity: Annotated[list[str] | None, Form()] = None,
    expiry: Annotated[list[str] | None, Form()] = None,
    unit_value: Annotated[list[str] | None, Form()] = None,
    form_key: Annotated[str, Form(alias=FORM_KEY)] = "",
) -> Response:
    """Receive the typed lots against the pledge: all or nothing; discrepancies go to the
    pledge's thread; then the receipt's page."""
    donations.require_pledge(web.session, pledge_id, actor=web.user)
    again = replayed(web, form_key)
    if again is not None:
        return again
    errors = Errors()
    rows = [
        LotRow(s, q, e, v)
        for s, q, e, v in zip_longest(
            sku or [], quantity or [], expiry or [], unit_value or [], fillvalue=""
        )
    ]
    warehouses = warehouse_choices(web.session, web.lang)
    chosen = _warehouse(warehouse_id, "warehouse_id", warehouses, errors)
    if len(note) > 500:
        errors.add("note", N_("At most 500 characters."))
    lots: list[dict[str, Any]] = []
    used: list[int] = []  # form row of each lot sent to the service
    for i, row in enumerate(rows):
        if not row.quantity.strip():
            continue  # an empty quantity skips the line
        ids = parse_sku_value(row.sku)
        if ids is None:
            errors.add(f"lots-{i}-sku", N_("Choose an item or kit."))
        qty = parse_quantity(row.quantity, f"lots-{i}-quantity", errors)
        best_before = _parse_date(row.expiry, f"lots-{i}-expiry", errors)
        value = parse_money_fen(row.unit_value, f"lots-{i}-unit_value", errors)
        if ids is None or qty is None or value is None:
            continue
        lots.append(
            {"item_id": ids[0], "kit_id": ids[1], "quantity": qty, "expiry": best_before,
             "unit_value_fen": value}
        )  # fmt: skip
        used.append(i)
    if not lots and not errors:
        errors.add("lots", N_("Enter at least one line with a quantity."))

    def refuse(status_code: int) -> Response:
        _refused(web)
        return _receive_form(
            web, pledge_id, rows=rows, warehouse_id=chosen, note=note, final=final,
            form_key=form_key, errors=errors, status_code=status_code,
        )  # fmt: skip

    if errors:
        return refuse(422)
    fields = {"item_id": "sku", "kit_id": "sku", "unit_value_fen": "unit_value"}
    try:
        data = validate_as(
            ReceiveIn,
            {"warehouse_id": chosen, "pledge_id": pledge_id, "note": note.strip() or None,
             "lots": lots},
        )  # fmt: skip
        receipt = receipts.receive_against_pledge(
            web.session, data, final=final, actor=web.user
        ).receipt
    except RelieflinkError as exc:
        row_errors(exc.errors, "lots", used, errors, fields=fields)
        if not exc.errors or errors.general:
            errors.general.insert(0, exc.message)
        return refuse(exc.status_code)
    return done(web, form_key, f"/warehouse/receipts/{receipt.id}")


@router.page("/warehouse/receipts/{receipt_id}", roles=access.STOCK_READERS)
def receipt_page(receipt_id: int, web: WebDep) -> Response:
    """One receipt: its lots and the discrepancies it raised on the pledge."""
    receipt = stock.require_receipt(web.session, receipt_id)
    names = Names(web.session, web.lang)
    discrepancies = []
    if receipt.pledge_id is not None:
        donations.require_pledge(web.session, receipt.pledge_id, actor=web.user)
        discrepancies = [
            {
                "label": names.sku(d.item_id, d.kit_id),
                "pledged": d.pledged,
                "received": d.received,
                "note": d.note,
            }
            for d in donations.discrepancies(web.session, receipt.pledge_id, actor=web.user)
            if d.receipt_id == receipt.id
        ]
    lots = [
        {
            "id": lot.id,
            "label": names.sku(lot.item_id, lot.kit_id),
            "unit": names.unit(lot.item_id),
            "quantity": lot.quantity,
            "expiry": lot.expiry,
            "unit_value": formats.money(lot.unit_value_fen, web.lang),
        }
        for lot in stock.receipt_lots(web.session, receipt.id)
    ]
    return _render(
        web,
        "warehouse/receipt.html",
        {
            "receipt": receipt,
            "warehouse": names.warehouse(receipt.warehouse_id),
            "donor": names.org(receipt.donor_org_id),
            "by": names.user(receipt.actor_id),
            "at": formats.moment(receipt.received_at, web.lang),
            "lots": lots,
            "discrepancies": discrepancies,
        },
    )


# --- transfers --------------------------------------------------------------------------------


@dataclass
class TransferRow:
    sku: str = ""
    quantity: str = ""


def _transfers_page(
    web: Web,
    *,
    rows: list[TransferRow] | None = None,
    values: dict[str, Any] | None = None,
    form_key: str | None = None,
    errors: Errors | None = None,
    status_code: int = 200,
) -> Response:
    query = web.request.query_params
    warehouse_id = _int(query.get("warehouse_id"))
    status = query.get("status") or None
    if status not in (None, *TransferStatus):
        status = None
    offset = parse_offset(query.get("offset"))
    found, total = stock.list_transfers(
        web.session,
        warehouse_id=warehouse_id,
        status=TransferStatus(status) if status else None,
        offset=offset,
        limit=PAGE_SIZE,
    )
    names = Names(web.session, web.lang)
    shipments = [
        {
            "id": t.id,
            "from": names.warehouse(t.from_warehouse_id),
            "to": names.warehouse(t.to_warehouse_id),
            "status": t.status,
            "status_label": TRANSFER_STATUS_LABELS[t.status],
            "cross_border": t.cross_border,
            "country": t.destination_country,
            "created": formats.moment(t.created_at, web.lang),
            "received": formats.moment(t.received_at, web.lang) if t.received_at else None,
            "note": t.note,
        }
        for t in found
    ]
    return _render(
        web,
        "warehouse/transfers.html",
        {
            "shipments": shipments,
            "total": total,
            "offset": offset,
            "warehouse_id": warehouse_id,
            "status": status,
            "statuses": list(TRANSFER_STATUS_LABELS.items()),
            "may_write": web.user.role in access.STOCK_WRITERS,
            "warehouses": warehouse_choices(web.session, web.lang),
            "skus": sku_choices(web.session, web.lang),
            "rows": rows or [TransferRow() for _ in range(TRANSFER_ROWS)],
            "values": values or {},
            "form_key": form_key or new_form_key(),
            "errors": errors or Errors(),
            "page_size": PAGE_SIZE,
        },
        status_code=status_code,
    )


@router.page("/warehouse/transfers", roles=access.STOCK_READERS)
def transfers_page(web: WebDep) -> Response:
    """Shipments between warehouses (in transit until received) and a form for a new one."""
    return _transfers_page(web)


@router.action("/warehouse/transfers", roles=access.STOCK_WRITERS)
def create_transfer(
    web: WebDep,
    from_warehouse_id: Annotated[str, Form()] = "",
    to_warehouse_id: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
    sku: Annotated[list[str] | None, Form()] = None,
    quantity: Annotated[list[str] | None, Form()] = None,
    form_key: Annotated[str, Form(alias=FORM_KEY)] = "",
) -> Response:
    """Ship unreserved, unexpired stock (first expiry first); it is in transit until received."""
    again = replayed(web, form_key)
    if again is not None:
        return again
    errors = Errors()
    rows = [TransferRow(s, q) for s, q in zip_longest(sku or [], quantity or [], fillvalue="")]
    warehouses = warehouse_choices(web.session, web.lang)
    source = _warehouse(from_warehouse_id, "from_warehouse_id", warehouses, errors)
    dest = _warehouse(to_warehouse_id, "to_warehouse_id", warehouses, errors)
    if source is not None and source == dest:
        errors.add("to_warehouse_id", N_("Choose another warehouse than the one shipping."))
    if len(note) > 500:
        errors.add("note", N_("At most 500 characters."))
    lines: list[stock.TransferLine] = []
    used: list[int] = []
    for i, row in enumerate(rows):
        if not row.quantity.strip():
            continue
        ids = parse_sku_value(row.sku)
        if ids is None:
            errors.add(f"lines-{i}-sku", N_("Choose an item or kit."))
        qty = parse_quantity(row.quantity, f"lines-{i}-quantity", errors)
        if ids is None or qty is None:
            continue
        lines.append(stock.TransferLine(quantity=qty, item_id=ids[0], kit_id=ids[1]))
        used.append(i)
    if not lines and not errors:
        errors.add("lines", N_("Enter at least one line with a quantity."))
    values = {"from_warehouse_id": source, "to_warehouse_id": dest, "note": note}

    def refuse(status_code: int) -> Response:
        _refused(web)
        return _transfers_page(
            web, rows=rows, values=values, form_key=form_key, errors=errors,
            status_code=status_code,
        )  # fmt: skip

    if errors:
        return refuse(422)
    assert source is not None and dest is not None
    try:
        shipment = stock.transfer(
            web.session,
            from_warehouse_id=source,
            to_warehouse_id=dest,
            lines=lines,
            note=note.strip() or None,
            actor=web.user,
        )
    except RelieflinkError as exc:
        row_errors(exc.errors, "lines", used, errors)
        if not exc.errors or errors.general:
            errors.general.insert(0, exc.message)
        return refuse(exc.status_code)
    return done(web, form_key, f"/warehouse/transfers#transfer-{shipment.id}")


@router.action("/warehouse/transfers/{transfer_id}/receive", roles=access.STOCK_WRITERS)
def receive_transfer(transfer_id: int, web: WebDep) -> Response:
    """Receive a shipment in full at its destination (a second submit changes nothing: the
    service receives a shipment once, so no form key is needed)."""
    stock.receive_transfer(web.session, transfer_id=transfer_id, actor=web.user)
    return RedirectResponse(f"/warehouse/transfers#transfer-{transfer_id}", status_code=303)


@router.page("/warehouse/transfers/{transfer_id}/declaration", roles=access.STOCK_READERS)
def declaration(transfer_id: int, web: WebDep) -> Response:
    """The gift declaration of a shipment (for customs on a cross-border one), signed by the
    signed-in user; its printable PDF is ``declaration.pdf``."""
    found = stock.gift_declaration(web.session, transfer_id=transfer_id, signatory=web.user)
    # Values are exact fen as text ("1250" or "3751/3"); shown in yuan, rounded to the fen.
    rows = cast(list[dict[str, Any]], found["lines"])
    lines = [row | {"value": money(float(Fraction(row["value_fen"])))} for row in rows]
    total = money(float(Fraction(str(found["total_value_fen"]))))
    return _render(web, "warehouse/declaration.html", {"d": found, "lines": lines, "total": total})


@router.page("/warehouse/transfers/{transfer_id}/declaration.pdf", roles=access.STOCK_READERS)
def declaration_pdf(transfer_id: int, web: WebDep) -> Response:
    """The gift declaration as a printable PDF (English and Chinese, A4)."""
    found = stock.gift_declaration(web.session, transfer_id=transfer_id, signatory=web.user)
    return Response(
        stock.gift_declaration_pdf(found),
        media_type="application/pdf",
        headers={
            **SECURITY_HEADERS,
            "Content-Disposition": f'inline; filename="gift-declaration-{transfer_id}.pdf"',
        },
    )


# --- adjustments ------------------------------------------------------------------------------


def _lot_choices(web: Web, warehouse_id: int | None) -> list[dict[str, Any]]:
    names = Names(web.session, web.lang)
    return [
        {
            "value": f"{b.warehouse_id}:{b.lot_id}",
            "warehouse": names.warehouse(b.warehouse_id),
            "label": names.sku(b.item_id, b.kit_id),
            "lot_id": b.lot_id,
            "expiry": b.expiry,
            "on_hand": b.on_hand,
            "reserved": b.reserved,
        }
        for b in stock.warehouse_lots(web.session, warehouse_id=warehouse_id)
    ]


def _adjust_page(
    web: Web,
    *,
    values: dict[str, Any] | None = None,
    form_key: str | None = None,
    errors: Errors | None = None,
    status_code: int = 200,
) -> Response:
    warehouse_id = _int(web.request.query_params.get("warehouse_id"))
    return _render(
        web,
        "warehouse/adjustments.html",
        {
            "warehouses": warehouse_choices(web.session, web.lang),
            "warehouse_id": warehouse_id,
            "lots": _lot_choices(web, warehouse_id),
            "reasons": list(REASON_LABELS.items()),
            "values": values or {},
            "recorded": web.request.query_params.get("recorded") == "1" and not errors,
            "form_key": form_key or new_form_key(),
            "errors": errors or Errors(),
        },
        status_code=status_code,
    )


@router.page("/warehouse/adjustments", roles=access.STOCK_WRITERS)
def adjustments_page(web: WebDep) -> Response:
    """Correct a lot's stock: a damage or expiry write-off, or a count correction."""
    return _adjust_page(web)


@router.action("/warehouse/adjustments", roles=access.STOCK_WRITERS)
def adjust(
    web: WebDep,
    lot: Annotated[str, Form()] = "",
    delta: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
    form_key: Annotated[str, Form(alias=FORM_KEY)] = "",
) -> Response:
    """One adjustment of one lot in one warehouse; a reason is required."""
    again = replayed(web, form_key)
    if again is not None:
        return again
    errors = Errors()
    where, _, lot_raw = lot.partition(":")
    warehouse_id, lot_id = _int(where), _int(lot_raw)
    if warehouse_id is None or lot_id is None:
        errors.add("lot", N_("Choose a lot."))
    change = parse_quantity(delta, "delta", errors, signed=True)
    if reason not in {r.value for r in AdjustmentReason}:
        errors.add("reason", N_("Choose a reason."))
    elif change is not None and change > 0 and reason != AdjustmentReason.count_correction:
        errors.add("delta", N_("A write-off removes units: enter a negative number."))
    if len(note) > 500:
        errors.add("note", N_("At most 500 characters."))
    values = {"lot": lot, "delta": delta, "reason": reason, "note": note}

    def refuse(status_code: int) -> Response:
        _refused(web)
        return _adjust_page(
            web, values=values, form_key=form_key, errors=errors, status_code=status_code
        )

    if errors:
        return refuse(422)
    assert warehouse_id is not None and lot_id is not None and change is not None
    try:
        stock.adjust(
            web.session,
            warehouse_id=warehouse_id,
            lot_id=lot_id,
            delta=change,
            reason=AdjustmentReason(reason),
            note=note.strip() or None,
            actor=web.user,
        )
    except RelieflinkError as exc:
        for error in exc.errors:
            errors.add(str(error.loc[-1]) if error.loc else "delta", error.msg)
        errors.general.insert(0, exc.message)
        return refuse(exc.status_code)
    return done(web, form_key, f"/warehouse/adjustments?warehouse_id={warehouse_id}&recorded=1")
