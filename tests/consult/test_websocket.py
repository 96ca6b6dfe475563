"""Real-time messages: authentication in the first message, fan-out to both sides, history."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from starlette.websockets import WebSocketDisconnect

from relieflink.models import Role
from tests.consult.test_api import API, doctor_headers, request_body, resident_headers
from tests.factories import headers_for


def token(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


def open_case(db: Session, client: TestClient) -> tuple[int, dict[str, str], dict[str, str]]:
    resident, _ = resident_headers(db, client)
    cid = client.post(API, json=request_body(), headers=resident).json()["consultation"]["id"]
    doctor, _ = doctor_headers(db, client)
    assert client.post(f"{API}/take", headers=doctor).json()["id"] == cid
    return cid, resident, doctor


def test_both_sides_exchange_messages_and_the_history_is_stored(
    db: Session, client: TestClient
) -> None:
    cid, resident, doctor = open_case(db, client)
    client.post(f"{API}/{cid}/messages", json={"body": "before"}, headers=resident)
    with (
        client.websocket_connect(f"{API}/{cid}/ws") as ws_doctor,
        client.websocket_connect(f"{API}/{cid}/ws") as ws_resident,
    ):
        ws_doctor.send_json({"type": "auth", "token": token(doctor)})
        ready = ws_doctor.receive_json()
        assert ready["type"] == "ready" and ready["status"] == "in_progress"
        assert [m["body"] for m in ready["history"]] == ["before"]
        ws_resident.send_json({"type": "auth", "token": token(resident)})
        assert ws_resident.receive_json()["type"] == "ready"

        ws_doctor.send_json({"type": "message", "body": "您好，哪里不舒服？", "client_ref": "d1"})
        got = ws_resident.receive_json()
        ack = ws_doctor.receive_json()
        assert got["type"] == "message" and got["body"] == "您好，哪里不舒服？"
        assert got["sender_role"] == "doctor"
        assert ack["id"] == got["id"] and ack["client_ref"] == "d1"

        for i in range(5):
            ws_resident.send_json({"type": "message", "body": f"r{i}", "client_ref": f"r{i}"})
        bodies = [ws_doctor.receive_json()["body"] for _ in range(5)]
        assert bodies == [f"r{i}" for i in range(5)]  # in order, none lost

        ws_resident.send_json({"type": "ping"})
        replies = [ws_resident.receive_json() for _ in range(6)]
        assert {"type": "pong"} in replies

        ws_doctor.send_json({"type": "message", "body": ""})
        assert ws_doctor.receive_json()["type"] == "error"

        # A message sent over REST reaches the sockets too.
        client.post(f"{API}/{cid}/messages", json={"body": "via rest"}, headers=doctor)
        assert ws_resident.receive_json()["body"] == "via rest"
    history = client.get(f"{API}/{cid}/messages", headers=resident).json()
    assert [m["body"] for m in history] == [
        "before",
        "您好，哪里不舒服？",
        "r0",
        "r1",
        "r2",
        "r3",
        "r4",
        "via rest",
    ]
    # Reconnecting with after_id gets only what was missed.
    with client.websocket_connect(f"{API}/{cid}/ws") as ws:
        ws.send_json({"type": "auth", "token": token(resident), "after_id": history[-3]["id"]})
        assert [m["body"] for m in ws.receive_json()["history"]] == ["r4", "via rest"]


def test_closing_tells_the_sockets_and_refuses_further_messages(
    db: Session, client: TestClient
) -> None:
    cid, resident, doctor = open_case(db, client)
    with client.websocket_connect(f"{API}/{cid}/ws") as ws:
        ws.send_json({"type": "auth", "token": token(resident)})
        ws.receive_json()
        closed = client.post(
            f"{API}/{cid}/close", json={"notes": "ok", "outcome": "advice_given"}, headers=doctor
        )
        assert closed.status_code == 200
        assert ws.receive_json() == {"type": "status", "consultation_id": cid, "status": "closed"}
        ws.send_json({"type": "message", "body": "one more thing", "client_ref": "late"})
        error = ws.receive_json()
        assert error["type"] == "error" and error["client_ref"] == "late"
    assert client.get(f"{API}/{cid}/messages", headers=resident).json() == []


@pytest.mark.parametrize(
    ("who", "code"),
    [("nobody", 4401), ("courier", 4403), ("other_doctor", 4403), ("bad_first", 4400)],
)
def test_sockets_refuse_outsiders(db: Session, client: TestClient, who: str, code: int) -> None:
    cid, _, _ = open_case(db, client)
    first: dict[str, str] = {"type": "auth", "token": "not-a-token"}
    if who == "courier":
        first["token"] = token(headers_for(db, client, Role.courier))
    elif who == "other_doctor":
        first["token"] = token(doctor_headers(db, client)[0])
    elif who == "bad_first":
        first = {"type": "message", "body": "hi"}
    with client.websocket_connect(f"{API}/{cid}/ws") as ws:
        ws.send_json(first)
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_json()
    assert info.value.code == code
