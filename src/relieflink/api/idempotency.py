"""Middleware for ``Idempotency-Key`` on state-changing requests.

A retry with the same key and payload gets the first answer; the same key with another payload is
refused (422); a retry while the first is still running gets 409. Answers of 5xx are not kept, so
a retry after a server failure does the work again.

Two transactions per keyed request: the claim (with the caller's token resolved in it) commits on
its own, so that a concurrent retry sees it; the answer is then stored in the route's own
transaction, handed over by ``api.deps.request_session``, so the work and its replayable answer
commit together before the response leaves. A plain ASGI middleware (Starlette's
``BaseHTTPMiddleware`` runs the app in a task group behind memory streams).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread
from fastapi import Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from relieflink.api.problems import error_problem, problem
from relieflink.db import begin_write, get_sessionmaker
from relieflink.errors import RelieflinkError
from relieflink.idempotency import service as idempotency
from relieflink.models import User
from relieflink.users import service as users

HEADER = "Idempotency-Key"
_HEADER_RAW = HEADER.lower().encode()
_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
CLAIM = "idempotency_claim"  # the request state's key for the :class:`Claim` (server-side only)


class Claim:
    """A key claimed by this request: the user its bearer token resolved to (read in the claim,
    so ``get_current_user`` need not read it again) and, once the route is done, the route's
    session with its transaction still open, for the answer to be stored in it."""

    __slots__ = ("key", "session", "token", "user")

    def __init__(self, token: str, key: str, user: User) -> None:
        self.token, self.key, self.user = token, key, user
        self.session: Session | None = None


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _METHODS:
            await self.app(scope, receive, send)
            return
        key = auth = None
        for name, value in scope["headers"]:  # the first of each, as ``request.headers`` reads
            if name == _HEADER_RAW and key is None:
                key = value.decode("latin-1")
            elif name == b"authorization" and auth is None:
                auth = value.decode("latin-1")
        token = _bearer(auth or "")
        if not key:
            await self.app(scope, receive, send)
            return
        if len(key) > 200:
            await problem(422, "Invalid input", f"{HEADER} is longer than 200 characters")(
                scope, receive, send
            )
            return
        if token is None:  # the route itself answers 401
            await self.app(scope, receive, send)
            return
        body, receive = await _read_body(receive)
        method, path = scope["method"], scope["path"]
        fingerprint = idempotency.request_fingerprint(method, path, body)
        # Database work runs in the thread pool, never on the event loop.
        claimed = await run_in_threadpool(_claim, token, key, method, path, fingerprint)
        if isinstance(claimed, Response):
            await claimed(scope, receive, send)
            return
        if claimed is None:
            await self.app(scope, receive, send)
            return
        user, replay = claimed
        if replay is not None:
            replayed = Response(
                json.dumps(replay.body).encode(),
                status_code=replay.status,
                media_type="application/json",
                headers={"Idempotent-Replayed": "true"},
            )
            await replayed(scope, receive, send)
            return
        claim = Claim(token, key, user)
        scope.setdefault("state", {})[CLAIM] = claim
        head: Message | None = None
        chunks: list[bytes] = []
        answered = False

        async def store_then_send(message: Message) -> None:
            # The answer is held back until it is stored (and the route's work committed with
            # it): a client that has it and retries at once must get the replay, not "still
            # being processed". It is sent from here, as the app sends its last chunk, so that
            # background tasks (which run after that) see the committed work and do not delay
            # the answer.
            nonlocal head, answered
            if message["type"] == "http.response.start":
                head = message
                return
            if message["type"] != "http.response.body" or head is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            raw = b"".join(chunks)
            status = head["status"]
            keep = status < 500 and _is_json(head)
            stored = (status, json.loads(raw) if raw else None) if keep else (None, None)
            await _in_thread(_finish, claim, *stored)
            answered = True
            await send(head)
            await send({"type": "http.response.body", "body": raw, "more_body": False})

        try:
            await self.app(scope, receive, store_then_send)
        except BaseException:
            if not answered:  # after the answer (a background task failed) the work stands
                await _in_thread(_abandon, claim)
            raise
        if not answered:  # nothing was answered: forget the claim, a retry may do the work
            await _in_thread(_finish, claim, None, None)


async def _in_thread(func: Callable[..., None], *args: Any) -> None:
    """Database work in the thread pool, never on the event loop; shielded, so a client that
    leaves cannot cut a commit short."""
    with anyio.CancelScope(shield=True):
        await anyio.to_thread.run_sync(func, *args)


async def _read_body(receive: Receive) -> tuple[bytes, Receive]:
    """The whole request body, and a ``receive`` that hands it to the app once more."""
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client left before sending it all
            break
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(parts)
    replayed = False

    async def again() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, again


def _claim(
    token: str, key: str, method: str, path: str, fingerprint: str
) -> tuple[User, idempotency.Replay | None] | Response | None:
    """The user and the replay (if any) for this key; None if the token is not valid (the
    route answers 401); a problem response if the key cannot be used."""
    with get_sessionmaker()() as session:
        begin_write(session)
        user = users.resolve_token(session, token)
        if user is None:
            return None
        try:
            replay = idempotency.claim(
                session,
                user_id=user.id,
                key=key,
                method=method,
                path=path,
                fingerprint=fingerprint,
            )
        except RelieflinkError as exc:
            return error_problem(exc)
        session.commit()  # a touched sign-in (sliding expiry) when the claim was a replay
        return user, replay


def _finish(claim: Claim, status: int | None, body: Any) -> None:
    """Store the answer to replay (or forget the claim when there is none worth keeping) and
    commit: in the route's transaction when it handed it over, so the work and the answer are
    kept together, else in a transaction of its own."""
    session = claim.session
    claim.session = None
    if session is None:
        session = get_sessionmaker()()
        begin_write(session)
    with session:
        if status is None:
            idempotency.release(session, user_id=claim.user.id, key=claim.key)
        else:
            idempotency.complete(
                session, user_id=claim.user.id, key=claim.key, status=status, body=body
            )
        session.commit()


def _abandon(claim: Claim) -> None:
    """The request failed: roll back the route's transaction if it is still open and forget the
    claim, so that a retry does the work."""
    if claim.session is not None:
        with claim.session as session:
            session.rollback()
        claim.session = None
    with get_sessionmaker()() as session:
        begin_write(session)
        idempotency.release(session, user_id=claim.user.id, key=claim.key)
        session.commit()


def _is_json(start: Message) -> bool:
    for name, value in start.get("headers", []):
        if name.lower() == b"content-type":
            return b"json" in value
    return False


def _bearer(authorization: str) -> str | None:
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip() or None
    return None
