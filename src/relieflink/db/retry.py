"""Running a transaction again when PostgreSQL aborted it for a serialization failure or a
deadlock (SQLSTATE 40001, 40P01): nothing of the aborted attempt stays, so the same work run
again gives the same result. The one place that knows these codes; SQLite serialises writers
and never raises them."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session

T = TypeVar("T")
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})  # serialization_failure, deadlock_detected
# The database cannot be reached or cannot answer for now (refused, dropped or terminated
# connections, SQLite's file gone or locked past its timeout, no free pooled connection): an
# entry point answers "try again later" (503), not a failure of its own.
UNAVAILABLE = (OperationalError, InterfaceError, PoolTimeout)
_log = logging.getLogger(__name__)


def is_retryable(exc: BaseException) -> bool:
    """Whether ``exc`` is a serialization failure or a deadlock (the transaction may run again)."""
    orig = getattr(exc, "orig", None) if isinstance(exc, DBAPIError) else None
    return getattr(orig, "sqlstate", None) in RETRYABLE_SQLSTATES


def run_in_transaction(session: Session, work: Callable[[], T], *, attempts: int = 3) -> T:
    """``work()`` in ``session``'s transaction, run again from a rolled-back transaction (up to
    ``attempts`` times in all) when the database aborted it for a serialization failure or a
    deadlock. ``work`` must be everything the transaction does: what ran before it in the same
    transaction is rolled back with the failed attempt."""
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except DBAPIError as exc:
            if attempt == attempts or not is_retryable(exc):
                raise
            _log.info("transaction aborted (%s), attempt %d of %d", exc.orig, attempt, attempts)
            session.rollback()
    raise AssertionError("unreachable: the last attempt returns or raises")
