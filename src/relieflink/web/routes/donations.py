"""Donations and partners: pledges with their status and message thread, and the donor's trace.

Rows are scoped by the donations service: a donor (or a recipient NGO's staff) sees only the
pledges and threads of their own organization; coordinators see all. The trace page shows, per
item, what a donor pledged and where the received units are now (in stock, in transit,
delivered, written off), from ``stock.donor_report``; those four add up to what was received,
exactly, and the page says so per row.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Annotated, Any

from fastapi import Form
from fastapi.responses import HTMLResponse, Response

from relieflink import db
from relieflink.donations import service as donations
from relieflink.donations.schemas import MessageIn, PledgeFilters
from relieflink.errors import FieldError, Forbidden, Invalid, RelieflinkError
from relieflink.models import OrgKind, Pledge, PledgeStatus, Role
from relieflink.organizations import service as organizations
from relieflink.organizations.schemas import OrganizationFilters
from relieflink.stock import service as stock
from relieflink.users import access
from relieflink.web import formats
from relieflink.web.forms import FORM_KEY, Errors, done, new_form_key, replayed
from relieflink.web.listing import (
    PAGE_SIZE,
    Column,
    Filter,
    Listing,
    clean_params,
    parse_filters,
    parse_offset,
)
from relieflink.web.pages import N_, PageRouter, Web, WebDep
from relieflink.web.supply import (
    MESSAGE_KIND_LABELS,
    PLEDGE_STATUS_LABELS,
    STATUS_ACTIONS,
    Names,
)

router = PageRouter()
THREAD_LIMIT = 1000  # messages shown on a pledge page (a thread is a conversation, not a log)


def _thread(pledge_id: int) -> str:
    return f"pledge:{pledge_id}"


# --- the list ---------------------------------------------------------------------------------


@router.page("/donations", roles=access.PLEDGE_READERS, nav=N_("Donations"), order=35)
def pledge_list(web: WebDep) -> HTMLResponse:
    """Pledges the user's organization gives or receives (staff: all), with unread messages."""
    query = web.request.query_params
    staff = web.user.role in access.STAFF
    names = ["status", "program_id"] + (["donor_org_id"] if staff else [])
    params = clean_params(query, names)
    offset = parse_offset(query.get("offset"))
    filters = parse_filters(
        PledgeFilters, params | {"offset": str(offset), "limit": str(PAGE_SIZE)}
    )
    rows, total = donations.list_pledges(web.session, filters, actor=web.user)
    unread = donations.unread_counts(web.session, actor=web.user)
    n = Names(web.session, web.lang)
    columns = [
        Column(N_("Pledge"), lambda p, _l: f"#{p.id}", link=lambda p: f"/donations/{p.id}"),
        Column(N_("Donor"), lambda p, _l: n.org(p.donor_org_id)),
        Column(N_("Recipient"), lambda p, _l: n.org(p.recipient_org_id)),
        Column(N_("Program"), lambda p, _l: n.program(p.program_id)),
        Column(N_("Status"), lambda p, _l: PLEDGE_STATUS_LABELS[p.status], translate=True),
        Column(
            N_("Declared value (CNY)"),
            lambda p, lang: formats.money(p.declared_value_fen, lang),
            numeric=True,
        ),
        Column(N_("Expected"), lambda p, lang: formats.day(p.expected_arrival, lang)),
        Column(N_("Unread"), lambda p, _l: unread.get(_thread(p.id), 0), numeric=True),
    ]
    programs = [(str(p.id), n.program(p.id)) for p in donations.list_programs(web.session)]
    filters_shown = [
        Filter("status", N_("Status"), [(str(k), v) for k, v in PLEDGE_STATUS_LABELS.items()]),
        Filter("program_id", N_("Program"), programs),
    ]
    if staff:
        donors, _ = organizations.list_organizations(
            web.session, OrganizationFilters(kind=OrgKind.donor), limit=500
        )
        filters_shown.append(
            Filter("donor_org_id", N_("Donor"), [(str(d.id), n.org(d.id)) for d in donors])
        )
    listing = Listing(
        title=N_("Pledges"),
        columns=columns,
        rows=rows,
        total=total,
        offset=offset,
        params=params,
        filters=filters_shown,
    )
    return web.render("list.html", {"listing": listing})


