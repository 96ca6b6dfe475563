"""Two guards around the whole application (API and web pages), as plain ASGI middleware:

- :class:`BodyLimit` refuses a request body larger than the configured size with 413, from its
  ``Content-Length`` before anything is read, or, for a chunked body, as soon as the chunks
  counted so far pass the limit: a body is never read whole beyond it.
- :class:`DatabaseOutage` answers 503 with ``Retry-After`` when the database cannot be reached
  (:data:`relieflink.db.UNAVAILABLE`), wherever the error came from (a route, a dependency's
  commit, the Idempotency-Key middleware). The pool checks a connection before it lends it
  (``pool_pre_ping``), so the next request after the database is back is answered normally.
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from relieflink.api.problems import error_problem
from relieflink.config import get_settings
from relieflink.db import UNAVAILABLE
from relieflink.errors import RelieflinkError, Unavailable

log = logging.getLogger(__name__)

OUTAGE_RETRY_SECONDS = 10


class ContentTooLarge(RelieflinkError):
    status_code = 413
    title = "Content too large"


class _Cut(Exception):
    """Raised into the application when the body passed the limit: it stops reading."""


def _limit(scope: Scope) -> tuple[int, str]:
    settings = get_settings()
    for name, value in scope["headers"]:
        if name == b"content-type" and value.lower().startswith(b"multipart/form-data"):
            return settings.max_upload_bytes, "an upload"
    return settings.max_body_bytes, "a request body"


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def _too_large(limit: int, what: str) -> ASGIApp:
    return error_problem(
        ContentTooLarge(f"{what} may have at most {limit} bytes ({limit / 2**20:g} MiB)")
    )


class _Middleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app


class BodyLimit(_Middleware):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, what = _limit(scope)
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await _too_large(limit, what)(scope, receive, send)
            return
        received = 0
        cut = answered = False

        async def counted() -> Message:
            nonlocal received, cut
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    cut = True
                    raise _Cut
            return message

        async def unless_cut(message: Message) -> None:
            nonlocal answered
            if cut:  # the application's answer to a body cut short gives way to the 413
                return
            answered = True
            await send(message)

        try:
            await self.app(scope, counted, unless_cut)
        except Exception:
            if not cut:
                raise
        if cut and not answered:
            await _too_large(limit, what)(scope, receive, send)


class DatabaseOutage(_Middleware):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except UNAVAILABLE as exc:
            if started:
                raise
            log.warning("database unavailable: %s %s: %s", scope["method"], scope["path"], exc)
            refusal = Unavailable(
                "the database cannot be reached; try again shortly",
                retry_after=OUTAGE_RETRY_SECONDS,
            )
            await error_problem(refusal)(scope, receive, send)
