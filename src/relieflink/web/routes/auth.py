"""Sign-in, sign-out, the language switch and the landing page every signed-in role has."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from relieflink.errors import TooManyRequests
from relieflink.models import Role
from relieflink.users import service as users
from relieflink.web import i18n, nav
from relieflink.web.deps import (
    SESSION_COOKIE,
    OptionalUser,
    SessionDep,
    session_token,
    verify_anonymous_csrf,
    verify_csrf,
)
from relieflink.web.pages import N_, PageRouter, WebDep
from relieflink.web.rendering import render_page

router = PageRouter()
EVERYONE = frozenset(Role)
LANG_COOKIE_MAX_AGE = 365 * 24 * 3600


def safe_next(target: str | None, default: str = "/") -> str:
    """A local path to go to after a form (never another site: no scheme, host or ``//``)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return default
    if any(c in target for c in "\r\n\\"):
        return default
    return target


@router.get("/", response_class=HTMLResponse)
def root(user: OptionalUser) -> Response:
    """Signed in: the first page of the role's navigation; otherwise the sign-in page."""
    target = nav.home_for(Role(user.role)) if user else "/sign-in"
    return RedirectResponse(target, status_code=303)


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_form(request: Request, user: OptionalUser, next: str | None = None) -> Response:
    if user is not None:
        return RedirectResponse(safe_next(next, nav.home_for(Role(user.role))), status_code=303)
    return render_page(request, "auth/sign_in.html", {"next": safe_next(next, ""), "error": None})


@router.post("/sign-in", response_class=HTMLResponse, dependencies=[Depends(verify_anonymous_csrf)])
def sign_in(
    request: Request,
    session: SessionDep,
    username: Annotated[str, Form(max_length=80)],
    password: Annotated[str, Form(max_length=200)],
    next: Annotated[str, Form()] = "",
) -> Response:
    address = request.client.host if request.client else None
    try:
        signed = users.sign_in(session, username.strip(), password, address=address)
    except TooManyRequests:
        context = {
            "next": safe_next(next, ""),
            "error": N_("Too many failed sign-ins; wait a minute and try again."),
            "username": username,
        }
        return render_page(request, "auth/sign_in.html", context, status_code=429)
    if signed is None:  # a page answers: the failed attempt is kept (it counts towards the limit)
        context = {
            "next": safe_next(next, ""),
            "error": N_("Wrong username or password."),
            "username": username,
        }
        return render_page(request, "auth/sign_in.html", context, status_code=401)
    target = safe_next(next, nav.home_for(Role(signed.user.role)))
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        signed.token,
        expires=signed.expires_at,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/sign-out", response_class=HTMLResponse)
async def sign_out(request: Request, session: SessionDep, user: OptionalUser) -> Response:
    """Revoke the session (the form carries the CSRF token when the session is still valid)."""
    token = session_token(request)
    if user is not None and token:
        await verify_csrf(request)
        users.sign_out(session, token)
    response = RedirectResponse("/sign-in", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    return response


@router.get("/lang/{code}", response_class=HTMLResponse)
def switch_language(code: str, next: str | None = None) -> Response:
    """Remember the chosen language in a cookie and go back to the page."""
    response = RedirectResponse(safe_next(next), status_code=303)
    if code in i18n.LANGUAGES:
        response.set_cookie(
            i18n.LANG_COOKIE, code, max_age=LANG_COOKIE_MAX_AGE, samesite="lax", path="/"
        )
    return response


@router.page("/home", roles=EVERYONE)
def home(web: WebDep) -> HTMLResponse:
    """The landing page of a role with no pages of its own yet (and a way back for everyone)."""
    return web.render("home.html", {"entries": nav.for_role(Role(web.user.role))})
