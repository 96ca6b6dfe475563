"""The gift declaration of a shipment abroad: what customs and the receiving NGO need, as data
(the API's JSON), plain text, a bilingual printable HTML page and its PDF (WeasyPrint).

Values are the donors' declared values at receipt, in CNY; weights come from the catalog (net:
``grams_per_unit``; gross: ``gross_grams_per_unit``, with packaging); a kit is declared as one
set under its own HS code, else its main item's (the heaviest, GIR 3 b).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import Session

from relieflink.catalog import service as catalog
from relieflink.models import Organization, Program, StockLot, User, Warehouse
from relieflink.stock import ledger, repository, trace
from relieflink.stock.transfers import require_transfer

CURRENCY = "CNY"
VALUE_BASIS = (
    "Donors' declared value of the goods at receipt (2022 retail prices); a humanitarian gift: "
    "no commercial value is charged to the consignee."
)
VALUE_BASIS_ZH = (
    "捐赠方在入库时申报的物资价值（按2022年零售价）；人道主义捐赠，不向收货人收取任何费用。"
)
ROLE_NAMES = {  # how a signatory's role is written on the paper (English / Chinese)
    "admin": ("Administrator", "管理员"),
    "coordinator": ("Relief coordinator", "救援协调员"),
    "warehouse": ("Warehouse officer", "仓库管理员"),
}
_TEMPLATES = Path(__file__).with_name("templates")


def _party(session: Session, warehouse: Warehouse) -> dict[str, Any]:
    org = session.get(Organization, warehouse.owner_id)
    assert org is not None  # a warehouse's owner is a foreign key
    return {
        "organization": org.name,
        "organization_zh": org.name_zh,
        "address": org.address,
        "contact": org.contact,
        "country": org.country,
        "warehouse": warehouse.name,
        "warehouse_zh": warehouse.name_zh,
    }


def _goods(session: Session, lot: StockLot) -> dict[str, Any]:
    """SKU, names, unit, HS code and net/gross grams of one unit of a lot's item or kit."""
    if lot.item_id is not None:
        item = catalog.require_item(session, lot.item_id)
        return {
            "sku": item.sku, "name": item.name, "name_zh": item.name_zh, "unit": item.unit,
            "hs_code": item.hs_code, "net_g": item.grams_per_unit,
            "gross_g": item.gross_grams_per_unit,
        }  # fmt: skip
    kit = catalog.require_kit(session, lot.kit_id)  # type: ignore[arg-type]
    main = max(kit.lines, key=lambda line: line.item.grams_per_unit * line.quantity)
    gross = [(line.item.gross_grams_per_unit, line.quantity) for line in kit.lines]
    known = [g * q for g, q in gross if g is not None]
    return {
        "sku": kit.sku, "name": kit.name, "name_zh": kit.name_zh, "unit": "kit",
        "hs_code": kit.hs_code or main.item.hs_code, "net_g": catalog.kit_size(kit)[0],
        "gross_g": sum(known) if len(known) == len(gross) else None,
    }  # fmt: skip


def shipped(session: Session, transfer_id: int) -> list[tuple[StockLot, int, Fraction]]:
    """A shipment's lines: the lot, the units shipped and their declared value in exact fen
    (the lot's donated value pro rata)."""
    lines = repository.transfer_lines(session, transfer_id)
    lots = repository.lots_by_id(session, [m.lot_id for m in lines])
    sources = repository.sources_of(session, list(lots))
    out = []
    for m in lines:
        lot = lots[m.lot_id]
        lot_value = Fraction(sum(s.value_fen for s in sources[lot.id]))
        out.append((lot, m.d_in_transit, lot_value * m.d_in_transit / lot.quantity))
    return out


