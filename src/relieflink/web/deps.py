"""Request dependencies of the web pages: the database session, the signed-in user, CSRF.

The web entry point does not import the API (entry points never import each other); the session
cookie carries the same opaque token the API's ``POST /auth/sign-in`` returns, resolved by the
same ``users.service.resolve_token``, so a browser signed in here is signed in to the API too.

CSRF: every state-changing form carries a token, checked before the route runs.

- Signed in: the token is ``HMAC-SHA256(secret_key, "csrf:" + session token)``. It is bound to
  the session (a new sign-in gets a new one, a revoked session's token is useless), needs no
  storage, and cannot be computed by a page on another site, which can neither read the HttpOnly
  session cookie nor this page.
- Signed out (only the sign-in form): a double-submit token: a random value in an HttpOnly,
  SameSite=Strict cookie (``relieflink_csrf``) and the same value in the form. This stops login
  CSRF (a forged form signing the victim in as the attacker).

The token is accepted from the ``csrf_token`` form field or the ``X-CSRF-Token`` header (htmx
sends the header on every request; see ``base.html``). Both comparisons are constant-time. As a
second layer, a POST whose ``Origin`` header names another host is refused, and the session
cookie is ``SameSite=Lax`` so other sites' POSTs do not carry it at all.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from relieflink.config import get_settings
from relieflink.db import request_session
from relieflink.errors import Forbidden, Unauthorized
from relieflink.models import Role, User
from relieflink.users import access
from relieflink.users import service as users

# The web pages sign in with this cookie; the JSON API takes only bearer tokens (no CSRF risk).
SESSION_COOKIE = "relieflink_session"
CSRF_COOKIE = "relieflink_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


@dataclass(frozen=True)
class Viewer:
    """What templates know of the signed-in user (a snapshot: the ORM row may be expired)."""

    id: int
    username: str
    full_name: str
    role: Role


class CsrfError(Forbidden):
    """A form without a valid CSRF token (shown as a 403 page asking to reload the form)."""


SessionDep = Annotated[Session, Depends(request_session, scope="function")]


def session_token(request: Request) -> str | None:
    return request.cookies.get(SESSION_COOKIE) or None


def get_optional_user(request: Request, session: SessionDep) -> User | None:
    """The signed-in user, or None (no cookie, or an expired or revoked session)."""
    token = session_token(request)
    user = users.resolve_token(session, token) if token else None
    request.state.user = user
    request.state.viewer = (
        Viewer(user.id, user.username, user.full_name, Role(user.role)) if user else None
    )
    return user


OptionalUser = Annotated[User | None, Depends(get_optional_user)]


def get_user(user: OptionalUser) -> User:
    """The signed-in user; pages answer a redirect to the sign-in page otherwise."""
    if user is None:
        raise Unauthorized("sign in first")
    return user


CurrentUser = Annotated[User, Depends(get_user)]


class PageRoles:
    """The dependency ``require_roles`` declares: admits only ``roles`` (a 403 page for any
    other signed-in role); ``roles`` stays readable from the route table."""

    def __init__(self, roles: frozenset[Role]) -> None:
        self.roles = roles

    async def __call__(self, user: CurrentUser) -> User:
        access.ensure_role(user, self.roles)
        return user


def require_roles(roles: frozenset[Role]) -> Any:
    """A dependency admitting only ``roles``: ``PageRouter.page`` and ``.action`` declare it once
    per page; page bodies never check a role."""
    return Depends(PageRoles(roles))


def csrf_for_session(token: str) -> str:
    key = get_settings().secret_key.encode()
    return hmac.new(key, b"csrf:" + token.encode(), hashlib.sha256).hexdigest()


def csrf_token(request: Request) -> str:
    """The token to put in this page's forms (signed in: bound to the session)."""
    token = session_token(request)
    if token and getattr(request.state, "user", None) is not None:
        return csrf_for_session(token)
    anonymous = getattr(request.state, "new_csrf_cookie", None) or request.cookies.get(CSRF_COOKIE)
    if not anonymous:
        anonymous = secrets.token_urlsafe(32)
        request.state.new_csrf_cookie = anonymous  # set on the response by the renderer
    return anonymous


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host", request.url.netloc)


async def _sent_token(request: Request) -> str | None:
    sent = request.headers.get(CSRF_HEADER)
    if sent:
        return sent
    form = await request.form()
    value = form.get(CSRF_FIELD)
    return value if isinstance(value, str) else None


def _matches(sent: str | None, expected: str | None) -> bool:
    if not sent or not expected:
        return False
    return hmac.compare_digest(sent.encode(), expected.encode())


async def verify_csrf(request: Request) -> None:
    """Refuse a signed-in form unless it carries this session's token (and came from here)."""
    if not _same_origin(request):
        raise CsrfError("the form was sent from another site")
    token = session_token(request)
    if not _matches(await _sent_token(request), csrf_for_session(token) if token else None):
        raise CsrfError("the form expired or did not come from this site; reload it and try again")


async def verify_anonymous_csrf(request: Request) -> None:
    """The sign-in form: the double-submit cookie and the form field must match."""
    if not _same_origin(request):
        raise CsrfError("the form was sent from another site")
    if not _matches(await _sent_token(request), request.cookies.get(CSRF_COOKIE)):
        raise CsrfError("the form expired or did not come from this site; reload it and try again")
