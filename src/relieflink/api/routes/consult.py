"""Online consultations: requests and triage, the doctors' queue, messages (REST and WebSocket),
prescriptions, chronic refills, and the coordinators' queue and staffing view.

WebSocket authentication: the bearer token travels in the FIRST MESSAGE
(``{"type": "auth", "token": "..."}``), not in a ``?token=`` query parameter, because URLs end up
in access logs, proxies and browser history, and a session token there would leak. Browsers
cannot set an ``Authorization`` header on a WebSocket, so the first message is the portable way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import date
from functools import partial
from typing import Annotated, Any

from fastapi import (
    APIRouter,
    BackgroundTasks,
    Query,
    Request,
    Response,
    WebSocket,
    WebSocketDisconnect,
    status,
)
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ValidationError

from relieflink import clock
from relieflink.api.deps import CurrentUser, SessionDep, require_role
from relieflink.common.fields import Count, Id
from relieflink.common.schemas import Page
from relieflink.consult import service as consult
from relieflink.consult import triage
from relieflink.consult.broker import Event
from relieflink.consult.realtime import MessageRefused, hub_for
from relieflink.consult.schemas import (
    ChronicPatientCreate,
    ChronicPatientRead,
    ConsultationClose,
    ConsultationCreate,
    ConsultationFilters,
    ConsultationListItem,
    ConsultationRead,
    DoctorProfileRead,
    DoctorShift,
    MessageCreate,
    MessageRead,
    PrescriptionCreate,
    PrescriptionRead,
    QueueSummary,
    RefillDueRead,
    StaffingQuery,
)
from relieflink.db import KeepAndRefuse, session_scope
from relieflink.errors import RelieflinkError
from relieflink.flows import prescriptions
from relieflink.models import Role, User
from relieflink.users import access
from relieflink.users import service as users

router = APIRouter(prefix="/consultations", tags=["consultations"])
Requester = Annotated[User, require_role(access.CONSULT_REQUESTERS)]
Reader = Annotated[User, require_role(access.CONSULT_READERS)]
Doctor = Annotated[User, require_role(Role.doctor)]
QueueViewer = Annotated[User, require_role(access.CONSULT_QUEUE_VIEWERS)]
ChronicManager = Annotated[User, require_role(access.CHRONIC_MANAGERS)]
Staff = Annotated[User, require_role(access.STAFF)]
log = logging.getLogger(__name__)
AUTH_TIMEOUT_S = 10.0
HISTORY_LIMIT = 500


class TriageView(BaseModel):
    urgency: str
    outcome: str
    target_minutes: int
    specialty: str
    fired: list[str]
    red_flags: list[str]
    rules_version: str
    emergency_numbers: list[dict[str, str]]
    message: str


class ConsultationCreated(BaseModel):
    triage: TriageView
    consultation: ConsultationRead


def _triage_view(result: triage.TriageResult) -> TriageView:
    if result.is_emergency:
        numbers = ", ".join(f"{n['number']} ({n['label']})" for n in result.emergency_numbers)
        message = (
            f"Call emergency services now: {numbers}. A doctor will also contact you as soon as "
            "possible, but do not wait for the doctor."
        )
    else:
        message = f"A doctor should see you within {result.target_minutes} minutes."
    return TriageView(
        urgency=result.urgency,
        outcome=result.outcome,
        target_minutes=result.target_minutes,
        specialty=result.specialty,
        fired=list(result.fired),
        red_flags=list(result.red_flags),
        rules_version=result.rules_version,
        emergency_numbers=[dict(n) for n in result.emergency_numbers],
        message=message,
    )


@router.get("/questionnaire")
def questionnaire(user: CurrentUser) -> dict[str, Any]:
    """The symptom questionnaire and the rules version (what a request must answer)."""
    rules = triage.default_rules()
    return {
        "rules_version": rules.version,
        "age_bands": list(rules.age_bands),
        "questions": [
            {
                "id": q.id,
                "kind": q.kind,
                "choices": list(q.choices),
                "required": q.required,
                "text": q.text,
                "text_zh": q.text_zh,
            }
            for q in rules.questions.values()
        ],
        "emergency_numbers": [dict(n) for n in rules.emergency_numbers],
    }


@router.post("", response_model=ConsultationCreated, status_code=status.HTTP_201_CREATED)
def request_consultation(
    data: ConsultationCreate, session: SessionDep, user: Requester
) -> ConsultationCreated:
    """Ask for a consultation; the answer carries the triage (and emergency numbers if a red
    flag fired), before any queue."""
    consultation, result = consult.request_consultation(session, data, actor=user)
    return ConsultationCreated(
        triage=_triage_view(result), consultation=consult.to_read(session, consultation)
    )


@router.get("", response_model=Page[ConsultationListItem])
def list_consultations(
    session: SessionDep, user: Reader, query: Annotated[ConsultationFilters, Query()]
) -> Page[ConsultationListItem]:
    """Consultations the caller may see (doctors: theirs and those waiting in their specialty)."""
    rows, total = consult.list_consultations(
        session, query, actor=user, offset=query.offset, limit=query.limit
    )
    return Page(
        items=[ConsultationListItem.model_validate(c) for c in rows],
        total=total,
        offset=query.offset,
        limit=query.limit,
    )


@router.post("/shift", response_model=DoctorProfileRead)
def start_shift(data: DoctorShift, session: SessionDep, user: Doctor) -> DoctorProfileRead:
    """A doctor joins the queue with their specialties and languages."""
    return DoctorProfileRead.model_validate(consult.start_shift(session, data, actor=user))


@router.delete("/shift", response_model=DoctorProfileRead)
def end_shift(session: SessionDep, user: Doctor) -> DoctorProfileRead:
    """A doctor leaves the queue."""
    return DoctorProfileRead.model_validate(consult.end_shift(session, actor=user))


@router.get("/queue", response_model=list[ConsultationListItem])
def waiting_queue(session: SessionDep, user: Doctor) -> list[ConsultationListItem]:
    """The requests this doctor could take, in the order they will be taken."""
    return [
        ConsultationListItem.model_validate(c) for c in consult.waiting_queue(session, actor=user)
    ]


@router.get("/queue/summary", response_model=QueueSummary)
def queue_summary(session: SessionDep, user: QueueViewer) -> QueueSummary:
    """Counts per urgency and specialty, overdue requests, doctors on duty (no health data)."""
    return consult.queue_summary(session, actor=user)


@router.get("/staffing")
def staffing(
    session: SessionDep, user: Staff, query: Annotated[StaffingQuery, Query()]
) -> dict[str, Any]:
    """Doctors needed per hour (Erlang C) to meet every urgency's target, with the queue now."""
    report = consult.staffing_report(
        session,
        actor=user,
        days=query.days,
        service_minutes=query.service_minutes,
        service_level=query.service_level,
    )
    return {
        "days": report.days,
        "service_minutes": report.service_minutes,
        "service_level": report.service_level,
        "hours": [
            {
                "hour": h.hour,
                "arrivals_per_hour": h.arrivals_per_hour,
                "load_erlangs": h.load_erlangs,
                "needed_by_urgency": dict(h.needed_by_level),
                "doctors_needed": h.doctors_needed,
                "mean_wait_minutes": h.mean_wait_minutes if h.doctors_needed else 0.0,
            }
            for h in report.plan
        ],
        "queue": report.queue.model_dump(mode="json"),
    }


