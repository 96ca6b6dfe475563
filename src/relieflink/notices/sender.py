"""Sending the outbox: take due notices one at a time, send each by its channel, record how it
ended.

Each notice is taken (``sending``, with a lease) in a committed transaction before it is sent,
and its end is recorded in another, so a sender killed mid-batch leaves at most the notice in
its hands undecided; when the lease runs out the next sender sends it again under the same key
(the gateway's ``Idempotency-Key``, the mail's ``Message-ID``), so it is not sent twice to a
provider that honours the key. A failed send waits ``notices_retry_seconds`` doubled per try,
and goes to the dead letters after ``notices_max_attempts``. A recipient who had
``notices_per_recipient_per_hour`` notices in the last hour waits for the hour to free up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from relieflink import clock
from relieflink.config import get_settings
from relieflink.db import session_scope
from relieflink.models import Notice, NoticeChannel, NoticeStatus
from relieflink.notices import channels as channel_config
from relieflink.notices import repository as repo
from relieflink.notices.channels import Channel, SendFailed
from relieflink.notices.templates import render

log = logging.getLogger(__name__)

SUBJECT = {"zh": "RelieFlink 通知", "en": "RelieFlink notice"}


@dataclass
class SendReport:
    sent: int = 0
    retried: int = 0
    dead: int = 0
    postponed: int = 0

    def add(self, other: SendReport) -> None:
        self.sent += other.sent
        self.retried += other.retried
        self.dead += other.dead
        self.postponed += other.postponed

    def __str__(self) -> str:
        return (
            f"{self.sent} sent, {self.retried} to retry, {self.dead} to the dead letters, "
            f"{self.postponed} held back by the hourly cap"
        )


def deliver_due(
    *,
    channels: Mapping[NoticeChannel, Channel] | None = None,
    limit: int | None = None,
    keep_going: Callable[[], None] = lambda: None,
) -> SendReport:
    """Send the notices due now, at most ``limit`` (the configured batch). ``keep_going`` is
    called between notices (a job's progress, which may stop it)."""
    settings = get_settings()
    channels = channels if channels is not None else channel_config.configured(settings)
    limit = limit or settings.notices_batch
    report = SendReport()
    with session_scope() as session:
        due = [(n.id, n.channel) for n in repo.due(session, now=clock.now(), limit=limit)]
    for notice_id, channel in due:
        keep_going()
        if channel not in channels:
            continue  # its channel was switched off: it waits until it is on again
        _send_one(notice_id, channels[channel], report)
    return report


def _send_one(notice_id: int, channel: Channel, report: SendReport) -> None:
    settings = get_settings()
    now = clock.now()
    with session_scope() as session:
        notice = session.get(Notice, notice_id)
        if notice is None:
            return
        hour_ago = now - timedelta(hours=1)
        recent = repo.sent_since(session, notice.recipient, hour_ago)
        if len(recent) >= settings.notices_per_recipient_per_hour:
            free_at = recent[-settings.notices_per_recipient_per_hour] + timedelta(hours=1)
            if notice.status == NoticeStatus.pending:
                notice.next_try_at = max(free_at, now)
            report.postponed += 1
            return
        recipient, attempt = notice.recipient, notice.attempts + 1
        if not repo.take(
            session,
            notice_id,
            now=now,
            lease_until=now + timedelta(seconds=settings.notices_lease_seconds),
        ):
            return  # another sender took it
        text = render(notice.template, notice.language, notice.params)
        subject = SUBJECT.get(notice.language, SUBJECT["zh"])
        key = f"relieflink-notice-{notice.event_key}-{notice.channel}".replace(":", "-")
    try:
        message_id = channel.send(recipient=recipient, text=text, key=key, subject=subject)
    except SendFailed as failure:
        dead = failure.permanent or attempt >= settings.notices_max_attempts
        delay = timedelta(seconds=settings.notices_retry_seconds * 2 ** (attempt - 1))
        with session_scope() as session:
            repo.finish(
                session,
                notice_id,
                status=NoticeStatus.dead if dead else NoticeStatus.pending,
                next_try_at=clock.now() + delay,
                last_error=str(failure)[:500],
            )
        if dead:
            report.dead += 1
        else:
            report.retried += 1
        log.info("notice %s: try %s failed: %s", notice_id, attempt, failure)  # no recipient
        return
    with session_scope() as session:
        repo.finish(
            session,
            notice_id,
            status=NoticeStatus.sent,
            sent_at=clock.now(),
            provider_message_id=message_id[:200],
            last_error="",
        )
    report.sent += 1
