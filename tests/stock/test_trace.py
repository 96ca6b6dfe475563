"""Traceability: donor shares survive kit assembly, and per-donor totals reconcile exactly."""

from __future__ import annotations

from datetime import date, timedelta
from fractions import Fraction

import pytest
from sqlalchemy.orm import Session

from relieflink.errors import Conflict
from relieflink.models import AdjustmentReason, OrgKind
from relieflink.stock import ledger
from relieflink.stock import service as stock
from tests.factories import make_org
from tests.stock.factories import make_item, make_kit, make_lot, make_warehouse

TODAY = date(2026, 11, 29)


def test_kit_lot_carries_both_donors_in_proportion_and_earliest_expiry(db: Session) -> None:
    wh = make_warehouse(db)
    rice, oil = make_item(db), make_item(db)
    kit = make_kit(db, [(rice, 2), (oil, 1)])
    a, b, c = (make_org(db, OrgKind.donor) for _ in range(3))
    make_lot(db, wh, rice, 6, donor=a, expiry=TODAY + timedelta(days=40), unit_value_fen=500)
    make_lot(db, wh, rice, 100, donor=b, expiry=TODAY + timedelta(days=90), unit_value_fen=500)
    make_lot(db, wh, oil, 50, donor=c, expiry=TODAY + timedelta(days=20), unit_value_fen=1000)
    kit_lot = stock.assemble_kits(
        db, warehouse_id=wh.id, kit_id=kit.id, quantity=5, actor=None, as_of=TODAY
    )
    assert kit_lot.expiry == TODAY + timedelta(days=20)
    trace = stock.trace_lot(db, lot_id=kit_lot.id)
    # 10 rice: 6 from A (earliest expiry first), 4 from B; 5 oil from C. Value shares:
    # A 3000, B 2000, C 5000 fen of 10000.
    assert trace.donors == {a.id: Fraction(3, 2), b.id: Fraction(1), c.id: Fraction(5, 2)}
    by_donor = {(d, i): q for d, i, _k, _src, q, _v in trace.sources}
    assert by_donor == {(a.id, rice.id): 6, (b.id, rice.id): 4, (c.id, oil.id): 5}
    assert stock.available(db, warehouse_id=wh.id, kit_id=kit.id, as_of=TODAY) == 5
    assert stock.available(db, warehouse_id=wh.id, item_id=rice.id, as_of=TODAY) == 96
    with pytest.raises(Conflict):
        stock.assemble_kits(db, warehouse_id=wh.id, kit_id=kit.id, quantity=46, actor=None,
                            as_of=TODAY)  # fmt: skip
    assert stock.check_ledger(db) == []


def test_donor_totals_reconcile_after_assembly_partial_delivery_and_write_off(
    db: Session,
) -> None:
    wh, far = make_warehouse(db), make_warehouse(db)
    rice, oil = make_item(db), make_item(db)
    kit = make_kit(db, [(rice, 3), (oil, 2)])
    a, b = make_org(db, OrgKind.donor), make_org(db, OrgKind.donor)
    make_lot(db, wh, rice, 7, donor=a, expiry=TODAY + timedelta(days=10), unit_value_fen=300)
    make_lot(db, wh, rice, 20, donor=b, expiry=TODAY + timedelta(days=60), unit_value_fen=320)
    oil_lot = make_lot(db, wh, oil, 30, donor=b, expiry=TODAY + timedelta(days=200),
                       unit_value_fen=1100)  # fmt: skip
    kits = stock.assemble_kits(db, warehouse_id=wh.id, kit_id=kit.id, quantity=7, actor=None,
                               as_of=TODAY)  # fmt: skip
    # Partial delivery of kits: reserve 5, issue 3 to two households, return 1, release the rest.
    stock.reserve(db, warehouse_id=wh.id, kit_id=kit.id, quantity=5, reference="alloc:1:line:1",
                  actor=None, as_of=TODAY)  # fmt: skip
    stock.issue(db, reference="alloc:1:line:1", quantity=2, delivery_ref="hh:1", actor=None,
                as_of=TODAY)  # fmt: skip
    stock.issue(db, reference="alloc:1:line:1", quantity=1, delivery_ref="hh:2", actor=None,
                as_of=TODAY)  # fmt: skip
    stock.return_stock(db, reference="alloc:1:line:1", quantity=1, actor=None)
    stock.release(db, reference="alloc:1:line:1", actor=None)
    ledger.hand_over(db, ["hh:1"], actor=None)  # hh:1's two kits reached the door
    # Ship a kit away (still in transit), write one kit and some oil off.
    stock.transfer(db, from_warehouse_id=wh.id, to_warehouse_id=far.id,
                   lines=[stock.TransferLine(quantity=1, lot_id=kits.id)], actor=None,
                   as_of=TODAY)  # fmt: skip
    stock.adjust(db, warehouse_id=wh.id, lot_id=kits.id, delta=-1,
                 reason=AdjustmentReason.damage, actor=None)  # fmt: skip
    stock.adjust(db, warehouse_id=wh.id, lot_id=oil_lot.id, delta=-3,
                 reason=AdjustmentReason.expiry, actor=None)  # fmt: skip
    stock.adjust(db, warehouse_id=wh.id, lot_id=oil_lot.id, delta=1,
                 reason=AdjustmentReason.count_correction, actor=None)  # fmt: skip

    report = {(f.donor_org_id, f.item_id): f for f in stock.donor_report(db)}
    assert all(f.balanced for f in report.values()), report
    # The kit lot holds (A, rice, 7), (B, rice, 14), (B, oil, 14): per kit 1 rice of A, 2 rice
    # and 2 oil of B. Kits: 7 made; 2 delivered net (3 issued − 1 returned), 1 in transit,
    # 1 damaged, 3 in stock.
    fa = report[(a.id, rice.id)]
    assert fa.on_the_way == 0  # everything issued and not returned reached a door
    assert (fa.received, fa.in_stock, fa.in_transit, fa.delivered, fa.written_off) == (
        7, 3, 1, 2, 1,
    )  # fmt: skip
    fb_rice = report[(b.id, rice.id)]  # 6 loose + 3 kits × 2 in stock
    assert (fb_rice.received, fb_rice.in_stock, fb_rice.in_transit, fb_rice.delivered,
            fb_rice.written_off) == (20, 12, 2, 4, 2)  # fmt: skip
    fb_oil = report[(b.id, oil.id)]  # loose: 30 − 14 packed − 3 expired + 1 found = 14
    assert (fb_oil.received, fb_oil.in_stock, fb_oil.in_transit, fb_oil.delivered,
            fb_oil.written_off) == (30, 14 + 6, 2, 4, 2 + 2)  # fmt: skip
    # Values reconcile too: what the households got is worth the kits' component values.
    kit_value = 7 * 300 + 14 * 320 + 14 * 1100
    delivered_value = sum(f.delivered_value_fen for f in report.values())
    assert delivered_value == Fraction(2 * kit_value, 7)
    # The donors behind the household deliveries of the reference, exact, by value share.
    shares = stock.donor_shares(db, reference="alloc:1:line:1")
    assert shares == {a.id: Fraction(2 * 2100, kit_value), b.id: Fraction(2 * 19880, kit_value)}
    assert sum(shares.values()) == 2
    assert stock.check_ledger(db) == []


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (12, (12, False)),
        (Fraction(24, 2), (12, False)),
        (Fraction(193, 2), (97, True)),  # part of 97 bags, never "96.50" or "193/2"
        (Fraction(1, 3), (1, True)),
        (Fraction(-7, 3), (3, True)),
    ],
)
def test_a_person_reads_whole_units_or_a_share_of_them(
    value: Fraction | int, shown: tuple[int, bool]
) -> None:
    assert stock.whole_units(value) == shown


