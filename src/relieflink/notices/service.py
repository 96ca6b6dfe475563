"""Notices to residents: write them beside the event that causes them (the outbox), look at
them, send a dead one again, and a household's preferences.

:func:`notify` runs in the caller's transaction, so a rolled-back event sends nothing, and it
writes one row per (event, channel) at most, so a retried or replayed event sends nothing twice.
Which channels exist is configuration; with none configured (the embedded default) it writes
nothing at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from relieflink import clock
from relieflink.config import get_settings
from relieflink.errors import Conflict, FieldError, Invalid, NotFound
from relieflink.models import Notice as NoticeRow
from relieflink.models import NoticeChannel, NoticePreference, NoticeStatus
from relieflink.notices import channels as channel_config
from relieflink.notices import repository as repo
from relieflink.notices.templates import EVENTS, LANGUAGES
from relieflink.users import access


@dataclass(frozen=True)
class Notice:
    """What happened to whom: ``key`` names the event once and for all (``"parcel:7:delivered"``),
    ``event`` is a template name of :data:`~relieflink.notices.templates.EVENTS`."""

    key: str
    household_id: int
    event: str
    params: dict[str, Any] = field(default_factory=dict)


def enabled() -> bool:
    """Whether any channel is configured (callers skip gathering notices otherwise)."""
    return bool(channel_config.configured(get_settings()))


def notify(session: Session, notices: Sequence[Notice]) -> int:
    """Write ``notices`` to the outbox for every configured channel the household can be reached
    by (SMS to its phone, e-mail to its address), unless it opted out; returns the rows written
    (a repeat of an event writes none). Workers see them due and queue the sender."""
    on = channel_config.configured(get_settings())
    if not notices or not on:
        return 0
    for notice in notices:
        if notice.event not in EVENTS:
            raise ValueError(f"no notice template for {notice.event!r}")
    who = repo.recipients(session, (n.household_id for n in notices))
    now = clock.now()
    rows = []
    for notice in notices:
        if notice.household_id not in who:
            continue
        phone, email, language, opted_out = who[notice.household_id]
        if opted_out:
            continue
        address = {NoticeChannel.sms: phone, NoticeChannel.email: email}
        for channel in on:
            if address[channel]:
                rows.append(
                    {
                        "event_key": notice.key[:120],
                        "channel": channel,
                        "household_id": notice.household_id,
                        "recipient": address[channel],
                        "language": language,
                        "template": notice.event,
                        "params": notice.params,
                        "status": NoticeStatus.pending,
                        "attempts": 0,
                        "next_try_at": now,
                        "last_error": "",
                        "created_at": now,
                    }
                )
    if not rows:
        return 0
    return repo.insert_new(session, rows)


def list_notices(
    session: Session, *, status: NoticeStatus | None = None, limit: int = 50
) -> Sequence[NoticeRow]:
    return repo.listed(session, status=status, limit=limit)


def anything_due(session: Session, *, now: datetime) -> bool:
    """Whether a notice waits to be sent now (new, a retry whose time came, or one a dead
    sender held)."""
    return repo.anything_due(session, now=now)


def counts(session: Session) -> dict[str, int]:
    return repo.counts(session)


def resend(session: Session, notice_id: int) -> None:
    """Give a dead notice its tries again (the sender takes it at its next round)."""
    if not repo.resend(session, notice_id, now=clock.now()):
        raise Conflict(f"notice {notice_id} is not a dead letter")


def set_preference(
    session: Session,
    household_id: int,
    *,
    language: str | None = None,
    email: str | None = None,
    opted_out: bool | None = None,
) -> NoticePreference:
    """A household's notice preferences (only what is given changes)."""
    if language is not None and language not in LANGUAGES:
        raise Invalid(
            "unknown language",
            [FieldError(("language",), f"give one of {', '.join(LANGUAGES)}")],
        )
    if email and ("@" not in email or any(c.isspace() for c in email)):
        raise Invalid("not an e-mail address", [FieldError(("email",), "not an e-mail address")])
    if household_id not in repo.recipients(session, [household_id]):
        raise NotFound(f"no household with id {household_id}")
    return repo.set_preference(
        session, household_id, language=language, email=email, opted_out=opted_out
    )


def preference_of(session: Session, household_id: int) -> tuple[str, str | None, bool]:
    """A household's (language, e-mail, opted out): zh, none and no when it never chose."""
    preference = session.get(NoticePreference, household_id)
    if preference is None:
        return "zh", None, False
    return preference.language, preference.email, preference.opted_out


def channels_on() -> list[str]:
    return [str(c) for c in channel_config.configured(get_settings())]


def mask(recipient: str, channel: NoticeChannel) -> str:
    """A recipient as lists show it: a phone as everywhere else (its last four digits), an
    address by its first letter and its domain."""
    if channel == NoticeChannel.sms:
        return access.mask_phone(recipient) or ""
    name, _, domain = recipient.partition("@")
    return f"{name[:1]}***@{domain}"
