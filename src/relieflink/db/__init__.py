"""Database plumbing: the engine, sessions, the declarative base and portable column types."""

from sqlalchemy.orm import Session

from relieflink.db.base import Base, TimestampMixin, UTCDateTime
from relieflink.db.engine import (
    begin_write,
    get_engine,
    get_sessionmaker,
    request_session,
    require_migrated,
    reset_engine,
    session_scope,
)

__all__ = [
    "Base",
    "Session",
    "TimestampMixin",
    "UTCDateTime",
    "begin_write",
    "get_engine",
    "get_sessionmaker",
    "request_session",
    "require_migrated",
    "reset_engine",
    "session_scope",
]
