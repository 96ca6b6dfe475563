"""Donations: programs, pledges and their lines, status history, receipts, discrepancies,
partner message threads with read markers, and signed organization webhooks (an outbox)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from relieflink import clock
from relieflink.db import Base, TimestampMixin


class PledgeStatus(StrEnum):
    pledged = "pledged"
    confirmed = "confirmed"
    partly_received = "partly_received"
    received = "received"
    closed = "closed"
    cancelled = "cancelled"


class MessageKind(StrEnum):
    user = "user"
    system = "system"
    discrepancy = "discrepancy"


class Program(TimestampMixin, Base):
    """A named relief operation in a region, e.g. "Shanghai 2022"."""

    __tablename__ = "programs"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_zh: Mapped[str | None] = mapped_column(String(200))
    region: Mapped[str] = mapped_column(String(200))
    country: Mapped[str] = mapped_column(String(2))
    # The organization running the program (reporting org in IATI).
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    start_date: Mapped[date | None]
    end_date: Mapped[date | None]


class Pledge(TimestampMixin, Base):
    """A donor organization's promise of goods to a recipient organization for a program."""

    __tablename__ = "pledges"
    __table_args__ = (CheckConstraint("declared_value_fen >= 0", name="value_nonneg"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # How spreadsheets name the pledge (``relieflink import pledges``); PLEDGE-<id> if not given.
    code: Mapped[str] = mapped_column(String(40), unique=True)
    donor_org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    recipient_org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"), index=True)
    declared_value_fen: Mapped[int] = mapped_column(BigInteger)
    expected_arrival: Mapped[date | None]
    status: Mapped[PledgeStatus] = mapped_column(String(20), index=True)
    note: Mapped[str | None] = mapped_column(String(1000))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class PledgeLine(Base):
    """One line of a pledge: an item or a kit, a quantity and (optionally) a unit value."""

    __tablename__ = "pledge_lines"
    __table_args__ = (
        CheckConstraint("(item_id IS NULL) <> (kit_id IS NULL)", name="item_xor_kit"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_value_fen >= 0", name="value_nonneg"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    pledge_id: Mapped[int] = mapped_column(ForeignKey("pledges.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"))
    kit_id: Mapped[int | None] = mapped_column(ForeignKey("kits.id"))
    quantity: Mapped[int]
    unit_value_fen: Mapped[int] = mapped_column(BigInteger, default=0)


class PledgeStatusChange(Base):
    """One status change of a pledge: from, to, who and when (append-only)."""

    __tablename__ = "pledge_status_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    pledge_id: Mapped[int] = mapped_column(ForeignKey("pledges.id"), index=True)
    from_status: Mapped[PledgeStatus | None] = mapped_column(String(20))
    to_status: Mapped[PledgeStatus] = mapped_column(String(20))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(default=clock.now)
    note: Mapped[str | None] = mapped_column(String(500))


class Receipt(Base):
    """Goods received at a warehouse (against a pledge or from a named donor)."""

    __tablename__ = "receipts"

    id: Mapped[int] = mapped_column(primary_key=True)
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id"), index=True)
    pledge_id: Mapped[int | None] = mapped_column(ForeignKey("pledges.id"), index=True)
    donor_org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    received_at: Mapped[datetime] = mapped_column(default=clock.now)
    note: Mapped[str | None] = mapped_column(String(500))


class Discrepancy(Base):
    """A difference between what a pledge line promised and what has been received."""

    __tablename__ = "discrepancies"

    id: Mapped[int] = mapped_column(primary_key=True)
    pledge_id: Mapped[int] = mapped_column(ForeignKey("pledges.id"), index=True)
    receipt_id: Mapped[int | None] = mapped_column(ForeignKey("receipts.id"))
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"))
    kit_id: Mapped[int | None] = mapped_column(ForeignKey("kits.id"))
    pledged: Mapped[int]
    received: Mapped[int]
    note: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class Message(Base):
    """A message in the thread of a pledge or of a program (``thread`` = "pledge:12")."""

    __tablename__ = "messages"
    __table_args__ = (
        CheckConstraint("(pledge_id IS NULL) <> (program_id IS NULL)", name="one_thread"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    thread: Mapped[str] = mapped_column(String(40), index=True)
    pledge_id: Mapped[int | None] = mapped_column(ForeignKey("pledges.id"), index=True)
    program_id: Mapped[int | None] = mapped_column(ForeignKey("programs.id"), index=True)
    kind: Mapped[MessageKind] = mapped_column(String(20))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    body: Mapped[str] = mapped_column(Text)
    transfer_id: Mapped[int | None] = mapped_column(ForeignKey("stock_transfers.id"))
    receipt_id: Mapped[int | None] = mapped_column(ForeignKey("receipts.id"))
    discrepancy_id: Mapped[int | None] = mapped_column(ForeignKey("discrepancies.id"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class MessageRead(Base):
    """How far one user has read one thread (the newest message id seen)."""

    __tablename__ = "message_reads"
    __table_args__ = (UniqueConstraint("user_id", "thread"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    thread: Mapped[str] = mapped_column(String(40))
    last_read_id: Mapped[int] = mapped_column(default=0)


class OrgWebhook(TimestampMixin, Base):
    """Where to POST an organization's events, signed with HMAC-SHA256 of the body."""

    __tablename__ = "org_webhooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), unique=True)
    url: Mapped[str] = mapped_column(String(500))
    secret: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(default=True)


class WebhookDelivery(Base):
    """One event waiting for (or done with) delivery to one webhook: the outbox.

    ``status``: pending (a job of the runner sends it, retrying with backoff), delivered, or
    dead (every attempt failed: the dead-letter list, re-sent by hand). ``job_id``: the job
    sending it (none yet: a worker queues one)."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("org_webhooks.id"), index=True)
    event: Mapped[str] = mapped_column(String(60))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    job_id: Mapped[int | None] = mapped_column(index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    delivered_at: Mapped[datetime | None]
