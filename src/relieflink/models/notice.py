"""Notices to residents: an outbox row per (event, channel), written in the transaction of the
event that causes it, sent later by the job runner; and each household's notice preferences."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from relieflink import clock
from relieflink.db import Base


class NoticeStatus(StrEnum):
    pending = "pending"  # waiting for its (next) try
    sending = "sending"  # handed to a sender; a sender that died leaves it here past its lease
    sent = "sent"
    dead = "dead"  # gave up after the configured number of tries


class NoticeChannel(StrEnum):
    sms = "sms"
    email = "email"


class Notice(Base):
    """One message to one household over one channel.

    ``event_key`` names the event that caused it (``"parcel:12:delivered"``); with ``channel`` it
    is unique, so an event retried or replayed never writes a second notice. ``recipient`` (a
    phone or an address) is copied at writing time and is never logged.
    """

    __tablename__ = "notices"
    __table_args__ = (
        UniqueConstraint("event_key", "channel"),
        Index("ix_notices_status_next_try_at", "status", "next_try_at"),
        Index("ix_notices_recipient_sent_at", "recipient", "sent_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_key: Mapped[str] = mapped_column(String(120))
    channel: Mapped[NoticeChannel] = mapped_column(String(10))
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"), index=True)
    recipient: Mapped[str] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(5))
    template: Mapped[str] = mapped_column(String(40))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[NoticeStatus] = mapped_column(String(10), default=NoticeStatus.pending)
    attempts: Mapped[int] = mapped_column(default=0)
    next_try_at: Mapped[datetime] = mapped_column(default=clock.now)
    lease_until: Mapped[datetime | None]
    provider_message_id: Mapped[str | None] = mapped_column(String(200))
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    sent_at: Mapped[datetime | None]


class NoticePreference(Base):
    """A household's choice: its language, an e-mail address, and whether it wants notices at
    all (no row: notices by SMS to its phone, in Chinese)."""

    __tablename__ = "notice_preferences"

    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"), primary_key=True)
    language: Mapped[str] = mapped_column(String(5), default="zh")
    email: Mapped[str | None] = mapped_column(String(200))
    opted_out: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now, onupdate=clock.now)
