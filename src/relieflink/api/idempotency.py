"""Middleware for ``Idempotency-Key`` on state-changing requests.

A retry with the same key and payload gets the first answer; the same key with another payload is
refused (422); a retry while the first is still running gets 409. Answers of 5xx are not kept, so
a retry after a server failure does the work again.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from relieflink.api.problems import problem
from relieflink.db import begin_write, get_sessionmaker
from relieflink.errors import RelieflinkError
from relieflink.idempotency import service as idempotency
from relieflink.users import service as users

HEADER = "Idempotency-Key"
_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class IdempotencyMiddleware(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        key = request.headers.get(HEADER)
        if request.method not in _METHODS or not key:
            return await call_next(request)
        if len(key) > 200:
            return problem(422, "Invalid input", f"{HEADER} is longer than 200 characters")
        token = _token(request)
        if token is None:  # the route itself answers 401
            return await call_next(request)
        body = await request.body()
        fingerprint = idempotency.request_fingerprint(request.method, request.url.path, body)
        # Database work runs in the thread pool, never on the event loop.
        claimed = await run_in_threadpool(
            _claim, token, key, request.method, request.url.path, fingerprint
        )
        if isinstance(claimed, Response):
            return claimed
        if claimed is None:
            return await call_next(request)
        user_id, replay = claimed
        if replay is not None:
            return Response(
                json.dumps(replay.body).encode(),
                status_code=replay.status,
                media_type="application/json",
                headers={"Idempotent-Replayed": "true"},
            )
        try:
            response = await call_next(request)
            chunks = [chunk async for chunk in response.body_iterator]  # type: ignore[attr-defined]
        except BaseException:
            await run_in_threadpool(_finish, user_id, key, None, None)
            raise
        raw = b"".join(c if isinstance(c, bytes) else c.encode() for c in chunks)
        keep = response.status_code < 500 and _is_json(response)
        stored = (response.status_code, json.loads(raw) if raw else None) if keep else None
        await run_in_threadpool(_finish, user_id, key, *(stored or (None, None)))
        return Response(
            raw,
            status_code=response.status_code,
            headers=dict(response.headers),
            media_type=response.media_type,
        )


def _claim(
    token: str, key: str, method: str, path: str, fingerprint: str
) -> tuple[int, idempotency.Replay | None] | Response | None:
    """The user and the replay (if any) for this key; None if the token is not valid (the
    route answers 401); a problem response if the key cannot be used."""
    with get_sessionmaker()() as session:
        begin_write(session)
        user = users.resolve_token(session, token)
        if user is None:
            return None
        user_id = user.id
        try:
            replay = idempotency.claim(
                session,
                user_id=user_id,
                key=key,
                method=method,
                path=path,
                fingerprint=fingerprint,
            )
        except RelieflinkError as exc:
            return problem(exc.status_code, exc.title, exc.message)
        session.commit()
        return user_id, replay


def _finish(user_id: int, key: str, status: int | None, body: Any) -> None:
    """Store the answer to replay, or forget the claim when there is none worth keeping."""
    with get_sessionmaker()() as session:
        begin_write(session)
        if status is None:
            idempotency.release(session, user_id=user_id, key=key)
        else:
            idempotency.complete(session, user_id=user_id, key=key, status=status, body=body)


def _is_json(response: Response) -> bool:
    return "json" in (response.headers.get("content-type") or "")


def _token(request: Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return None