# --- the donor's trace ------------------------------------------------------------------------


@dataclass
class TraceRow:
    label: str
    unit: str
    pledged: int
    received: int
    in_stock: Fraction
    in_transit: Fraction
    on_the_way: Fraction
    delivered: Fraction
    written_off: Fraction
    balanced: bool


# Segments of a row's bar, in the order drawn: (attribute, legend message id, CSS class).
SEGMENTS = [
    ("delivered", N_("Delivered"), "seg-delivered"),
    ("on_the_way", N_("On the way"), "seg-on-the-way"),
    ("in_stock", N_("In stock"), "seg-stock"),
    ("in_transit", N_("In transit"), "seg-transit"),
    ("written_off", N_("Written off"), "seg-written-off"),
]
CHART_WIDTH = 1000  # the bars' own coordinates; each bar stretches to the page's width


def _chart(rows: list[TraceRow], lang: str) -> list[dict[str, Any]]:
    """Bars of the chart (drawn as inline SVG, one per item, labels in HTML so that they wrap on
    a phone): the received units split by where they are now, over a dashed outline of what was
    pledged, all on one scale."""
    scale = max([max(r.pledged, r.received) for r in rows] + [1])
    bars = []
    for r in rows:
        x = Fraction(0)
        segments = []
        for attr, label, css in SEGMENTS:
            value = max(Fraction(getattr(r, attr)), Fraction(0))
            w = value / scale * CHART_WIDTH
            if w > 0:
                segments.append(
                    {"x": round(float(x), 2), "w": round(float(w), 2), "css": css,
                     "label": label, "value": formats.units(value, lang)}
                )  # fmt: skip
            x += w
        bars.append(
            {
                "label": r.label,
                "pledged": r.pledged,
                "received": r.received,
                "pledged_w": round(r.pledged / scale * CHART_WIDTH, 2),
                "segments": segments,
            }
        )
    return bars


def _donor_for(web: Web) -> int | None:
    """A donor sees their own organization's trace only; staff and warehouse staff pick one."""
    raw = web.request.query_params.get("donor_org_id", "").strip()
    asked = int(raw) if raw.isdigit() else None
    if web.user.role == Role.donor:
        if web.user.organization_id is None:
            raise Forbidden("a donor account must belong to an organization")
        if asked not in (None, web.user.organization_id):
            raise Forbidden("a donor sees its own organization's trace only")
        return web.user.organization_id
    return asked


def _programs_of(web: Web, donor_org_id: int, names: Names) -> list[tuple[str, str]]:
    pledges, _ = donations.list_pledges(
        web.session, PledgeFilters(donor_org_id=donor_org_id, limit=500), actor=web.user
    )
    ids = sorted({p.program_id for p in pledges})
    return [(str(i), names.program(i)) for i in ids]


