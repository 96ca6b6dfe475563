"""Programs, pledges and their status history, discrepancies, partner threads and webhooks.

A pledge moves pledged → confirmed → partly received → received → closed (or cancelled); every
change is recorded (who, when), posts a system message on the pledge thread and queues a signed
webhook event for both organizations. Goods are received against a pledge by
:func:`relieflink.flows.receipts.receive_against_pledge`: :func:`ensure_receivable`, the stock
ledger's receipt, then :func:`settle_receipt`, which compares received with pledged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy.orm import Session

from relieflink import clock
from relieflink.audit import service as audit
from relieflink.catalog import service as catalog
from relieflink.common import crud
from relieflink.donations import repository
from relieflink.donations.schemas import (
    MessageIn,
    PledgeCreate,
    PledgeFilters,
    ProgramCreate,
    WebhookIn,
)
from relieflink.errors import Conflict, FieldError, Forbidden, Invalid, NotFound
from relieflink.models import (
    Discrepancy,
    Item,
    Kit,
    Message,
    MessageKind,
    MessageRead,
    Organization,
    OrgWebhook,
    Pledge,
    PledgeLine,
    PledgeStatus,
    PledgeStatusChange,
    Program,
    Receipt,
    StockTransfer,
    User,
    WebhookDelivery,
)
from relieflink.users import access

S = PledgeStatus
# Allowed manual changes; partly received and received are set by receipts (settle_receipt).
TRANSITIONS: dict[PledgeStatus, set[PledgeStatus]] = {
    S.pledged: {S.confirmed, S.cancelled, S.partly_received, S.received},
    S.confirmed: {S.cancelled, S.partly_received, S.received},
    S.partly_received: {S.partly_received, S.received, S.closed},
    S.received: {S.closed},
    S.closed: set(),
    S.cancelled: set(),
}
# The statuses in which a pledge takes receipts: the one place this is decided (the receipt
# flow, the pages' "receive" links and the list of pledges to receive against all ask here).
RECEIVABLE: tuple[PledgeStatus, ...] = (S.pledged, S.confirmed, S.partly_received)
SIGNATURE_HEADER = "X-RelieFlink-Signature"


# --- programs ---------------------------------------------------------------------------------


def create_program(session: Session, data: ProgramCreate, *, actor: User | None) -> Program:
    """Create a relief program (coordinators and admins)."""
    if actor is not None:
        access.ensure_role(actor, access.STAFF)
    return crud.create(
        session, Program, data, actor=actor, entity="program",
        refs={"organization_id": Organization},
    )  # fmt: skip


def require_program(session: Session, program_id: int) -> Program:
    return crud.require(session, Program, program_id, label="program")


def list_programs(session: Session) -> Sequence[Program]:
    return repository.list_programs(session)


# --- pledges ----------------------------------------------------------------------------------


def ensure_can_see_pledge(actor: User, pledge: Pledge) -> None:
    if not access.sees_org(actor, pledge.donor_org_id, pledge.recipient_org_id):
        raise Forbidden("this pledge is between other organizations")


def require_pledge(session: Session, pledge_id: int, *, actor: User | None) -> Pledge:
    """A pledge the actor may see (``None``: the system)."""
    pledge = crud.require(session, Pledge, pledge_id, label="pledge")
    if actor is not None:
        ensure_can_see_pledge(actor, pledge)
    return pledge


def pledges_by_code(session: Session, codes: Sequence[str]) -> dict[str, Pledge]:
    """The pledges with these codes (those that exist)."""
    return repository.pledges_by_code(session, codes)


def pledges_with_lines(session: Session) -> list[tuple[Pledge, list[PledgeLine]]]:
    """Every pledge with its lines, in the order they were recorded (for the export)."""
    return repository.pledges_with_lines(session)


def pledge_lines(session: Session, pledge_id: int) -> list[PledgeLine]:
    return repository.lines_of(session, pledge_id)


def pledge_history(session: Session, pledge_id: int) -> list[PledgeStatusChange]:
    return repository.history_of(session, pledge_id)


def list_pledges(
    session: Session, filters: PledgeFilters, *, actor: User | None
) -> tuple[Sequence[Pledge], int]:
    """The pledges the actor's organization gives or receives (staff and the system: all)."""
    return repository.list_pledges(
        session,
        actor,
        program_id=filters.program_id,
        donor_org_id=filters.donor_org_id,
        status=filters.status,
        offset=filters.offset,
        limit=filters.limit,
    )


