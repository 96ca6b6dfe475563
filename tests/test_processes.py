"""Several server processes on one database and one Redis: chat, sign-in limits and idempotent
retries hold across them. Real ``relieflink serve`` processes, reached over HTTP and WebSocket."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session
from websockets.sync.client import ClientConnection, connect

from relieflink.models import Role
from tests.consult.factories import make_household_with_resident
from tests.consult.test_api import request_body
from tests.factories import PASSWORD, make_user
from tests.live_server import free_port

pytestmark = pytest.mark.slow
RELIEFLINK = str(Path(sys.executable).parent / "relieflink")
CONSULT = "/api/v1/consultations"
ATTEMPTS_PER_MINUTE = 3


Serve = Callable[..., str]


@pytest.fixture
def serve(database_url: str, redis_url: str, db: Session) -> Iterator[Serve]:
    """Start ``relieflink serve`` processes on the test database and Redis (a channel of their
    own); returns each one's base URL once it answers. Stopped before the tables are emptied."""
    env = os.environ | {
        "RELIEFLINK_DATABASE_URL": database_url,
        "RELIEFLINK_ENVIRONMENT": "test",
        "RELIEFLINK_REDIS_URL": redis_url,
        "RELIEFLINK_REDIS_PREFIX": f"relieflink-test-{uuid.uuid4().hex}",
        "RELIEFLINK_LOGIN_ATTEMPTS_PER_MINUTE": str(ATTEMPTS_PER_MINUTE),
        "RELIEFLINK_LOG_LEVEL": "WARNING",
    }
    servers: list[subprocess.Popen[bytes]] = []

    def start(*args: str) -> str:
        port = free_port()
        server = subprocess.Popen(
            [RELIEFLINK, "serve", "--port", str(port), *args], env=env, start_new_session=True
        )
        servers.append(server)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 240  # a loaded machine takes long to import
        while time.monotonic() < deadline:
            assert server.poll() is None, f"relieflink serve {args} exited with {server.returncode}"
            try:
                if httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200:
                    return url
            except httpx.TransportError:
                time.sleep(0.3)
        raise AssertionError(f"relieflink serve {args} did not answer in 240 s")

    try:
        yield start
    finally:
        for server in servers:
            os.killpg(server.pid, signal.SIGTERM)
        for server in servers:
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()


def sign_in(url: str, username: str, password: str = PASSWORD) -> httpx.Response:
    return httpx.post(
        f"{url}/api/v1/auth/sign-in", json={"username": username, "password": password}
    )


def bearer(url: str, username: str) -> dict[str, str]:
    response = sign_in(url, username)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def open_consultation(db: Session, url: str) -> tuple[int, dict[str, str], dict[str, str]]:
    """A consultation a doctor took: its id, the resident's and the doctor's headers."""
    _, resident = make_household_with_resident(db)
    doctor = make_user(db, Role.doctor)
    db.commit()
    resident_h, doctor_h = bearer(url, resident.username), bearer(url, doctor.username)
    shift = {"specialties": ["general"], "languages": ["zh", "en"]}
    assert httpx.post(f"{url}{CONSULT}/shift", json=shift, headers=doctor_h).status_code == 200
    created = httpx.post(f"{url}{CONSULT}", json=request_body(), headers=resident_h)
    cid = int(created.json()["consultation"]["id"])
    assert httpx.post(f"{url}{CONSULT}/take", headers=doctor_h).json()["id"] == cid
    return cid, resident_h, doctor_h


@contextmanager
def socket_to(url: str, cid: int, headers: dict[str, str]) -> Iterator[ClientConnection]:
    """A socket on consultation ``cid``, signed in and ready."""
    with connect(f"{url.replace('http', 'ws')}{CONSULT}/{cid}/ws", open_timeout=10) as ws:
        token = headers["Authorization"].removeprefix("Bearer ")
        ws.send(json.dumps({"type": "auth", "token": token}))
        assert receive(ws)["type"] == "ready"
        yield ws


def receive(ws: ClientConnection) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(ws.recv(timeout=10))
    return event


