"""Programs, pledges, status changes, discrepancies, partner threads, webhooks, IATI export."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from fastapi.responses import Response
from sqlalchemy.orm import Session

from relieflink.api.deps import SessionDep, require_role
from relieflink.common.fields import Count, Id
from relieflink.common.schemas import Page
from relieflink.donations import service as donations
from relieflink.donations.schemas import (
    DiscrepancyRead,
    MessageIn,
    MessageRead,
    PledgeCreate,
    PledgeFilters,
    PledgeLineRead,
    PledgeRead,
    ProgramCreate,
    ProgramRead,
    StatusChangeIn,
    StatusChangeRead,
    UnreadRead,
    WebhookIn,
    WebhookRead,
)
from relieflink.models import Pledge, User
from relieflink.stock import exports
from relieflink.users import access

router = APIRouter(tags=["donations"])


def _pledge_read(session: Session, pledge: Pledge) -> PledgeRead:
    read = PledgeRead.model_validate(pledge)
    read.lines = [
        PledgeLineRead.model_validate(x) for x in donations.pledge_lines(session, pledge.id)
    ]
    read.history = [
        StatusChangeRead.model_validate(x) for x in donations.pledge_history(session, pledge.id)
    ]
    return read


@router.post("/programs", response_model=ProgramRead, status_code=status.HTTP_201_CREATED)
def create_program(
    data: ProgramCreate, session: SessionDep, user: Annotated[User, require_role(access.STAFF)]
) -> ProgramRead:
    """Create a relief program (coordinators and admins)."""
    return ProgramRead.model_validate(donations.create_program(session, data, actor=user))


@router.get("/programs", response_model=list[ProgramRead])
def list_programs(
    session: SessionDep, user: Annotated[User, require_role(access.PLEDGE_READERS)]
) -> list[ProgramRead]:
    return [ProgramRead.model_validate(p) for p in donations.list_programs(session)]


@router.get("/programs/{program_id}/iati.xml", response_class=Response)
def program_iati(
    program_id: Id, session: SessionDep, user: Annotated[User, require_role(access.STAFF)]
) -> Response:
    """The program's pledges and disbursements as an IATI activity file."""
    return Response(exports.iati_activity_xml(session, program_id), media_type="application/xml")


@router.post("/pledges", response_model=PledgeRead, status_code=status.HTTP_201_CREATED)
def create_pledge(
    data: PledgeCreate,
    session: SessionDep,
    user: Annotated[User, require_role(access.PLEDGE_WRITERS)],
) -> PledgeRead:
    """Record a pledge (a donor for its own organization; staff for any)."""
    return _pledge_read(session, donations.create_pledge(session, data, actor=user))


@router.get("/pledges", response_model=Page[PledgeRead])
def list_pledges(
    session: SessionDep,
    user: Annotated[User, require_role(access.PLEDGE_READERS)],
    query: Annotated[PledgeFilters, Query()],
) -> Page[PledgeRead]:
    """Pledges the caller's organization gives or receives (staff: all)."""
    rows, total = donations.list_pledges(session, query, actor=user)
    return Page(
        items=[PledgeRead.model_validate(p) for p in rows],
        total=total,
        offset=query.offset,
        limit=query.limit,
    )


@router.get("/pledges/{pledge_id}", response_model=PledgeRead)
def read_pledge(
    pledge_id: Id, session: SessionDep, user: Annotated[User, require_role(access.PLEDGE_READERS)]
) -> PledgeRead:
    return _pledge_read(session, donations.require_pledge(session, pledge_id, actor=user))


@router.post("/pledges/{pledge_id}/status", response_model=PledgeRead)
def change_pledge_status(
    pledge_id: Id,
    data: StatusChangeIn,
    session: SessionDep,
    user: Annotated[User, require_role(access.PLEDGE_READERS)],
) -> PledgeRead:
    """Confirm, cancel or close a pledge (recorded, posted to its thread, sent to webhooks)."""
    pledge = donations.change_status(session, pledge_id, data.status, actor=user, note=data.note)
    return _pledge_read(session, pledge)


@router.get("/pledges/{pledge_id}/discrepancies", response_model=list[DiscrepancyRead])
def list_discrepancies(
    pledge_id: Id, session: SessionDep, user: Annotated[User, require_role(access.PLEDGE_READERS)]
) -> list[DiscrepancyRead]:
    return [
        DiscrepancyRead.model_validate(d)
        for d in donations.discrepancies(session, pledge_id, actor=user)
    ]


def _thread(kind: str, id_: int) -> str:
    return f"{kind}:{id_}"


@router.get("/pledges/{pledge_id}/messages", response_model=list[MessageRead])
def read_pledge_thread(
    pledge_id: Id,
    session: SessionDep,
    user: Annotated[User, require_role(access.PLEDGE_READERS)],
    after_id: Count = 0,
) -> list[MessageRead]:
    """The pledge's thread (marks what is returned as read)."""
    messages = donations.read_thread(session, _thread("pledge", pledge_id), actor=user,
                                     after_id=after_id)  # fmt: skip
    return [MessageRead.model_validate(m) for m in messages]


@router.post(
    "/pledges/{pledge_id}/messages", response_model=MessageRead, status_code=status.HTTP_201_CREATED
)
def post_pledge_message(
    pledge_id: Id,
    data: MessageIn,
    session: SessionDep,
    user: Annotated[User, require_role(access.PLEDGE_READERS)],
) -> MessageRead:
    message = donations.post_message(session, _thread("pledge", pledge_id), data, actor=user)
    return MessageRead.model_validate(message)


@router.get("/programs/{program_id}/messages", response_model=list[MessageRead])
def read_program_thread(
    program_id: Id,
    session: SessionDep,
    user: Annotated[User, require_role(access.PLEDGE_READERS)],
    after_id: Count = 0,
) -> list[MessageRead]:
    messages = donations.read_thread(session, _thread("program", program_id), actor=user,
                                     after_id=after_id)  # fmt: skip
    return [MessageRead.model_validate(m) for m in messages]


@router.post(
    "/programs/{program_id}/messages",
    response_model=MessageRead,
    status_code=status.HTTP_201_CREATED,
)
def post_program_message(
    program_id: Id,
    data: MessageIn,
    session: SessionDep,
    user: Annotated[User, require_role(access.PLEDGE_READERS)],
) -> MessageRead:
    message = donations.post_message(session, _thread("program", program_id), data, actor=user)
    return MessageRead.model_validate(message)


@router.get("/messages/unread", response_model=list[UnreadRead])
def unread(
    session: SessionDep, user: Annotated[User, require_role(access.PLEDGE_READERS)]
) -> list[UnreadRead]:
    """Unread messages per thread for the caller."""
    counts = donations.unread_counts(session, actor=user)
    return [UnreadRead(thread=t, unread=n) for t, n in sorted(counts.items())]


@router.put("/organizations/{organization_id}/webhook", response_model=WebhookRead)
def set_webhook(
    organization_id: Id,
    data: WebhookIn,
    session: SessionDep,
    user: Annotated[User, require_role(access.PLEDGE_READERS)],
) -> WebhookRead:
    """Where this organization's pledge events are POSTed, signed with HMAC-SHA256."""
    hook = donations.set_webhook(session, organization_id, data, actor=user)
    return WebhookRead.model_validate(hook)
