"""Test database and helpers.

The suite runs on a fresh SQLite file, or on PostgreSQL when ``RELIEFLINK_TEST_DATABASE_URL`` is
set. The schema is built by the real migrations (``alembic upgrade head``). Tests commit for real
(the API and the idempotency middleware open their own transactions, as in production) and every
table is emptied after each test that used the database.

``RELIEFLINK_TEST_CLOCK_SHIFT_DAYS=400`` runs the whole suite with the process's clock moved that
many days ahead (time-machine moves the system clock itself, so a wall-clock read anywhere shows
up, not only reads through ``relieflink.clock``). CI runs the suite once so.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session

from relieflink import clock
from relieflink.config import get_settings
from relieflink.db import Base, get_engine, get_sessionmaker, reset_engine
from relieflink.db.migrations import upgrade

POSTGRES_URL = os.environ.get("RELIEFLINK_TEST_DATABASE_URL")
REDIS_URL = os.environ.get("RELIEFLINK_TEST_REDIS_URL") or "redis://127.0.0.1:6379/0"
CLOCK_SHIFT_DAYS = int(os.environ.get("RELIEFLINK_TEST_CLOCK_SHIFT_DAYS") or 0)


def pytest_configure(config: pytest.Config) -> None:
    if CLOCK_SHIFT_DAYS:
        import time_machine

        ahead = datetime.now(UTC) + timedelta(days=CLOCK_SHIFT_DAYS)
        time_machine.travel(ahead, tick=True).start()


def pytest_report_header(config: pytest.Config) -> str | None:
    if CLOCK_SHIFT_DAYS:
        return f"clock moved {CLOCK_SHIFT_DAYS} days ahead: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    return None


def _fresh_postgres(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if POSTGRES_URL:
        _fresh_postgres(POSTGRES_URL)
        url = POSTGRES_URL
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    os.environ["RELIEFLINK_DATABASE_URL"] = url
    os.environ["RELIEFLINK_ENVIRONMENT"] = "test"
    get_settings.cache_clear()
    reset_engine()
    upgrade(url)
    yield url
    reset_engine()


@pytest.fixture(scope="session")
def engine(database_url: str) -> Engine:
    return get_engine()


def _empty_all_tables(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    """A session on the test database; the caller commits like an entry point would."""
    session = get_sessionmaker()()
    try:
        yield session
    finally:
        session.rollback()
        session.close()
        _empty_all_tables(engine)


@pytest.fixture
def client(db: Session) -> Iterator[TestClient]:
    from relieflink.app import create_app

    with TestClient(create_app()) as test_client:
        yield test_client


@pytest.fixture
def examples_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="session")
def redis_url() -> str:
    """A reachable Redis (``RELIEFLINK_TEST_REDIS_URL``, default the local one). Tests that need
    it are skipped when there is none, except in CI, where .ci/run starts one: there they fail."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except (redis.RedisError, OSError) as exc:
        if os.environ.get("CI"):
            pytest.fail(f"Redis at {REDIS_URL} is not reachable in CI: {exc}")
        pytest.skip(f"Redis at {REDIS_URL} is not reachable ({exc}); .ci/run starts one")
    return REDIS_URL


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Change settings for one test with :func:`configure` (the settings object is cached)."""
    get_settings.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    get_settings.cache_clear()


def configure(settings: pytest.MonkeyPatch, **values: object) -> None:
    """Set ``RELIEFLINK_<NAME>`` for each value, for this test (with the ``settings`` fixture)."""
    for name, value in values.items():
        settings.setenv(f"RELIEFLINK_{name.upper()}", str(value))
    get_settings.cache_clear()


MORNING = time(9)


@pytest.fixture
def morning() -> Iterator[datetime]:
    """The clock at the next 09:00 local time (today's, or tomorrow's once past it), ticking,
    for this test: a test that plans today has the day's shifts ahead of it whatever the
    wall-clock hour it runs at (a plan made at 20:00 cannot use a shift that ended at 18:00).
    Moved forward, never back: the test client's and the browser's cookie jars expire a
    session's cookie by the wall clock. The suite's clock-shift mode still moves the day.
    Yields the moment it starts at."""
    now = clock.now()
    start = datetime.combine(clock.today(), MORNING, clock.zone()).astimezone(UTC)
    if start < now:
        start = datetime.combine(
            clock.today() + timedelta(days=1), MORNING, clock.zone()
        ).astimezone(UTC)
    offset = start - now
    previous = clock.use(lambda: previous() + offset)
    try:
        yield start
    finally:
        clock.use(previous)