def create_pledge(session: Session, data: PledgeCreate, *, actor: User | None) -> Pledge:
    """Record a donor's pledge; a donor user pledges for their own organization only."""
    if actor is not None:
        access.ensure_role(actor, access.PLEDGE_WRITERS)
        if actor.role not in access.STAFF and actor.organization_id != data.donor_org_id:
            raise Forbidden("a donor pledges for their own organization only")
    errors = []
    for field, model, value in (
        ("donor_org_id", Organization, data.donor_org_id),
        ("recipient_org_id", Organization, data.recipient_org_id),
        ("program_id", Program, data.program_id),
    ):
        if session.get(model, value) is None:
            errors.append(FieldError((field,), f"no {model.__tablename__[:-1]} with id {value}"))
    for i, line in enumerate(data.lines):
        if line.item_id is not None and session.get(Item, line.item_id) is None:
            errors.append(FieldError(("lines", i, "item_id"), f"no item {line.item_id}"))
        if line.kit_id is not None and session.get(Kit, line.kit_id) is None:
            errors.append(FieldError(("lines", i, "kit_id"), f"no kit {line.kit_id}"))
    if data.donor_org_id == data.recipient_org_id:
        errors.append(FieldError(("recipient_org_id",), "must differ from the donor"))
    if data.code is not None and repository.pledges_by_code(session, [data.code]):
        errors.append(FieldError(("code",), f"a pledge with code {data.code!r} exists"))
    if errors:
        raise Invalid("the pledge refers to rows that do not exist", errors)
    pledge = Pledge(
        code=data.code or f"new-{uuid.uuid4().hex}",  # PLEDGE-<id> once the id is known
        donor_org_id=data.donor_org_id,
        recipient_org_id=data.recipient_org_id,
        program_id=data.program_id,
        declared_value_fen=data.declared_value_fen,
        expected_arrival=data.expected_arrival,
        status=S.pledged,
        note=data.note,
        created_by_id=actor.id if actor else None,
    )
    session.add(pledge)
    session.flush()
    if data.code is None:
        pledge.code = f"PLEDGE-{pledge.id}"
    for line in data.lines:
        session.add(PledgeLine(pledge_id=pledge.id, **line.model_dump()))
    session.add(PledgeStatusChange(pledge_id=pledge.id, to_status=S.pledged, actor_id=_id(actor)))
    _system_message(session, pledge, f"Pledge recorded: {len(data.lines)} lines, "
                    f"declared value CNY {data.declared_value_fen / 100:,.2f}.")  # fmt: skip
    _notify(session, pledge, "pledge.created", {"status": S.pledged.value})
    audit.record(session, actor=actor, action="create", entity="pledge", entity_id=pledge.id)
    session.flush()
    return pledge


def _id(actor: User | None) -> int | None:
    return actor.id if actor is not None else None


def change_status(
    session: Session,
    pledge_id: int,
    status: PledgeStatus,
    *,
    actor: User | None,
    note: str | None = None,
) -> Pledge:
    """Move a pledge to ``status`` if the transition is allowed; recorded, posted, notified.

    The donor side may cancel; the recipient side (and staff) may confirm, cancel and close.
    """
    pledge = repository.lock_pledge(session, pledge_id)
    if pledge is None:
        raise NotFound(f"no pledge with id {pledge_id}")
    if actor is not None:
        ensure_can_see_pledge(actor, pledge)
        access.ensure_role(actor, access.PLEDGE_READERS)
        donor_side = actor.role not in access.STAFF and actor.organization_id == pledge.donor_org_id
        if donor_side and status != S.cancelled:
            raise Forbidden("the donor may only cancel a pledge; the recipient confirms it")
    return _transition(session, pledge, PledgeStatus(status), actor=actor, note=note)


