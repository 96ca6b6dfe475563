"""The sender against real peers: an SMTP server on 127.0.0.1 (aiosmtpd), and the HTTP gateway
with the sender killed (``kill -9``) mid-batch and started again: every notice arrives once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from email import message_from_bytes
from email.policy import default as email_policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select
from sqlalchemy.orm import Session

from relieflink.config import get_settings
from relieflink.models import Notice, NoticeChannel, NoticeStatus
from relieflink.notices import sender
from relieflink.notices import service as notices
from tests.dispatch.factories import make_city
from tests.live_server import free_port
from tests.notices.conftest import Gateway


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_DATA(  # noqa: N802 (aiosmtpd's name)
        self, server: object, session: object, envelope: object
    ) -> str:
        self.messages.append((list(envelope.rcpt_tos), envelope.content))  # type: ignore[attr-defined]
        return "250 OK"


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("RELIEFLINK_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("RELIEFLINK_SMTP_PORT", str(port))
    monkeypatch.setenv("RELIEFLINK_SMTP_SENDER", "notices@relief.example")
    get_settings.cache_clear()
    try:
        yield inbox
    finally:
        controller.stop()
        monkeypatch.undo()
        get_settings.cache_clear()


def test_a_household_with_an_address_gets_its_notice_by_mail(db: Session, smtp: Inbox) -> None:
    city = make_city(db, per_community=1)
    home = city.homes["open"][0]
    notices.set_preference(db, home.id, language="en", email="family@example.org")
    db.execute(Notice.__table__.delete())  # type: ignore[arg-type]
    notices.notify(db, [notices.Notice("parcel:5:delivered", home.id, "delivered", {"parcel": 5})])
    db.commit()
    assert sender.deliver_due().sent == 1
    ((to, raw),) = smtp.messages
    mail = message_from_bytes(raw, policy=email_policy)
    assert to == ["family@example.org"] and mail["From"] == "notices@relief.example"
    assert mail.get_content().strip() == "[RelieFlink] Parcel 5 was delivered."
    notice = db.scalars(select(Notice)).one()
    assert (
        notice.channel == NoticeChannel.email and notice.provider_message_id == mail["Message-ID"]
    )


@pytest.mark.slow
def test_a_sender_killed_mid_batch_sends_each_notice_once(
    db: Session, gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    city = make_city(db, per_community=2)
    db.execute(Notice.__table__.delete())  # type: ignore[arg-type]
    homes = [h for group in city.homes.values() for h in group]
    notices.notify(
        db,
        [
            notices.Notice(f"parcel:{h.id}:delivered", h.id, "delivered", {"parcel": h.id})
            for h in homes
        ],
    )
    db.commit()
    gateway.delay = 0.3
    monkeypatch.setenv("RELIEFLINK_NOTICES_LEASE_SECONDS", "1")
    command = [str(Path(sys.executable).with_name("relieflink")), "notify", "send"]
    process = subprocess.Popen(command, env=os.environ.copy())
    deadline = time.monotonic() + 60
    while len(gateway.received) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)  # mid-batch: one notice is in the gateway's hands
    process.wait()
    assert 0 < len(gateway.delivered) < len(homes)
    time.sleep(1.2)  # the dead sender's lease runs out
    gateway.delay = 0
    again = subprocess.run(command, env=os.environ.copy(), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    db.rollback()
    states = db.scalars(select(Notice.status)).all()
    assert states == [NoticeStatus.sent] * len(homes)
    assert sorted(m["text"] for m in gateway.delivered.values()) == sorted(
        f"【RelieFlink】包裹 {h.id} 已送达。" for h in homes
    )
    # At most the one notice in flight at the kill was offered twice, under the same key.
    assert len(gateway.received) <= len(homes) + 1
