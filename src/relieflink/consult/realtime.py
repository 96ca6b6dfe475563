"""The real-time hub of consultation messages: store first, then fan out.

Each WebSocket connection subscribes to one consultation with an ``asyncio.Queue``. A message a
participant sends goes to one writer task, which stores every message waiting at that moment in
one transaction (natural batching: no timer, the batch is whatever arrived during the previous
commit), and only after the commit puts it on every subscriber's queue, the sender's included
(that copy is the sender's acknowledgement, with the stored id). So a message anyone saw is in
the history, and a client that reconnects asks for the messages after the last id it saw.

Scope: a hub holds the connections of one process; its broker (:mod:`relieflink.consult.broker`)
carries events to the other server processes (``relieflink serve --workers 2``) through Redis when
``RELIEFLINK_REDIS_URL`` is set. Without Redis, run one server process (the default).
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from anyio import to_thread
from sqlalchemy.orm import Session

from relieflink import clock
from relieflink.config import get_settings
from relieflink.consult import repository
from relieflink.consult.broker import Broker, Event, LocalBroker, broker_for
from relieflink.db import get_sessionmaker

if TYPE_CHECKING:
    from starlette.applications import Starlette

log = logging.getLogger(__name__)
OPEN = {"waiting", "in_progress"}
MAX_BATCH = 500


@dataclass
class _Pending:
    consultation_id: int
    sender_id: int
    sender_role: str
    body: str
    client_ref: str | None
    done: asyncio.Future[int] = field(repr=False)
    submitted: float = 0.0


class MessageRefused(Exception):
    """The message was not stored (the consultation is closed or gone)."""


class Hub:
    """Subscribers per consultation and the batching writer (one per process and event loop)."""

    def __init__(
        self, session_factory: Callable[[], Session], broker: Broker | None = None
    ) -> None:
        self._session_factory = session_factory
        self._broker = broker or LocalBroker()
        self._started = False
        self._starting = asyncio.Lock()
        self._subscribers: dict[int, set[asyncio.Queue[Event]]] = {}
        self._pending: asyncio.Queue[_Pending] | None = None
        self._writer: asyncio.Task[None] | None = None
        self.stored = 0
        self.batches = 0
        # Recent timings (ms) for the operators: submit → fan-out, and one batch's store.
        self.fanout_ms: deque[float] = deque(maxlen=20_000)
        self.store_ms: deque[float] = deque(maxlen=2_000)
        # How late the event loop wakes a 50 ms timer: the delay every socket shares.
        self.loop_lag_ms: deque[float] = deque(maxlen=20_000)
        self._lag_probe: asyncio.Task[None] | None = None
        self.gc_ms: deque[float] = deque(maxlen=2_000)

    async def start(self) -> None:
        """Connect the broker (once): afterwards every event published anywhere arrives here.
        A socket awaits this before it subscribes; a broker that failed is tried again."""
        if self._started:
            return
        async with self._starting:
            if not self._started:
                await self._broker.start(self.publish_text)
                self._started = True

    # --- subscriptions ---------------------------------------------------------------------

    def subscribe(self, consultation_id: int) -> asyncio.Queue[Event]:
        queue: asyncio.Queue[Event] = asyncio.Queue()
        self._subscribers.setdefault(consultation_id, set()).add(queue)
        return queue

    def unsubscribe(self, consultation_id: int, queue: asyncio.Queue[Event]) -> None:
        subs = self._subscribers.get(consultation_id)
        if subs is not None:
            subs.discard(queue)
            if not subs:
                del self._subscribers[consultation_id]

    async def announce(self, consultation_id: int, event: dict[str, Any]) -> None:
        """Send ``event`` (a message carries its stored ``id``) to every subscriber of every
        process: for background tasks after a request commits.

        The subscribers' queues belong to the loop and are not thread-safe, and a plain function
        given to ``BackgroundTasks`` runs in a worker thread; a coroutine runs on the loop.
        """
        message_id = int(event["id"]) if event.get("type") == "message" else 0
        await self.start()
        await self._broker.publish(
            [(consultation_id, (message_id, json.dumps(event, ensure_ascii=False)))]
        )

    def publish_text(self, consultation_id: int, event: Event) -> int:
        """Put ``event`` on this process's subscribers' queues (the broker calls this)."""
        subs = self._subscribers.get(consultation_id, ())
        for queue in subs:
            queue.put_nowait(event)
        return len(subs)

    def connections(self) -> int:
        return sum(len(s) for s in self._subscribers.values())

    # --- the writer ------------------------------------------------------------------------

    def submit(
        self,
        consultation_id: int,
        *,
        sender_id: int,
        sender_role: str,
        body: str,
        client_ref: str | None,
    ) -> asyncio.Future[int]:
        """Queue one message for storing; the future gets its stored id (the message itself
        reaches every subscriber, the sender included) or ``MessageRefused``. Messages are
        stored in submission order."""
        loop = asyncio.get_running_loop()
        if self._writer is None or self._writer.done():
            self._pending = asyncio.Queue()
            self._writer = loop.create_task(self._write_loop())
            self._lag_probe = loop.create_task(self._probe_lag())
        assert self._pending is not None
        done: asyncio.Future[int] = loop.create_future()
        self._pending.put_nowait(
            _Pending(
                consultation_id, sender_id, sender_role, body, client_ref, done, time.perf_counter()
            )
        )
        return done

    async def _probe_lag(self) -> None:
        started: list[float] = []

        def on_gc(phase: str, info: dict[str, int]) -> None:
            if phase == "start":
                started[:] = [time.perf_counter()]
            elif started:
                self.gc_ms.append((time.perf_counter() - started[0]) * 1000)

        gc.callbacks.append(on_gc)
        try:
            while True:
                before = time.perf_counter()
                await asyncio.sleep(0.05)
                self.loop_lag_ms.append((time.perf_counter() - before - 0.05) * 1000)
        finally:
            gc.callbacks.remove(on_gc)

    async def _write_loop(self) -> None:
        assert self._pending is not None
        await self.start()
        while True:
            batch = [await self._pending.get()]
            while len(batch) < MAX_BATCH and not self._pending.empty():
                batch.append(self._pending.get_nowait())
            started = time.perf_counter()
            try:
                results = await to_thread.run_sync(self._store, batch)
            except Exception as exc:  # the database failed: tell every sender, keep serving
                log.exception("storing %d consultation messages failed", len(batch))
                for item in batch:
                    if not item.done.done():
                        item.done.set_exception(exc)
                continue
            self.batches += 1
            now = time.perf_counter()
            self.store_ms.append((now - started) * 1000)
            stored = [
                (item, event)
                for item, event in zip(batch, results, strict=True)
                if not isinstance(event, MessageRefused)
            ]
            await self._broker.publish([(item.consultation_id, event) for item, event in stored])
            for item, event in zip(batch, results, strict=True):
                if not item.done.done():
                    if isinstance(event, MessageRefused):
                        item.done.set_exception(event)
                    else:
                        item.done.set_result(event[0])
            self.stored += len(stored)
            self.fanout_ms.extend((now - item.submitted) * 1000 for item, _ in stored)

    def _store(self, batch: list[_Pending]) -> list[Event | MessageRefused]:
        """Store the batch in one transaction (one multi-row INSERT ... RETURNING); each stored
        message comes back as the JSON text every subscriber is sent (serialised once)."""
        ids = {item.consultation_id for item in batch}
        now = clock.now()
        with self._session_factory() as session:
            repository.begin_write(session)
            status = repository.statuses(session, ids)
            accepted = [item for item in batch if status.get(item.consultation_id) in OPEN]
            stored = repository.insert_messages(
                session,
                [
                    {
                        "consultation_id": item.consultation_id,
                        "sender_id": item.sender_id,
                        "sender_role": item.sender_role,
                        "body": item.body,
                        "client_ref": item.client_ref,
                        "sent_at": now,
                    }
                    for item in accepted
                ],
            )
            session.commit()
        ids_of = dict(zip((id(item) for item in accepted), stored, strict=True))
        sent_at = now.isoformat().replace("+00:00", "Z")
        out: list[Event | MessageRefused] = []
        for item in batch:
            message_id = ids_of.get(id(item))
            if message_id is None:
                state = status.get(item.consultation_id)
                out.append(MessageRefused(f"the consultation is {state or 'gone'}"))
                continue
            text = json.dumps(
                {
                    "type": "message",
                    "id": message_id,
                    "consultation_id": item.consultation_id,
                    "sender_id": item.sender_id,
                    "sender_role": item.sender_role,
                    "body": item.body,
                    "client_ref": item.client_ref,
                    "sent_at": sent_at,
                },
                ensure_ascii=False,
            )
            out.append((message_id, text))
        return out

    def stats(self) -> dict[str, Any]:
        """Counters and recent timing percentiles (milliseconds)."""

        def pct(values: deque[float], q: float) -> float | None:
            if not values:
                return None
            ordered = sorted(values)
            return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

        return {
            "process": os.getpid(),
            "connections": self.connections(),
            "consultations": len(self._subscribers),
            "stored": self.stored,
            "batches": self.batches,
            "pending": self._pending.qsize() if self._pending is not None else 0,
            "fanout_p50_ms": pct(self.fanout_ms, 0.5),
            "fanout_p99_ms": pct(self.fanout_ms, 0.99),
            "store_p50_ms": pct(self.store_ms, 0.5),
            "store_p99_ms": pct(self.store_ms, 0.99),
            "loop_lag_p50_ms": pct(self.loop_lag_ms, 0.5),
            "loop_lag_p99_ms": pct(self.loop_lag_ms, 0.99),
            "loop_lag_max_ms": pct(self.loop_lag_ms, 1.0),
            "gc_max_ms": pct(self.gc_ms, 1.0),
        }

    async def close(self) -> None:
        for task in (self._writer, self._lag_probe):
            if task is not None:
                task.cancel()
        self._writer = self._lag_probe = None
        await self._broker.close()
        self._started = False


def hub_for(app: Starlette) -> Hub:
    """The process's message hub (one per application), with the configured broker."""
    hub: Hub | None = getattr(app.state, "consult_hub", None)
    if hub is None:
        hub = Hub(get_sessionmaker(), broker_for(get_settings()))
        app.state.consult_hub = hub
        # The application's own objects (modules, routes, models: millions) live for ever; left
        # in the collector's oldest generation, every full collection walks them all, and with
        # a thousand sockets open that stalled every chat for up to ~0.9 s (measured with the
        # hub's gc and loop-lag probes). Move them out of the collector, once per process.
        if gc.get_freeze_count() == 0:
            gc.collect()
            gc.freeze()
    return hub


async def close_hub(app: Starlette) -> None:
    """Stop the application's hub, if it started (at shutdown)."""
    hub: Hub | None = getattr(app.state, "consult_hub", None)
    if hub is not None:
        await hub.close()
