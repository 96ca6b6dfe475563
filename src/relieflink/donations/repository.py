"""All SQL of donations: pledges (scoped), threads, read markers, received totals, webhooks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, false, func, or_, select
from sqlalchemy.orm import Session

from relieflink.models import (
    Discrepancy,
    Message,
    MessageRead,
    OrgWebhook,
    Pledge,
    PledgeLine,
    PledgeStatus,
    PledgeStatusChange,
    Program,
    Role,
    StockLot,
    User,
    WebhookDelivery,
)
from relieflink.users import access


def scope_pledges(stmt: Select[Any], actor: User | None) -> Select[Any]:
    """Staff see every pledge; others the pledges their organization gives or receives."""
    if actor is None or actor.role in access.STAFF:
        return stmt
    if actor.organization_id is None:
        return stmt.where(false())
    org = actor.organization_id
    return stmt.where(or_(Pledge.donor_org_id == org, Pledge.recipient_org_id == org))


def list_pledges(
    session: Session,
    actor: User | None,
    *,
    program_id: int | None,
    donor_org_id: int | None,
    status: PledgeStatus | None,
    offset: int,
    limit: int,
) -> tuple[Sequence[Pledge], int]:
    stmt = scope_pledges(select(Pledge), actor)
    if program_id is not None:
        stmt = stmt.where(Pledge.program_id == program_id)
    if donor_org_id is not None:
        stmt = stmt.where(Pledge.donor_org_id == donor_org_id)
    if status is not None:
        stmt = stmt.where(Pledge.status == status)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(Pledge.id).offset(offset).limit(limit)).all()
    return rows, total


def list_programs(session: Session) -> list[Program]:
    return list(session.scalars(select(Program).order_by(Program.id)))


def pledges_by_code(session: Session, codes: Sequence[str]) -> dict[str, Pledge]:
    found = session.scalars(select(Pledge).where(Pledge.code.in_(list(codes))))
    return {p.code: p for p in found}


def pledges_with_lines(session: Session) -> list[tuple[Pledge, list[PledgeLine]]]:
    """Every pledge in id order, with its lines in id order."""
    pledges = list(session.scalars(select(Pledge).order_by(Pledge.id)))
    lines: dict[int, list[PledgeLine]] = {p.id: [] for p in pledges}
    for line in session.scalars(select(PledgeLine).order_by(PledgeLine.id)):
        lines[line.pledge_id].append(line)
    return [(p, lines[p.id]) for p in pledges]


def lines_of(session: Session, pledge_id: int) -> list[PledgeLine]:
    stmt = select(PledgeLine).where(PledgeLine.pledge_id == pledge_id).order_by(PledgeLine.id)
    return list(session.scalars(stmt))


def history_of(session: Session, pledge_id: int) -> list[PledgeStatusChange]:
    stmt = (
        select(PledgeStatusChange)
        .where(PledgeStatusChange.pledge_id == pledge_id)
        .order_by(PledgeStatusChange.id)
    )
    return list(session.scalars(stmt))


def lock_pledge(session: Session, pledge_id: int) -> Pledge | None:
    stmt = select(Pledge).where(Pledge.id == pledge_id).with_for_update()
    return session.scalars(stmt.execution_options(populate_existing=True)).one_or_none()


def received_by_line(session: Session, pledge_id: int) -> dict[tuple[int | None, int | None], int]:
    """Units received so far against a pledge, per (item, kit)."""
    rows = session.execute(
        select(StockLot.item_id, StockLot.kit_id, func.sum(StockLot.quantity))
        .where(StockLot.pledge_id == pledge_id, StockLot.origin == "receipt")
        .group_by(StockLot.item_id, StockLot.kit_id)
    ).all()
    return {(i, k): int(q or 0) for i, k, q in rows}


def received_in_receipt(
    session: Session, receipt_id: int
) -> dict[tuple[int | None, int | None], int]:
    rows = session.execute(
        select(StockLot.item_id, StockLot.kit_id, func.sum(StockLot.quantity))
        .where(StockLot.receipt_id == receipt_id)
        .group_by(StockLot.item_id, StockLot.kit_id)
    ).all()
    return {(i, k): int(q or 0) for i, k, q in rows}


def discrepancies_of(session: Session, pledge_id: int) -> list[Discrepancy]:
    stmt = select(Discrepancy).where(Discrepancy.pledge_id == pledge_id).order_by(Discrepancy.id)
    return list(session.scalars(stmt))


def messages_of(session: Session, thread: str, *, after_id: int, limit: int) -> list[Message]:
    stmt = (
        select(Message)
        .where(Message.thread == thread, Message.id > after_id)
        .order_by(Message.id)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def read_marker(session: Session, user_id: int, thread: str) -> MessageRead | None:
    stmt = select(MessageRead).where(MessageRead.user_id == user_id, MessageRead.thread == thread)
    return session.scalars(stmt).one_or_none()


def visible_threads(session: Session, actor: User) -> list[str]:
    """Every thread ``actor`` may read (pledge threads and program threads)."""
    pledges = session.execute(scope_pledges(select(Pledge), actor).with_only_columns(Pledge.id))
    threads = [f"pledge:{pid}" for (pid,) in pledges]
    programs = select(Program.id)
    if actor.role not in access.STAFF:
        org = actor.organization_id
        if org is None:
            programs = programs.where(false())
        else:
            involved = select(Pledge.program_id).where(
                or_(Pledge.donor_org_id == org, Pledge.recipient_org_id == org)
            )
            programs = programs.where(or_(Program.organization_id == org, Program.id.in_(involved)))
    threads += [f"program:{pid}" for (pid,) in session.execute(programs)]
    return threads


def unread_counts(session: Session, user_id: int, threads: list[str]) -> dict[str, int]:
    if not threads:
        return {}
    marker = (
        select(MessageRead.thread, MessageRead.last_read_id)
        .where(MessageRead.user_id == user_id)
        .subquery()
    )
    stmt = (
        select(Message.thread, func.count())
        .outerjoin(marker, marker.c.thread == Message.thread)
        .where(Message.thread.in_(threads))
        .where(Message.id > func.coalesce(marker.c.last_read_id, 0))
        .where(or_(Message.author_id.is_(None), Message.author_id != user_id))
        .group_by(Message.thread)
    )
    return {t: int(n) for t, n in session.execute(stmt).all()}


def program_member_orgs(session: Session, program_id: int) -> set[int]:
    program = session.get(Program, program_id)
    orgs: set[int] = {program.organization_id} if program else set()
    rows = session.execute(
        select(Pledge.donor_org_id, Pledge.recipient_org_id).where(Pledge.program_id == program_id)
    ).all()
    for donor, recipient in rows:
        orgs |= {donor, recipient}
    return orgs


def webhook_of(session: Session, organization_id: int) -> OrgWebhook | None:
    stmt = select(OrgWebhook).where(OrgWebhook.organization_id == organization_id)
    return session.scalars(stmt).one_or_none()


def active_webhooks(session: Session, organization_ids: set[int]) -> list[OrgWebhook]:
    if not organization_ids:
        return []
    stmt = select(OrgWebhook).where(
        OrgWebhook.organization_id.in_(sorted(organization_ids)), OrgWebhook.active.is_(True)
    )
    return list(session.scalars(stmt))


def unscheduled_deliveries(session: Session, limit: int) -> list[int]:
    stmt = (
        select(WebhookDelivery.id)
        .where(WebhookDelivery.status == "pending", WebhookDelivery.job_id.is_(None))
        .order_by(WebhookDelivery.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":  # two workers feed different rows
        stmt = stmt.with_for_update(skip_locked=True)
    return list(session.scalars(stmt))


def get_delivery(session: Session, delivery_id: int) -> WebhookDelivery | None:
    return session.get(WebhookDelivery, delivery_id)


def require_delivery(session: Session, delivery_id: int) -> WebhookDelivery:
    delivery = get_delivery(session, delivery_id)
    if delivery is None:
        raise LookupError(f"webhook delivery {delivery_id} is gone")
    return delivery


def delivery_with_hook(
    session: Session, delivery_id: int
) -> tuple[WebhookDelivery, OrgWebhook] | None:
    stmt = (
        select(WebhookDelivery, OrgWebhook)
        .join(OrgWebhook, OrgWebhook.id == WebhookDelivery.webhook_id)
        .where(WebhookDelivery.id == delivery_id)
    )
    row = session.execute(stmt).first()
    return (row[0], row[1]) if row is not None else None


def deliveries_with_status(
    session: Session, status: str, limit: int
) -> list[tuple[WebhookDelivery, OrgWebhook]]:
    stmt = (
        select(WebhookDelivery, OrgWebhook)
        .join(OrgWebhook, OrgWebhook.id == WebhookDelivery.webhook_id)
        .where(WebhookDelivery.status == status)
        .order_by(WebhookDelivery.id)
        .limit(limit)
    )
    return [(d, w) for d, w in session.execute(stmt).all()]


def delivery_counts(session: Session) -> dict[str, int]:
    stmt = select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status)
    return {str(status): int(count) for status, count in session.execute(stmt)}


def is_donor_role(actor: User) -> bool:
    return actor.role == Role.donor
