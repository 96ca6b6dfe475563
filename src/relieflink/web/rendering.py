"""Jinja2 rendering: one environment per language, each with its Babel catalog installed."""

from __future__ import annotations

from functools import cache, partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from relieflink.models import LockdownStatus, Role
from relieflink.web import formats, i18n, nav
from relieflink.web.deps import CSRF_COOKIE, CSRF_FIELD, CSRF_HEADER, Viewer, csrf_token

WEB_DIR = Path(__file__).resolve().parent
TEMPLATE_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"

# Role and status names shown to people (message ids; translated in the templates).
ROLE_LABELS = {
    Role.admin: i18n.N_("Administrator"),
    Role.coordinator: i18n.N_("Coordinator"),
    Role.warehouse: i18n.N_("Warehouse staff"),
    Role.courier: i18n.N_("Courier"),
    Role.doctor: i18n.N_("Doctor"),
    Role.donor: i18n.N_("Donor"),
    Role.committee: i18n.N_("Community committee"),
    Role.resident: i18n.N_("Resident"),
    Role.volunteer: i18n.N_("Volunteer team leader"),
}
LOCKDOWN_LABELS = {
    LockdownStatus.open: i18n.N_("Open"),
    LockdownStatus.controlled: i18n.N_("Controlled"),
    LockdownStatus.sealed: i18n.N_("Sealed"),
}


def request_lang(request: Request) -> str:
    return i18n.choose(
        request.cookies.get(i18n.LANG_COOKIE), request.headers.get("accept-language")
    )


@cache
def environment(lang: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(i18n.translations(lang), newstyle=True)  # type: ignore[attr-defined]
    env.globals.update(
        languages=i18n.LANGUAGES,
        role_labels=ROLE_LABELS,
        lockdown_labels=LOCKDOWN_LABELS,
        csrf_field=CSRF_FIELD,
        csrf_header=CSRF_HEADER,
    )
    env.filters.update({name: partial(f, lang=lang) for name, f in formats.FILTERS.items()})
    env.filters["urlquote"] = lambda value: quote(str(value), safe="")
    return env


SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: https://tile.openstreetmap.org; connect-src 'self'; "
        "frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "Vary": "Cookie, Accept-Language",
}


def page_context(request: Request) -> dict[str, Any]:
    lang = request_lang(request)
    viewer: Viewer | None = getattr(request.state, "viewer", None)
    here = request.url.path
    return {
        "request": request,
        "lang": lang,
        "html_lang": i18n.LANGUAGES[lang][1],
        "viewer": viewer,
        "nav": nav.for_role(viewer.role) if viewer else [],
        "here": here,
        "here_full": here + (f"?{request.url.query}" if request.url.query else ""),
        "csrf_token": csrf_token(request),
        "is_htmx": request.headers.get("HX-Request") == "true",
    }


def render_page(
    request: Request, template: str, context: dict[str, Any], *, status_code: int = 200
) -> HTMLResponse:
    """Render ``template`` in the request's language, with the common page context."""
    ctx = page_context(request)
    env = environment(ctx["lang"])
    html = env.get_template(template).render({**ctx, **context})
    headers = {**SECURITY_HEADERS, "Content-Language": ctx["html_lang"]}
    response = HTMLResponse(html, status_code=status_code, headers=headers)
    new_csrf = getattr(request.state, "new_csrf_cookie", None)
    if new_csrf:
        response.set_cookie(
            CSRF_COOKIE,
            new_csrf,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
    return response
