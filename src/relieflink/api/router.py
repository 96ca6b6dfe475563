"""The ``/api/v1`` router: every domain's routes."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from relieflink.api.deps import strict_json
from relieflink.api.routes import (
    audit,
    auth,
    bulk,
    consult,
    dispatch,
    donations,
    households,
    jobs,
    needs,
    notices,
    registry,
    stock,
    teams,
    users,
)
from relieflink.db import ping

api_router = APIRouter(dependencies=[Depends(strict_json)])
# FastAPI matches a request against the routes in order, router by router, so the busiest
# writes (stock reservations, courier tracking events) come first: last in the list, a
# reservation was checked against some 160 routes, a measurable share of its CPU. No two routers
# share a first path segment (but teams, whose availability sits under the registry's /teams and
# matches no registry path), so the order changes nothing else. The couriers' tracking events
# (two routes, under /dispatch like the rest of dispatch) go before everything.
api_router.include_router(dispatch.events_router)
for module in (
    stock,
    dispatch,
    auth,
    users,
    registry,
    teams,
    households,
    bulk,
    audit,
    needs,
    consult,
    donations,
    jobs,
    notices,
):
    api_router.include_router(module.router)
api_router.include_router(needs.runs_router)


@api_router.get("/health", tags=["health"])
def health() -> dict[str, str]:
    """Liveness: the process answers (whether the database does is ``/health/ready``'s)."""
    return {"status": "ok"}


@api_router.get("/health/ready", tags=["health"])
def ready() -> dict[str, str]:
    """Readiness: the database answers (503 with Retry-After while it cannot be reached)."""
    ping()
    return {"status": "ready"}
