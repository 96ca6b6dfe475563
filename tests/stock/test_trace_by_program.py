"""The donor report per program: each program's figures add up on their own, kits built from
lots of two programs split back to them, and the programs together make the whole report."""

from __future__ import annotations

from fractions import Fraction

from sqlalchemy.orm import Session

from relieflink.flows import receipts
from relieflink.models import OrgKind
from relieflink.stock import ledger
from relieflink.stock import service as stock
from relieflink.stock.schemas import ReceiveIn
from tests.factories import make_org
from tests.stock.factories import make_item, make_kit, make_pledge, make_program, make_warehouse


def test_per_program_figures_add_up_and_sum_to_the_whole(db: Session) -> None:
    ngo, donor = make_org(db), make_org(db, OrgKind.donor)
    spring, autumn = make_program(db, ngo), make_program(db, ngo)
    wh = make_warehouse(db, ngo)
    rice, oil = make_item(db), make_item(db)
    kit = make_kit(db, [(rice, 2), (oil, 1)])
    for program, rice_qty, oil_qty in ((spring, 10, 4), (autumn, 6, 6)):
        pledge = make_pledge(db, donor=donor, recipient=ngo, program=program,
                             lines=[(rice, rice_qty + 1, 100), (oil, oil_qty, 300)])  # fmt: skip
        lots = [
            {"item_id": rice.id, "quantity": rice_qty, "unit_value_fen": 100},
            {"item_id": oil.id, "quantity": oil_qty, "unit_value_fen": 300},
        ]
        data = {"warehouse_id": wh.id, "pledge_id": pledge.id, "lots": lots}
        receipts.receive_against_pledge(db, ReceiveIn.model_validate(data), actor=None)
    # Kits drawn first expiry first: 7 kits need 14 rice (10 spring + 4 autumn), 7 oil.
    kits = stock.assemble_kits(db, warehouse_id=wh.id, kit_id=kit.id, quantity=7, actor=None)
    stock.reserve(db, warehouse_id=wh.id, kit_id=kit.id, quantity=3, reference="a:1",
                  actor=None)  # fmt: skip
    stock.issue(db, reference="a:1", delivery_ref="parcel:1", actor=None)
    stock.adjust(db, warehouse_id=wh.id, lot_id=kits.id, delta=-1, reason="damage", actor=None)

    whole = {(f.item_id, f.kit_id): f for f in stock.donor_report(db, donor_org_id=donor.id)}
    parts = {
        p.id: {(f.item_id, f.kit_id): f for f in stock.donor_report(
            db, donor_org_id=donor.id, program_id=p.id)}
        for p in (spring, autumn)
    }  # fmt: skip
    assert parts[spring.id][(rice.id, None)].received == 10
    assert parts[autumn.id][(rice.id, None)].pledged == 7
    for figures in parts.values():
        assert all(f.balanced for f in figures.values()), figures
    fields = ("pledged", "received", "in_stock", "in_transit", "on_the_way", "delivered",
              "written_off")  # fmt: skip
    for key, f in whole.items():
        for name in fields:
            total = sum((Fraction(getattr(p[key], name)) for p in parts.values() if key in p),
                        Fraction(0))  # fmt: skip
            assert total == getattr(f, name), (key, name)
    # Issued kits count each program's component units: 3 kits of 7, rice 14 = 10 + 4. Loaded
    # on a vehicle they are on the way, not delivered; at the door they are delivered.
    issued_rice = {spring.id: Fraction(3 * 10, 7), autumn.id: Fraction(3 * 4, 7)}
    assert {p: parts[p][(rice.id, None)].on_the_way for p in parts} == issued_rice
    assert {p: parts[p][(rice.id, None)].delivered for p in parts} == dict.fromkeys(parts, 0)
    ledger.hand_over(db, ["parcel:1"], actor=None)
    after = {
        p.id: stock.donor_report(db, donor_org_id=donor.id, program_id=p.id)
        for p in (spring, autumn)
    }
    for program_id, figures in after.items():
        rice_row = next(f for f in figures if f.item_id == rice.id)
        assert (rice_row.delivered, rice_row.on_the_way) == (issued_rice[program_id], 0)
        assert all(f.balanced for f in figures)
    assert ledger.hand_over(db, ["parcel:1"], actor=None) == 0  # twice writes nothing
