"""The stock ledger: receipts, reservations, releases, issues, returns, adjustments, transfers,
kit assembly, stock reports, traces and the HXL export.

Writes use the request session, which on SQLite takes the write lock first, so concurrent
reservations queue instead of failing; on PostgreSQL the services lock the balance rows they
change.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, status
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from pydantic import TypeAdapter
from sqlalchemy.orm import Session

from relieflink.api.deps import SessionDep, require_role
from relieflink.common.fields import Count, Days, Id, Text
from relieflink.common.schemas import Page
from relieflink.errors import Forbidden
from relieflink.flows import receipts
from relieflink.models import Role, User
from relieflink.stock import exports, ledger
from relieflink.stock import service as stock
from relieflink.stock.schemas import (
    AdjustIn,
    AssembleIn,
    DonorLine,
    HandoverIn,
    HandoverRead,
    IssueIn,
    LotRead,
    MovementFilters,
    MovementRead,
    OnHandRow,
    ReceiptRead,
    ReceiveIn,
    ReleaseIn,
    ReserveIn,
    ReturnIn,
    ShareRead,
    SupplyRead,
    TraceRead,
    TraceSource,
    TransferIn,
    TransferRead,
)
from relieflink.users import access

router = APIRouter(prefix="/stock", tags=["stock"])
_MOVEMENTS = TypeAdapter(list[MovementRead])


class ReceiptPost(ReceiveIn):
    final: bool = False


@router.post("/receipts", response_model=ReceiptRead, status_code=status.HTTP_201_CREATED)
def post_receipt(
    data: ReceiptPost,
    session: SessionDep,
    user: Annotated[User, require_role(access.STOCK_WRITERS)],
) -> ReceiptRead:
    """Receive goods: a lot per line; against a pledge, discrepancies go to its thread."""
    done = receipts.receive_against_pledge(
        session, ReceiveIn(**data.model_dump(exclude={"final"})), final=data.final, actor=user
    )
    receipt, lots = done.receipt, done.lots
    return ReceiptRead(
        id=receipt.id,
        warehouse_id=receipt.warehouse_id,
        pledge_id=receipt.pledge_id,
        donor_org_id=receipt.donor_org_id,
        received_at=receipt.received_at,
        lots=[LotRead.model_validate(lot) for lot in lots],
    )


@router.post(
    "/reservations", response_model=list[MovementRead], status_code=status.HTTP_201_CREATED
)
def post_reservation(
    data: ReserveIn, session: SessionDep, user: Annotated[User, require_role(access.STOCK_WRITERS)]
) -> Response:
    """Reserve FEFO for a reference (409 when not enough is available)."""
    moves = stock.reserve(
        session,
        warehouse_id=data.warehouse_id,
        item_id=data.item_id,
        kit_id=data.kit_id,
        quantity=data.quantity,
        reference=data.reference,
        actor=user,
    )
    # Serialised here, once: a returned model would be validated again in the thread pool.
    body = _MOVEMENTS.dump_json(_MOVEMENTS.validate_python(moves, from_attributes=True))
    return Response(body, status_code=status.HTTP_201_CREATED, media_type="application/json")


@router.post("/releases", response_model=list[MovementRead])
def post_release(
    data: ReleaseIn, session: SessionDep, user: Annotated[User, require_role(access.STOCK_WRITERS)]
) -> list[MovementRead]:
    """Release what a reference holds (all of it, or a quantity)."""
    moves = stock.release(session, reference=data.reference, quantity=data.quantity, actor=user)
    return [MovementRead.model_validate(m) for m in moves]


@router.post("/issues", response_model=list[MovementRead], status_code=status.HTTP_201_CREATED)
def post_issue(
    data: IssueIn, session: SessionDep, user: Annotated[User, require_role(access.STOCK_WRITERS)]
) -> list[MovementRead]:
    """Issue reserved stock of a reference to a delivery (never from expired lots)."""
    moves = stock.issue(
        session,
        reference=data.reference,
        quantity=data.quantity,
        delivery_ref=data.delivery_ref,
        actor=user,
    )
    return [MovementRead.model_validate(m) for m in moves]


@router.post("/handovers", response_model=HandoverRead, status_code=status.HTTP_201_CREATED)
def post_handover(
    data: HandoverIn,
    session: SessionDep,
    user: Annotated[User, require_role(access.STOCK_WRITERS)],
) -> HandoverRead:
    """What was issued to these deliveries reached the door: reports count it as delivered
    (until then it is on the way). Safe to repeat."""
    return HandoverRead(movements=ledger.hand_over(session, data.delivery_refs, actor=user))


@router.post("/returns", response_model=list[MovementRead], status_code=status.HTTP_201_CREATED)
def post_return(
    data: ReturnIn, session: SessionDep, user: Annotated[User, require_role(access.STOCK_WRITERS)]
) -> list[MovementRead]:
    """Put back issued units of a reference into their lots."""
    moves = stock.return_stock(
        session, reference=data.reference, quantity=data.quantity, actor=user, note=data.note
    )
    return [MovementRead.model_validate(m) for m in moves]


@router.post("/adjustments", response_model=MovementRead, status_code=status.HTTP_201_CREATED)
def post_adjustment(
    data: AdjustIn, session: SessionDep, user: Annotated[User, require_role(access.STOCK_WRITERS)]
) -> MovementRead:
    """Damage, expiry write-off or count correction of one lot (a reason is required)."""
    move = stock.adjust(
        session,
        warehouse_id=data.warehouse_id,
        lot_id=data.lot_id,
        delta=data.delta,
        reason=data.reason,
        note=data.note,
        actor=user,
    )
    return MovementRead.model_validate(move)


@router.post("/transfers", response_model=TransferRead, status_code=status.HTTP_201_CREATED)
def post_transfer(
    data: TransferIn, session: SessionDep, user: Annotated[User, require_role(access.STOCK_WRITERS)]
) -> TransferRead:
    """Ship stock to another warehouse; it is in transit until received."""
    shipment = stock.transfer(
        session,
        from_warehouse_id=data.from_warehouse_id,
        to_warehouse_id=data.to_warehouse_id,
        lines=[stock.TransferLine(**line.model_dump()) for line in data.lines],
        pledge_id=data.pledge_id,
        program_id=data.program_id,
        note=data.note,
        actor=user,
    )
    return TransferRead.model_validate(shipment)


@router.post("/transfers/{transfer_id}/receive", response_model=TransferRead)
def post_transfer_receipt(
    transfer_id: Id, session: SessionDep, user: Annotated[User, require_role(access.STOCK_WRITERS)]
) -> TransferRead:
    """Receive a shipment in full at its destination."""
    return TransferRead.model_validate(
        stock.receive_transfer(session, transfer_id=transfer_id, actor=user)
    )


@router.get("/transfers/{transfer_id}/declaration", response_model=None)
def get_gift_declaration(
    transfer_id: Id,
    session: SessionDep,
    user: Annotated[User, require_role(access.STOCK_READERS)],
    format: Literal["json", "text", "html", "pdf"] = "json",
) -> dict[str, object] | Response:
    """The gift declaration of a shipment, signed by the caller (printable with
    ``format=text``, ``html`` or ``pdf``)."""
    declaration = stock.gift_declaration(session, transfer_id=transfer_id, signatory=user)
    if format == "text":
        return PlainTextResponse(stock.render_gift_declaration(declaration))
    if format == "html":
        return HTMLResponse(stock.gift_declaration_html(declaration))
    if format == "pdf":
        return Response(stock.gift_declaration_pdf(declaration), media_type="application/pdf")
    return declaration


@router.post("/assemblies", response_model=LotRead, status_code=status.HTTP_201_CREATED)
def post_assembly(
    data: AssembleIn, session: SessionDep, user: Annotated[User, require_role(access.STOCK_WRITERS)]
) -> LotRead:
    """Build kits from component lots (FEFO); the kit lot keeps every donor's share."""
    lot = stock.assemble_kits(
        session, warehouse_id=data.warehouse_id, kit_id=data.kit_id, quantity=data.quantity,
        actor=user,
    )  # fmt: skip
    return LotRead.model_validate(lot)


