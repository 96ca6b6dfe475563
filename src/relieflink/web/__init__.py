"""Server-rendered web pages (Jinja2 + htmx) over the same domain services as the API.

``web_router`` holds every page; ``STATIC_DIR`` is mounted at ``/static`` by ``relieflink.app``.
See ``web/README.md`` for how pages, navigation, CSRF and translations work.
"""

from relieflink.web.rendering import STATIC_DIR
from relieflink.web.routes import build_router

web_router = build_router()

__all__ = ["STATIC_DIR", "web_router"]