def _transition(
    session: Session, pledge: Pledge, to: PledgeStatus, *, actor: User | None, note: str | None
) -> Pledge:
    old = PledgeStatus(pledge.status)
    if to == old:
        return pledge
    if to not in TRANSITIONS[old]:
        raise Conflict(
            f"a {old} pledge cannot become {to}",
            [FieldError(("status",), f"allowed from {old}: {sorted(TRANSITIONS[old]) or 'none'}")],
        )
    pledge.status = to
    session.add(
        PledgeStatusChange(
            pledge_id=pledge.id, from_status=old, to_status=to, actor_id=_id(actor), note=note
        )
    )
    who = actor.full_name if actor is not None else "the system"
    text = f"Status changed from {old} to {to} by {who}." + (f" {note}" if note else "")
    _system_message(session, pledge, text)
    _notify(session, pledge, "pledge.status_changed", {"from": old.value, "to": to.value})
    session.flush()
    return pledge


def settle_receipt(
    session: Session, *, receipt_id: int, final: bool = False, actor: User | None
) -> list[Discrepancy]:
    """After goods were received against a pledge: record discrepancies (over-receipts and items
    not pledged at once; shortfalls when ``final``) on the pledge thread and move the pledge to
    partly received or received."""
    receipt = session.get(Receipt, receipt_id)
    if receipt is None:
        raise NotFound(f"no receipt with id {receipt_id}")
    if receipt.pledge_id is None:
        return []
    pledge = repository.lock_pledge(session, receipt.pledge_id)
    assert pledge is not None
    pledged: dict[tuple[int | None, int | None], int] = {}
    for line in repository.lines_of(session, pledge.id):
        key = (line.item_id, line.kit_id)
        pledged[key] = pledged.get(key, 0) + line.quantity
    received = repository.received_by_line(session, pledge.id)
    this = repository.received_in_receipt(session, receipt_id)
    found: list[Discrepancy] = []
    for key in sorted(set(pledged) | set(received), key=lambda k: (k[0] or 0, k[1] or 0)):
        want, got = pledged.get(key, 0), received.get(key, 0)
        over = got > want and key in this
        short = final and got < want
        if not (over or short):
            continue
        what = "not pledged" if want == 0 else ("more than pledged" if over else "short")
        d = Discrepancy(
            pledge_id=pledge.id,
            receipt_id=receipt_id,
            item_id=key[0],
            kit_id=key[1],
            pledged=want,
            received=got,
            note=what,
        )
        session.add(d)
        session.flush()
        row = (
            catalog.require_item(session, key[0])
            if key[0] is not None
            else catalog.require_kit(session, cast(int, key[1]))
        )
        label = f"{row.name} / {row.name_zh} ({row.sku})"  # named in both languages
        session.add(
            Message(
                thread=f"pledge:{pledge.id}",
                pledge_id=pledge.id,
                kind=MessageKind.discrepancy,
                body=f"Discrepancy on {label}: pledged {want}, received {got} ({what}).",
                receipt_id=receipt_id,
                discrepancy_id=d.id,
            )
        )
        _notify(
            session,
            pledge,
            "pledge.discrepancy",
            {"discrepancy_id": d.id, "pledged": want, "received": got, "item_id": key[0],
             "kit_id": key[1]},
        )  # fmt: skip
        found.append(d)
    complete = all(received.get(k, 0) >= q for k, q in pledged.items())
    target = S.received if (complete or final) else S.partly_received
    if pledge.status != target:
        _transition(session, pledge, target, actor=actor, note=f"receipt {receipt_id}")
    session.flush()
    return found


