"""Receiving against a pledge: the one flow the API, the web form and the CLI call."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relieflink.donations import service as donations
from relieflink.errors import Conflict, Invalid
from relieflink.flows import receipts
from relieflink.models import OrgKind, PledgeStatus, Receipt, StockLot
from relieflink.stock.schemas import ReceiveIn
from tests.factories import make_org
from tests.stock.factories import make_item, make_pledge, make_program, make_warehouse


def _receipt(warehouse_id: int, pledge_id: int | None, quantity: int, **extra: int) -> ReceiveIn:
    lots = [{"item_id": extra.pop("item_id"), "quantity": quantity, "unit_value_fen": 100}]
    data = {"warehouse_id": warehouse_id, "pledge_id": pledge_id, "lots": lots} | extra
    return ReceiveIn.model_validate(data)


def test_the_pledge_gives_the_donor_and_is_settled(db: Session) -> None:
    ngo, donor = make_org(db), make_org(db, OrgKind.donor)
    wh, rice = make_warehouse(db, ngo), make_item(db)
    pledge = make_pledge(db, donor=donor, recipient=ngo, program=make_program(db, ngo),
                         lines=[(rice, 10, 100)])  # fmt: skip
    done = receipts.receive_against_pledge(
        db, _receipt(wh.id, pledge.id, 4, item_id=rice.id), actor=None
    )
    assert done.receipt.donor_org_id == donor.id
    assert [(lot.donor_org_id, lot.pledge_id, lot.quantity) for lot in done.lots] == [
        (donor.id, pledge.id, 4)
    ]
    assert done.discrepancies == []
    assert pledge.status == PledgeStatus.partly_received
    # The last delivery, short: the shortfall is a discrepancy and the pledge is received.
    last = receipts.receive_against_pledge(
        db, _receipt(wh.id, pledge.id, 5, item_id=rice.id), final=True, actor=None
    )
    assert [(d.pledged, d.received) for d in last.discrepancies] == [(10, 9)]
    assert pledge.status == PledgeStatus.received
    assert not donations.accepts_receipts(pledge)
    db.commit()


@pytest.mark.parametrize("status", [PledgeStatus.cancelled, PledgeStatus.received])
def test_a_pledge_that_takes_no_more_receipts_is_refused_with_nothing_written(
    db: Session, status: PledgeStatus
) -> None:
    ngo, donor = make_org(db), make_org(db, OrgKind.donor)
    wh, rice = make_warehouse(db, ngo), make_item(db)
    pledge = make_pledge(db, donor=donor, recipient=ngo, program=make_program(db, ngo),
                         lines=[(rice, 10, 100)])  # fmt: skip
    if status == PledgeStatus.received:
        receipts.receive_against_pledge(
            db, _receipt(wh.id, pledge.id, 10, item_id=rice.id), actor=None
        )
    else:
        donations.change_status(db, pledge.id, status, actor=None)
    db.commit()
    receipts_before = db.scalar(select(func.count()).select_from(Receipt))
    with pytest.raises(Conflict, match=f"a {status} pledge takes no more receipts"):
        receipts.receive_against_pledge(
            db, _receipt(wh.id, pledge.id, 1, item_id=rice.id), actor=None
        )
    db.rollback()
    assert db.scalar(select(func.count()).select_from(Receipt)) == receipts_before
    assert pledge not in donations.receivable_pledges(db, actor=None)


def test_another_donor_than_the_pledges_is_refused_and_a_plain_receipt_names_one(
    db: Session,
) -> None:
    ngo, donor, other = make_org(db), make_org(db, OrgKind.donor), make_org(db, OrgKind.donor)
    wh, rice = make_warehouse(db, ngo), make_item(db)
    pledge = make_pledge(db, donor=donor, recipient=ngo, program=make_program(db, ngo),
                         lines=[(rice, 10, 100)])  # fmt: skip
    db.commit()
    with pytest.raises(Invalid) as refused:
        receipts.receive_against_pledge(
            db, _receipt(wh.id, pledge.id, 1, item_id=rice.id, donor_org_id=other.id), actor=None
        )
    assert refused.value.errors[0].loc == ("donor_org_id",)
    db.rollback()
    with pytest.raises(Invalid, match="name the donor or the pledge"):
        receipts.receive_against_pledge(db, _receipt(wh.id, None, 1, item_id=rice.id), actor=None)
    db.rollback()
    done = receipts.receive_against_pledge(
        db, _receipt(wh.id, None, 3, item_id=rice.id, donor_org_id=other.id), actor=None
    )
    assert done.discrepancies == [] and done.receipt.pledge_id is None
    assert db.get(StockLot, done.lots[0].id).donor_org_id == other.id  # type: ignore[union-attr]
    db.commit()
