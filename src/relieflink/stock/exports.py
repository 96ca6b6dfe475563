"""Exports for the humanitarian data ecosystem.

* IATI activity file (XML, IATI standard 2.03): one activity per program, in its recipient
  country; each pledge is an incoming commitment (transaction type 11) from its donor, the value
  of goods issued to deliveries out of that program's lots is a disbursement (type 3), per donor
  and day, and so is each cross-border shipment the program sends abroad (to its consignee, at
  the value of its gift declaration), which is how a program run abroad gets its transactions.
* HXL-tagged CSV of stock and distribution totals (#org, #item, #loc, #adm1, #reached+hh, ...).
"""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction

from sqlalchemy.orm import Session

from relieflink import clock
from relieflink.common import files
from relieflink.errors import NotFound
from relieflink.models import (
    Item,
    Kit,
    LotSource,
    Organization,
    Program,
    StockLot,
    StockTransfer,
    Warehouse,
)
from relieflink.stock import declarations, repository, transfers

IATI_VERSION = "2.03"
# The order of the child elements of <iati-activity> and <transaction> in the IATI schema.
ACTIVITY_ORDER = [
    "iati-identifier", "reporting-org", "title", "description", "participating-org",
    "other-identifier", "activity-status", "activity-date", "contact-info", "activity-scope",
    "recipient-country", "recipient-region", "location", "sector", "tag",
    "country-budget-items", "humanitarian-scope", "policy-marker", "collaboration-type",
    "default-flow-type", "default-finance-type", "default-aid-type", "default-tied-status",
    "budget", "planned-disbursement", "capital-spend", "transaction", "document-link",
    "related-activity", "legacy-data", "conditions", "result", "crs-add", "fss",
]  # fmt: skip
TRANSACTION_ORDER = [
    "transaction-type", "transaction-date", "value", "description", "provider-org",
    "receiver-org", "disbursement-channel", "sector", "recipient-country", "recipient-region",
    "flow-type", "finance-type", "aid-type", "tied-status",
]  # fmt: skip
# IATI OrganisationType codes.
ORG_TYPE = {"ngo": "21", "donor": "70", "government": "10", "carrier": "70",
            "health_provider": "21", "committee": "22"}  # fmt: skip


def _narrative(parent: ET.Element, tag: str, text: str, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrs)
    ET.SubElement(el, "narrative").text = text
    return el


def _money(fen: Fraction | int) -> str:
    """Yuan with two decimals, from an exact amount of fen (half-up)."""
    f = Fraction(fen)
    cents = (f.numerator * 2 + f.denominator) // (2 * f.denominator)
    return f"{cents // 100}.{cents % 100:02d}"


def _org_el(parent: ET.Element, tag: str, org: Organization, **attrs: str) -> None:
    _narrative(parent, tag, org.name, ref=org.code, type=ORG_TYPE.get(org.kind, "70"), **attrs)


def disbursements(session: Session, program_id: int) -> dict[tuple[int, date], Fraction]:
    """Value in fen of goods delivered at the door out of the program's donated goods, per
    (donor, day of the handover); goods loaded and on the way are not disbursed yet. Assembled
    kits count each contributing donor's component value."""
    lot_program = repository.receipt_lot_programs(session)
    per_lot: dict[int, list[tuple[int, Fraction]]] = defaultdict(list)
    for source, lot in repository.all_sources(session, None):
        origin = source.source_lot_id if source.source_lot_id is not None else lot.id
        if lot_program.get(origin) != program_id:
            continue
        per_lot[lot.id].append((source.donor_org_id, Fraction(source.value_fen, lot.quantity)))
    if not per_lot:
        return {}
    out: dict[tuple[int, date], Fraction] = defaultdict(Fraction)
    for lot_id, at, units in repository.handovers_of_lots(session, list(per_lot)):
        for donor, unit_value in per_lot[lot_id]:
            out[(donor, at.date())] += unit_value * units
    return {k: v for k, v in sorted(out.items()) if v}