@router.get("/movements", response_model=Page[MovementRead])
def get_movements(
    session: SessionDep,
    user: Annotated[User, require_role(access.STOCK_READERS)],
    query: Annotated[MovementFilters, Query()],
) -> Page[MovementRead]:
    """The ledger, oldest first."""
    rows, total = stock.list_movements(
        session,
        warehouse_id=query.warehouse_id,
        lot_id=query.lot_id,
        reference=query.reference,
        offset=query.offset,
        limit=query.limit,
    )
    return Page(
        items=[MovementRead.model_validate(m) for m in rows],
        total=total,
        offset=query.offset,
        limit=query.limit,
    )


@router.get("/on-hand", response_model=list[OnHandRow])
def get_on_hand(
    session: SessionDep,
    user: Annotated[User, require_role(access.STOCK_READERS)],
    warehouse_id: Id | None = None,
    item_id: Id | None = None,
    kit_id: Id | None = None,
) -> list[OnHandRow]:
    """Stock on hand by warehouse, item (or kit) and expiry."""
    rows = stock.stock_on_hand(session, warehouse_id=warehouse_id, item_id=item_id, kit_id=kit_id)
    return [
        OnHandRow(
            warehouse_id=r.warehouse_id,
            item_id=r.item_id,
            kit_id=r.kit_id,
            expiry=r.expiry,
            on_hand=r.on_hand,
            reserved=r.reserved,
            in_transit=r.in_transit,
            available=r.available,
            expired=r.expired,
        )
        for r in rows
    ]