def test_a_message_posted_on_one_process_reaches_a_socket_on_the_other(
    db: Session, serve: Serve
) -> None:
    first, second = serve(), serve()
    cid, resident, doctor = open_consultation(db, first)
    with (
        socket_to(second, cid, doctor) as doctor_ws,
        socket_to(first, cid, resident) as resident_ws,
    ):
        # REST on the first process; the doctor's socket is on the second.
        posted = httpx.post(
            f"{first}{CONSULT}/{cid}/messages", json={"body": "胸口闷"}, headers=resident
        )
        assert posted.status_code == 201
        got = receive(doctor_ws)
        assert (got["type"], got["id"], got["body"]) == ("message", posted.json()["id"], "胸口闷")
        assert receive(resident_ws)["id"] == got["id"]  # the first process's own socket too

        # A socket message stored by the second process reaches the first's socket, once.
        doctor_ws.send(json.dumps({"type": "message", "body": "多久了？", "client_ref": "d1"}))
        ack, seen = receive(doctor_ws), receive(resident_ws)
        assert ack["client_ref"] == "d1" and seen["id"] == ack["id"] > got["id"]

        closed = httpx.post(
            f"{second}{CONSULT}/{cid}/close",
            json={"notes": "rest and fluids", "outcome": "advice_given"},
            headers=doctor,
        )
        assert closed.status_code == 200, closed.text
        assert receive(resident_ws) == {
            "type": "status",
            "consultation_id": cid,
            "status": "closed",
        }
        assert receive(doctor_ws)["status"] == "closed"
    history = httpx.get(f"{second}{CONSULT}/{cid}/messages", headers=resident).json()
    assert [m["body"] for m in history] == ["胸口闷", "多久了？"]


def test_sign_in_limits_and_idempotent_retries_hold_across_processes(
    db: Session, serve: Serve
) -> None:
    first, second = serve(), serve()
    # Failed sign-ins sent to either process count together: the limit is in the database.
    user = make_user(db, Role.coordinator)
    db.commit()
    for n in range(ATTEMPTS_PER_MINUTE):
        assert sign_in((first, second)[n % 2], user.username, "wrong password").status_code == 401
    assert sign_in(first, user.username).status_code == 429
    assert sign_in(second, user.username).status_code == 429

    # A retry of a keyed request sent to the other process replays the first answer.
    cid, resident, _ = open_consultation(db, first)
    keyed = resident | {"Idempotency-Key": f"msg-{uuid.uuid4().hex}"}
    body = {"body": "sent twice, stored once"}
    once = httpx.post(f"{first}{CONSULT}/{cid}/messages", json=body, headers=keyed)
    again = httpx.post(f"{second}{CONSULT}/{cid}/messages", json=body, headers=keyed)
    assert once.status_code == again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == once.json()
    other = httpx.post(f"{second}{CONSULT}/{cid}/messages", json={"body": "x"}, headers=keyed)
    assert other.status_code == 422  # the same key for another request is refused there too
    history = httpx.get(f"{second}{CONSULT}/{cid}/messages", headers=resident).json()
    assert [m["body"] for m in history] == ["sent twice, stored once"]


def _stats(url: str, headers: dict[str, str]) -> dict[str, Any]:
    # A new connection each time, so the kernel may hand it to either worker.
    with httpx.Client() as client:
        stats: dict[str, Any] = client.get(f"{url}{CONSULT}/realtime/stats", headers=headers).json()
    return stats


def test_serve_with_two_workers_delivers_to_sockets_on_both(db: Session, serve: Serve) -> None:
    url = serve("--workers", "2")
    coordinator = make_user(db, Role.coordinator)
    cid, resident, doctor = open_consultation(db, url)  # (commits)
    staff = bearer(url, coordinator.username)
    with ExitStack() as stack:
        sockets = []
        processes: dict[int, int] = {}
        # Each socket is a new connection, which either worker may accept: open them until
        # both workers hold some (each worker's stats count its own sockets).
        while len(sockets) < 40 and (len(processes) < 2 or 0 in processes.values()):
            who = (doctor, resident)[len(sockets) % 2]
            sockets.append(stack.enter_context(socket_to(url, cid, who)))
            for _ in range(6):
                stats = _stats(url, staff)
                processes[stats["process"]] = stats["connections"]
        assert len(processes) == 2 and all(processes.values()), processes
        posted = httpx.post(
            f"{url}{CONSULT}/{cid}/messages", json={"body": "to all"}, headers=resident
        )
        assert posted.status_code == 201
        for ws in sockets:
            assert receive(ws)["id"] == posted.json()["id"]
