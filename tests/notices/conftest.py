"""A stand-in SMS gateway on 127.0.0.1 (a real HTTP server in a thread): it checks each
request's signature, honours ``Idempotency-Key`` as providers do, and can be told to fail the
first tries or to answer slowly; and the settings that turn the SMS channel on."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from relieflink.config import get_settings

SECRET = "gateway-test-secret"


@dataclass
class Gateway:
    url: str = ""
    fail_first: int = 0  # answer 503 to this many requests first
    delay: float = 0.0  # seconds before answering
    received: list[dict[str, Any]] = field(default_factory=list)  # every request, even refused
    delivered: dict[str, dict[str, Any]] = field(default_factory=dict)  # by idempotency key
    bad_signatures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _handler(gateway: Gateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            key = self.headers["Idempotency-Key"]
            with gateway.lock:
                message = json.loads(body) | {"key": key}
                gateway.received.append(message)
                refuse = len(gateway.received) <= gateway.fail_first
                if self.headers["X-Relieflink-Signature"] != expected:
                    gateway.bad_signatures += 1
                    refuse = True
            time.sleep(gateway.delay)
            if refuse:
                self.send_response(503)
                self.end_headers()
                return
            with gateway.lock:
                first = gateway.delivered.setdefault(
                    key, message | {"id": f"m{len(gateway.delivered) + 1}"}
                )
            answer = json.dumps({"message_id": first["id"]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch) -> Iterator[Gateway]:
    """A running gateway, and the SMS channel pointed at it (no hourly cap to speak of, retries
    after a second)."""
    state = Gateway()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}/send"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("RELIEFLINK_SMS_GATEWAY_URL", state.url)
    monkeypatch.setenv("RELIEFLINK_SMS_GATEWAY_SECRET", SECRET)
    monkeypatch.setenv("RELIEFLINK_NOTICES_RETRY_SECONDS", "1")
    monkeypatch.setenv("RELIEFLINK_NOTICES_MAX_ATTEMPTS", "3")
    monkeypatch.setenv("RELIEFLINK_NOTICES_PER_RECIPIENT_PER_HOUR", "100")
    get_settings.cache_clear()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        monkeypatch.undo()
        get_settings.cache_clear()
