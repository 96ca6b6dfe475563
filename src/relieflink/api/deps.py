"""Request dependencies: the database session, the signed-in user and role checks."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from relieflink.db import request_session
from relieflink.errors import Unauthorized
from relieflink.models import Role, User
from relieflink.users import access
from relieflink.users import service as users

_bearer = HTTPBearer(auto_error=False, description="a token from POST /api/v1/auth/sign-in")


# scope="function": commit before the response is sent, so a failed commit is never a 2xx.
SessionDep = Annotated[Session, Depends(request_session, scope="function")]


def request_token(request: Request, credentials: HTTPAuthorizationCredentials | None) -> str | None:
    """The bearer token. The API never authenticates by cookie: a cookie would be sent by the
    browser on a cross-site request, so only the web pages (with their CSRF checks) use one."""
    if credentials is not None and credentials.scheme.lower() == "bearer":
        return credentials.credentials
    return None


def get_current_user(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    token = request_token(request, credentials)
    user = users.resolve_token(session, token) if token else None
    if user is None:
        raise Unauthorized("sign in first: the token is missing, expired or revoked")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


def require_role(*roles: Role | Iterable[Role]) -> Any:
    """A dependency admitting only ``roles`` (403 for any other signed-in role), for route
    signatures: ``user: Annotated[User, require_role(access.STAFF)]``."""
    allowed = frozenset(
        r for group in roles for r in ([group] if isinstance(group, Role) else group)
    )

    def check(user: CurrentUser) -> User:
        access.ensure_role(user, allowed)
        return user

    return Depends(check)


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None