def iati_activity_xml(session: Session, program_id: int) -> bytes:
    """The program as an IATI activity file (UTF-8 XML)."""
    program = session.get(Program, program_id)
    if program is None:
        raise NotFound(f"no program with id {program_id}")
    reporter = session.get(Organization, program.organization_id)
    assert reporter is not None
    pledges = repository.program_pledges(session, program_id)
    orgs = {o.id: o for o in repository.all_of(session, Organization)}
    now = clock.now().replace(microsecond=0).isoformat()
    root = ET.Element("iati-activities", {"version": IATI_VERSION, "generated-datetime": now})
    act = ET.SubElement(
        root,
        "iati-activity",
        {
            "last-updated-datetime": now,
            "{http://www.w3.org/XML/1998/namespace}lang": "en",
            "default-currency": "CNY",
            "humanitarian": "1",
        },
    )
    ET.SubElement(act, "iati-identifier").text = f"{reporter.code}-{program.code}"
    _org_el(act, "reporting-org", reporter)
    _narrative(act, "title", program.name)
    desc = ET.SubElement(act, "description", {"type": "1"})
    ET.SubElement(desc, "narrative").text = f"In-kind relief in {program.region}: {program.name}"
    donors = sorted({p.donor_org_id for p in pledges})
    for donor_id in donors:
        _org_el(act, "participating-org", orgs[donor_id], role="1")  # funding
    _org_el(act, "participating-org", reporter, role="4")  # implementing
    ET.SubElement(act, "activity-status", {"code": "2"})  # implementation
    shipments = repository.program_transfers(session, program_id)
    dated = [p.created_at.date() for p in pledges] + [t.created_at.date() for t in shipments]
    start = program.start_date or min(dated, default=None)
    # The schema needs one date: the actual start (type 2), else the planned one (1).
    ET.SubElement(
        act,
        "activity-date",
        {
            "iso-date": (start or program.created_at.date()).isoformat(),
            "type": "2" if start else "1",
        },
    )
    ET.SubElement(act, "recipient-country", {"code": program.country, "percentage": "100"})
    ET.SubElement(act, "sector", {"code": "720", "vocabulary": "2", "percentage": "100"})
    ET.SubElement(act, "default-flow-type", {"code": "30"})  # private development finance
    ET.SubElement(act, "default-finance-type", {"code": "110"})  # standard grant
    ET.SubElement(act, "default-tied-status", {"code": "5"})  # untied
    for p in pledges:
        pledged_on = p.created_at.date().isoformat()
        tx = ET.SubElement(act, "transaction", {"ref": f"pledge-{p.id}", "humanitarian": "1"})
        ET.SubElement(tx, "transaction-type", {"code": "11"})  # incoming commitment
        ET.SubElement(tx, "transaction-date", {"iso-date": pledged_on})
        value = ET.SubElement(tx, "value", {"currency": "CNY", "value-date": pledged_on})
        value.text = _money(p.declared_value_fen)
        _narrative(tx, "description", f"In-kind pledge {p.id} ({p.status})")
        _org_el(tx, "provider-org", orgs[p.donor_org_id])
        _org_el(tx, "receiver-org", orgs[p.recipient_org_id])
    for (donor_id, day), fen in disbursements(session, program_id).items():
        tx = ET.SubElement(
            act, "transaction", {"ref": f"disb-{donor_id}-{day.isoformat()}", "humanitarian": "1"}
        )
        ET.SubElement(tx, "transaction-type", {"code": "3"})  # disbursement
        ET.SubElement(tx, "transaction-date", {"iso-date": day.isoformat()})
        value = ET.SubElement(tx, "value", {"currency": "CNY", "value-date": day.isoformat()})
        value.text = _money(fen)
        _narrative(tx, "description", f"Goods given by {orgs[donor_id].name} distributed")
        _org_el(tx, "provider-org", reporter)
        _narrative(tx, "receiver-org", "Households in " + program.region)
    for shipment in shipments:
        _shipment_transaction(session, act, shipment, reporter, orgs)
    ET.indent(root)
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


def _shipment_transaction(
    session: Session,
    act: ET.Element,
    shipment: StockTransfer,
    reporter: Organization,
    orgs: dict[int, Organization],
) -> None:
    """A cross-border shipment as a disbursement of goods to the consignee, on its ship date."""
    value_fen = sum((v for _, _, v in declarations.shipped(session, shipment.id)), Fraction(0))
    day = shipment.created_at.date().isoformat()
    dest = session.get(Warehouse, shipment.to_warehouse_id)
    assert dest is not None  # a foreign key
    tx = ET.SubElement(act, "transaction", {"ref": f"shipment-{shipment.id}", "humanitarian": "1"})
    ET.SubElement(tx, "transaction-type", {"code": "3"})  # disbursement
    ET.SubElement(tx, "transaction-date", {"iso-date": day})
    value = ET.SubElement(tx, "value", {"currency": "CNY", "value-date": day})
    value.text = _money(value_fen)
    _narrative(tx, "description", f"Goods shipped to {dest.name} (gift declaration {shipment.id})")
    _org_el(tx, "provider-org", reporter)
    _org_el(tx, "receiver-org", orgs[dest.owner_id])


HXL_HEADER = [
    ("Donor", "#org+donor"),
    ("Donor code", "#org+donor+code"),
    ("Item code", "#item+code"),
    ("Item", "#item+name"),
    ("Warehouse", "#loc+warehouse+name"),
    ("Country", "#country+code"),
    ("Region", "#adm1+name"),
    ("In stock", "#item+stock+num"),
    ("In transit", "#item+transit+num"),
    ("Distributed", "#item+distributed+num"),
    ("Households reached", "#reached+hh"),
]