@router.get("/supply", response_model=SupplyRead)
def get_days_of_supply(
    session: SessionDep,
    user: Annotated[User, require_role(access.STOCK_READERS)],
    daily_consumption: Annotated[Count, Query(gt=0)],
    warehouse_id: Id | None = None,
    item_id: Id | None = None,
    kit_id: Id | None = None,
) -> SupplyRead:
    """Days of supply left at a daily consumption."""
    days = stock.days_of_supply(
        session, daily_consumption=daily_consumption, warehouse_id=warehouse_id,
        item_id=item_id, kit_id=kit_id,
    )  # fmt: skip
    return SupplyRead(
        warehouse_id=warehouse_id,
        item_id=item_id,
        kit_id=kit_id,
        available=int(days * daily_consumption),
        daily_consumption=daily_consumption,
        days_of_supply=stock.exact(days),
        whole_days=int(days),
    )


@router.get("/expiring", response_model=list[OnHandRow])
def get_expiring(
    session: SessionDep,
    user: Annotated[User, require_role(access.STOCK_READERS)],
    within_days: Days = 30,
) -> list[OnHandRow]:
    """Lots with stock expiring within N days (or expired already)."""
    today = stock.today()
    return [
        OnHandRow(
            warehouse_id=b.warehouse_id,
            item_id=b.item_id,
            kit_id=b.kit_id,
            expiry=b.expiry,
            on_hand=b.on_hand,
            reserved=b.reserved,
            in_transit=b.in_transit,
            available=0 if (b.expiry and b.expiry < today) else b.on_hand - b.reserved,
            expired=bool(b.expiry and b.expiry < today),
        )
        for b in stock.expiring(session, within_days=within_days)
    ]


@router.get("/lots/{lot_id}", response_model=LotRead)
def get_lot(
    lot_id: Id, session: SessionDep, user: Annotated[User, require_role(access.STOCK_READERS)]
) -> LotRead:
    return LotRead.model_validate(stock.require_lot(session, lot_id))


