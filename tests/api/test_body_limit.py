"""Audit finding 5: bodies over the configured size are refused with 413 (a problem document),
JSON as well as uploads, from ``Content-Length`` before anything is read, and for a chunked body
while it arrives: the server stops reading and answers long before the client has sent it all."""

from __future__ import annotations

import json
import select
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlalchemy import select as sql_select
from sqlalchemy.orm import Session

from relieflink.config import get_settings
from relieflink.models import Household, Role
from tests.factories import headers_for
from tests.live_server import live_server

LIMIT = 64 * 1024


@pytest.fixture
def small_limits(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("RELIEFLINK_MAX_BODY_BYTES", str(LIMIT))
    monkeypatch.setenv("RELIEFLINK_MAX_UPLOAD_BYTES", str(4 * LIMIT))
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def _assert_too_large(status: int, headers: dict[str, str], body: dict, what: str) -> None:
    assert status == 413
    assert headers["content-type"] == "application/problem+json"
    assert body["title"] == "Content too large"
    assert body["detail"].startswith(what)


def test_a_json_body_over_the_limit_is_refused(
    db: Session, client: TestClient, small_limits: None
) -> None:
    headers = headers_for(db, client, Role.coordinator)
    big = {"username": "x" * LIMIT, "password": "y"}
    response = client.post("/api/v1/auth/sign-in", json=big)
    _assert_too_large(response.status_code, response.headers, response.json(), "a request body")
    # With an Idempotency-Key too (that middleware reads the body before the route does).
    keyed = headers | {"Idempotency-Key": "big-1"}
    response = client.post("/api/v1/households", json={"note": "x" * LIMIT}, headers=keyed)
    assert response.status_code == 413
    # Under the limit nothing changes.
    assert (
        client.post("/api/v1/auth/sign-in", json={"username": "a", "password": "b"}).status_code
        == 401
    )


def test_an_upload_over_its_own_limit_is_refused_and_nothing_is_imported(
    db: Session, client: TestClient, small_limits: None
) -> None:
    headers = headers_for(db, client, Role.admin)
    rows = "".join(f"H{n:07d},C00001,1,101,3\n" for n in range(20_000))  # ~ 500 KB
    csv = ("code,community_code,building,unit,size\n" + rows).encode()
    assert len(csv) > 4 * LIMIT
    response = client.post(
        "/api/v1/imports/households",
        files={"file": ("households.csv", csv, "text/csv")},
        headers=headers,
    )
    _assert_too_large(response.status_code, response.headers, response.json(), "an upload")
    assert db.scalar(sql_select(func.count()).select_from(Household)) == 0


@pytest.fixture
def server(engine: object, small_limits: None) -> Iterator[tuple[str, int]]:
    from relieflink.app import create_app

    with live_server(create_app()) as url:
        address = urlsplit(url)
        yield str(address.hostname), int(address.port or 80)


def test_a_chunked_body_is_cut_off_while_it_arrives(server: tuple[str, int]) -> None:
    chunk = b"[" + b"1," * 4095 + b"1]"  # 8 KiB
    total = 8192  # 64 MiB in all: far more than the socket buffers hold
    sock = socket.create_connection(server, timeout=10)
    with sock:
        sock.sendall(
            b"POST /api/v1/auth/sign-in HTTP/1.1\r\nHost: test\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        sock.settimeout(0.5)
        sent = 0
        while sent < total and not select.select([sock], [], [], 0)[0]:
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except (TimeoutError, BrokenPipeError, ConnectionResetError):
                break  # the server stopped reading
            sent += 1
        sock.settimeout(10)
        raw = b""
        while b"\r\n\r\n" not in raw:
            raw += sock.recv(65536)
        head, _, body = raw.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in lines[1:])
        while len(body) < int(headers["content-length"]):
            body += sock.recv(65536)
    _assert_too_large(int(lines[0].split()[1]), headers, json.loads(body), "a request body")
    assert sent < total // 2, f"the client sent {sent} of {total} chunks before the answer"
