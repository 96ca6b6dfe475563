"""``relieflink stock``: receive, transfer, adjust, assemble and report on the stock ledger."""

from __future__ import annotations

from datetime import date
from fractions import Fraction
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from relieflink.cli.common import console, transaction
from relieflink.errors import Invalid
from relieflink.flows import receipts
from relieflink.models import AdjustmentReason
from relieflink.stock import exports
from relieflink.stock import service as stock
from relieflink.stock.schemas import LotIn, ReceiveIn

app = typer.Typer(help="The stock ledger: receipts, transfers, adjustments, reports.",
                  no_args_is_help=True)  # fmt: skip

SkuOpt = Annotated[str, typer.Option("--sku", help="item or kit SKU")]
WarehouseOpt = Annotated[str, typer.Option("--warehouse", help="warehouse code")]


@app.command("receive")
def receive(
    warehouse: Annotated[
        list[str],
        typer.Option("--warehouse", help="warehouse code; repeat it to receive the lot at each"),
    ],
    sku: SkuOpt,
    quantity: Annotated[int, typer.Option(min=1)],
    donor: Annotated[str | None, typer.Option(help="donor organization code")] = None,
    pledge: Annotated[int | None, typer.Option(help="pledge id (the donor is its donor)")] = None,
    expiry: Annotated[str | None, typer.Option(help="YYYY-MM-DD")] = None,
    unit_value_fen: Annotated[int, typer.Option(min=0)] = 0,
    final: Annotated[bool, typer.Option(help="last delivery of the pledge")] = False,
) -> None:
    """Receive one lot at a warehouse (against a pledge, or from a named donor); with several
    ``--warehouse``, the same lot at each, one receipt each, all or none."""
    with transaction() as session:
        item_id, kit_id = stock.resolve_sku(session, sku)
        done = [
            receipts.receive_against_pledge(
                session,
                ReceiveIn(
                    warehouse_id=stock.resolve_warehouse(session, code),
                    donor_org_id=stock.resolve_org(session, donor) if donor else None,
                    pledge_id=pledge,
                    lots=[
                        LotIn(
                            item_id=item_id,
                            kit_id=kit_id,
                            quantity=quantity,
                            expiry=_date(expiry),
                            unit_value_fen=unit_value_fen,
                        )
                    ],
                ),
                final=final and i == len(warehouse) - 1,
                actor=None,
            )
            for i, code in enumerate(warehouse)
        ]
    for one in done:
        console.print(f"receipt {one.receipt.id}: lot {one.lots[0].id}, {quantity} × {sku}")
        for d in one.discrepancies:
            console.print(f"  discrepancy: pledged {d.pledged}, received {d.received} ({d.note})")