@dataclass
class _HxlRow:
    in_stock: Fraction = Fraction(0)
    in_transit: Fraction = Fraction(0)
    distributed: Fraction = Fraction(0)
    reached: set[str] = field(default_factory=set)
    regions: set[str] = field(default_factory=set)


def hxl_csv(session: Session, *, households: bool = True) -> str:
    """Stock (on hand and in transit to the warehouse) and distribution totals per donor, item
    (or kit) and warehouse, HXL-tagged.

    A row's place is its warehouse: the country it is in, and the region of the program its
    stock serves there (the program of the shipment that brought it, else of the pledge it was
    received against), left empty when that program runs in another country. Quantities of
    assembled kits are attributed to donors by their exact share, rounded to the nearest whole
    unit for the CSV; "households reached" counts distinct delivery references.
    ``households=False`` leaves that column out (the public file: a count per warehouse may be
    a small number of households).
    """
    orgs = {o.id: o for o in repository.all_of(session, Organization)}
    items = {i.id: i for i in repository.all_of(session, Item)}
    kits = {k.id: k for k in repository.all_of(session, Kit)}
    warehouses = {w.id: w for w in repository.all_of(session, Warehouse)}
    programs = {p.id: p for p in repository.all_of(session, Program)}
    lots = {lot.id: lot for lot in repository.all_of(session, StockLot)}
    receipt_programs = repository.receipt_lot_programs(session)
    shipped_for = repository.shipment_programs(session)
    shares: dict[int, dict[int, Fraction]] = defaultdict(dict)
    weights: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    lot_programs: dict[int, set[int]] = defaultdict(set)
    for source in repository.all_of(session, LotSource):
        weights[source.lot_id][source.donor_org_id] += source.value_fen or source.quantity
        origin = source.source_lot_id or source.lot_id
        if origin in receipt_programs:
            lot_programs[source.lot_id].add(receipt_programs[origin])
    for lot_id, w in weights.items():
        total = sum(w.values())
        shares[lot_id] = {d: Fraction(v, total) for d, v in w.items()} if total else {}
    country = {wh: transfers.warehouse_country(session, w) for wh, w in warehouses.items()}

    def regions(wh: int, lot_id: int) -> set[str]:
        serves = (
            {shipped_for[(wh, lot_id)]} if (wh, lot_id) in shipped_for else lot_programs[lot_id]
        )
        return {programs[p].region for p in serves if programs[p].country == country[wh]}

    stock: dict[tuple[int, int], tuple[int, int]] = {}
    for wh, lot_id, on_hand, in_transit in repository.balances_by_lot(session):
        stock[(wh, lot_id)] = (on_hand, in_transit)
    distributed: dict[tuple[int, int], int] = defaultdict(int)
    reached: dict[tuple[int, int], set[str]] = defaultdict(set)
    for wh, lot_id, units, ref in repository.delivered_by_delivery(session):
        distributed[(wh, lot_id)] += units  # at the door; goods on the way are not reached yet
        if units > 0:
            reached[(wh, lot_id)].add(ref)
    rows: dict[tuple[int, str, int], _HxlRow] = {}
    for key in sorted(set(stock) | set(distributed)):
        wh, lot_id = key
        lot = lots[lot_id]
        sku = items[lot.item_id].sku if lot.item_id else kits[lot.kit_id].sku  # type: ignore[index]
        on_hand, in_transit = stock.get(key, (0, 0))
        for donor, share in shares.get(lot_id, {}).items():
            row = rows.setdefault((donor, sku, wh), _HxlRow())
            row.in_stock += share * on_hand
            row.in_transit += share * in_transit
            row.distributed += share * distributed.get(key, 0)
            row.reached |= reached.get(key, set())
            row.regions |= regions(wh, lot_id)
    names = {i.sku: i.name for i in items.values()} | {k.sku: k.name for k in kits.values()}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    header = HXL_HEADER if households else HXL_HEADER[:-1]
    writer.writerow([h for h, _ in header])
    writer.writerow([t for _, t in header])
    for (donor, sku, wh), row in sorted(rows.items()):
        cells: list[object] = [
            orgs[donor].name,
            orgs[donor].code,
            sku,
            names[sku],
            warehouses[wh].name,
            country[wh] or "",
            "; ".join(sorted(row.regions)),
            round(row.in_stock),
            round(row.in_transit),
            round(row.distributed),
            len(row.reached),
        ][: len(header)]
        writer.writerow([files.neutralise(v) for v in cells])
    return out.getvalue()
