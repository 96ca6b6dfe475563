"""Receive goods (against a pledge): the one flow behind the API's ``POST /stock/receipts``, the
web's receipt form and ``relieflink stock receive``.

Against a pledge, the donations domain says whether it still takes receipts and who the donor
is; the stock ledger receives the lots; the donations domain then records discrepancies on the
pledge's thread and moves the pledge on. Never commits: the caller owns the transaction, so a
refusal at any step leaves nothing written.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from relieflink.donations import service as donations
from relieflink.models import Discrepancy, Receipt, StockLot, User
from relieflink.stock import service as stock
from relieflink.stock.schemas import ReceiveIn


@dataclass(frozen=True)
class Received:
    receipt: Receipt
    lots: list[StockLot]
    discrepancies: list[Discrepancy]  # raised by this receipt (none without a pledge)


def receive_against_pledge(
    session: Session, data: ReceiveIn, *, final: bool = False, actor: User | None
) -> Received:
    """Receive ``data`` at its warehouse: a lot per line, from the pledge's donor when it names
    a pledge (``Conflict`` if the pledge takes no more receipts), then settle the pledge
    (``final``: the last delivery, so shortfalls count as discrepancies)."""
    if data.pledge_id is not None:
        pledge = donations.ensure_receivable(
            session, data.pledge_id, donor_org_id=data.donor_org_id
        )
        data = data.model_copy(update={"donor_org_id": pledge.donor_org_id})
    receipt = stock.receive(session, data, actor=actor)
    found = donations.settle_receipt(session, receipt_id=receipt.id, final=final, actor=actor)
    return Received(receipt, stock.receipt_lots(session, receipt.id), found)
