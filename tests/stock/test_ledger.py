"""The ledger services: FEFO, expiry, reference idempotency, invariants, transfers, adjustments."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.orm import Session

from relieflink.errors import Conflict, Invalid
from relieflink.models import (
    AdjustmentReason,
    MovementKind,
    OrgKind,
    StockBalance,
    StockMovement,
)
from relieflink.stock import service as stock
from tests.factories import make_org
from tests.stock.factories import make_item, make_lot, make_warehouse

TODAY = date(2026, 11, 29)


def _balance(db: Session, warehouse_id: int, lot_id: int) -> StockBalance:
    return db.scalars(
        select(StockBalance).where(
            StockBalance.warehouse_id == warehouse_id, StockBalance.lot_id == lot_id
        )
    ).one()


def test_reserve_picks_first_expiry_first_and_never_expired_lots(db: Session) -> None:
    wh, item = make_warehouse(db), make_item(db)
    expired = make_lot(db, wh, item, 50, expiry=TODAY - timedelta(days=1))
    late = make_lot(db, wh, item, 10, expiry=TODAY + timedelta(days=30))
    early = make_lot(db, wh, item, 10, expiry=TODAY + timedelta(days=3))
    no_expiry = make_lot(db, wh, item, 10)
    assert stock.available(db, warehouse_id=wh.id, item_id=item.id, as_of=TODAY) == 30
    moves = stock.reserve(
        db,
        warehouse_id=wh.id,
        item_id=item.id,
        quantity=15,
        reference="r1",
        actor=None,
        as_of=TODAY,
    )
    assert [(m.lot_id, m.d_reserved) for m in moves] == [(early.id, 10), (late.id, 5)]
    assert _balance(db, wh.id, expired.id).reserved == 0
    assert _balance(db, wh.id, no_expiry.id).reserved == 0
    with pytest.raises(Conflict):
        stock.reserve(
            db, warehouse_id=wh.id, item_id=item.id, quantity=16, reference="r2", actor=None,
            as_of=TODAY,
        )  # fmt: skip
    assert stock.check_ledger(db) == []


def test_the_same_reference_reserves_once(db: Session) -> None:
    wh, item = make_warehouse(db), make_item(db)
    make_lot(db, wh, item, 10)
    first = stock.reserve(db, warehouse_id=wh.id, item_id=item.id, quantity=4, reference="a:1",
                          actor=None)  # fmt: skip
    again = stock.reserve(db, warehouse_id=wh.id, item_id=item.id, quantity=4, reference="a:1",
                          actor=None)  # fmt: skip
    assert [m.id for m in first] == [m.id for m in again]
    assert stock.available(db, warehouse_id=wh.id, item_id=item.id) == 6
    with pytest.raises(Conflict):  # same reference, other quantity: a client bug, said clearly
        stock.reserve(db, warehouse_id=wh.id, item_id=item.id, quantity=5, reference="a:1",
                      actor=None)  # fmt: skip


def test_a_retry_after_the_last_units_gets_the_first_reservation(db: Session) -> None:
    """The reference is looked up even when nothing is left: the retry of a reservation that
    took the last units is answered with that reservation, not with 'only 0 available'."""
    wh, item = make_warehouse(db), make_item(db)
    make_lot(db, wh, item, 3, expiry=TODAY + timedelta(days=5))
    make_lot(db, wh, item, 2)
    first = stock.reserve(db, warehouse_id=wh.id, item_id=item.id, quantity=5, reference="b:1",
                          actor=None, as_of=TODAY)  # fmt: skip
    again = stock.reserve(db, warehouse_id=wh.id, item_id=item.id, quantity=5, reference="b:1",
                          actor=None, as_of=TODAY)  # fmt: skip
    assert [(m.id, m.d_reserved) for m in again] == [(m.id, m.d_reserved) for m in first]
    assert [m.d_reserved for m in first] == [3, 2]
    with pytest.raises(Conflict, match="other stock"):
        stock.reserve(db, warehouse_id=wh.id, item_id=item.id, quantity=4, reference="b:1",
                      actor=None, as_of=TODAY)  # fmt: skip
    assert stock.available(db, warehouse_id=wh.id, item_id=item.id, as_of=TODAY) == 0
    assert stock.check_ledger(db) == []


def test_release_issue_return_cycle_keeps_balances_equal_to_movements(db: Session) -> None:
    wh, item = make_warehouse(db), make_item(db)
    lot = make_lot(db, wh, item, 20, expiry=TODAY + timedelta(days=10))
    stock.reserve(db, warehouse_id=wh.id, item_id=item.id, quantity=12, reference="x",
                  actor=None, as_of=TODAY)  # fmt: skip
    stock.release(db, reference="x", quantity=2, actor=None)
    issued = stock.issue(db, reference="x", quantity=7, delivery_ref="d1", actor=None, as_of=TODAY)
    assert sum(m.d_on_hand for m in issued) == -7
    # Issuing again for the same delivery is a no-op.
    assert stock.issue(db, reference="x", quantity=7, delivery_ref="d1", actor=None,
                       as_of=TODAY) == issued  # fmt: skip
    stock.return_stock(db, reference="x", quantity=3, actor=None)
    with pytest.raises(Conflict):
        stock.return_stock(db, reference="x", quantity=5, actor=None)
    b = _balance(db, wh.id, lot.id)
    assert (b.on_hand, b.reserved) == (16, 3)
    assert stock.release(db, reference="x", actor=None)[0].d_reserved == -3
    assert stock.release(db, reference="x", actor=None) == []
    assert stock.check_ledger(db) == []


def test_expired_reserved_stock_is_never_issued(db: Session) -> None:
    wh, item = make_warehouse(db), make_item(db)
    make_lot(db, wh, item, 5, expiry=TODAY)
    stock.reserve(db, warehouse_id=wh.id, item_id=item.id, quantity=5, reference="e",
                  actor=None, as_of=TODAY)  # fmt: skip
    with pytest.raises(Conflict, match="expired"):
        stock.issue(db, reference="e", actor=None, as_of=TODAY + timedelta(days=1))
    assert stock.issue(db, reference="e", actor=None, as_of=TODAY)[0].d_on_hand == -5


def test_adjustments_need_a_reason_and_never_eat_reserved_stock(db: Session) -> None:
    wh, item = make_warehouse(db), make_item(db)
    lot = make_lot(db, wh, item, 10)
    stock.reserve(db, warehouse_id=wh.id, item_id=item.id, quantity=6, reference="k",
                  actor=None)  # fmt: skip
    with pytest.raises(Conflict):
        stock.adjust(db, warehouse_id=wh.id, lot_id=lot.id, delta=-5,
                     reason=AdjustmentReason.damage, actor=None)  # fmt: skip
    with pytest.raises(Invalid):
        stock.adjust(db, warehouse_id=wh.id, lot_id=lot.id, delta=2,
                     reason=AdjustmentReason.damage, actor=None)  # fmt: skip
    stock.adjust(db, warehouse_id=wh.id, lot_id=lot.id, delta=-4, reason=AdjustmentReason.damage,
                 actor=None)  # fmt: skip
    stock.adjust(db, warehouse_id=wh.id, lot_id=lot.id, delta=1,
                 reason=AdjustmentReason.count_correction, actor=None)  # fmt: skip
    assert _balance(db, wh.id, lot.id).on_hand == 7
    assert stock.check_ledger(db) == []


def test_transfer_is_in_transit_until_received_and_cross_border_has_a_declaration(
    db: Session,
) -> None:
    cn, hk = make_org(db, OrgKind.ngo, country="CN"), make_org(db, OrgKind.ngo, country="HK")
    a, b = make_warehouse(db, cn), make_warehouse(db, hk)
    item = make_item(db)
    donor = make_org(db, OrgKind.donor, name="Acme Foods")
    lot = make_lot(db, a, item, 30, donor=donor, unit_value_fen=250)
    shipment = stock.transfer(
        db, from_warehouse_id=a.id, to_warehouse_id=b.id,
        lines=[stock.TransferLine(quantity=12, item_id=item.id)], actor=None,
    )  # fmt: skip
    assert shipment.cross_border and shipment.destination_country == "HK"
    assert _balance(db, a.id, lot.id).on_hand == 18
    inbound = _balance(db, b.id, lot.id)
    assert (inbound.on_hand, inbound.in_transit) == (0, 12)
    assert stock.available(db, warehouse_id=b.id, item_id=item.id) == 0
    declaration = stock.gift_declaration(db, transfer_id=shipment.id)
    assert declaration["total_value_fen"] == "3000"
    text = stock.render_gift_declaration(declaration)
    assert "Acme Foods" in text and item.sku in text
    stock.receive_transfer(db, transfer_id=shipment.id, actor=None)
    stock.receive_transfer(db, transfer_id=shipment.id, actor=None)  # twice: no-op
    inbound = _balance(db, b.id, lot.id)
    assert (inbound.on_hand, inbound.in_transit) == (12, 0)
    assert stock.check_ledger(db) == []


def test_movements_are_append_only(db: Session) -> None:
    wh, item = make_warehouse(db), make_item(db)
    make_lot(db, wh, item, 3)
    db.commit()
    movement = db.scalars(select(StockMovement)).one()
    movement.d_on_hand = 300
    with pytest.raises(ValueError, match="append-only"):
        db.flush()
    db.rollback()
    with pytest.raises((DBAPIError, StatementError)):  # the database refuses too
        db.execute(update(StockMovement).values(d_on_hand=300))
    db.rollback()
    assert db.scalar(select(func.sum(StockMovement.d_on_hand))) == 3
    assert db.scalars(select(StockMovement.kind)).one() == MovementKind.receipt


def test_stock_matrix_and_kits_keyed_separately(db: Session) -> None:
    wh, item = make_warehouse(db), make_item(db)
    make_lot(db, wh, item, 8)
    stock.reserve(db, warehouse_id=wh.id, item_id=item.id, quantity=3, reference="m",
                  actor=None)  # fmt: skip
    assert stock.stock_matrix(db) == {(wh.id, item.id): 5}
    assert stock.stock_matrix(db, kind="kit") == {}


def test_rebuilding_balances_from_movements_gives_the_same_table(db: Session) -> None:
    a, b, item = make_warehouse(db), make_warehouse(db), make_item(db)
    make_lot(db, a, item, 10, expiry=TODAY + timedelta(days=5))
    make_lot(db, a, item, 7)
    stock.reserve(db, warehouse_id=a.id, item_id=item.id, quantity=12, reference="q",
                  actor=None, as_of=TODAY)  # fmt: skip
    stock.issue(db, reference="q", quantity=5, actor=None, as_of=TODAY)
    stock.transfer(db, from_warehouse_id=a.id, to_warehouse_id=b.id,
                   lines=[stock.TransferLine(quantity=3, item_id=item.id)], actor=None,
                   as_of=TODAY)  # fmt: skip
    db.flush()

    def table() -> set[tuple[object, ...]]:
        rows = db.scalars(select(StockBalance)).all()
        return {(r.warehouse_id, r.lot_id, r.item_id, r.expiry, r.on_hand, r.reserved,
                 r.in_transit) for r in rows}  # fmt: skip

    before = table()
    db.expunge_all()
    assert stock.rebuild_balances(db) == len(before)
    assert table() == before
    assert stock.check_ledger(db) == []


def test_a_single_call_is_a_batch_of_one(db: Session) -> None:
    """The same asks, one call each and as batches, leave the same movements."""
    item = make_item(db)
    kinds = []
    for single in (True, False):
        wh = make_warehouse(db)
        early = make_lot(db, wh, item, 4, expiry=TODAY + timedelta(days=2))
        late = make_lot(db, wh, item, 10, expiry=TODAY + timedelta(days=9))
        lot = {early.id: "early", late.id: "late"}
        ref = f"batch-of-one:{single}"
        if single:
            stock.reserve(db, warehouse_id=wh.id, item_id=item.id, quantity=9, reference=ref,
                          actor=None, as_of=TODAY)  # fmt: skip
            stock.release(db, reference=ref, quantity=2, actor=None)
            stock.issue(db, reference=ref, quantity=6, delivery_ref="d", actor=None, as_of=TODAY)
            stock.return_stock(db, reference=ref, quantity=5, delivery_ref="d", actor=None)
        else:
            stock.reserve_many(db, [stock.Reservation(wh.id, item.id, None, 9, ref)],
                               actor=None, as_of=TODAY)  # fmt: skip
            stock.release_many(db, [stock.Release(ref, 2)], actor=None)
            stock.issue_many(db, [stock.Issue(ref, 6, "d")], actor=None, as_of=TODAY)
            stock.return_many(db, [stock.Return(ref, 5, "d")], actor=None)
        moves = db.scalars(
            select(StockMovement).where(StockMovement.reference == ref).order_by(StockMovement.id)
        ).all()
        kinds.append([(m.kind, lot[m.lot_id], m.d_on_hand, m.d_reserved) for m in moves])
    assert kinds[0] == kinds[1]
    assert kinds[0] == [
        (MovementKind.reservation, "early", 0, 4),  # first expiry first
        (MovementKind.reservation, "late", 0, 5),
        (MovementKind.release, "late", 0, -2),  # latest expiry first
        (MovementKind.issue, "early", -4, -4),  # first expiry first
        (MovementKind.issue, "late", -2, -2),
        (MovementKind.return_, "late", 2, 0),  # latest expiry first
        (MovementKind.return_, "early", 3, 0),
    ]
    assert stock.check_ledger(db) == []


def test_a_batch_is_all_or_nothing(db: Session) -> None:
    wh, item = make_warehouse(db), make_item(db)
    make_lot(db, wh, item, 10, expiry=TODAY + timedelta(days=5))
    stock.reserve_many(db, [stock.Reservation(wh.id, item.id, None, 3, r) for r in "ab"],
                       actor=None, as_of=TODAY)  # fmt: skip
    db.commit()
    with pytest.raises(Conflict, match="holds 3 reserved; cannot release 4"):
        stock.release_many(db, [stock.Release("a"), stock.Release("b", 4)], actor=None)
    db.rollback()
    with pytest.raises(Conflict, match="cannot issue 4"):
        stock.issue_many(db, [stock.Issue("a", 3, "d1"), stock.Issue("b", 4, "d2")], actor=None,
                         as_of=TODAY)  # fmt: skip
    db.rollback()
    assert db.scalar(select(func.count()).select_from(StockMovement)) == 3
    # A whole reference, twice for the same delivery: issued once.
    assert stock.issue_many(db, [stock.Issue("a", None, "d1")] * 2, actor=None, as_of=TODAY) == 1
    with pytest.raises(Invalid):
        stock.reserve_many(db, [stock.Reservation(wh.id, item.id, None, 0, "c")], actor=None)
    assert stock.check_ledger(db) == []


def test_release_many_without_returning_writes_the_same_movements(db: Session) -> None:
    """A plan's left-outs are released without the movements given back: the same rows as
    with them, and the balances follow (each reference keeps its earliest expiry)."""
    wh, item = make_warehouse(db), make_item(db)
    early = make_lot(db, wh, item, 4, expiry=TODAY + timedelta(days=5))
    late = make_lot(db, wh, item, 10, expiry=TODAY + timedelta(days=50))
    refs = ["with:1", "with:2", "without:1", "without:2"]
    stock.reserve_many(db, [stock.Reservation(wh.id, item.id, None, 3, r) for r in refs],
                       actor=None, as_of=TODAY)  # fmt: skip

    def written(prefix: str) -> list[tuple[str, int]]:
        rows = db.execute(
            select(StockMovement.reference, StockMovement.d_reserved)
            .where(StockMovement.kind == MovementKind.release)
            .where(StockMovement.reference.like(f"{prefix}:%"))
            .order_by(StockMovement.id)
        ).all()
        return [(str(r).split(":")[1], d) for r, d in rows]

    given = stock.release_many(
        db, [stock.Release("with:1"), stock.Release("with:2", 2)], actor=None
    )
    assert [(m.reference, m.d_reserved) for m in given] == [("with:1", -3), ("with:2", -2)]
    none = stock.release_many(
        db, [stock.Release("without:1"), stock.Release("without:2", 2)], actor=None,
        returning=False,
    )  # fmt: skip
    assert none == []
    assert written("without") == written("with") == [("1", -3), ("2", -2)]
    assert _balance(db, wh.id, early.id).reserved + _balance(db, wh.id, late.id).reserved == 2
    assert stock.check_ledger(db) == []
