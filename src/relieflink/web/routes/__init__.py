"""The web pages: one module per area. A later domain adds its module to ``MODULES``."""

from __future__ import annotations

from fastapi import APIRouter

from relieflink.web import nav
from relieflink.web.routes import (
    auth,
    consult,
    courier,
    dashboard,
    donations,
    field,
    gate,
    households,
    imports,
    registry,
    resident,
    transparency,
    warehouse,
)

MODULES = (
    auth,
    dashboard,
    registry,
    households,
    imports,
    consult,
    resident,
    donations,
    warehouse,
    courier,
    gate,
    field,
    transparency,
)


def build_router() -> APIRouter:
    """Every module's pages in one router, and their navigation entries registered."""
    router = APIRouter(include_in_schema=False)
    for module in MODULES:
        router.include_router(module.router)
        nav.register(module.router.specs)
    return router
