"""``relieflink stock`` and ``relieflink pledges`` commands."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from relieflink.cli import app
from relieflink.models import OrgKind, StockLot, StockTransfer
from tests.factories import make_org
from tests.stock.factories import make_item, make_kit, make_pledge, make_program, make_warehouse

runner = CliRunner()


def _run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_stock_commands_receive_transfer_adjust_assemble_and_report(
    db: Session, tmp_path: Path
) -> None:
    cn, hk = make_org(db, OrgKind.ngo, country="CN"), make_org(db, OrgKind.ngo, country="HK")
    donor = make_org(db, OrgKind.donor, code="ACME")
    make_warehouse(db, cn, code="WH-SH")
    make_warehouse(db, hk, code="WH-HK")
    rice, oil = make_item(db, sku="RICE-5KG"), make_item(db, sku="OIL-1L")
    make_kit(db, [(rice, 1), (oil, 1)], sku="KIT-FAMILY-FOOD")
    program = make_program(db, cn)
    pledge = make_pledge(db, donor=donor, recipient=cn, program=program,
                         lines=[(rice, 10, 5000), (oil, 10, 1500)])  # fmt: skip
    db.commit()

    out = _run("stock", "receive", "--warehouse", "WH-SH", "--sku", "RICE-5KG", "--quantity",
               "10", "--pledge", str(pledge.id), "--expiry", "2099-01-01",
               "--unit-value-fen", "5000")  # fmt: skip
    assert "receipt" in out
    out = _run("stock", "receive", "--warehouse", "WH-SH", "--sku", "OIL-1L", "--quantity", "8",
               "--pledge", str(pledge.id), "--unit-value-fen", "1500", "--final")  # fmt: skip
    assert "pledged 10, received 8" in out
    out = _run("stock", "assemble", "--warehouse", "WH-SH", "--kit", "KIT-FAMILY-FOOD",
               "--quantity", "5")  # fmt: skip
    assert "2099-01-01" in out
    out = _run("stock", "transfer", "--from", "WH-SH", "--to", "WH-HK", "--sku",
               "KIT-FAMILY-FOOD", "--quantity", "2")  # fmt: skip
    assert "cross-border" in out
    transfer_id = str(db.scalars(select(StockTransfer.id)).one())
    rice_lot = str(db.scalars(select(StockLot.id).where(StockLot.item_id == rice.id)).one())
    declaration = tmp_path / "declaration.txt"
    pdf = tmp_path / "declaration.pdf"
    _run("stock", "declaration", transfer_id, "--out", str(declaration), "--pdf", str(pdf))
    assert "GIFT DECLARATION" in declaration.read_text() and donor.name in declaration.read_text()
    assert pdf.read_bytes().startswith(b"%PDF-")
    _run("stock", "receive-transfer", transfer_id)
    _run("stock", "adjust", "--warehouse", "WH-SH", "--lot", rice_lot, "--delta", "-1",
         "--reason", "damage")  # fmt: skip
    bad = runner.invoke(app, ["stock", "adjust", "--warehouse", "WH-SH", "--lot", rice_lot,
                              "--delta", "-100", "--reason", "damage"])  # fmt: skip
    assert bad.exit_code == 1 and "would leave" in bad.output
    report = _run("stock", "report")
    assert "WH-HK" in report and "2099-01-01" in report
    assert "days of supply" in _run("stock", "supply", "--sku", "RICE-5KG", "--daily", "2")
    donors = _run("stock", "donors")
    assert "ACME" in donors and "NO" not in donors
    assert "sound" in _run("stock", "check")
    _run("stock", "hxl", str(tmp_path / "stock.csv"))
    assert "#org+donor" in (tmp_path / "stock.csv").read_text()
    _run("pledges", "iati", str(program.id), str(tmp_path / "iati.xml"))
    assert b"<iati-activities" in (tmp_path / "iati.xml").read_bytes()
    assert "received" in _run("pledges", "list")
    unknown = runner.invoke(app, ["stock", "report", "--sku", "NOPE"])
    assert unknown.exit_code == 1 and "no item or kit" in unknown.output


def test_one_receive_at_several_warehouses_is_one_receipt_each_or_none(db: Session) -> None:
    cn = make_org(db, OrgKind.ngo, country="CN")
    make_org(db, OrgKind.donor, code="ACME")
    for code in ("WH-A", "WH-B"):
        make_warehouse(db, cn, code=code)
    make_item(db, sku="RICE-5KG")
    db.commit()
    common = ["--sku", "RICE-5KG", "--quantity", "7", "--donor", "ACME"]
    out = _run("stock", "receive", "--warehouse", "WH-A", "--warehouse", "WH-B", *common)
    assert out.count("receipt") == 2
    refused = runner.invoke(
        app, ["stock", "receive", "--warehouse", "WH-A", "--warehouse", "WH-NOPE", *common]
    )
    assert refused.exit_code != 0
    db.rollback()
    assert sorted(db.scalars(select(StockLot.quantity))) == [7, 7]  # WH-A got none the 2nd time