@router.page("/donations/trace", roles=access.DONOR_TRACE_READERS, nav=N_("Donor trace"), order=36)
def trace(web: WebDep) -> HTMLResponse:
    """Per item (and program): pledged → received → in stock / in transit / delivered / written
    off, with a bar chart."""
    names = Names(web.session, web.lang)
    donor_org_id = _donor_for(web)
    raw_program = web.request.query_params.get("program_id", "").strip()
    program_id = int(raw_program) if raw_program.isdigit() else None
    donors: list[tuple[str, str]] = []
    if web.user.role != Role.donor:
        found, _ = organizations.list_organizations(
            web.session, OrganizationFilters(kind=OrgKind.donor), limit=500
        )
        donors = [(str(d.id), names.org(d.id)) for d in found]
    context: dict[str, Any] = {
        "donors": donors,
        "donor_org_id": donor_org_id,
        "donor_name": names.org(donor_org_id) if donor_org_id else None,
        "program_id": program_id,
        "programs": [],
        "rows": [],
        "segments": SEGMENTS,
        "chart": None,
        "totals": None,
    }
    if donor_org_id is None:
        return web.render("donations/trace.html", context)
    programs = _programs_of(web, donor_org_id, names)
    if program_id is not None and str(program_id) not in dict(programs):
        program_id = None  # not one of this donor's programs: show them all
    figures = stock.donor_report(web.session, donor_org_id=donor_org_id, program_id=program_id)
    rows = [
        TraceRow(
            label=names.sku(f.item_id, f.kit_id),
            unit=names.unit(f.item_id),
            pledged=f.pledged,
            received=f.received,
            in_stock=f.in_stock,
            in_transit=f.in_transit,
            on_the_way=f.on_the_way,
            delivered=f.delivered,
            written_off=f.written_off,
            balanced=f.balanced,
        )
        for f in figures
    ]
    totals = {
        "pledged_value": formats.money(sum(f.pledged_value_fen for f in figures), web.lang),
        "received_value": formats.money(sum(f.received_value_fen for f in figures), web.lang),
        "in_stock_value": formats.money(
            sum((f.in_stock_value_fen for f in figures), Fraction(0)), web.lang
        ),
        "delivered_value": formats.money(
            sum((f.delivered_value_fen for f in figures), Fraction(0)), web.lang
        ),
    }
    context |= {
        "program_id": program_id,
        "programs": programs,
        "rows": rows,
        "chart": _chart(rows, web.lang) if rows else None,
        "totals": totals,
    }
    return web.render("donations/trace.html", context)


# --- one pledge -------------------------------------------------------------------------------


def _lines(web: Web, pledge: Pledge, names: Names) -> list[dict[str, Any]]:
    """The pledge's lines per item (or kit): pledged, received so far, still to come."""
    received = donations.received_so_far(web.session, pledge.id)
    merged: dict[tuple[int | None, int | None], dict[str, Any]] = {}
    for line in donations.pledge_lines(web.session, pledge.id):
        key = (line.item_id, line.kit_id)
        row = merged.setdefault(
            key,
            {"label": names.sku(*key), "unit": names.unit(line.item_id), "pledged": 0,
             "value_fen": 0},
        )  # fmt: skip
        row["pledged"] += line.quantity
        row["value_fen"] += line.quantity * line.unit_value_fen
    for key in received:
        merged.setdefault(
            key,
            {"label": names.sku(*key), "unit": names.unit(key[0]), "pledged": 0, "value_fen": 0},
        )
    out = []
    for key, row in merged.items():
        got = received.get(key, 0)
        out.append(
            row
            | {
                "received": got,
                "outstanding": max(row["pledged"] - got, 0),
                "value": formats.money(row["value_fen"], web.lang),
                "over": got > row["pledged"],
            }
        )
    return out