def discrepancies(session: Session, pledge_id: int, *, actor: User) -> list[Discrepancy]:
    require_pledge(session, pledge_id, actor=actor)
    return repository.discrepancies_of(session, pledge_id)


def received_so_far(session: Session, pledge_id: int) -> dict[tuple[int | None, int | None], int]:
    """Units received against a pledge so far, per (item, kit)."""
    return repository.received_by_line(session, pledge_id)


# The changes made by hand; partly received and received follow the receipts (settle_receipt).
MANUAL = (S.confirmed, S.closed, S.cancelled)


def allowed_changes(pledge: Pledge, *, actor: User) -> list[PledgeStatus]:
    """The status changes ``actor`` may make by hand now (the rules of :func:`change_status`)."""
    if actor.role not in access.PLEDGE_READERS:
        return []
    if not access.sees_org(actor, pledge.donor_org_id, pledge.recipient_org_id):
        return []
    donor_side = actor.role not in access.STAFF and actor.organization_id == pledge.donor_org_id
    allowed = TRANSITIONS[PledgeStatus(pledge.status)]
    return [s for s in MANUAL if s in allowed and (not donor_side or s == S.cancelled)]


def accepts_receipts(pledge: Pledge) -> bool:
    """Whether goods may still be received against ``pledge`` (see :data:`RECEIVABLE`)."""
    return PledgeStatus(pledge.status) in RECEIVABLE


def ensure_receivable(
    session: Session, pledge_id: int, *, donor_org_id: int | None = None
) -> Pledge:
    """The pledge goods may be received against (not cancelled, closed or fully received);
    ``Invalid`` if the receipt names another donor than the pledge's."""
    pledge = crud.require(session, Pledge, pledge_id, label="pledge")
    if not accepts_receipts(pledge):
        raise Conflict(f"a {pledge.status} pledge takes no more receipts")
    if donor_org_id is not None and donor_org_id != pledge.donor_org_id:
        raise Invalid(
            "the donor is not the pledge's donor",
            [FieldError(("donor_org_id",), f"pledge {pledge.id} is from {pledge.donor_org_id}")],
        )
    return pledge


def receivable_pledges(session: Session, *, actor: User | None, limit: int = 500) -> list[Pledge]:
    """Pledges the actor sees that still take receipts, oldest first."""
    out: list[Pledge] = []
    for status in RECEIVABLE:
        rows, _ = list_pledges(session, PledgeFilters(status=status, limit=limit), actor=actor)
        out.extend(rows)
    return sorted(out, key=lambda p: p.id)


# --- threads ----------------------------------------------------------------------------------


def _thread_orgs(session: Session, thread: str) -> set[int]:
    kind, _, raw = thread.partition(":")
    if not raw.isdigit() or kind not in {"pledge", "program"}:
        raise Invalid(f"no such thread {thread!r}: use pledge:<id> or program:<id>")
    if kind == "pledge":
        pledge = crud.require(session, Pledge, int(raw), label="pledge")
        return {pledge.donor_org_id, pledge.recipient_org_id}
    require_program(session, int(raw))
    return repository.program_member_orgs(session, int(raw))


def ensure_can_see_thread(session: Session, thread: str, actor: User) -> None:
    """Members of the organizations in the thread (and staff) only."""
    orgs = _thread_orgs(session, thread)
    if not access.sees_org(actor, *orgs):
        raise Forbidden("this thread is between other organizations")


def post_message(session: Session, thread: str, data: MessageIn, *, actor: User) -> Message:
    """Post to a pledge or program thread; it may refer to a shipment or a discrepancy."""
    ensure_can_see_thread(session, thread, actor)
    kind, _, raw = thread.partition(":")
    _check_message_refs(session, data, pledge_id=int(raw) if kind == "pledge" else None)
    message = Message(
        thread=thread,
        pledge_id=int(raw) if kind == "pledge" else None,
        program_id=int(raw) if kind == "program" else None,
        kind=MessageKind.user,
        author_id=actor.id,
        body=data.body,
        transfer_id=data.transfer_id,
        receipt_id=data.receipt_id,
        discrepancy_id=data.discrepancy_id,
    )
    session.add(message)
    session.flush()
    _mark_read(session, actor.id, thread, message.id)
    for webhook in repository.active_webhooks(session, _thread_orgs(session, thread)):
        _enqueue(session, webhook, "message.posted", {"thread": thread, "message_id": message.id})
    return message


