"""The coordinator's dashboard: the registry at a glance and a map of communities and warehouses.

Later issues add their panels here (open requests by priority, stock days left, plans, failed
deliveries, consultation queue, the day's routes, buttons for allocation and dispatch).
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import HTMLResponse, JSONResponse

from relieflink.catalog import service as catalog
from relieflink.catalog.schemas import ItemFilters, KitFilters
from relieflink.households import service as households
from relieflink.households.schemas import HouseholdFilters
from relieflink.models import Community, LockdownStatus, Warehouse
from relieflink.places import service as places
from relieflink.places.schemas import CommunityFilters, NameFilters
from relieflink.users import access
from relieflink.web.pages import N_, PageRouter, WebDep

router = PageRouter()
MAP_PAGE = 1000
MAP_MAX_POINTS = 50_000  # a city's communities; beyond that the map shows the first ones


@router.page("/dashboard", roles=access.STAFF, nav=N_("Dashboard"), order=10)
def dashboard(web: WebDep) -> HTMLResponse:
    """Counts from the registry, and the map (its points come from ``/dashboard/map.json``)."""
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
    counts = {
        "communities": sum(lockdown.values()),
        "warehouses": places.list_warehouses(session, NameFilters(), limit=0)[1],
        "items": catalog.list_items(session, ItemFilters(), limit=0)[1],
        "kits": catalog.list_kits(session, KitFilters(), limit=0)[1],
    }
    return web.render(
        "dashboard.html",
        {
            "lockdown": lockdown,
            "households": {"total": household_total, "vulnerable": vulnerable},
            "counts": counts,
        },
    )


def _community_point(c: Community) -> dict[str, Any]:
    return {
        "code": c.code,
        "name": c.name,
        "name_zh": c.name_zh,
        "lat": c.lat,
        "lon": c.lon,
        "status": str(c.lockdown_status),
        "households": c.households,
    }


def _warehouse_point(w: Warehouse) -> dict[str, Any]:
    return {"code": w.code, "name": w.name, "name_zh": w.name_zh, "lat": w.lat, "lon": w.lon}


@router.page("/dashboard/map.json", roles=access.STAFF)
def map_data(web: WebDep) -> JSONResponse:
    """The map's points: every community (with its lockdown status) and every warehouse."""
    communities: list[dict[str, Any]] = []
    offset = 0
    while len(communities) < MAP_MAX_POINTS:
        rows, total = places.list_communities(
            web.session, CommunityFilters(), offset=offset, limit=MAP_PAGE
        )
        communities.extend(_community_point(c) for c in rows)
        offset += MAP_PAGE
        if offset >= total:
            break
    warehouses, _ = places.list_warehouses(web.session, NameFilters(), limit=MAP_PAGE)
    return JSONResponse(
        {
            "communities": communities,
            "warehouses": [_warehouse_point(w) for w in warehouses],
        },
        headers={"Cache-Control": "no-store"},
    )