def _trace_read(session: Session, trace: stock.Trace, *, only_org: int | None) -> TraceRead:
    shown = {d: q for d, q in trace.donors.items() if only_org is None or d == only_org}
    donors = [ShareRead.model_validate(share) for share in stock.named_shares(session, shown)]
    sources = [
        TraceSource(
            donor_org_id=d,
            item_id=i,
            kit_id=k,
            source_lot_id=src,
            quantity=stock.exact(q),
            value_fen=stock.exact(v),
        )
        for d, i, k, src, q, v in trace.sources
        if only_org is None or d == only_org
    ]
    return TraceRead(subject=trace.subject, units=trace.units, donors=donors, sources=sources)


def _donor_scope(user: User) -> int | None:
    """Donors see only their own organization's part of a trace or report."""
    if user.role == Role.donor:
        if user.organization_id is None:
            raise Forbidden("a donor account must belong to an organization")
        return user.organization_id
    return None


@router.get("/lots/{lot_id}/trace", response_model=TraceRead)
def get_lot_trace(
    lot_id: Id,
    session: SessionDep,
    user: Annotated[User, require_role(access.DONOR_TRACE_READERS)],
) -> TraceRead:
    """The donors and component quantities behind a lot (a donor sees its own part)."""
    only = _donor_scope(user)
    trace = _trace_read(session, stock.trace_lot(session, lot_id=lot_id), only_org=only)
    if only is not None and not trace.donors:
        raise Forbidden("your organization gave nothing in this lot")
    return trace


@router.get("/trace", response_model=TraceRead)
def get_reference_trace(
    session: SessionDep,
    user: Annotated[User, require_role(access.DONOR_TRACE_READERS)],
    reference: Annotated[Text, Query(min_length=1)],
) -> TraceRead:
    """The donors behind what a reference (an allocation line, a delivery) reserved or issued."""
    only = _donor_scope(user)
    trace = stock.trace_reference(session, reference=reference)
    return _trace_read(session, trace, only_org=only)


@router.get("/donors/report", response_model=list[DonorLine])
def get_donor_report(
    session: SessionDep,
    user: Annotated[User, require_role(access.DONOR_TRACE_READERS)],
    donor_org_id: Id | None = None,
) -> list[DonorLine]:
    """Per donor and item: pledged, received, in stock, in transit, delivered, written off."""
    only = _donor_scope(user)
    if only is not None:
        if donor_org_id not in (None, only):
            raise Forbidden("a donor sees its own organization's report only")
        donor_org_id = only
    codes, skus = stock.org_codes(session), stock.sku_names(session)
    return [
        DonorLine(
            donor_org_id=f.donor_org_id,
            donor_code=codes[f.donor_org_id],
            item_id=f.item_id,
            kit_id=f.kit_id,
            sku=skus[("item", f.item_id)] if f.item_id else skus[("kit", f.kit_id)],
            pledged=f.pledged,
            pledged_value_fen=f.pledged_value_fen,
            received=f.received,
            received_value_fen=f.received_value_fen,
            in_stock=stock.exact(f.in_stock),
            in_transit=stock.exact(f.in_transit),
            on_the_way=stock.exact(f.on_the_way),
            delivered=stock.exact(f.delivered),
            written_off=stock.exact(f.written_off),
            in_stock_value_fen=stock.exact(f.in_stock_value_fen),
            delivered_value_fen=stock.exact(f.delivered_value_fen),
            balanced=f.balanced,
        )
        for f in stock.donor_report(session, donor_org_id=donor_org_id)
    ]


@router.get("/exports/hxl.csv", response_class=Response)
def get_hxl(session: SessionDep, user: Annotated[User, require_role(access.STAFF)]) -> Response:
    """Stock and distribution totals per donor, item and warehouse as HXL-tagged CSV."""
    return Response(exports.hxl_csv(session), media_type="text/csv; charset=utf-8")
