"""The page framework: ``PageRouter`` (routes + navigation), ``Web`` (what a page renders with).

A domain adds its pages with one module under ``web/routes/`` (listed in ``routes/__init__.py``)
and its templates under ``web/templates/<domain>/``::

    router = PageRouter()

    @router.page("/donations", roles=access.DONATION_READERS, nav=N_("Donations"), order=30)
    def donations(web: WebDep) -> HTMLResponse:
        return web.render("donations/list.html", {"rows": ...})

    @router.action("/donations/{pledge_id}/confirm", roles=access.STAFF)
    def confirm(pledge_id: int, web: WebDep) -> Response: ...

``page`` is a GET that only ``roles`` may open (any other role gets the 403 page) and, with
``nav``, a link in the header for those roles; ``action`` is a POST with the same role check plus
the CSRF check. Domain errors raised anywhere in a page become HTML pages (``WebRoute``): not
signed in → the sign-in page, ``Forbidden`` → 403, ``NotFound`` → 404, ``Invalid`` → 422 with the
field list; never a JSON problem document.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session

from relieflink.errors import RelieflinkError, TooManyRequests, Unauthorized
from relieflink.models import Role, User
from relieflink.web import i18n
from relieflink.web.deps import (
    OptionalUser,
    SessionDep,
    Viewer,
    require_roles,
    verify_csrf,
)
from relieflink.web.nav import PageSpec
from relieflink.web.rendering import render_page, request_lang

N_ = i18n.N_


_ERROR_TITLES = {
    403: N_("You may not open this page"),
    404: N_("Not found"),
    409: N_("Conflict"),
    422: N_("Please check what you entered"),
    429: N_("Too many attempts"),
}


def _is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def sign_in_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    location = f"/sign-in?next={quote(target, safe='/')}"
    if _is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": location})
    return RedirectResponse(location, status_code=303)


def error_page(request: Request, status: int, detail: str, errors: Sequence[Any] = ()) -> Response:
    title = _ERROR_TITLES.get(status, N_("Something went wrong"))
    return render_page(
        request,
        "error.html",
        {"status": status, "title": title, "detail": detail, "errors": errors},
        status_code=status,
    )


class WebRoute(APIRoute):
    """A route whose domain and validation errors become HTML pages."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except Unauthorized:
                return sign_in_redirect(request)
            except TooManyRequests as exc:
                return error_page(request, 429, exc.message)
            except RelieflinkError as exc:
                errors = [(".".join(str(p) for p in e.loc), e.msg) for e in exc.errors]
                return error_page(request, exc.status_code, exc.message, errors)
            except RequestValidationError as exc:
                errors = [(".".join(str(p) for p in e["loc"]), e["msg"]) for e in exc.errors()]
                return error_page(request, 422, "the address or form is not valid", errors)

        return route


class PageRouter(APIRouter):
    """An ``APIRouter`` of HTML pages that remembers each page's roles and navigation label."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(route_class=WebRoute, include_in_schema=False, **kwargs)
        self.specs: list[PageSpec] = []

    def page(
        self, path: str, *, roles: frozenset[Role], nav: str | None = None, order: int = 100
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """A GET page for ``roles``; ``nav`` (a message id, marked with ``N_``) adds a link."""
        self.specs.append(PageSpec(self.prefix + path, roles, nav, order))
        return self.get(path, response_class=HTMLResponse, dependencies=[require_roles(roles)])

    def action(
        self, path: str, *, roles: frozenset[Role]
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """A POST for ``roles`` that must carry the session's CSRF token."""
        self.specs.append(PageSpec(self.prefix + path, roles, method="POST"))
        return self.post(
            path,
            response_class=HTMLResponse,
            dependencies=[Depends(verify_csrf), require_roles(roles)],
        )


@dataclass
class Web:
    """What a page works with: the request, the transaction, the user, the language."""

    request: Request
    session: Session
    user: User

    @property
    def lang(self) -> str:
        return request_lang(self.request)

    def gettext(self, message: str) -> str:
        return i18n.translations(self.lang).gettext(message)

    @property
    def viewer(self) -> Viewer:
        viewer: Viewer = self.request.state.viewer
        return viewer

    def render(
        self, template: str, context: dict[str, Any] | None = None, status_code: int = 200
    ) -> HTMLResponse:
        return render_page(self.request, template, context or {}, status_code=status_code)

    def is_htmx(self) -> bool:
        return _is_htmx(self.request)


def get_web(request: Request, session: SessionDep, user: OptionalUser) -> Web:
    if user is None:
        raise Unauthorized("sign in first")
    return Web(request=request, session=session, user=user)


WebDep = Annotated[Web, Depends(get_web)]