@router.get("/realtime/stats")
def realtime_stats(request: Request, user: Staff) -> dict[str, Any]:
    """The message hub of this process: connections, messages stored, batch and fan-out timings."""
    return hub_for(request.app).stats()


@router.post(
    "/take",
    response_model=ConsultationRead,
    responses={204: {"description": "nothing waiting that matches"}},
)
def take_next(session: SessionDep, user: Doctor) -> ConsultationRead | Response:
    """Take the next matching request (most urgent, then most overdue)."""
    consultation = consult.take_next(session, actor=user)
    if consultation is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    return consult.to_read(session, consultation)


@router.get("/chronic/due", response_model=list[RefillDueRead])
def due_refills(
    session: SessionDep,
    user: ChronicManager,
    today: date | None = None,
    lead_days: Annotated[int, Query(ge=0, le=60)] = 5,
) -> list[RefillDueRead]:
    """Registered chronic patients whose medicine runs out within ``lead_days``."""
    due = consult.due_refills(session, today=today or clock.today(), lead_days=lead_days)
    return [RefillDueRead.model_validate(d, from_attributes=True) for d in due]


@router.post("/chronic", response_model=ChronicPatientRead, status_code=201)
def register_chronic_patient(
    data: ChronicPatientCreate, session: SessionDep, user: ChronicManager
) -> ChronicPatientRead:
    """Register a household member's long-term medicine for refill tracking."""
    patient = consult.register_chronic_patient(session, data, actor=user)
    return ChronicPatientRead.model_validate(patient)


@router.get("/{consultation_id}", response_model=ConsultationRead)
def read_consultation(consultation_id: Id, session: SessionDep, user: Reader) -> ConsultationRead:
    """One consultation (audited)."""
    return consult.to_read(
        session, consult.require_consultation(session, consultation_id, actor=user)
    )


