"""A volunteer team leader's phone page: the day's parcels at the gate of the team's compound,
handed out to residents with their pickup code, or a failure reported with its reason.

Events go through the same flow as the courier's (``flows.delivery.record_event``), with a
client event id made when the page was rendered, so a double tap moves nothing twice. Who may
post what is decided by the tracking rules: a leader acts only on parcels whose stop is the
team's own compound; any other parcel answers 403 and nothing moves.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Form
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from relieflink import clock
from relieflink.common.schemas import validate_as
from relieflink.dispatch.schemas import EventIn
from relieflink.dispatch.tracking_rules import CodeRefused
from relieflink.errors import RelieflinkError
from relieflink.flows import delivery
from relieflink.models import EventKind, FailureReason, Role
from relieflink.reports import service as reports
from relieflink.web.operations import EVENT_DONE, TEMPLATE_GLOBALS
from relieflink.web.pages import N_, PageRouter, Web, WebDep
from relieflink.web.routes.courier import OptionalForm, new_event_id

router = PageRouter()
LEADERS = frozenset({Role.volunteer})


def _gate_page(
    web: Web,
    *,
    status_code: int = 200,
    error: str | None = None,
    error_detail: str | None = None,
    error_target: str | None = None,
) -> HTMLResponse:
    day = clock.today()
    query = web.request.query_params
    done = query.get("done") or ""
    return web.render(
        "gate/gate.html",
        {
            **TEMPLATE_GLOBALS,
            "day": day,
            "gates": reports.gate_sheet(web.session, day=day, actor=web.user),
            "new_event_id": new_event_id,
            "reasons": list(FailureReason),
            "notice": EVENT_DONE.get(EventKind(done)) if done in EventKind.__members__ else None,
            "again": query.get("again") == "1",
            "error": error,
            "error_detail": error_detail,
            "error_target": error_target,
        },
        status_code=status_code,
    )


@router.page("/gate", roles=LEADERS, nav=N_("My gate today"), order=16)
def my_gate(web: WebDep) -> HTMLResponse:
    """Today's parcels at the gate of the compound whose volunteer team the user leads."""
    return _gate_page(web)


@router.action("/gate/events", roles=LEADERS)
def record_gate_event(
    web: WebDep,
    client_event_id: Annotated[str, Form()],
    kind: Annotated[str, Form()],
    parcel_id: Annotated[int, Form()],
    code: OptionalForm = None,
    reason: OptionalForm = None,
) -> Response:
    """Hand a parcel out with the resident's code, or report that it failed; then the page."""
    session = web.session
    target = f"parcel-{parcel_id}"
    try:
        data = validate_as(
            EventIn,
            {
                "client_event_id": client_event_id,
                "kind": kind,
                "parcel_id": parcel_id,
                "code": (code or "").strip() or None,
                "reason": reason or None,
            },
        )
        outcome = delivery.record_event(session, data, actor=web.user)
    except CodeRefused as exc:
        # The failed attempt is kept (it counts towards the parcel's lock); nothing moved.
        return _gate_page(
            web,
            status_code=exc.status_code,
            error=web.gettext("Wrong pickup code: nothing was handed out."),
            error_detail=exc.message,
            error_target=target,
        )
    except RelieflinkError as exc:
        session.rollback()  # nothing of a refused event is kept
        detail = "; ".join(
            [exc.message, *(f"{'.'.join(map(str, e.loc))}: {e.msg}" for e in exc.errors)]
        )
        return _gate_page(
            web,
            status_code=exc.status_code,
            error=web.gettext("Nothing was recorded."),
            error_detail=detail,
            error_target=target,
        )
    again = "&again=1" if outcome.replayed else ""
    return RedirectResponse(f"/gate?done={outcome.kind}{again}#{target}", status_code=303)
