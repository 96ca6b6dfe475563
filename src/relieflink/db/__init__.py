"""Database plumbing: the engine, sessions, the declarative base and portable column types."""

from sqlalchemy.orm import Session

from relieflink.db.base import Base, TimestampMixin, UTCDateTime
from relieflink.db.engine import (
    KeepAndRefuse,
    begin_write,
    get_engine,
    get_sessionmaker,
    ping,
    request_session,
    require_migrated,
    reset_engine,
    session_scope,
)
from relieflink.db.retry import UNAVAILABLE, run_in_transaction

__all__ = [
    "UNAVAILABLE",
    "Base",
    "KeepAndRefuse",
    "Session",
    "TimestampMixin",
    "UTCDateTime",
    "begin_write",
    "get_engine",
    "get_sessionmaker",
    "ping",
    "request_session",
    "require_migrated",
    "reset_engine",
    "run_in_transaction",
    "session_scope",
]
