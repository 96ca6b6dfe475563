"""The real-time hub of consultation messages: store first, then fan out.

Each WebSocket connection subscribes to one consultation with an ``asyncio.Queue``. A message a
participant sends goes to one writer task, which stores every message waiting at that moment in
one transaction (natural batching: no timer, the batch is whatever arrived during the previous
commit), and only after the commit puts it on every subscriber's queue, the sender's included
(that copy is the sender's acknowledgement, with the stored id). So a message anyone saw is in
the history, and a client that reconnects asks for the messages after the last id it saw.

Scope: one process. The hub lives in the process that holds the connections, so run the server
with one uvicorn worker (``relieflink serve --workers 1``, the default); fanning out across
workers would need a broker (PostgreSQL LISTEN/NOTIFY or Redis) behind :meth:`Hub.publish`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from anyio import to_thread
from sqlalchemy import select
from sqlalchemy.orm import Session

from relieflink.consult.schemas import MessageRead
from relieflink.models import Consultation, ConsultMessage

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
    done: asyncio.Future[dict[str, Any]] = field(repr=False)


class MessageRefused(Exception):
    """The message was not stored (the consultation is closed or gone)."""


class Hub:
    """Subscribers per consultation and the batching writer (one per process and event loop)."""

    def __init__(self, session_factory: Callable[[], Session]) -> None:
        self._session_factory = session_factory
        self._subscribers: dict[int, set[asyncio.Queue[dict[str, Any]]]] = {}
        self._pending: asyncio.Queue[_Pending] | None = None
        self._writer: asyncio.Task[None] | None = None
        self.stored = 0
        self.batches = 0

    # --- subscriptions ---------------------------------------------------------------------

    def subscribe(self, consultation_id: int) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._subscribers.setdefault(consultation_id, set()).add(queue)
        return queue

    def unsubscribe(self, consultation_id: int, queue: asyncio.Queue[dict[str, Any]]) -> None:
        subs = self._subscribers.get(consultation_id)
        if subs is not None:
            subs.discard(queue)
            if not subs:
                del self._subscribers[consultation_id]

    def publish(self, consultation_id: int, event: dict[str, Any]) -> int:
        """Put ``event`` on every subscriber's queue; how many got it."""
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
    ) -> asyncio.Future[dict[str, Any]]:
        """Queue one message for storing; the future gets the stored message (the event every
        subscriber receives) or ``MessageRefused``. Messages are stored in submission order."""
        loop = asyncio.get_running_loop()
        if self._writer is None or self._writer.done():
            self._pending = asyncio.Queue()
            self._writer = loop.create_task(self._write_loop())
        assert self._pending is not None
        done: asyncio.Future[dict[str, Any]] = loop.create_future()
        self._pending.put_nowait(
            _Pending(consultation_id, sender_id, sender_role, body, client_ref, done)
        )
        return done

    async def _write_loop(self) -> None:
        assert self._pending is not None
        while True:
            batch = [await self._pending.get()]
            while len(batch) < MAX_BATCH and not self._pending.empty():
                batch.append(self._pending.get_nowait())
            try:
                results = await to_thread.run_sync(self._store, batch)
            except Exception as exc:  # the database failed: tell every sender, keep serving
                log.exception("storing %d consultation messages failed", len(batch))
                for item in batch:
                    if not item.done.done():
                        item.done.set_exception(exc)
                continue
            self.batches += 1
            for item, event in zip(batch, results, strict=True):
                if isinstance(event, MessageRefused):
                    if not item.done.done():
                        item.done.set_exception(event)
                    continue
                self.stored += 1
                self.publish(item.consultation_id, event)
                if not item.done.done():
                    item.done.set_result(event)

    def _store(self, batch: list[_Pending]) -> list[dict[str, Any] | MessageRefused]:
        ids = {item.consultation_id for item in batch}
        with self._session_factory() as session:
            status = dict(
                session.execute(
                    select(Consultation.id, Consultation.status).where(Consultation.id.in_(ids))
                ).all()
            )
            rows: list[ConsultMessage | MessageRefused] = []
            for item in batch:
                state = status.get(item.consultation_id)
                if state not in OPEN:
                    rows.append(MessageRefused(f"the consultation is {state or 'gone'}"))
                    continue
                message = ConsultMessage(
                    consultation_id=item.consultation_id,
                    sender_id=item.sender_id,
                    sender_role=item.sender_role,
                    body=item.body,
                    client_ref=item.client_ref,
                )
                session.add(message)
                rows.append(message)
            session.commit()
            return [
                r
                if isinstance(r, MessageRefused)
                else {"type": "message", **MessageRead.model_validate(r).model_dump(mode="json")}
                for r in rows
            ]

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            self._writer = None
