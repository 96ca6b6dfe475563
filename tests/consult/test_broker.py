"""The message hub's brokers: in-process, and Redis pub/sub between hubs of several processes
(here two hubs on one event loop stand for two server processes; tests/test_processes.py runs
real ones)."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from starlette.websockets import WebSocketDisconnect

from relieflink.app import create_app
from relieflink.config import Settings, get_settings
from relieflink.consult.broker import LocalBroker, RedisBroker, broker_for
from relieflink.consult.realtime import Hub


def no_database() -> None:
    raise AssertionError("announcing needs no database")


def test_the_broker_is_chosen_by_the_redis_setting() -> None:
    assert isinstance(broker_for(Settings()), LocalBroker)
    broker = broker_for(Settings(redis_url="redis://127.0.0.1:6379/0", redis_prefix="site-a"))
    assert isinstance(broker, RedisBroker)
    assert broker.channel == "site-a:consult"


def test_in_process_the_announcement_reaches_this_process_subscribers() -> None:
    async def scenario() -> None:
        hub = Hub(no_database, LocalBroker())  # type: ignore[arg-type]
        queue, other = hub.subscribe(7), hub.subscribe(8)
        await hub.announce(7, {"type": "message", "id": 3, "body": "hi"})
        assert queue.get_nowait() == (3, json.dumps({"type": "message", "id": 3, "body": "hi"}))
        assert other.empty()
        await hub.close()

    asyncio.run(scenario())


def test_through_redis_every_process_gets_each_event_once(redis_url: str) -> None:
    channel = f"relieflink-test-{uuid.uuid4().hex}:consult"

    async def scenario() -> None:
        first = Hub(no_database, RedisBroker(redis_url, channel))  # type: ignore[arg-type]
        second = Hub(no_database, RedisBroker(redis_url, channel))  # type: ignore[arg-type]
        await first.start()
        await second.start()
        here, there = first.subscribe(5), second.subscribe(5)
        elsewhere = second.subscribe(6)
        for n in range(1, 4):
            await first.announce(5, {"type": "message", "id": n, "body": f"m{n}"})
        await second.announce(5, {"type": "status", "status": "closed"})
        got_there = [await asyncio.wait_for(there.get(), 5) for _ in range(4)]
        got_here = [await asyncio.wait_for(here.get(), 5) for _ in range(4)]
        # Each process's events arrive in the order it published them, and once: its own
        # directly (not again through Redis), the other's after the round trip, so the two
        # streams interleave in either order.
        for got in (got_here, got_there):
            messages = [json.loads(text) for message_id, text in got if message_id]
            assert [m["body"] for m in messages] == ["m1", "m2", "m3"]
            assert [json.loads(t) for m, t in got if not m] == [
                {"type": "status", "status": "closed"}
            ]
        await asyncio.sleep(0.2)
        assert here.empty() and there.empty() and elsewhere.empty()
        await first.close()
        await second.close()

    asyncio.run(scenario())


def test_a_redis_that_cannot_be_reached_fails_the_start_clearly() -> None:
    async def scenario() -> None:
        hub = Hub(no_database, RedisBroker("redis://127.0.0.1:1/0", "x"))  # type: ignore[arg-type]
        with pytest.raises(redis.ConnectionError, match=r"127\.0\.0\.1:1\b"):
            await hub.start()
        await hub.close()

    asyncio.run(scenario())


def test_a_socket_is_asked_to_come_back_later_while_redis_is_away(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELIEFLINK_REDIS_URL", "redis://127.0.0.1:1/0")
    get_settings.cache_clear()
    try:
        with (
            TestClient(create_app()) as client,
            client.websocket_connect("/api/v1/consultations/1/ws") as ws,
        ):
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_text()
            assert closed.value.code == 1013  # "try again later"
            assert closed.value.reason == "live messages are unavailable for a moment"
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