@router.post("/{consultation_id}/cancel", response_model=ConsultationRead)
def cancel_consultation(
    consultation_id: Id, session: SessionDep, user: Requester
) -> ConsultationRead:
    """Withdraw a request no doctor has taken yet."""
    consultation = consult.cancel_consultation(session, consultation_id, actor=user)
    return consult.to_read(session, consultation)


@router.post("/{consultation_id}/prescription", response_model=PrescriptionRead, status_code=201)
def prescribe(
    consultation_id: Id, data: PrescriptionCreate, session: SessionDep, user: Doctor
) -> PrescriptionRead:
    """The assigned doctor prescribes catalog items."""
    return PrescriptionRead.model_validate(
        consult.prescribe(session, consultation_id, data, actor=user)
    )


@router.post("/{consultation_id}/close", response_model=ConsultationRead)
def close_consultation(
    consultation_id: Id,
    data: ConsultationClose,
    session: SessionDep,
    user: Doctor,
    request: Request,
    background: BackgroundTasks,
) -> ConsultationRead:
    """End the consultation with notes and an outcome (and optionally a prescription)."""
    consultation = prescriptions.close_consultation(session, consultation_id, data, actor=user)
    # Runs after the commit: connected participants learn the consultation ended.
    background.add_task(
        hub_for(request.app).announce,
        consultation_id,
        {"type": "status", "consultation_id": consultation_id, "status": "closed"},
    )
    return consult.to_read(session, consultation)


@router.get("/{consultation_id}/messages", response_model=list[MessageRead])
def list_messages(
    consultation_id: Id,
    session: SessionDep,
    user: Reader,
    after_id: Count = 0,
) -> list[MessageRead]:
    """The stored message history (audited as a read of the consultation)."""
    rows = consult.list_messages(session, consultation_id, actor=user, after_id=after_id)
    return [MessageRead.model_validate(m) for m in rows]


@router.post("/{consultation_id}/messages", response_model=MessageRead, status_code=201)
def post_message(
    consultation_id: Id,
    data: MessageCreate,
    session: SessionDep,
    user: Reader,
    request: Request,
    background: BackgroundTasks,
) -> MessageRead:
    """Send a message without a WebSocket (it reaches connected participants after commit)."""
    message = consult.post_message(
        session, consultation_id, data.body, actor=user, client_ref=data.client_ref
    )
    read = MessageRead.model_validate(message)
    background.add_task(
        hub_for(request.app).announce,
        consultation_id,
        {"type": "message", **read.model_dump(mode="json")},
    )
    return read


# --- WebSocket -----------------------------------------------------------------------------

WS_UNAUTHORIZED, WS_FORBIDDEN, WS_NOT_FOUND, WS_BAD_REQUEST = 4401, 4403, 4404, 4400
WS_TRY_AGAIN = 1013  # RFC 6455 "try again later"


def _open(token: str, consultation_id: int, after_id: int) -> tuple[User, str, list[MessageRead]]:
    """Authenticate, check the caller takes part, and read the history (one audited read)."""
    with session_scope() as session:
        consult.begin_write(session)  # it writes the audit after reading (SQLite: lock first)
        user = users.resolve_token(session, token)
        if user is None:
            raise KeepAndRefuse(
                _WsClose(WS_UNAUTHORIZED, "sign in first: the token is invalid or expired")
            )
        try:
            consultation, history = consult.open_conversation(
                session, consultation_id, actor=user, after_id=after_id, limit=HISTORY_LIMIT
            )
        except RelieflinkError as exc:
            raise _WsClose(
                WS_NOT_FOUND if exc.status_code == 404 else WS_FORBIDDEN, exc.message
            ) from None
        return user, consultation.status, [MessageRead.model_validate(m) for m in history]


