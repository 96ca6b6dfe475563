from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relieflink.catalog import service as catalog
from relieflink.errors import Conflict
from relieflink.models import Item, OrgKind, StockLot, StockMovement, Warehouse
from relieflink.stock import service as stock
from relieflink.stock.ledger import Reservation, reserve_many
from tests.factories import make_org

TODAY = date(2026, 11, 30)


@pytest.fixture
def rice(db: Session) -> dict[str, int]:
    catalog.seed_catalog(db, actor=None)
    donor, ngo = make_org(db, kind=OrgKind.donor), make_org(db)
    warehouse = Warehouse(code="WB", name="W", name_zh="仓", owner_id=ngo.id, lat=31.0, lon=121.0)
    db.add(warehouse)
    db.flush()
    item = db.scalars(select(Item).where(Item.sku == "RICE-5KG")).one()
    for quantity, expiry in (
        (5, date(2026, 12, 31)),
        (5, date(2026, 12, 10)),
        (9, date(2026, 11, 1)),
    ):
        stock.receive_lot(
            db,
            warehouse_id=warehouse.id,
            item_id=item.id,
            quantity=quantity,
            donor_org_id=donor.id,
            expiry=expiry,
            actor=None,
        )
    db.commit()
    return {"warehouse": warehouse.id, "item": item.id}


def ask(ids: dict[str, int], reference: str, quantity: int) -> Reservation:
    return Reservation(
        warehouse_id=ids["warehouse"],
        item_id=ids["item"],
        kit_id=None,
        quantity=quantity,
        reference=reference,
    )


def test_first_expiry_first_and_never_expired(db: Session, rice: dict[str, int]) -> None:
    reserve_many(db, [ask(rice, "a", 4), ask(rice, "b", 3)], actor=None, as_of=TODAY)
    moves = db.scalars(
        select(StockMovement).where(StockMovement.kind == "reservation").order_by(StockMovement.id)
    ).all()
    expiries = [(m.reference, m.d_reserved, db.get(StockLot, m.lot_id).expiry) for m in moves]
    assert expiries == [
        ("a", 4, date(2026, 12, 10)),
        ("b", 1, date(2026, 12, 10)),
        ("b", 2, date(2026, 12, 31)),
    ]
    assert (
        stock.available(db, warehouse_id=rice["warehouse"], item_id=rice["item"], as_of=TODAY) == 3
    )
    assert stock.check_ledger(db) == []


def test_all_or_nothing_and_a_retry_reserves_nothing_twice(
    db: Session, rice: dict[str, int]
) -> None:
    with pytest.raises(Conflict, match="nothing was reserved"):
        reserve_many(db, [ask(rice, "x", 6), ask(rice, "y", 5)], actor=None, as_of=TODAY)
    db.rollback()
    assert (
        db.scalar(
            select(func.count())
            .select_from(StockMovement)
            .where(StockMovement.kind == "reservation")
        )
        == 0
    )
    assert reserve_many(db, [ask(rice, "x", 6)], actor=None, as_of=TODAY) == 2
    assert reserve_many(db, [ask(rice, "x", 6)], actor=None, as_of=TODAY) == 0
    assert (
        stock.available(db, warehouse_id=rice["warehouse"], item_id=rice["item"], as_of=TODAY) == 4
    )
    assert stock.check_ledger(db) == []
