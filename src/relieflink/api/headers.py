"""Headers on every answer that may carry personal data: the API's and the pages'."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# No copy in a browser's or a proxy's cache (a shared computer, a caching proxy), and no
# guessing a type other than the one sent (a CSV export sniffed as HTML).
PRIVATE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


class PrivateResponsesMiddleware:
    """Adds :data:`PRIVATE` to every HTTP answer but the static files (which are the same for
    everyone and may be cached). A header a route set itself is kept."""

    def __init__(self, app: ASGIApp, *, public_prefix: str = "/static/") -> None:
        self.app = app
        self.public_prefix = public_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.public_prefix):
            await self.app(scope, receive, send)
            return

        async def send_private(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in PRIVATE.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_private)
