"""The channels a notice can go by, behind one interface: an HTTP SMS gateway and SMTP e-mail.

A channel sends one text and returns the provider's message id, or raises
:class:`SendFailed`. Each send carries the notice's own key (``Idempotency-Key`` to the gateway,
a fixed ``Message-ID`` by mail), so a resend after a sender died mid-send is one message to a
gateway that honours the key, not two.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol

from relieflink.config import Settings
from relieflink.models import NoticeChannel

SIGNATURE_HEADER = "X-Relieflink-Signature"


class SendFailed(Exception):
    """The channel did not take the message; ``permanent`` when a retry cannot help."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.permanent = permanent


class Channel(Protocol):
    def send(self, *, recipient: str, text: str, key: str, subject: str) -> str: ...


def sign(secret: str, body: bytes) -> str:
    """The gateway's check of a body: ``sha256=`` and the HMAC-SHA256 of the body, hex."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class SmsGateway:
    """POSTs ``{"to", "text", "id"}`` as JSON, signed; expects 2xx and ``{"message_id": …}``."""

    url: str
    secret: str
    timeout: float = 10.0

    def send(self, *, recipient: str, text: str, key: str, subject: str) -> str:
        body = json.dumps({"to": recipient, "text": text, "id": key}, ensure_ascii=False).encode()
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": key,
            SIGNATURE_HEADER: sign(self.secret, body),
        }
        import httpx  # here: a second of every command's start-up otherwise

        try:
            response = httpx.post(self.url, content=body, headers=headers, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise SendFailed(f"gateway unreachable: {type(exc).__name__}") from None
        if response.status_code >= 500 or response.status_code == 429:
            raise SendFailed(f"gateway answered {response.status_code}")
        if response.status_code >= 400:
            raise SendFailed(
                f"gateway refused the message ({response.status_code})", permanent=True
            )
        try:
            message_id = str(response.json()["message_id"])
        except (ValueError, KeyError, TypeError):
            raise SendFailed("gateway answered without a message_id") from None
        return message_id


@dataclass(frozen=True)
class Smtp:
    host: str
    port: int
    sender: str
    timeout: float = 10.0

    def send(self, *, recipient: str, text: str, key: str, subject: str) -> str:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = recipient
        message["Subject"] = subject
        message_id = f"<{key}@relieflink>"
        message["Message-ID"] = message_id
        message.set_content(text)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused:
            raise SendFailed("the mail server refused the address", permanent=True) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise SendFailed(f"mail server: {type(exc).__name__}") from None
        return message_id


def configured(settings: Settings) -> dict[NoticeChannel, Channel]:
    """The channels the settings turn on (none by default)."""
    channels: dict[NoticeChannel, Channel] = {}
    if settings.sms_gateway_url:
        channels[NoticeChannel.sms] = SmsGateway(
            settings.sms_gateway_url, settings.sms_gateway_secret
        )
    if settings.smtp_host:
        channels[NoticeChannel.email] = Smtp(
            settings.smtp_host, settings.smtp_port, settings.smtp_sender
        )
    return channels
