"""Courier pages: my routes today, and one route's stops in order with a map and the buttons
that record tracking events (loaded, departed, arrived, handed off, delivered with the
resident's pickup code, failed with a reason).

Every form carries a client event id made when the page was rendered: a double submit (a
double tap, a retry on a poor connection) reaches ``flows.delivery.record_event`` with the same
id and is answered from the first event, so nothing moves twice. A courier sees only its own routes
(``tracking.require_route``: another courier's route is "not found"). A wrong pickup code
moves nothing; the failed attempt itself is kept (it counts towards the parcel's lock).
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

from fastapi import Form
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from relieflink import clock
from relieflink.common.schemas import validate_as
from relieflink.dispatch.schemas import EventIn
from relieflink.dispatch.tracking_rules import CodeRefused
from relieflink.errors import FieldError, Invalid, RelieflinkError
from relieflink.flows import delivery
from relieflink.models import EventKind, FailureReason, Role
from relieflink.reports import service as reports
from relieflink.reports.schemas import RouteSheet
from relieflink.users import access
from relieflink.web.operations import EVENT_DONE, TEMPLATE_GLOBALS, map_labels, route_geometry
from relieflink.web.pages import N_, PageRouter, Web, WebDep

router = PageRouter()
COURIERS = frozenset({Role.courier})
OptionalForm = Annotated[str | None, Form()]


def new_event_id() -> str:
    """A client event id for one rendered form (see the module docstring)."""
    return f"web-{uuid.uuid4().hex}"


@router.page("/courier", roles=COURIERS, nav=N_("My route today"), order=15)
def my_routes(web: WebDep, day: date | None = None) -> HTMLResponse:
    """The courier's routes of the day (its own, or its carrier's not given to anyone)."""
    the_day = day or clock.today()
    routes = reports.day_routes(web.session, day=the_day, actor=web.user)
    return web.render(
        "courier/routes.html",
        {**TEMPLATE_GLOBALS, "day": the_day, "routes": routes},
    )


def _route_page(
    web: Web,
    sheet: RouteSheet,
    *,
    status_code: int = 200,
    error: str | None = None,
    error_detail: str | None = None,
    error_target: str | None = None,
) -> HTMLResponse:
    query = web.request.query_params
    done = query.get("done") or ""
    notice = EVENT_DONE.get(EventKind(done)) if done in EventKind.__members__ else None
    return web.render(
        "courier/route.html",
        {
            **TEMPLATE_GLOBALS,
            "sheet": sheet,
            "route": sheet.route,
            "geometry": route_geometry(sheet.route),
            "map_labels": map_labels(web.gettext),
            "new_event_id": new_event_id,
            "reasons": list(FailureReason),
            "notice": notice,
            "again": query.get("again") == "1",
            "error": error,
            "error_detail": error_detail,
            "error_target": error_target,
        },
        status_code=status_code,
    )


@router.page("/courier/routes/{route_id}", roles=access.ROUTE_READERS)
def route_page(route_id: int, web: WebDep) -> HTMLResponse:
    """One route: stops in order, a map, and the event buttons that apply now."""
    return _route_page(web, reports.route_sheet(web.session, route_id, actor=web.user))


def _int(value: str | None, field: str) -> int | None:
    if value is None or value.strip() == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise Invalid(
            f"{field} must be a whole number", [FieldError((field,), "not a number")]
        ) from None


def _event(route_id: int, sheet: RouteSheet, form: dict[str, str | None]) -> EventIn:
    """The event a form describes, after checking that its stop or parcel is on this route."""
    stop_id = _int(form["stop_id"], "stop_id")
    parcel_id = _int(form["parcel_id"], "parcel_id")
    if stop_id is not None and stop_id not in {s.stop.id for s in sheet.stops}:
        raise Invalid(f"stop {stop_id} is not on route {route_id}")
    if parcel_id is not None and parcel_id not in {p.id for s in sheet.stops for p in s.parcels}:
        raise Invalid(f"parcel {parcel_id} is not on route {route_id}")
    data: dict[str, Any] = {
        "client_event_id": form["client_event_id"] or "",
        "kind": form["kind"] or "",
        "route_id": route_id if stop_id is None and parcel_id is None else None,
        "stop_id": stop_id,
        "parcel_id": parcel_id,
        "code": (form["code"] or "").strip() or None,
        "reason": form["reason"] or None,
        "counted": _int(form["counted"], "counted"),
    }
    return validate_as(EventIn, data)


def _wrong_code_message(web: Web, sheet: RouteSheet, parcel_id: int | None) -> str:
    left = next((p.attempts_left for s in sheet.stops for p in s.parcels if p.id == parcel_id), 0)
    if left <= 0:
        return web.gettext(
            "Wrong pickup code: nothing was delivered. The parcel is now locked; ask a "
            "coordinator to confirm the delivery."
        )
    return web.gettext(
        "Wrong pickup code: nothing was delivered. %(left)s attempts left for this parcel."
    ) % {"left": left}


@router.action("/courier/routes/{route_id}/events", roles=access.ROUTE_READERS)
def record_event(
    route_id: int,
    web: WebDep,
    client_event_id: Annotated[str, Form()],
    kind: Annotated[str, Form()],
    stop_id: OptionalForm = None,
    parcel_id: OptionalForm = None,
    code: OptionalForm = None,
    reason: OptionalForm = None,
    counted: OptionalForm = None,
) -> Response:
    """Record one tracking event from the route page, then show the route again."""
    session = web.session
    sheet = reports.route_sheet(session, route_id, actor=web.user)  # NotFound if not theirs
    form = {
        "client_event_id": client_event_id,
        "kind": kind,
        "stop_id": stop_id,
        "parcel_id": parcel_id,
        "code": code,
        "reason": reason,
        "counted": counted,
    }
    target = f"parcel-{parcel_id}" if parcel_id else f"stop-{stop_id}" if stop_id else None
    try:
        data = _event(route_id, sheet, form)
        outcome = delivery.record_event(session, data, actor=web.user)
    except CodeRefused as exc:
        # A page answers: the failed attempt is kept (it counts towards the lock); nothing moved.
        sheet = reports.route_sheet(session, route_id, actor=web.user)
        message = _wrong_code_message(web, sheet, _int(parcel_id, "parcel_id"))
        return _route_page(
            web, sheet, status_code=exc.status_code, error=message, error_target=target
        )
    except RelieflinkError as exc:
        session.rollback()  # nothing of a refused event is kept
        sheet = reports.route_sheet(session, route_id, actor=web.user)
        detail = "; ".join(
            [exc.message, *(f"{'.'.join(map(str, e.loc))}: {e.msg}" for e in exc.errors)]
        )
        return _route_page(
            web,
            sheet,
            status_code=exc.status_code,
            error=web.gettext("Nothing was recorded."),
            error_detail=detail,
            error_target=target,
        )
    again = "&again=1" if outcome.replayed else ""
    anchor = f"#{target}" if target else ""
    return RedirectResponse(
        f"/courier/routes/{route_id}?done={outcome.kind}{again}{anchor}", status_code=303
    )