def _check_message_refs(session: Session, data: MessageIn, *, pledge_id: int | None) -> None:
    errors = []
    if data.transfer_id is not None and session.get(StockTransfer, data.transfer_id) is None:
        errors.append(FieldError(("transfer_id",), f"no shipment {data.transfer_id}"))
    if data.receipt_id is not None and session.get(Receipt, data.receipt_id) is None:
        errors.append(FieldError(("receipt_id",), f"no receipt {data.receipt_id}"))
    if data.discrepancy_id is not None:
        found = session.get(Discrepancy, data.discrepancy_id)
        if found is None or (pledge_id is not None and found.pledge_id != pledge_id):
            errors.append(
                FieldError(("discrepancy_id",), f"no discrepancy {data.discrepancy_id} here")
            )
    if errors:
        raise Invalid("the message refers to records that do not exist", errors)


def read_thread(
    session: Session, thread: str, *, actor: User, after_id: int = 0, limit: int = 100
) -> list[Message]:
    """Messages of a thread (oldest first); what was shown is marked as read."""
    ensure_can_see_thread(session, thread, actor)
    messages = repository.messages_of(session, thread, after_id=after_id, limit=limit)
    if messages:
        _mark_read(session, actor.id, thread, messages[-1].id)
    return messages


def _mark_read(session: Session, user_id: int, thread: str, message_id: int) -> None:
    marker = repository.read_marker(session, user_id, thread)
    if marker is None:
        session.add(MessageRead(user_id=user_id, thread=thread, last_read_id=message_id))
    elif message_id > marker.last_read_id:
        marker.last_read_id = message_id
    session.flush()


def unread_counts(session: Session, *, actor: User) -> dict[str, int]:
    """Unread messages per thread the user may see (their own messages never count)."""
    threads = repository.visible_threads(session, actor)
    return repository.unread_counts(session, actor.id, threads)


def _system_message(session: Session, pledge: Pledge, body: str) -> None:
    session.add(
        Message(
            thread=f"pledge:{pledge.id}", pledge_id=pledge.id, kind=MessageKind.system, body=body
        )
    )


# --- webhooks ---------------------------------------------------------------------------------


def set_webhook(
    session: Session, organization_id: int, data: WebhookIn, *, actor: User | None
) -> OrgWebhook:
    """Set where an organization's events go (staff, or a member of that organization)."""
    if actor is not None and not access.sees_org(actor, organization_id):
        raise Forbidden("you may set the webhook of your own organization only")
    crud.require(session, Organization, organization_id, label="organization")
    hook = repository.webhook_of(session, organization_id)
    if hook is None:
        hook = OrgWebhook(organization_id=organization_id, **data.model_dump())
        session.add(hook)
    else:
        hook.url, hook.secret, hook.active = data.url, data.secret, data.active
    session.flush()
    audit.record(session, actor=actor, action="set_webhook", entity="organization",
                 entity_id=organization_id, detail={"url": data.url})  # fmt: skip
    return hook