def gift_declaration(
    session: Session, *, transfer_id: int, signatory: User | None = None
) -> dict[str, Any]:
    """The gift declaration of a (cross-border) shipment: consignor and consignee, program and
    country, per line the HS code, quantity, net and gross weight, value and donors; the value
    basis and currency; and who signs (``signatory``, else the user who shipped it)."""
    shipment = require_transfer(session, transfer_id)
    source = ledger.require_warehouse(session, shipment.from_warehouse_id)
    dest = ledger.require_warehouse(session, shipment.to_warehouse_id)
    lines = shipped(session, transfer_id)
    shares = trace.lot_shares(session, [lot.id for lot, _, _ in lines])
    orgs = {o.id: o for o in repository.all_of(session, Organization)}
    rows = []
    total = Fraction(0)
    net_total = 0
    gross_total: int | None = 0  # None once a line's gross weight is unknown
    for lot, quantity, value in lines:
        goods = _goods(session, lot)
        total += value
        net = goods["net_g"] * quantity
        gross = goods["gross_g"] * quantity if goods["gross_g"] is not None else None
        net_total += net
        gross_total = None if gross is None or gross_total is None else gross_total + gross
        rows.append(
            {
                **{k: goods[k] for k in ("sku", "name", "name_zh", "unit", "hs_code")},
                "description": goods["name"],
                "lot_id": lot.id,
                "expiry": lot.expiry.isoformat() if lot.expiry else None,
                "quantity": quantity,
                "net_weight_g": net,
                "gross_weight_g": gross,
                "value_fen": trace.exact(value),
                "donors": [
                    {
                        "organization": orgs[d].name if d in orgs else f"organization {d}",
                        "share_of_units": trace.exact(f * quantity),
                    }
                    for d, f in sorted(shares[lot.id].items())
                ],
            }
        )
    program = session.get(Program, shipment.program_id) if shipment.program_id else None
    signer = signatory or (
        session.get(User, shipment.created_by_id) if shipment.created_by_id else None
    )
    return {
        "transfer_id": shipment.id,
        "date": shipment.created_at.date().isoformat(),
        "cross_border": shipment.cross_border,
        "consignor": _party(session, source),
        "consignee": _party(session, dest),
        "destination_country": shipment.destination_country,
        "program": (
            {
                "code": program.code,
                "name": program.name,
                "name_zh": program.name_zh,
                "country": program.country,
                "region": program.region,
            }
            if program is not None
            else None
        ),
        "declaration": "Humanitarian gift: no commercial value is charged to the consignee.",
        "currency": CURRENCY,
        "value_basis": VALUE_BASIS,
        "value_basis_zh": VALUE_BASIS_ZH,
        "lines": rows,
        "total_value_fen": trace.exact(total),
        "total_net_weight_g": net_total,
        "total_gross_weight_g": gross_total,
        "signatory": (
            {"name": signer.full_name, "role": str(signer.role)} if signer is not None else None
        ),
    }


def _yuan(fen: str) -> str:
    return f"{float(Fraction(fen) / 100):,.2f}"


def _kg(grams: int | None) -> str:
    return "—" if grams is None else f"{grams / 1000:,.2f}"


def render_gift_declaration(d: dict[str, Any]) -> str:
    """A plain-text rendering of :func:`gift_declaration`."""
    program = d["program"]
    out = [
        "GIFT DECLARATION / 捐赠物资申报单",
        f"Shipment {d['transfer_id']} dated {d['date']}",
    ]
    for label, p in (("Consignor", d["consignor"]), ("Consignee", d["consignee"])):
        out.append(
            f"{label}: {p['organization']}, {p['address'] or '(no address on file)'}, "
            f"{p['country']}; contact {p['contact'] or '-'}; warehouse {p['warehouse']}"
        )
    if program:
        out.append(
            f"Programme: {program['name']} ({program['code']}), country {program['country']}"
        )
    out += [
        str(d["declaration"]),
        f"Currency: {d['currency']}. Value basis: {d['value_basis']}",
        "",
        f"{'SKU':<20} {'HS code':<10} {'Description':<28} {'Lot':>5} {'Qty':>6} "
        f"{'Net kg':>9} {'Gross kg':>9} {'Value ' + d['currency']:>13}",
    ]
    for row in d["lines"]:
        out.append(
            f"{row['sku']:<20} {row['hs_code'] or '-':<10} {row['name'][:28]:<28} "
            f"{row['lot_id']:>5} {row['quantity']:>6} {_kg(row['net_weight_g']):>9} "
            f"{_kg(row['gross_weight_g']):>9} {_yuan(row['value_fen']):>13}"
        )
        donors = "; ".join(f"{x['organization']} ({x['share_of_units']})" for x in row["donors"])
        out.append(f"    donors: {donors}")
    signer = d["signatory"] or {"name": "____________", "role": "____________"}
    out += [
        "",
        f"Total net weight: {_kg(d['total_net_weight_g'])} kg; "
        f"total gross weight: {_kg(d['total_gross_weight_g'])} kg",
        f"Total declared value: {d['currency']} {_yuan(d['total_value_fen'])}",
        "",
        f"Signed: ____________   Name: {signer['name']}   Role: {_role(signer['role'])[0]}",
    ]
    return "\n".join(out)


def _whole(share: str) -> bool:
    """Whether an exact share (``"12"``, ``"20/3"``) is a whole number of units."""
    return "/" not in share


def _role(role: str) -> tuple[str, str]:
    return ROLE_NAMES.get(role, (role, role))


def gift_declaration_html(d: dict[str, Any]) -> str:
    """The printable page (A4, English and Chinese labels side by side) of a declaration."""
    env = Environment(
        loader=FileSystemLoader(_TEMPLATES), autoescape=select_autoescape(), trim_blocks=True
    )
    env.filters.update(yuan=_yuan, kg=_kg)
    env.globals["whole"] = _whole
    signer = d["signatory"]
    role = _role(signer["role"]) if signer else None
    return env.get_template("gift_declaration.html").render(d=d, role=role)


def gift_declaration_pdf(d: dict[str, Any]) -> bytes:
    """The printable page as PDF (WeasyPrint; needs Pango, see the README)."""
    from weasyprint import HTML  # imported here: loading Pango takes a moment

    return bytes(HTML(string=gift_declaration_html(d)).write_pdf())