def _pledge_page(
    web: Web,
    pledge_id: int,
    *,
    errors: Errors | None = None,
    body: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    pledge = donations.require_pledge(web.session, pledge_id, actor=web.user)
    names = Names(web.session, web.lang)
    thread = _thread(pledge.id)
    unread = donations.unread_counts(web.session, actor=web.user).get(thread, 0)
    messages = donations.read_thread(web.session, thread, actor=web.user, limit=THREAD_LIMIT)
    # The newest ``unread`` messages by others were new to this reader before the page marked
    # them read.
    others = [m.id for m in messages if m.author_id != web.user.id]
    new_ids = set(others[len(others) - unread :]) if unread else set()
    history = [
        {
            "from": PLEDGE_STATUS_LABELS[PledgeStatus(h.from_status)] if h.from_status else None,
            "to": PLEDGE_STATUS_LABELS[h.to_status],
            "who": names.user(h.actor_id),
            "at": formats.moment(h.at, web.lang),
            "note": h.note,
        }
        for h in donations.pledge_history(web.session, pledge.id)
    ]
    discrepancies = [
        {
            "label": names.sku(d.item_id, d.kit_id),
            "pledged": d.pledged,
            "received": d.received,
            "note": d.note,
            "receipt_id": d.receipt_id,
            "at": formats.moment(d.created_at, web.lang),
        }
        for d in donations.discrepancies(web.session, pledge.id, actor=web.user)
    ]
    thread_rows = [
        {
            "id": m.id,
            "kind": m.kind,
            "kind_label": MESSAGE_KIND_LABELS[m.kind],
            "author": names.user(m.author_id),
            "mine": m.author_id == web.user.id,
            "new": m.id in new_ids,
            "body": m.body,
            "at": formats.moment(m.created_at, web.lang),
            "receipt_id": m.receipt_id,
        }
        for m in messages
    ]
    receivable = web.user.role in access.STOCK_WRITERS and donations.accepts_receipts(pledge)
    context = {
        "pledge": pledge,
        "status_label": PLEDGE_STATUS_LABELS[pledge.status],
        "donor": names.org(pledge.donor_org_id),
        "recipient": names.org(pledge.recipient_org_id),
        "program": names.program(pledge.program_id),
        "declared_value": formats.money(pledge.declared_value_fen, web.lang),
        "lines": _lines(web, pledge, names),
        "history": history,
        "actions": [
            (s.value, STATUS_ACTIONS[s]) for s in donations.allowed_changes(pledge, actor=web.user)
        ],
        "discrepancies": discrepancies,
        "messages": thread_rows,
        "unread": unread,
        "receivable": receivable,
        "errors": errors or Errors(),
        "body": body,
        # One key per form: each form's double submit is caught on its own.
        "status_key": new_form_key(),
        "message_key": new_form_key(),
    }
    return web.render("donations/pledge.html", context, status_code=status_code)


@router.page("/donations/{pledge_id}", roles=access.PLEDGE_READERS)
def pledge_detail(pledge_id: int, web: WebDep) -> HTMLResponse:
    """A pledge: lines, status history, the allowed status changes, discrepancies and the thread
    (opening it marks the thread read)."""
    return _pledge_page(web, pledge_id)


def _refused(web: Web) -> None:
    """Undo everything the refused form did (its key too), and take the write lock again."""
    web.session.rollback()
    db.begin_write(web.session)


@router.action("/donations/{pledge_id}/messages", roles=access.PLEDGE_READERS)
def post_message(
    pledge_id: int,
    web: WebDep,
    body: Annotated[str, Form()] = "",
    form_key: Annotated[str, Form(alias=FORM_KEY)] = "",
) -> Response:
    """Post to the pledge's thread (sent twice, it is posted once)."""
    donations.require_pledge(web.session, pledge_id, actor=web.user)
    again = replayed(web, form_key)
    if again is not None:
        return again
    errors = Errors()
    text = body.strip()
    if not text:
        errors.add("body", N_("Write a message first."))
    elif len(text) > 5000:
        errors.add("body", N_("At most 5000 characters."))
    if errors:
        _refused(web)
        return _pledge_page(web, pledge_id, errors=errors, body=body, status_code=422)
    message = donations.post_message(
        web.session, _thread(pledge_id), MessageIn(body=text), actor=web.user
    )
    return done(web, form_key, f"/donations/{pledge_id}#message-{message.id}")


@router.action("/donations/{pledge_id}/status", roles=access.PLEDGE_READERS)
def change_status(
    pledge_id: int,
    web: WebDep,
    status: Annotated[str, Form()] = "",
    note: Annotated[str, Form(max_length=500)] = "",
    form_key: Annotated[str, Form(alias=FORM_KEY)] = "",
) -> Response:
    """Confirm, close or cancel (only the changes offered to this role; recorded and posted)."""
    pledge = donations.require_pledge(web.session, pledge_id, actor=web.user)
    again = replayed(web, form_key)
    if again is not None:
        return again
    allowed = {s.value for s in donations.allowed_changes(pledge, actor=web.user)}
    if status not in allowed:
        raise Invalid(
            "this status change is not offered to you now",
            [FieldError(("status",), f"choose one of {sorted(allowed) or 'none'}")],
        )
    try:
        donations.change_status(
            web.session, pledge_id, PledgeStatus(status), actor=web.user, note=note.strip() or None
        )
    except RelieflinkError as exc:
        _refused(web)
        errors = Errors(general=[exc.message])
        return _pledge_page(web, pledge_id, errors=errors, status_code=exc.status_code)
    return done(web, form_key, f"/donations/{pledge_id}#history")
