"""How the consultation hub's events reach the sockets of every server process.

A hub (:mod:`relieflink.consult.realtime`) holds the sockets of one process. With one server
process that is everyone (:class:`LocalBroker`); with several (``relieflink serve --workers 2``)
a participant's socket may live in another process than the one that stored the message, so
the events also travel through Redis pub/sub (:class:`RedisBroker`). :func:`broker_for` picks
one from the settings: ``RELIEFLINK_REDIS_URL`` set means Redis.

Both deliver an event to this process's own sockets at once, without a round trip: a sender's
acknowledgement never waits for (or depends on) Redis. Redis only carries events to the other
processes. Pub/sub is at most once: a message published while a process's Redis connection is
down does not reach that process's sockets live, but it is stored before it is published, and
a client that reconnects asks for the messages after the last id it saw (so clients order
messages by id: two processes may publish two messages in another order than they stored them).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable, Sequence
from typing import Protocol

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from relieflink.config import Settings

log = logging.getLogger(__name__)

# A subscriber's event: the stored message id (0 for other events) and the JSON text to send.
Event = tuple[int, str]
# Hands one consultation's event to this process's subscribers.
Deliver = Callable[[int, Event], object]
RECONNECT_SECONDS = 1.0


class Broker(Protocol):
    async def start(self, deliver: Deliver) -> None:
        """Deliver events (this process's, and other processes' when shared) to ``deliver``
        from now on; returns once events published elsewhere will arrive."""

    async def publish(self, events: Sequence[tuple[int, Event]]) -> None:
        """Deliver ``(consultation_id, event)`` pairs to every process's subscribers."""

    async def close(self) -> None:
        """Stop listening and let go of connections."""


class LocalBroker:
    """One server process: its subscribers are all there are."""

    def __init__(self) -> None:
        self._deliver: Deliver | None = None

    async def start(self, deliver: Deliver) -> None:
        self._deliver = deliver

    async def publish(self, events: Sequence[tuple[int, Event]]) -> None:
        assert self._deliver is not None, "start the broker first"
        for consultation_id, event in events:
            self._deliver(consultation_id, event)

    async def close(self) -> None:
        self._deliver = None


class RedisBroker:
    """Several server processes: one Redis channel carries each batch of events (one PUBLISH)
    to every process; a process skips its own batches, which it delivered already."""

    def __init__(self, url: str, channel: str) -> None:
        self.url, self.channel = url, channel
        self._origin = uuid.uuid4().hex  # this process's hub, to recognise its own batches
        self._redis: Redis | None = None
        self._pubsub: PubSub | None = None
        self._listener: asyncio.Task[None] | None = None
        self._deliver: Deliver | None = None

    async def start(self, deliver: Deliver) -> None:
        self._deliver = deliver
        self._redis = Redis.from_url(self.url, socket_connect_timeout=5, health_check_interval=30)
        self._pubsub = pubsub = self._redis.pubsub()
        try:
            await pubsub.subscribe(self.channel)
            # Wait for the confirmation: from then on every batch published reaches us.
            async with asyncio.timeout(5):
                while (await pubsub.get_message(timeout=1) or {}).get("type") != "subscribe":
                    pass
        except BaseException:
            await self.close()
            raise
        self._listener = asyncio.get_running_loop().create_task(self._listen(pubsub))

    async def publish(self, events: Sequence[tuple[int, Event]]) -> None:
        assert self._deliver is not None and self._redis is not None, "start the broker first"
        for consultation_id, event in events:
            self._deliver(consultation_id, event)
        batch = [[cid, message_id, text] for cid, (message_id, text) in events]
        try:
            await self._redis.publish(self.channel, json.dumps([self._origin, batch]))
        except (RedisError, OSError):  # this process's sockets have them; others get the history
            log.warning("Redis %s: could not publish %d events", self.url, len(events))

    async def _listen(self, pubsub: PubSub) -> None:
        while True:
            try:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
            except (RedisError, OSError):  # redis-py reconnects and subscribes again
                log.warning("Redis %s: listening failed; trying again", self.url, exc_info=True)
                await asyncio.sleep(RECONNECT_SECONDS)
                continue
            if message is None or message.get("type") != "message":
                continue
            origin, batch = json.loads(message["data"])
            if origin == self._origin:
                continue
            assert self._deliver is not None
            for consultation_id, message_id, text in batch:
                self._deliver(consultation_id, (message_id, text))

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
            self._listener = None
        if self._pubsub is not None:
            await self._pubsub.aclose()
            self._pubsub = None
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None


def broker_for(settings: Settings) -> Broker:
    """Redis pub/sub when ``RELIEFLINK_REDIS_URL`` is set, else this process only."""
    if settings.redis_url:
        return RedisBroker(settings.redis_url, f"{settings.redis_prefix}:consult")
    return LocalBroker()
