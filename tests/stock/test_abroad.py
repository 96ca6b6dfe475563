"""Aid abroad: a shipment to a partner in Hong Kong has a gift declaration customs accept (HTML,
text and a PDF whose text we read back), the Hong Kong program's IATI file carries its
recipient country and the shipment as a transaction and validates against the official IATI
2.03 schema, and the HXL file places the Hong Kong depot in HK with its stock in transit."""

from __future__ import annotations

import io
from pathlib import Path

import hxl
import pytest
from lxml import etree
from pypdf import PdfReader
from sqlalchemy.orm import Session

from relieflink.flows import receipts
from relieflink.models import OrgKind, Role
from relieflink.stock import exports
from relieflink.stock import service as stock
from relieflink.stock.schemas import ReceiveIn
from tests.factories import make_org, make_user
from tests.stock.factories import make_item, make_pledge, make_program, make_warehouse

SCHEMA = Path(__file__).with_name("iati-2.03") / "iati-activities-schema.xsd"


@pytest.fixture
def abroad(db: Session) -> dict:
    ngo = make_org(db, OrgKind.ngo, name="Volunteer NGO", country="CN",
                   address="88 Relief Road, Xuhui, Shanghai 200030",
                   contact="relief@ngo.example, +86 21 5555 0100")  # fmt: skip
    partner = make_org(db, OrgKind.ngo, name="Harbour Community Link", country="HK",
                       address="12 Harbour Street, Kowloon, Hong Kong",
                       contact="aid@harbour.example")  # fmt: skip
    donor = make_org(db, OrgKind.donor, name="Acme Foods")
    shanghai = make_program(db, ngo, name="Shanghai 2022", region="Shanghai")
    hong_kong = make_program(db, ngo, code="HK-2022", name="Hong Kong 2022",
                             region="Hong Kong", country="HK")  # fmt: skip
    rice = make_item(db, sku="RICE-5KG", name="Rice 5 kg", name_zh="大米 5公斤",
                     grams_per_unit=5000, gross_grams_per_unit=5050, hs_code="1006.30")  # fmt: skip
    hub = make_warehouse(db, ngo, name="North Hub")
    depot = make_warehouse(db, partner, name="Kowloon Depot", lat=22.32, lon=114.17)
    pledge = make_pledge(db, donor=donor, recipient=ngo, program=shanghai,
                         lines=[(rice, 10, 5000)])  # fmt: skip
    lots = [{"item_id": rice.id, "quantity": 10, "unit_value_fen": 5000}]
    receipts.receive_against_pledge(
        db,
        ReceiveIn.model_validate({"warehouse_id": hub.id, "pledge_id": pledge.id, "lots": lots}),
        actor=None,
    )
    coordinator = make_user(db, Role.coordinator, full_name="Li Wei")
    shipment = stock.transfer(
        db,
        from_warehouse_id=hub.id,
        to_warehouse_id=depot.id,
        lines=[stock.TransferLine(quantity=4, item_id=rice.id)],
        actor=coordinator,
    )
    db.commit()
    return {"shipment": shipment, "shanghai": shanghai, "hong_kong": hong_kong,
            "coordinator": coordinator}  # fmt: skip


def test_the_gift_declaration_carries_what_customs_need_also_in_its_pdf(
    db: Session, abroad: dict
) -> None:
    shipment = abroad["shipment"]
    assert shipment.cross_border and shipment.program_id == abroad["hong_kong"].id
    d = stock.gift_declaration(db, transfer_id=shipment.id)
    assert d["consignor"]["address"] == "88 Relief Road, Xuhui, Shanghai 200030"
    assert d["consignee"]["contact"] == "aid@harbour.example"
    assert d["program"]["code"] == "HK-2022" and d["program"]["country"] == "HK"
    (line,) = d["lines"]
    assert (line["hs_code"], line["quantity"]) == ("1006.30", 4)
    assert (line["net_weight_g"], line["gross_weight_g"]) == (20_000, 20_200)
    assert (d["currency"], d["total_value_fen"]) == ("CNY", "20000")
    assert d["signatory"] == {"name": "Li Wei", "role": "coordinator"}  # who shipped it

    pdf = stock.gift_declaration_pdf(d)
    assert pdf.startswith(b"%PDF-")
    text = " ".join(
        " ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(pdf)).pages
    )
    for expected in (
        "Gift declaration",
        "Consignor",
        "Volunteer NGO",
        "88 Relief Road, Xuhui, Shanghai 200030",
        "relief@ngo.example",
        "Consignee",
        "Harbour Community Link",
        "12 Harbour Street, Kowloon, Hong Kong",
        "aid@harbour.example",
        "1006.30",
        "20.00",  # net kg
        "20.20",  # gross kg
        "200.00",  # CNY
        "Hong Kong 2022 (HK-2022)",
        "Currency",
        "CNY",
        "Donors' declared value of the goods at receipt",
        "Li Wei",
        "Relief coordinator",
    ):
        assert expected in text, expected
    assert "捐赠物资申报单" in text  # the Chinese labels are real text, not boxes
    assert "Li Wei" in stock.render_gift_declaration(d)


def _validate(xml: bytes) -> etree._Element:
    schema = etree.XMLSchema(etree.parse(str(SCHEMA)))
    doc = etree.fromstring(xml)
    schema.assertValid(doc)
    return doc


def test_a_program_abroad_has_its_country_and_transactions_in_a_valid_iati_file(
    db: Session, abroad: dict
) -> None:
    doc = _validate(exports.iati_activity_xml(db, abroad["hong_kong"].id))
    (activity,) = doc
    assert activity.find("recipient-country").get("code") == "HK"
    (tx,) = activity.findall("transaction")
    assert tx.find("transaction-type").get("code") == "3"  # the shipment: goods disbursed
    assert tx.find("value").text == "200.00"
    assert tx.find("receiver-org/narrative").text == "Harbour Community Link"
    # The program at home keeps its pledge, and validates too.
    home = _validate(exports.iati_activity_xml(db, abroad["shanghai"].id))
    codes = [t.find("transaction-type").get("code") for t in home.iter("transaction")]
    assert codes == ["11"]


def _hxl_rows(db: Session) -> dict[str, hxl.model.Row]:
    """The HXL file as libhxl reads it, rows by warehouse."""
    source = hxl.data(io.BytesIO(exports.hxl_csv(db).encode("utf-8")), hxl.InputOptions())
    return {row.get("#loc+warehouse+name"): row for row in source}


def test_hxl_places_the_depot_abroad_and_counts_stock_in_transit(db: Session, abroad: dict) -> None:
    rows = _hxl_rows(db)
    depot, hub = rows["Kowloon Depot"], rows["North Hub"]
    assert (depot.get("#country+code"), depot.get("#adm1+name")) == ("HK", "Hong Kong")
    assert (depot.get("#item+stock+num"), depot.get("#item+transit+num")) == ("0", "4")
    assert (hub.get("#country+code"), hub.get("#adm1+name")) == ("CN", "Shanghai")
    assert (hub.get("#item+stock+num"), hub.get("#item+transit+num")) == ("6", "0")
    assert depot.get("#org+donor") == "Acme Foods"
    stock.receive_transfer(db, transfer_id=abroad["shipment"].id, actor=None)
    db.commit()
    rows = _hxl_rows(db)
    assert (rows["Kowloon Depot"].get("#item+stock+num"),
            rows["Kowloon Depot"].get("#item+transit+num")) == ("4", "0")  # fmt: skip
