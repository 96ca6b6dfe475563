"""The engine and session factory, built lazily from the settings."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc, inspect, text
from sqlalchemy.orm import Session, sessionmaker

from relieflink.config import get_settings
from relieflink.errors import RelieflinkError


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    # SQLite serialises writers. A transaction that must read and then write without anyone
    # writing in between (a stock reservation) asks for the write lock up front with
    # ``session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})``; plain reads take
    # no lock, so a long export never blocks the writers.
    mode = conn.get_execution_options().get("sqlite_begin", "")
    conn.exec_driver_sql(f"BEGIN {mode}".strip())


#: A pooled PostgreSQL connection idle longer than this is checked (a round trip) before it is
#: lent. One in steady use is not: a ping before every request was one round trip in ten of a
#: courier's tracking event. A connection that broke while in use fails its request, which
#: invalidates the pool (every older connection is replaced), so the next request is served.
PING_AFTER_IDLE_S = 1.0


def _checked_in(_dbapi_connection: Any, record: Any) -> None:
    record.info["returned_at"] = time.monotonic()


def _ping_if_idle(engine: Engine) -> Any:
    def checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get("returned_at")
        if returned is not None and time.monotonic() - returned < PING_AFTER_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            raise exc.DisconnectionError(str(error)) from error  # the pool connects anew

    return checkout


def build_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine for ``url`` with the per-dialect settings RelieFlink relies on."""
    if url.startswith("sqlite"):
        engine = create_engine(url, echo=echo, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        # Let SQLAlchemy emit BEGIN itself (pysqlite's implicit transactions are off).
        event.listen(
            engine,
            "connect",
            lambda dbapi_conn, _rec: setattr(dbapi_conn, "isolation_level", None),
        )
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    engine = create_engine(url, echo=echo, pool_size=10, max_overflow=20)
    event.listen(engine, "checkin", _checked_in)
    event.listen(engine, "checkout", _ping_if_idle(engine))
    return engine


@lru_cache
def get_engine() -> Engine:
    """The process-wide engine for the configured database."""
    settings = get_settings()
    return build_engine(settings.database_url, echo=settings.sql_echo)


def ping() -> None:
    """Ask the database for one round trip (raises when it cannot be reached)."""
    with get_engine().connect() as conn:
        conn.execute(text("SELECT 1"))


@lru_cache
def get_sessionmaker() -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(), expire_on_commit=False)


def reset_engine() -> None:
    """Forget the cached engine (after the settings changed, e.g. in tests)."""
    if get_engine.cache_info().currsize:
        get_engine().dispose()
    get_engine.cache_clear()
    get_sessionmaker.cache_clear()


class KeepAndRefuse(Exception):
    """Raised by an entry point that must keep the work done so far and still refuse: the
    transaction's owner (``session_scope``, the request session) commits, then raises ``error``.

    The one way to keep work past a refusal, e.g. a failed sign-in or a wrong pickup code that
    must count towards a lock: ``raise KeepAndRefuse(Unauthorized(...))``. Any other exception
    rolls the transaction back."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session whose transaction commits on success and rolls back on any error
    (:class:`KeepAndRefuse`: commits, then raises the refusal)."""
    session = get_sessionmaker()()
    try:
        yield session
        session.commit()
    except KeepAndRefuse as keep:
        session.commit()
        raise keep.error from None
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def begin_write(session: Session) -> None:
    """Take SQLite's write lock before the first read of this transaction (``BEGIN IMMEDIATE``),
    so a read-then-write transaction cannot fail with "database is locked" when another writer
    committed in between. A no-op on PostgreSQL (rows are locked with ``FOR UPDATE``) and when
    the caller's transaction is already open (the caller opened it as it needed)."""
    if session.get_bind().dialect.name != "sqlite":
        return
    transaction = session.get_transaction()
    if transaction is None or not transaction._connections:
        session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})


def request_session() -> Iterator[Session]:
    """The per-request session of the API and the web pages (a FastAPI dependency): committed
    when the route returns, rolled back on any error (see :class:`KeepAndRefuse`).

    On SQLite it holds the write lock from the start: even a read writes (the audit log records
    reads of personal data), and a deferred transaction that read first could not then write
    after another request committed. Requests are thus serialised on the embedded database;
    PostgreSQL runs them concurrently with row locks."""
    with session_scope() as session:
        begin_write(session)
        yield session


class NotMigrated(RelieflinkError):
    status_code = 503
    title = "Database not migrated"


def require_migrated(engine: Engine) -> None:
    """Refuse to run on a database that is missing or behind the newest migration."""
    from relieflink.db.migrations import current_revisions, head_revisions

    if (
        not inspect(engine).has_table("alembic_version")
        or current_revisions(engine) != head_revisions()
    ):
        raise NotMigrated(
            f"the database at {engine.url.render_as_string(hide_password=True)} is not at the "
            "newest schema; run `relieflink db upgrade` first"
        )
