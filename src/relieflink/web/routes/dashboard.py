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
from relieflink.dispatch import jobs as dispatch_jobs
from relieflink.dispatch import planning
from relieflink.errors import NotFound, RelieflinkError
from relieflink.households import service as households
from relieflink.households.schemas import HouseholdFilters
from relieflink.models import LockdownStatus
from relieflink.needs import jobs as allocation_jobs
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
    return {
        **TEMPLATE_GLOBALS,
        "day": day,
        "glance": reports.glance(web.session, day=day, actor=web.user),
        "routes": reports.day_routes(web.session, day=day, actor=web.user),
    }


@router.page("/dashboard", roles=access.STAFF, nav=N_("Dashboard"), order=10)
def dashboard(
    web: WebDep, day: DayQuery = None, allocation: str | None = None, plan: int | None = None
) -> HTMLResponse:
    """The day at a glance; ``allocation``/``plan`` show a job's progress (after a POST
    without JavaScript, or a reload)."""
    the_day = _day(day)
    jobs = []
    if allocation:
        jobs.append(_allocation_job(web, allocation))
    if plan is not None:
        jobs.append(_plan_job(web, plan))
    context = {**_registry(web), **_panels(web, the_day), "jobs": jobs}
    return web.render("dashboard.html", context | {"map_labels": map_labels(web.gettext)})


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
    """The map's data: communities (lockdown status, unmet need), warehouses, the day's routes."""
    data = reports.day_map(web.session, day=_day(day), actor=web.user)
    return JSONResponse(
        {
            "day": data.day.isoformat(),
            "communities": [_community_point(c) for c in data.communities],
            "warehouses": [place_point(w) for w in data.warehouses],
            "routes": [route_geometry(r) for r in data.routes],
        },
        headers={"Cache-Control": "no-store"},
    )


# --- jobs: allocation and dispatch ------------------------------------------------------------


def _allocation_job(web: Web, job_id: str) -> dict[str, Any]:
    job = allocation_jobs.get_job(job_id)
    if job is None:
        raise NotFound(f"no allocation job {job_id} in this server process (restarted?)")
    return {
        "kind": "allocation",
        "id": job.id,
        "day": job.day,
        "status": job.status,
        "progress": job.progress,
        "step": step_label(job.step),
        "detail": job.step,
        "message": job.message,
        "finished": job.finished,
        "poll": f"/dashboard/jobs?allocation={job.id}",
        "result": {
            "run_id": job.run_id,
            "lines": job.lines,
            "units_requested": job.units_requested,
            "units_allocated": job.units_allocated,
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
    """Start an allocation run for ``day`` (in the background); answer its progress."""
    try:
        job = allocation_jobs.start_allocation(day=day, actor=web.user)
    except RelieflinkError as exc:
        if not web.is_htmx():
            raise
        return _failed_job(web, "allocation", day, exc.message)
    background.add_task(allocation_jobs.run_allocation_job, job.id)
    if not web.is_htmx():
        return RedirectResponse(f"/dashboard?day={day}&allocation={job.id}", status_code=303)
    return _job_response(web, _allocation_job(web, job.id))


@router.action("/dashboard/dispatch", roles=access.STAFF)
def dispatch(web: WebDep, background: BackgroundTasks, day: DayForm) -> Response:
    """Start planning the day's dispatch (the API's background job); answer its progress."""
    plan = planning.start_plan(web.session, day=day, actor=web.user)
    background.add_task(dispatch_jobs.run_plan_job, plan.id, actor_id=web.user.id)
    if not web.is_htmx():
        return RedirectResponse(f"/dashboard?day={day}&plan={plan.id}", status_code=303)
    return _job_response(web, _plan_job(web, plan.id))


@router.page("/dashboard/jobs", roles=access.STAFF)
def job_progress(
    web: WebDep, allocation: str | None = None, plan: int | None = None
) -> HTMLResponse:
    """The progress fragment of an allocation job or a dispatch plan (polled until it
    finishes); nothing when neither is named."""
    if allocation:
        return _job_response(web, _allocation_job(web, allocation))
    if plan is not None:
        return _job_response(web, _plan_job(web, plan))
    return HTMLResponse("", headers=SECURITY_HEADERS)
