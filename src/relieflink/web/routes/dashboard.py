"""The coordinator's dashboard: today at a glance, the day's map, and the allocation and dispatch
jobs run from buttons with their progress polled (htmx).

Panels: requests by status and the need still waiting by priority class, stock days left of
each ration pack, the day's dispatch plans with where their parcels are, failed deliveries with
reasons, the consultation queue, and the day's routes. The map (``/dashboard/map.json``, drawn
by ``static/map.js``) colours communities by unmet need and lockdown status and draws the
warehouses and the day's routes. When a job finishes, its progress fragment fires
``relieflink-refresh`` and the panels and the map reload.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import BackgroundTasks, Form
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from relieflink import clock
from relieflink.catalog import service as catalog
from relieflink.catalog.schemas import ItemFilters, KitFilters
from relieflink.config import get_settings
from relieflink.dispatch import waves
from relieflink.errors import RelieflinkError
from relieflink.households import service as households
from relieflink.households.schemas import HouseholdFilters
from relieflink.jobs import runner
from relieflink.jobs import service as jobs_service
from relieflink.jobs.allocation import start_allocation_job
from relieflink.jobs.dispatch import start_plan_job
from relieflink.models import JobStatus, LockdownStatus, PriorityClass
from relieflink.needs.allocation import cap_line, latest_group_report
from relieflink.places import service as places
from relieflink.places.schemas import CommunityFilters, NameFilters
from relieflink.reports import service as reports
from relieflink.reports.schemas import CommunityNeed, PlanProgress
from relieflink.users import access
from relieflink.web.operations import (
    TEMPLATE_GLOBALS,
    map_labels,
    place_point,
    route_geometry,
    step_label,
)
from relieflink.web.pages import N_, PageRouter, Web, WebDep
from relieflink.web.rendering import SECURITY_HEADERS

router = PageRouter()
REFRESH = "relieflink-refresh"  # the event that reloads the panels and the map
DayQuery = date | None
DayForm = Annotated[date, Form()]


def _day(day: date | None) -> date:
    return day or clock.today()


def _registry(web: Web) -> dict[str, Any]:
    session = web.session
    lockdown = {
        status: places.list_communities(session, CommunityFilters(lockdown_status=status), limit=0)[
            1
        ]
        for status in LockdownStatus
    }
    household_total = households.count_households(session, HouseholdFilters(), actor=web.user)
    vulnerable = households.count_households(
        session, HouseholdFilters(vulnerable=True), actor=web.user
    )
    return {
        "lockdown": lockdown,
        "households": {"total": household_total, "vulnerable": vulnerable},
        "counts": {
            "communities": sum(lockdown.values()),
            "warehouses": places.list_warehouses(session, NameFilters(), limit=0)[1],
            "items": catalog.list_items(session, ItemFilters(), limit=0)[1],
            "kits": catalog.list_kits(session, KitFilters(), limit=0)[1],
        },
    }


def _panels(web: Web, day: date) -> dict[str, Any]:
    group_run, group_report = latest_group_report(web.session, actor=web.user)
    return {
        **TEMPLATE_GLOBALS,
        "group_run": group_run,
        "group_report": group_report,
        "day": day,
        "glance": reports.glance(web.session, day=day, actor=web.user),
        "routes": reports.day_routes(web.session, day=day, actor=web.user),
    }


@router.page("/dashboard", roles=access.STAFF, nav=N_("Dashboard"), order=10)
def dashboard(
    web: WebDep, day: DayQuery = None, allocation: int | None = None, plan: int | None = None
) -> HTMLResponse:
    """The day at a glance; ``allocation``/``plan`` show a job's progress (after a POST
    without JavaScript, or a reload)."""
    the_day = _day(day)
    jobs = []
    if allocation is not None:
        jobs.append(_allocation_job(web, allocation))
    if plan is not None:
        jobs.append(_plan_job(web, plan))
    context = {**_registry(web), **_panels(web, the_day), "jobs": jobs, "waves": _waves(the_day)}
    return web.render("dashboard.html", context | {"map_labels": map_labels(web.gettext)})


def _waves(day: date) -> dict[str, Any]:
    """The dispatch waves (RELIEFLINK_DISPATCH_WAVES) and, for today, the next one to come."""
    hours = get_settings().dispatch_waves
    now = clock.local(clock.now())
    today = day == now.date()
    coming = waves.next_wave(now)
    return {
        "hours": [f"{h:02d}:00" for h in hours],
        "today": today,
        "next": f"{coming:%H:%M}" if today and coming.date() == now.date() else None,
    }


@router.page("/dashboard/panels", roles=access.STAFF)
def panels(web: WebDep, day: DayQuery = None) -> HTMLResponse:
    """The panels alone (reloaded when a job finishes)."""
    return web.render("dashboard/_panels.html", _panels(web, _day(day)))


# --- the map ----------------------------------------------------------------------------------


def _community_point(c: CommunityNeed) -> dict[str, Any]:
    return {
        "code": c.code,
        "name": c.name,
        "name_zh": c.name_zh,
        "lat": c.lat,
        "lon": c.lon,
        "status": c.lockdown,
        "households": c.households,
        "waiting": c.waiting_households,
        "units": c.waiting_units,
        "need": c.level,
    }


@router.page("/dashboard/map.json", roles=access.STAFF)
def map_data(web: WebDep, day: DayQuery = None) -> JSONResponse:
    """The map's data: communities (lockdown status, unmet need), warehouses, the day's routes,
    and the districts outlined around their communities (drawn when no tiles load)."""
    data = reports.day_map(web.session, day=_day(day), actor=web.user)
    return JSONResponse(
        {
            "day": data.day.isoformat(),
            "communities": [_community_point(c) for c in data.communities],
            "warehouses": [place_point(w) for w in data.warehouses],
            "routes": [route_geometry(r) for r in data.routes],
            "districts": [
                place_point(d) | {"outline": [list(p) for p in d.outline]} for d in data.districts
            ],
        },
        headers={"Cache-Control": "no-store"},
    )


# --- jobs: allocation and dispatch ------------------------------------------------------------


# The job's status in the words of the progress fragment (shared with dispatch plans).
_JOB_STATUS = {
    JobStatus.queued: "queued",
    JobStatus.running: "running",
    JobStatus.succeeded: "done",
    JobStatus.failed: "failed",
    JobStatus.cancelled: "failed",
}


def _allocation_job(web: Web, job_id: int) -> dict[str, Any]:
    job = jobs_service.require_job(web.session, job_id, actor=web.user)
    status = _JOB_STATUS[job.status]
    step = job.message if status in ("queued", "running") else ""
    percent = job.progress_done * 100 // job.progress_total if job.progress_total else 0
    return {
        "kind": "allocation",
        "id": job.id,
        "day": date.fromisoformat(job.payload["day"]),
        "status": status,
        "progress": percent,
        "step": step_label(step),
        "detail": step,
        "message": job.error,
        "finished": status in ("done", "failed"),
        "poll": f"/dashboard/jobs?allocation={job.id}",
        "result": {
            "run_id": job.result.get("run_id"),
            "lines": job.result.get("lines", 0),
            "units_requested": job.result.get("units_requested", 0),
            "units_allocated": job.result.get("units_allocated", 0),
            # Coverage per class in class order; None (shown "—") for a class with no lines.
            "coverage": [
                (PriorityClass(c), share)
                for c, share in enumerate(job.result.get("coverage", {}).values())
            ],
            "caps": [cap_line(cap) for cap in job.result.get("caps", [])],
        },
    }


def _plan_job(web: Web, plan_id: int) -> dict[str, Any]:
    plan: PlanProgress = reports.plan_progress(web.session, plan_id, actor=web.user)
    finished = plan.status in ("done", "failed")
    return {
        "kind": "dispatch",
        "id": plan.id,
        "day": plan.day,
        "status": plan.status,
        "progress": plan.progress,
        "step": step_label(plan.message) if not finished else None,
        "detail": plan.message,
        "message": plan.message if plan.status == "failed" else "",
        "finished": finished,
        "poll": f"/dashboard/jobs?plan={plan.id}",
        "result": {"routes": plan.routes, **plan.summary},
    }


def _job_response(web: Web, job: dict[str, Any]) -> HTMLResponse:
    response = web.render("dashboard/_job.html", {**TEMPLATE_GLOBALS, "job": job})
    if job["finished"] and job["status"] == "done":
        response.headers["HX-Trigger"] = REFRESH
    return response


def _failed_job(web: Web, kind: str, day: date, message: str) -> HTMLResponse:
    job = {
        "kind": kind,
        "id": "",
        "day": day,
        "status": "failed",
        "progress": 0,
        "step": None,
        "detail": "",
        "message": message,
        "finished": True,
        "poll": "",
        "result": {},
    }
    return web.render("dashboard/_job.html", {**TEMPLATE_GLOBALS, "job": job})


@router.action("/dashboard/allocate", roles=access.STAFF)
def allocate(web: WebDep, background: BackgroundTasks, day: DayForm) -> Response:
    """Start an allocation run for ``day`` (a job on the runner); answer its progress."""
    try:
        job = start_allocation_job(web.session, day=day, actor=web.user)
    except RelieflinkError as exc:
        if not web.is_htmx():
            raise
        return _failed_job(web, "allocation", day, exc.message)
    background.add_task(runner.run_in_process, job.id)
    if not web.is_htmx():
        return RedirectResponse(f"/dashboard?day={day}&allocation={job.id}", status_code=303)
    return _job_response(web, _allocation_job(web, job.id))


@router.action("/dashboard/dispatch", roles=access.STAFF)
def dispatch(web: WebDep, background: BackgroundTasks, day: DayForm) -> Response:
    """Start planning the day's dispatch (the API's job on the runner); answer its progress."""
    plan, job = start_plan_job(web.session, day=day, actor=web.user)
    background.add_task(runner.run_in_process, job.id)
    if not web.is_htmx():
        return RedirectResponse(f"/dashboard?day={day}&plan={plan.id}", status_code=303)
    return _job_response(web, _plan_job(web, plan.id))


@router.page("/dashboard/jobs", roles=access.STAFF)
def job_progress(
    web: WebDep, allocation: int | None = None, plan: int | None = None
) -> HTMLResponse:
    """The progress fragment of an allocation job or a dispatch plan (polled until it
    finishes); nothing when neither is named."""
    if allocation is not None:
        return _job_response(web, _allocation_job(web, allocation))
    if plan is not None:
        return _job_response(web, _plan_job(web, plan))
    return HTMLResponse("", headers=SECURITY_HEADERS)