def _date(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise Invalid(f"not a date: {text!r} (use YYYY-MM-DD)") from None


@app.command("transfer")
def transfer(
    from_warehouse: Annotated[str, typer.Option("--from", help="warehouse code")],
    to_warehouse: Annotated[str, typer.Option("--to", help="warehouse code")],
    sku: SkuOpt,
    quantity: Annotated[int, typer.Option(min=1)],
) -> None:
    """Ship unreserved stock (FEFO) to another warehouse; it is in transit until received."""
    with transaction() as session:
        item_id, kit_id = stock.resolve_sku(session, sku)
        shipment = stock.transfer(
            session,
            from_warehouse_id=stock.resolve_warehouse(session, from_warehouse),
            to_warehouse_id=stock.resolve_warehouse(session, to_warehouse),
            lines=[stock.TransferLine(quantity=quantity, item_id=item_id, kit_id=kit_id)],
            actor=None,
        )
    border = " (cross-border: print the gift declaration)" if shipment.cross_border else ""
    console.print(f"transfer {shipment.id}: {quantity} × {sku} in transit{border}")


@app.command("receive-transfer")
def receive_transfer(transfer_id: int) -> None:
    """Receive a shipment in full at its destination."""
    with transaction() as session:
        shipment = stock.receive_transfer(session, transfer_id=transfer_id, actor=None)
    console.print(f"transfer {shipment.id}: {shipment.status}")


@app.command("declaration")
def declaration(
    transfer_id: int,
    out: Path | None = None,
    pdf: Annotated[Path | None, typer.Option(help="also write the printable PDF here")] = None,
) -> None:
    """Print (or write) the gift declaration of a shipment (signed by whoever shipped it)."""
    with transaction() as session:
        found = stock.gift_declaration(session, transfer_id=transfer_id)
    text = stock.render_gift_declaration(found)
    if pdf:
        pdf.write_bytes(stock.gift_declaration_pdf(found))
        console.print(f"wrote {pdf}")
    if out:
        out.write_text(text + "\n", encoding="utf-8")
        console.print(f"wrote {out}")
    else:
        console.print(text, markup=False, highlight=False)


@app.command("adjust")
def adjust(
    warehouse: WarehouseOpt,
    lot: Annotated[int, typer.Option(help="lot id")],
    delta: Annotated[int, typer.Option(help="units added (+) or removed (−)")],
    reason: Annotated[AdjustmentReason, typer.Option(help="damage, expiry or count_correction")],
    note: str | None = None,
) -> None:
    """Damage, expiry write-off or count correction of one lot."""
    with transaction() as session:
        movement = stock.adjust(
            session,
            warehouse_id=stock.resolve_warehouse(session, warehouse),
            lot_id=lot,
            delta=delta,
            reason=reason,
            note=note,
            actor=None,
        )
    console.print(f"movement {movement.id}: lot {lot} {delta:+d} ({reason})")


@app.command("assemble")
def assemble(
    warehouse: WarehouseOpt,
    kit: Annotated[str, typer.Option(help="kit SKU")],
    quantity: Annotated[int, typer.Option(min=1)],
) -> None:
    """Build kits from component lots; the kit lot keeps every donor's share."""
    with transaction() as session:
        _, kit_id = stock.resolve_sku(session, kit)
        if kit_id is None:
            raise Invalid(f"{kit} is an item, not a kit")
        lot = stock.assemble_kits(
            session,
            warehouse_id=stock.resolve_warehouse(session, warehouse),
            kit_id=kit_id,
            quantity=quantity,
            actor=None,
        )
    console.print(f"kit lot {lot.id}: {quantity} × {kit}, expires {lot.expiry or 'never'}")


@app.command("report")
def report(
    warehouse: Annotated[str | None, typer.Option(help="warehouse code")] = None,
    sku: Annotated[str | None, typer.Option(help="item or kit SKU")] = None,
) -> None:
    """Stock on hand by warehouse, item and expiry."""
    with transaction() as session:
        item_id, kit_id = stock.resolve_sku(session, sku) if sku else (None, None)
        wh = stock.resolve_warehouse(session, warehouse) if warehouse else None
        rows = stock.stock_on_hand(session, warehouse_id=wh, item_id=item_id, kit_id=kit_id)
        names = stock.sku_names(session)
        codes = stock.warehouse_codes(session)
    table = Table(title="stock on hand")
    for col in ("warehouse", "sku", "expiry"):
        table.add_column(col, no_wrap=True, min_width=len("2000-01-01") if col == "expiry" else 0)
    for col in ("on hand", "reserved", "available", "in transit"):
        table.add_column(col, justify="right")
    for r in rows:
        sku_text = names[("item", r.item_id)] if r.item_id else names[("kit", r.kit_id)]
        expiry = f"{r.expiry}" + (" EXPIRED" if r.expired else "") if r.expiry else "-"
        table.add_row(codes[r.warehouse_id], sku_text, expiry, f"{r.on_hand:,}",
                      f"{r.reserved:,}", f"{r.available:,}", f"{r.in_transit:,}")  # fmt: skip
    console.print(table)


@app.command("expiring")
def expiring(days: Annotated[int, typer.Option(min=0)] = 30) -> None:
    """Lots with stock that expire within N days (or have expired)."""
    with transaction() as session:
        rows = stock.expiring(session, within_days=days)
        names = stock.sku_names(session)
        codes = stock.warehouse_codes(session)
    table = Table(title=f"expiring within {days} days")
    for col in ("warehouse", "lot", "sku", "expiry", "on hand", "reserved"):
        table.add_column(col)
    for b in rows:
        sku_text = names[("item", b.item_id)] if b.item_id else names[("kit", b.kit_id)]
        table.add_row(codes[b.warehouse_id], str(b.lot_id), sku_text, str(b.expiry),
                      str(b.on_hand), str(b.reserved))  # fmt: skip
    console.print(table)


@app.command("supply")
def supply(
    sku: SkuOpt,
    daily: Annotated[int, typer.Option(min=1, help="units consumed per day")],
    warehouse: Annotated[str | None, typer.Option(help="warehouse code")] = None,
) -> None:
    """Days of supply left at a daily consumption."""
    with transaction() as session:
        item_id, kit_id = stock.resolve_sku(session, sku)
        wh = stock.resolve_warehouse(session, warehouse) if warehouse else None
        days = stock.days_of_supply(
            session, daily_consumption=daily, warehouse_id=wh, item_id=item_id, kit_id=kit_id
        )
    console.print(f"{sku}: {float(days):.1f} days of supply at {daily}/day")


def _units(value: Fraction | int) -> str:
    """Whole units, or a donor's share of pooled units in words (the exact fractions are in the
    API's donor trace)."""
    n, share = stock.whole_units(value)
    return f"part of {n:,}" if share else f"{n:,}"


@app.command("donors")
def donors(donor: Annotated[str | None, typer.Option(help="organization code")] = None) -> None:
    """Per donor and item: pledged, received, in stock, in transit, delivered, written off."""
    with transaction() as session:
        org = stock.resolve_org(session, donor) if donor else None
        figures = stock.donor_report(session, donor_org_id=org)
        names = stock.sku_names(session)
        orgs = stock.org_codes(session)
    table = Table(title="donor trace")
    cols = ("donor", "sku", "pledged", "received", "in stock", "in transit", "on the way",
            "delivered", "written off", "adds up")  # fmt: skip
    for col in cols:
        table.add_column(col)
    for f in figures:
        sku_text = names[("item", f.item_id)] if f.item_id else names[("kit", f.kit_id)]
        table.add_row(orgs[f.donor_org_id], sku_text, str(f.pledged), str(f.received),
                      _units(f.in_stock), _units(f.in_transit),
                      _units(f.on_the_way), _units(f.delivered),
                      _units(f.written_off),
                      "yes" if f.balanced else "NO")  # fmt: skip
    console.print(table)


@app.command("check")
def check() -> None:
    """Verify the ledger: every balance equals the sum of its movements."""
    with transaction() as session:
        problems = stock.check_ledger(session)
    for p in problems:
        console.print(p, markup=False)
    if problems:
        raise typer.Exit(code=1)
    console.print("ledger sound: every balance equals the sum of its movements")


@app.command("hxl")
def hxl(out: Path) -> None:
    """Write stock and distribution totals as HXL-tagged CSV."""
    with transaction() as session:
        out.write_text(exports.hxl_csv(session), encoding="utf-8")
    console.print(f"wrote {out}")