class _WsClose(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class _AuthMessage(BaseModel):
    type: str
    token: str
    after_id: Count = 0


@router.websocket("/{consultation_id}/ws")
async def consultation_socket(websocket: WebSocket, consultation_id: Id) -> None:
    """Real-time messages of one consultation.

    Protocol (JSON text frames): the client first sends ``{"type": "auth", "token": "...",
    "after_id": 0}`` within 10 s; the server answers ``{"type": "ready", "status": ...,
    "history": [...], "more": false}`` (the stored messages after ``after_id``, at most 500;
    ``more`` says to page the rest with ``GET .../messages?after_id=``). Then the client sends
    ``{"type": "message", "body": "...", "client_ref": "..."}``; every participant, the sender
    included (its acknowledgement), gets ``{"type": "message", "id": ..., ...}`` once stored.
    ``{"type": "ping"}`` gets ``{"type": "pong"}``. Errors: ``{"type": "error", "detail": ...}``.
    Close codes: 4400 bad first message, 4401 not signed in, 4403 not a participant, 4404 none,
    1013 live messages unavailable for a moment (several server processes and Redis is away).
    """
    await websocket.accept()
    hub = hub_for(websocket.app)
    try:
        await hub.start()
    except Exception:  # the broker (Redis) is away: the client reconnects a little later
        log.warning("consultation socket refused: the message broker is unavailable", exc_info=True)
        await websocket.close(WS_TRY_AGAIN, "live messages are unavailable for a moment")
        return
    # Subscribe before reading the history so nothing falls between the two; nothing is sent
    # to this socket before the caller is authorised, and duplicates are skipped by id.
    queue = hub.subscribe(consultation_id)
    pump: asyncio.Task[None] | None = None
    try:
        try:
            raw = await asyncio.wait_for(websocket.receive_text(), AUTH_TIMEOUT_S)
            auth = _AuthMessage.model_validate_json(raw)
            if auth.type != "auth":
                raise _WsClose(WS_BAD_REQUEST, 'the first message must be {"type": "auth", ...}')
            user, state, history = await run_in_threadpool(
                _open, auth.token, consultation_id, auth.after_id
            )
        except (TimeoutError, ValidationError):
            await websocket.close(WS_BAD_REQUEST, 'send {"type": "auth", "token": ...} first')
            return
        except _WsClose as exc:
            await websocket.close(exc.code, exc.reason[:120])
            return
        await websocket.send_text(
            json.dumps(
                {
                    "type": "ready",
                    "consultation_id": consultation_id,
                    "status": state,
                    "history": [m.model_dump(mode="json") for m in history],
                    # At most HISTORY_LIMIT (oldest first): if more, page with GET .../messages.
                    "more": len(history) == HISTORY_LIMIT,
                },
                ensure_ascii=False,
            )
        )
        seen = max((m.id for m in history), default=auth.after_id)
        pump = asyncio.create_task(_pump(websocket, queue, seen))
        while True:
            try:
                event = json.loads(await websocket.receive_text())
            except ValueError:
                _local(queue, {"type": "error", "detail": "not JSON"})
                continue
            kind = event.get("type") if isinstance(event, dict) else None
            if kind == "ping":
                _local(queue, {"type": "pong"})
                continue
            if kind != "message":
                _local(queue, {"type": "error", "detail": f"unknown type {kind!r}"})
                continue
            try:
                data = MessageCreate.model_validate(
                    {"body": event.get("body"), "client_ref": event.get("client_ref")}
                )
            except ValidationError as exc:
                detail = str(exc.errors(include_url=False)[0]["msg"])
                _local(
                    queue,
                    {"type": "error", "detail": detail, "client_ref": event.get("client_ref")},
                )
                continue
            # Queue it for the writer without waiting: messages keep their order, the reader
            # keeps reading, and the stored copy comes back through the hub as the ack.
            done = hub.submit(
                consultation_id,
                sender_id=user.id,
                sender_role=str(user.role),
                body=data.body,
                client_ref=data.client_ref,
            )
            done.add_done_callback(partial(_report_failure, queue, data.client_ref))
    except WebSocketDisconnect:
        pass
    finally:
        hub.unsubscribe(consultation_id, queue)
        if pump is not None:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
                await pump


async def _pump(websocket: WebSocket, queue: asyncio.Queue[Event], seen: int) -> None:
    """The only sender on the socket after ``ready``: events in order, history not repeated."""
    while True:
        message_id, text = await queue.get()
        if message_id and message_id <= seen:
            continue
        await websocket.send_text(text)


def _local(queue: asyncio.Queue[Event], event: dict[str, Any]) -> None:
    """An event for this socket only (errors, pong)."""
    queue.put_nowait((0, json.dumps(event, ensure_ascii=False)))


def _report_failure(
    queue: asyncio.Queue[Event],
    client_ref: str | None,
    done: asyncio.Future[int],
) -> None:
    if done.cancelled():
        return
    exc = done.exception()
    if isinstance(exc, MessageRefused):
        _local(queue, {"type": "error", "detail": str(exc), "client_ref": client_ref})
    elif exc is not None:  # the store failed: the sender must know the message was not kept
        _local(
            queue,
            {"type": "error", "detail": "the message was not stored", "client_ref": client_ref},
        )