def sign(secret: str, body: bytes) -> str:
    """The signature header value: ``sha256=<hex HMAC-SHA256 of the raw body>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    """Check a signature in constant time (what a receiving partner runs)."""
    return hmac.compare_digest(sign(secret, body), signature)


def _notify(session: Session, pledge: Pledge, event: str, detail: dict[str, Any]) -> None:
    orgs = {pledge.donor_org_id, pledge.recipient_org_id}
    for webhook in repository.active_webhooks(session, orgs):
        _enqueue(session, webhook, event, {"pledge_id": pledge.id, **detail})


def _enqueue(session: Session, webhook: OrgWebhook, event: str, data: dict[str, Any]) -> None:
    session.add(
        WebhookDelivery(
            webhook_id=webhook.id,
            event=event,
            payload={"event": event, "at": clock.now().isoformat(), "data": data},
        )
    )


@dataclass(frozen=True)
class WebhookRequest:
    """One attempt at sending a delivery: where, the signed body, its headers."""

    url: str
    body: bytes
    headers: dict[str, str]


def unscheduled_deliveries(session: Session, *, limit: int) -> list[int]:
    """Pending deliveries that no job sends yet (locked for the caller on PostgreSQL)."""
    return repository.unscheduled_deliveries(session, limit)


def schedule_delivery(session: Session, delivery_id: int, *, job_id: int) -> None:
    """Record which job sends a pending delivery."""
    repository.require_delivery(session, delivery_id).job_id = job_id


def delivery_request(session: Session, delivery_id: int, *, job_id: int) -> WebhookRequest | None:
    """The signed request for a delivery that job ``job_id`` is to send; None when there is
    nothing to send (delivered already, dead, or handed to another job by a resend)."""
    found = repository.delivery_with_hook(session, delivery_id)
    if found is None:
        return None
    delivery, hook = found
    if delivery.status != "pending" or delivery.job_id != job_id:
        return None
    body = json.dumps(
        {"id": delivery.id, **delivery.payload}, separators=(",", ":"), sort_keys=True
    ).encode()
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(hook.secret, body),
        "X-RelieFlink-Event": delivery.event,
        "X-RelieFlink-Delivery": str(delivery.id),
    }
    return WebhookRequest(hook.url, body, headers)


def record_attempt(
    session: Session, delivery_id: int, *, status_code: int | None, error: str | None
) -> bool:
    """Record one attempt (``status_code`` None: no answer, ``error`` says why); a 2xx answer
    marks the delivery delivered. Returns whether it was delivered."""
    delivery = repository.require_delivery(session, delivery_id)
    delivery.attempts += 1
    delivery.last_status_code = status_code
    ok = status_code is not None and 200 <= status_code < 300
    delivery.last_error = None if ok else (error or f"answered HTTP {status_code}")[:300]
    if ok:
        delivery.status, delivery.delivered_at = "delivered", clock.now()
    session.flush()
    return ok


def bury_delivery(session: Session, delivery_id: int, reason: str) -> None:
    """Move a delivery that is still pending to the dead-letter list (its job gave up)."""
    delivery = repository.require_delivery(session, delivery_id)
    if delivery.status == "pending":
        delivery.status = "dead"
        delivery.last_error = delivery.last_error or reason[:300]


def dead_deliveries(
    session: Session, *, limit: int = 500
) -> list[tuple[WebhookDelivery, OrgWebhook]]:
    """The dead-letter list, oldest first."""
    return repository.deliveries_with_status(session, "dead", limit)


def get_delivery(session: Session, delivery_id: int) -> WebhookDelivery | None:
    return repository.get_delivery(session, delivery_id)


def resend_delivery(session: Session, delivery_id: int) -> WebhookDelivery:
    """Put a dead delivery back in the queue (a worker sends it again, with fresh retries);
    one that was delivered is refused, so an event is delivered at most once."""
    delivery = get_delivery(session, delivery_id)
    if delivery is None:
        raise NotFound(f"no webhook delivery {delivery_id}")
    if delivery.status != "dead":
        raise Conflict(f"webhook delivery {delivery_id} is {delivery.status}, not dead")
    delivery.status, delivery.job_id = "pending", None
    session.flush()
    return delivery


def delivery_counts(session: Session) -> dict[str, int]:
    """Deliveries per status (pending, delivered, dead)."""
    return {"pending": 0, "delivered": 0, "dead": 0} | repository.delivery_counts(session)
