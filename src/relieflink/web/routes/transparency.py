"""The public transparency page (``/transparency``) and its JSON feed (``/transparency.json``):
no sign-in and no personal data. Per programme and per donor, where the gifts are (the donor
trace's own figures), households reached by district and week with small numbers suppressed,
and the open-data files (IATI per programme, HXL without household counts).

The figures come from ``reports.transparency`` (computed once per ledger state); the answers
may be kept by browsers and proxies for ``CACHE_SECONDS``.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from relieflink.reports import transparency
from relieflink.reports.transparency import FIGURES, Party, Transparency
from relieflink.stock import exports
from relieflink.stock.service import exact
from relieflink.web.deps import SessionDep
from relieflink.web.pages import N_, PageRouter
from relieflink.web.rendering import render_page

router = PageRouter()
PUBLIC_CACHE = {
    "Cache-Control": f"public, max-age={transparency.CACHE_SECONDS}",
    "Vary": "Cookie, Accept-Language",
}
# The columns of the programme and donor tables: (figure, header message id).
COLUMNS = [
    ("pledged", N_("Pledged")),
    ("received", N_("Received")),
    ("in_stock", N_("In stock")),
    ("in_transit", N_("In transit")),
    ("on_the_way", N_("On the way")),
    ("delivered", N_("Delivered to doors")),
    ("written_off", N_("Written off")),
]


def _public(response: Response) -> Response:
    """May be kept by shared caches: so it sets no cookie (not even the sign-in form's)."""
    response.headers.update(PUBLIC_CACHE)
    if "set-cookie" in response.headers:
        del response.headers["set-cookie"]
    return response


@router.get("/transparency", response_class=HTMLResponse)
def page(request: Request, session: SessionDep) -> Response:
    """The public page: in the visitor's language, cached."""
    figures = transparency.public_figures(session)
    context = {
        "t": figures,
        "columns": COLUMNS,
        "zip": zip,
    }
    return _public(render_page(request, "transparency/page.html", context))


def _party(party: Party) -> dict[str, Any]:
    return {
        "code": party.code,
        "name": party.name,
        "name_zh": party.name_zh,
        "pledged_value_cny": exact(Fraction(party.pledged_value_fen, 100)),
        "received_value_cny": exact(Fraction(party.received_value_fen, 100)),
        "lines": [
            {"sku": line.sku, "name": line.name, "name_zh": line.name_zh, "unit": line.unit}
            | {attr: exact(getattr(line, attr)) for attr in FIGURES}
            for line in party.lines
        ],
    }


def feed(t: Transparency) -> dict[str, Any]:
    """The JSON feed: quantities exact (``"7/3"`` where a kit's share is a fraction), hidden
    household counts ``null``."""
    table = t.reach.table
    return {
        "generated_at": t.generated_at.isoformat(),
        "units": "units of each item or kit; values in CNY",
        "programs": [_party(p) for p in t.programs],
        "donors": [_party(d) for d in t.donors],
        "households_reached": {
            "counts": "households reached at the door per district and week (Monday); a "
            "household reached in two weeks counts in both; null: hidden (from 1 to "
            f"{t.reach.threshold - 1}, or so that no hidden count can be worked out)",
            "weeks": [w.isoformat() for w in t.reach.weeks],
            "districts": [
                {"code": code, "name": name, "name_zh": name_zh, "weeks": cells, "total": total}
                for (code, name, name_zh), cells, total in zip(
                    t.reach.districts, table.cells, table.row_totals, strict=True
                )
            ],
            "week_totals": table.col_totals,
            "total": table.total,
        },
        "files": {
            "iati": [{"program": code, "url": url} for code, url in t.files],
            "hxl": "/transparency/hxl.csv",
        },
    }


@router.get("/transparency.json")
def transparency_json(session: SessionDep) -> Response:
    return _public(JSONResponse(feed(transparency.public_figures(session))))


@router.get("/transparency/iati/{program_id}.xml")
def iati(program_id: int, session: SessionDep) -> Response:
    """A programme's pledges and disbursements as an IATI activity file."""
    body = exports.iati_activity_xml(session, program_id)
    return _public(Response(body, media_type="application/xml"))


@router.get("/transparency/hxl.csv")
def hxl(session: SessionDep) -> Response:
    """Stock and distribution per donor, item and warehouse, HXL-tagged (no household counts)."""
    body = exports.hxl_csv(session, households=False)
    return _public(Response(body, media_type="text/csv; charset=utf-8"))
