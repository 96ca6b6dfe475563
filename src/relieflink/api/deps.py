"""Request dependencies: the database session, the signed-in user and role checks.

Each synchronous dependency costs a hop to the thread pool and back on every request, so only
the work that touches the database goes there: the session is opened on the event loop (opening
one does no I/O; SQLite's write lock is taken in the pool), role checks are plain coroutines,
and the user already resolved by the Idempotency-Key middleware is not read again.
"""

from __future__ import annotations

import email.message
import functools
from collections.abc import AsyncIterator, Iterable
from typing import Annotated, Any

import anyio
import anyio.to_thread
from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute, RouteContext
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection
from starlette.routing import BaseRoute

from relieflink.api.idempotency import CLAIM, Claim
from relieflink.api.problems import validation_errors
from relieflink.db import KeepAndRefuse, begin_write, get_sessionmaker
from relieflink.errors import Unauthorized
from relieflink.models import Role, User
from relieflink.users import access
from relieflink.users import service as users

_bearer = HTTPBearer(auto_error=False, description="a token from POST /api/v1/auth/sign-in")


def _commit_and_close(session: Session) -> None:
    try:
        session.commit()
    finally:
        session.close()


def _rollback_and_close(session: Session) -> None:
    try:
        session.rollback()
    finally:
        session.close()


async def request_session(request: Request) -> AsyncIterator[Session]:
    """The request's session (as ``relieflink.db.request_session``): committed when the route
    returns, rolled back on any error; on SQLite it holds the write lock from the start. A route
    that raises :class:`~relieflink.db.KeepAndRefuse` has its work committed, then its refusal
    answered.

    Under an Idempotency-Key claimed by the middleware, the open transaction is handed to it
    instead: it stores the answer in the same transaction and commits both before the response
    leaves. Ending a transaction runs in the thread pool, shielded from cancellation, so a client
    that goes away cannot leave a commit half done.
    """
    session = get_sessionmaker()()
    try:
        if session.get_bind().dialect.name == "sqlite":
            await anyio.to_thread.run_sync(begin_write, session)
        yield session
    except KeepAndRefuse as keep:
        await _keep(request, session)
        raise keep.error from None
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(_rollback_and_close, session)
        raise
    await _keep(request, session)


async def _keep(request: Request, session: Session) -> None:
    """Commit the route's work, or hand its transaction to the Idempotency-Key claim (which
    commits it with the stored answer, the refusal's too)."""
    claim: Claim | None = request.scope.get("state", {}).get(CLAIM)
    if claim is not None and claim.session is None:
        claim.session = session
        return
    with anyio.CancelScope(shield=True):
        await anyio.to_thread.run_sync(_commit_and_close, session)


# scope="function": commit before the response is sent, so a failed commit is never a 2xx.
SessionDep = Annotated[Session, Depends(request_session, scope="function")]


async def strict_json(request: HTTPConnection) -> None:
    """A JSON body holds the JSON types its schema names: ``0`` is no boolean, ``false`` no
    number, ``"5"`` no integer (what a client meant by them is a guess).

    FastAPI validates the decoded body in pydantic's lax Python mode, which the same schemas
    need for web forms and imports (text, where "5" is 5). So the API's JSON is first validated
    in pydantic's strict JSON mode, where dates and enum values are still read from strings, as
    JSON writes them. Runs before the route's other dependencies, so only a body that the lax
    reading would take is refused here (a body invalid either way is answered after sign-in)."""
    route = request.scope.get("route")
    if not isinstance(request, Request) or not isinstance(route, APIRoute):
        return  # a WebSocket's messages are checked by the route
    if not _is_json(request.headers.get("content-type")):
        return
    body_type: Any = route.body_field.field_info.annotation if route.body_field else None
    adapter = _strict_body(body_type)
    body = await request.body()
    if adapter is None or not body:
        return
    try:
        adapter.validate_json(body, strict=True)
    except ValidationError as exc:
        try:
            adapter.validate_json(body)
        except ValidationError:
            return  # invalid anyway: FastAPI answers it, after the sign-in check as before
        errors = validation_errors(exc.errors(include_url=False), ["body"])
        raise RequestValidationError(errors) from None


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


@functools.cache
def _strict_body(annotation: Any) -> TypeAdapter[Any] | None:
    return TypeAdapter(annotation) if annotation is not None else None


def request_token(request: Request, credentials: HTTPAuthorizationCredentials | None) -> str | None:
    """The bearer token. The API never authenticates by cookie: a cookie would be sent by the
    browser on a cross-site request, so only the web pages (with their CSRF checks) use one."""
    if credentials is not None and credentials.scheme.lower() == "bearer":
        return credentials.credentials
    return None


async def get_current_user(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    token = request_token(request, credentials)
    user: User | None = None
    if token:
        claim: Claim | None = request.scope.get("state", {}).get(CLAIM)
        if claim is not None and claim.token == token:
            # Read moments ago in this request (the Idempotency-Key claim): attach, no SQL.
            user = session.merge(claim.user, load=False)
        else:
            user = await anyio.to_thread.run_sync(users.resolve_token, session, token)
    if user is None:
        raise Unauthorized("sign in first: the token is missing, expired or revoked")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


class RoleCheck:
    """The dependency ``require_role`` declares: admits only ``roles`` (403 for any other
    signed-in role). ``roles`` is what :func:`route_roles` reads from the route table."""

    def __init__(self, roles: frozenset[Role]) -> None:
        self.roles = roles

    async def __call__(self, user: CurrentUser) -> User:
        access.ensure_role(user, self.roles)
        return user


def require_role(*roles: Role | Iterable[Role]) -> Any:
    """A dependency admitting only ``roles`` (403 for any other signed-in role), for route
    signatures: ``user: Annotated[User, require_role(access.STAFF)]``. A route declares its roles
    once, here; its body never checks a role."""
    allowed = frozenset(
        r for group in roles for r in ([group] if isinstance(group, Role) else group)
    )
    return Depends(RoleCheck(allowed))


def route_roles(route: BaseRoute | RouteContext) -> frozenset[Role] | None:
    """The roles ``route`` admits, read from its ``require_role`` dependency (in its signature
    or on its router); None when it declares none (open, or for any signed-in user). Walk an
    application's table with ``fastapi.routing.iter_route_contexts(app.routes)``."""
    checks: list[RoleCheck] = []

    def walk(dependant: Dependant) -> None:
        for sub in dependant.dependencies:
            if isinstance(sub.call, RoleCheck):
                checks.append(sub.call)
            walk(sub)

    dependant = getattr(route, "dependant", None)
    if dependant is not None:
        walk(dependant)
    if not checks:
        return None
    return frozenset.intersection(*(c.roles for c in checks))


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None