def test_delivered_by_lot_counts_the_units_handed_over_at_the_door_per_lot(db: Session) -> None:
    """Units issued and not returned under a (reference, delivery) with a handover, per lot:
    reservations that span two lots, a delivery returned in part, one not handed over, one in
    another warehouse; compared with the definition computed from the movements."""
    from sqlalchemy import select

    from relieflink.models import MovementKind, StockMovement
    from relieflink.stock import repository

    wh, other = make_warehouse(db), make_warehouse(db)
    rice = make_item(db)
    donor = make_org(db, OrgKind.donor)
    early = make_lot(db, wh, rice, 5, donor=donor, expiry=TODAY + timedelta(days=10))
    late = make_lot(db, wh, rice, 20, donor=donor, expiry=TODAY + timedelta(days=60))
    far = make_lot(db, other, rice, 10, donor=donor, expiry=TODAY + timedelta(days=30))
    for ref, wid, n in (("alloc:1", wh.id, 8), ("alloc:2", wh.id, 6), ("alloc:3", other.id, 4)):
        stock.reserve(db, warehouse_id=wid, item_id=rice.id, quantity=n, reference=ref,
                      actor=None, as_of=TODAY)  # fmt: skip
    # alloc:1 takes the 5 early units and 3 late ones; hh:1 gets 3 (early), hh:2 5 (2 + 3).
    stock.issue(db, reference="alloc:1", quantity=3, delivery_ref="hh:1", actor=None, as_of=TODAY)
    stock.issue(db, reference="alloc:1", quantity=5, delivery_ref="hh:2", actor=None, as_of=TODAY)
    stock.return_stock(db, reference="alloc:1", quantity=1, delivery_ref="hh:2", actor=None)
    stock.issue(db, reference="alloc:2", quantity=4, delivery_ref="hh:3", actor=None, as_of=TODAY)
    stock.issue(db, reference="alloc:2", quantity=2, delivery_ref="hh:4", actor=None, as_of=TODAY)
    stock.issue(db, reference="alloc:3", quantity=4, delivery_ref="hh:5", actor=None, as_of=TODAY)
    ledger.hand_over(db, ["hh:1", "hh:2", "hh:3", "hh:5"], actor=None)  # hh:4 still on the way

    moves = db.execute(
        select(StockMovement.kind, StockMovement.reference, StockMovement.delivery_ref,
               StockMovement.warehouse_id, StockMovement.lot_id, StockMovement.d_on_hand)
    ).all()  # fmt: skip
    handed = {(r, d, w, lot) for k, r, d, w, lot, _ in moves if k == MovementKind.handover}
    expected: dict[int, int] = {}
    for k, r, d, w, lot, units in moves:
        if k in (MovementKind.issue, MovementKind.return_) and (r, d, w, lot) in handed:
            expected[lot] = expected.get(lot, 0) - units
    # hh:1 3 early; hh:2 2 early + 3 late, 1 returned; hh:3 4 late; hh:5 4 far; hh:4 not.
    assert sum(expected.values()) == 3 + 5 - 1 + 4 + 4
    assert expected[early.id] + expected[late.id] == 3 + 5 - 1 + 4 and expected[far.id] == 4
    assert repository.delivered_by_lot(db, None) == expected
    assert repository.delivered_by_lot(db, [early.id, far.id]) == {
        early.id: expected[early.id],
        far.id: expected[far.id],
    }
    assert repository.delivered_by_lot(db, []) == {}
