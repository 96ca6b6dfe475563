"""Middleware for ``Idempotency-Key`` on state-changing requests.

A retry with the same key and payload gets the first answer; the same key with another payload is
refused (422); a retry while the first is still running gets 409. Answers of 5xx are not kept, so
a retry after a server failure does the work again.
"""

from __future__ import annotations

import json

from fastapi import Request, Response
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from relieflink.api.problems import problem
from relieflink.db import get_sessionmaker
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
        body = await request.body()
        with get_sessionmaker()() as session:
            user = users.resolve_token(session, token) if token else None
            session.commit()
            if user is None:  # the route itself answers 401
                return await call_next(request)
            user_id = user.id
            fingerprint = idempotency.request_fingerprint(request.method, request.url.path, body)
            try:
                replay = idempotency.claim(
                    session,
                    user_id=user_id,
                    key=key,
                    method=request.method,
                    path=request.url.path,
                    fingerprint=fingerprint,
                )
            except RelieflinkError as exc:
                return problem(exc.status_code, exc.title, exc.message)
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
            with get_sessionmaker()() as session:
                idempotency.release(session, user_id=user_id, key=key)
            raise
        raw = b"".join(c if isinstance(c, bytes) else c.encode() for c in chunks)
        with get_sessionmaker()() as session:
            if response.status_code >= 500 or not _is_json(response):
                idempotency.release(session, user_id=user_id, key=key)
            else:
                stored = json.loads(raw) if raw else None
                idempotency.complete(
                    session, user_id=user_id, key=key, status=response.status_code, body=stored
                )
        return Response(
            raw,
            status_code=response.status_code,
            headers=dict(response.headers),
            media_type=response.media_type,
        )


def _is_json(response: Response) -> bool:
    return "json" in (response.headers.get("content-type") or "")


def _token(request: Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return None
