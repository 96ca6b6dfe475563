"""The ASGI application: the JSON API (and, later, the web pages) over the domain services."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from relieflink import __version__
from relieflink.api import problems
from relieflink.api.guards import BodyLimit, DatabaseOutage
from relieflink.api.headers import PrivateResponsesMiddleware
from relieflink.api.idempotency import IdempotencyMiddleware
from relieflink.api.router import api_router
from relieflink.config import Settings, get_settings
from relieflink.consult.realtime import close_hub
from relieflink.db import get_engine, require_migrated
from relieflink.jobs import runner
from relieflink.web import STATIC_DIR, web_router

API_PREFIX = "/api/v1"


def create_app(
    settings: Settings | None = None, *, check_schema: bool = True, job_workers: int = 0
) -> FastAPI:
    """Build the application. Refuses to start on a database that is not migrated.
    ``job_workers``: worker threads that run queued jobs in this process (``relieflink serve``
    on the embedded default)."""
    settings = settings or get_settings()
    logging.basicConfig(level=settings.log_level)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if check_schema:
            require_migrated(get_engine())
        stop = runner.start_in_process(job_workers) if job_workers else None
        try:
            yield
        finally:
            await close_hub(_app)
            if stop is not None:
                stop()

    app = FastAPI(
        title="RelieFlink",
        version=__version__,
        description="Pandemic and disaster relief from donation to doorstep.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    problems.install(app)
    app.add_middleware(IdempotencyMiddleware)
    app.add_middleware(DatabaseOutage)  # (the last added runs first: these wrap the rest)
    app.add_middleware(BodyLimit)
    app.add_middleware(PrivateResponsesMiddleware)  # outermost: every answer gets its headers
    app.include_router(api_router, prefix=API_PREFIX)
    app.include_router(web_router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def create_serving_app() -> FastAPI:
    """The application ``relieflink serve`` runs: with a job worker thread when the server runs
    its jobs itself (``RELIEFLINK_JOBS_IN_PROCESS``; by default on SQLite)."""
    settings = get_settings()
    return create_app(settings, job_workers=1 if settings.runs_jobs_in_process else 0)
