"""Audit finding 4: while the database cannot be reached every request gets a 503 problem
document with Retry-After (not a plain-text 500), ``/health`` stays up (liveness) while
``/health/ready`` says 503, and the same server answers normally once the database is back.

The outage is real: on PostgreSQL the database stops taking connections and the server's are
terminated (``ALLOW_CONNECTIONS false``, ``pg_terminate_backend``); on SQLite the directory of
the database file goes away (the pool's open files are closed first, as a restart of the disk
would)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from relieflink.db import engine as engine_module
from relieflink.db.engine import build_engine
from relieflink.models import Role
from tests.factories import PASSWORD, make_user, sign_in


@contextmanager
def database_gone(engine: Engine) -> Iterator[None]:
    url = engine.url
    if url.get_backend_name() == "sqlite":
        folder = Path(str(url.database)).parent
        away = folder.with_name(folder.name + "-away")
        engine.dispose()
        folder.rename(away)
        try:
            yield
        finally:
            away.rename(folder)
        return
    name = url.database
    admin = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid()"
            ),
            {"name": name},
        )
    try:
        yield
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        admin.dispose()


def _assert_unavailable(response: object) -> None:
    assert response.status_code == 503, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"] == "application/problem+json"  # type: ignore[attr-defined]
    assert response.headers["retry-after"] == "10"  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert (body["status"], body["title"]) == (503, "Service unavailable")
    assert "database cannot be reached" in body["detail"]


def test_a_database_outage_answers_503_and_the_server_recovers(
    db: Session, client: TestClient, engine: Engine
) -> None:
    user = make_user(db, Role.coordinator)
    db.commit()
    db.close()
    headers = sign_in(client, user)
    credentials = {"username": user.username, "password": PASSWORD}
    assert client.get("/api/v1/health/ready").json() == {"status": "ready"}

    with database_gone(engine):
        assert client.get("/api/v1/health").status_code == 200  # the process is alive
        _assert_unavailable(client.get("/api/v1/health/ready"))
        _assert_unavailable(client.get("/api/v1/auth/me", headers=headers))
        _assert_unavailable(client.post("/api/v1/auth/sign-in", json=credentials))
        keyed = headers | {"Idempotency-Key": "outage-1"}  # the middleware's own reads
        _assert_unavailable(client.post("/api/v1/auth/sign-out", headers=keyed))

    # Back without a restart: the same application answers.
    assert client.get("/api/v1/health/ready").status_code == 200
    assert client.get("/api/v1/auth/me", headers=headers).json()["username"] == user.username
    assert client.post("/api/v1/auth/sign-in", json=credentials).status_code == 200


def test_a_pooled_connection_is_pinged_only_after_it_idled(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection that died while idle in the pool is replaced before it is lent; one in
    steady use is not pinged first (a round trip per request): if it died, its request fails
    (503 in the API) and the next one gets a new connection."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite's connections are files: nothing to ping")
    mine = build_engine(engine.url.render_as_string(hide_password=False))
    admin = create_engine(engine.url, isolation_level="AUTOCOMMIT")

    def backend_killed() -> int:
        with mine.connect() as conn:
            pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        return int(pid)

    try:
        monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_S", 0.0)  # idle: pinged
        dead = backend_killed()
        with mine.connect() as conn:
            assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one() != dead
        monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_S", 3600.0)  # in use: not pinged
        dead = backend_killed()
        with pytest.raises(DBAPIError) as failed, mine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        assert failed.value.connection_invalidated
        with mine.connect() as conn:
            assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one() != dead
    finally:
        mine.dispose()
        admin.dispose()
