"""The ``/api/v1`` router: every domain's routes."""

from __future__ import annotations

from fastapi import APIRouter

from relieflink.api.routes import (
    audit,
    auth,
    bulk,
    consult,
    dispatch,
    donations,
    households,
    needs,
    registry,
    stock,
    users,
)

api_router = APIRouter()
for module in (
    auth,
    users,
    registry,
    households,
    bulk,
    audit,
    needs,
    consult,
    donations,
    stock,
    dispatch,
):
    api_router.include_router(module.router)
api_router.include_router(needs.runs_router)


@api_router.get("/health", tags=["health"])
def health() -> dict[str, str]:
    """Liveness: the process answers (the database was checked at start-up)."""
    return {"status": "ok"}
