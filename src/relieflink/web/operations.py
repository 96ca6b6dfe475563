"""Names shown for the operation's states (message ids, translated in the templates) and small
formatters, shared by the dashboard and the courier pages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from relieflink.models import (
    EventKind,
    FailureReason,
    FleetKind,
    InnerMode,
    ParcelStatus,
    PlanStatus,
    PriorityClass,
    RequestStatus,
    RouteStatus,
)
from relieflink.reports.schemas import Place, RouteView
from relieflink.web.i18n import N_

PRIORITY_LABELS = {
    PriorityClass.medical: N_("Medical"),
    PriorityClass.infant_maternity: N_("Infants and mothers"),
    PriorityClass.vulnerable: N_("Other vulnerable people"),
    PriorityClass.everyone: N_("Everyone"),
}
REQUEST_LABELS = {
    RequestStatus.open: N_("Waiting for stock"),
    RequestStatus.allocated: N_("Stock reserved"),
    RequestStatus.dispatched: N_("On a route"),
    RequestStatus.delivered: N_("Delivered"),
    RequestStatus.failed: N_("Failed"),
    RequestStatus.cancelled: N_("Cancelled"),
}
PLAN_LABELS = {
    PlanStatus.queued: N_("Queued"),
    PlanStatus.running: N_("Running"),
    PlanStatus.done: N_("Done"),
    PlanStatus.failed: N_("Failed"),
}
GROUP_LABELS = {
    "delivered": N_("Delivered"),
    "failed": N_("Failed"),
    "on_board": N_("On board"),
    "waiting": N_("Waiting to be loaded"),
    "unrouted": N_("Without a route"),
}
PARCEL_LABELS = {
    ParcelStatus.pending: N_("Without a route"),
    ParcelStatus.planned: N_("Planned"),
    ParcelStatus.loaded: N_("Loaded"),
    ParcelStatus.departed: N_("On the way"),
    ParcelStatus.at_gate: N_("At the gate"),
    ParcelStatus.handed_off: N_("Handed off"),
    ParcelStatus.delivered: N_("Delivered"),
    ParcelStatus.failed: N_("Failed"),
}
ROUTE_LABELS = {
    RouteStatus.planned: N_("Planned"),
    RouteStatus.loaded: N_("Loaded"),
    RouteStatus.departed: N_("On the way"),
    RouteStatus.completed: N_("Completed"),
    RouteStatus.cancelled: N_("Replaced by a re-plan"),
}
REASON_LABELS = {
    FailureReason.not_home: N_("Nobody at home"),
    FailureReason.refused: N_("Refused"),
    FailureReason.damaged: N_("Damaged"),
    FailureReason.access_denied: N_("No access"),
}
MODE_LABELS = {
    InnerMode.courier: N_("Courier to the door"),
    InnerMode.volunteer: N_("Volunteers from the gate"),
    InnerMode.robot: N_("Robot from the gate"),
}
KIND_LABELS = {
    FleetKind.truck: N_("Truck"),
    FleetKind.van: N_("Van"),
    FleetKind.ebike: N_("E-bike"),
    FleetKind.robot: N_("Robot"),
    FleetKind.foot: N_("On foot"),
}
EVENT_DONE = {
    EventKind.loaded: N_("Loaded: the parcels are on board and their stock left the warehouse."),
    EventKind.departed: N_("Departed: the route is on the way."),
    EventKind.arrived: N_("Arrival at the gate recorded."),
    EventKind.handed_off: N_("Hand-off at the gate recorded."),
    EventKind.delivered: N_("Delivered: the code matched and the parcel is closed."),
    EventKind.failed: N_("Failed delivery recorded: the stock goes back, the request waits again."),
}
# Progress steps of the jobs (the services report them in English).
STEP_LABELS = {
    "starting": N_("Starting"),
    "reading open requests": N_("Reading open requests"),
    "reading available stock": N_("Reading available stock"),
    "allocating": N_("Allocating"),
    "reserving stock": N_("Reserving stock"),
    "done": N_("Done"),
    "reading allocations and fleet": N_("Reading allocations and the fleet"),
    "routing from warehouse": N_("Routing from a warehouse"),
    "writing routes": N_("Writing the routes"),
}


MAP_LABELS = {
    "open": N_("Open"),
    "controlled": N_("Controlled"),
    "sealed": N_("Sealed"),
    "warehouse": N_("Warehouse"),
    "households": N_("Households"),
    "waiting": N_("Households waiting"),
    "units": N_("Units still to allocate"),
    "route": N_("Route"),
    "stop": N_("Stop"),
    "stops": N_("Stops"),
    "delivered": N_("Delivered"),
    "empty": N_("Nothing to show on the map yet."),
}
NEED_LABELS = (
    N_("No one waiting"),
    N_("Under a quarter waiting"),
    N_("Under half waiting"),
    N_("Half or more waiting"),
)


def map_labels(gettext: Callable[[str], str]) -> dict[str, Any]:
    """The words ``static/map.js`` shows (tooltips, popups), in the page's language."""
    return {
        **{key: gettext(label) for key, label in MAP_LABELS.items()},
        "need": [gettext(label) for label in NEED_LABELS],
        "kinds": {str(k): gettext(label) for k, label in KIND_LABELS.items()},
        "statuses": {str(k): gettext(label) for k, label in ROUTE_LABELS.items()},
    }


def step_label(message: str) -> str | None:
    """The message id of a job's progress message (by prefix: some name a warehouse)."""
    for prefix, label in STEP_LABELS.items():
        if message.startswith(prefix):
            return label
    return None


def clock(seconds: int | None) -> str:
    """Seconds after midnight → ``HH:MM``."""
    if seconds is None:
        return ""
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"


def place_point(p: Place) -> dict[str, Any]:
    return {"code": p.code, "name": p.name, "name_zh": p.name_zh, "lat": p.lat, "lon": p.lon}


def route_geometry(r: RouteView) -> dict[str, Any]:
    """A route for ``static/map.js``: depot, stops in order, and its parcels' progress."""
    return {
        "id": r.id,
        "kind": r.kind,
        "status": r.status,
        "depot": place_point(r.depot),
        "stops": [{"seq": s.seq, "id": s.id, **place_point(s.community)} for s in r.stops],
        "parcels": r.parcels,
        "total": r.total,
    }


TEMPLATE_GLOBALS = {
    "priority_labels": PRIORITY_LABELS,
    "request_labels": REQUEST_LABELS,
    "plan_labels": PLAN_LABELS,
    "group_labels": GROUP_LABELS,
    "parcel_labels": PARCEL_LABELS,
    "route_labels": ROUTE_LABELS,
    "reason_labels": REASON_LABELS,
    "mode_labels": MODE_LABELS,
    "kind_labels": KIND_LABELS,
    "clock": clock,
    "need_labels": NEED_LABELS,
}
