"""Who ends a transaction: the request session and ``session_scope`` commit on success, roll
back on error, and keep the work of a refusal raised as ``KeepAndRefuse``; ``run_in_transaction``
runs a transaction again after a serialization failure or a deadlock."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from relieflink.db import KeepAndRefuse, run_in_transaction, session_scope
from relieflink.errors import Conflict
from relieflink.models import IdempotencyRecord, LoginAttempt, Organization, Role
from tests.factories import headers_for, make_org


def _count(db: Session, model: type) -> int:
    db.commit()  # a fresh read: see what the requests committed
    return int(db.scalar(select(func.count()).select_from(model)) or 0)


def _org_then(refusal: Exception) -> None:
    with session_scope() as session:
        make_org(session)
        raise refusal


def test_session_scope_keeps_the_work_then_refuses(db: Session) -> None:
    with pytest.raises(Conflict, match="kept"):
        _org_then(KeepAndRefuse(Conflict("kept, then refused")))
    with pytest.raises(Conflict, match="undone"):
        _org_then(Conflict("undone"))
    assert _count(db, Organization) == 1


def test_a_kept_refusal_is_stored_with_its_work_under_an_idempotency_key(
    db: Session, client: TestClient
) -> None:
    """A failed sign-in is kept for the rate limit and answered 401; with an Idempotency-Key the
    stored answer commits with it, and a retry replays it without counting a second attempt."""
    headers = headers_for(db, client, Role.coordinator) | {"Idempotency-Key": "wrong-once"}
    bad = {"username": "nobody", "password": "wrong password!"}
    first = client.post("/api/v1/auth/sign-in", json=bad, headers=headers)
    assert first.status_code == 401
    assert first.json()["detail"] == "wrong username or password"
    assert first.headers["WWW-Authenticate"] == "Bearer"
    attempts = _count(db, LoginAttempt)
    assert attempts > 0
    again = client.post("/api/v1/auth/sign-in", json=bad, headers=headers)
    assert again.status_code == 401 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert _count(db, LoginAttempt) == attempts
    assert _count(db, IdempotencyRecord) == 1


class _Orig(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"SQLSTATE {sqlstate}")
        self.sqlstate = sqlstate


def _aborted(sqlstate: str) -> OperationalError:
    return OperationalError("UPDATE ...", {}, _Orig(sqlstate))


@pytest.mark.parametrize("sqlstate", ["40P01", "40001"])
def test_a_deadlocked_transaction_runs_again_as_a_whole(db: Session, sqlstate: str) -> None:
    runs = []

    def work() -> int:
        runs.append(make_org(db).id)
        db.flush()
        if len(runs) == 1:
            raise _aborted(sqlstate)
        return len(runs)

    assert run_in_transaction(db, work) == 2
    db.commit()
    assert _count(db, Organization) == 1  # the first attempt was rolled back


def test_other_errors_and_the_last_attempt_are_not_retried(db: Session) -> None:
    runs: list[int] = []

    def deadlock() -> None:
        runs.append(1)
        raise _aborted("40P01")

    with pytest.raises(OperationalError):
        run_in_transaction(db, deadlock, attempts=3)
    assert len(runs) == 3

    def duplicate() -> None:
        runs.append(1)
        raise IntegrityError("INSERT ...", {}, _Orig("23505"))

    with pytest.raises(IntegrityError):
        run_in_transaction(db, duplicate)
    assert len(runs) == 4
