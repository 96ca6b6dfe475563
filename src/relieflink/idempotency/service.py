"""Claiming an idempotency key, replaying its answer, and releasing it when the work failed."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from relieflink import clock
from relieflink.errors import Conflict, Invalid
from relieflink.idempotency import repository
from relieflink.models import IdempotencyRecord

# A claim whose request never finished (the process died) may be taken over after this long.
ABANDONED_AFTER = timedelta(minutes=5)


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(b"\n".join([method.encode(), path.encode(), body])).hexdigest()


@dataclass(frozen=True)
class Replay:
    status: int
    body: Any


def claim(
    session: Session, *, user_id: int, key: str, method: str, path: str, fingerprint: str
) -> Replay | None:
    """Claim ``key`` for this request (None: go ahead), or the stored answer to replay.

    Raises ``Invalid`` when the key was used for another request, and ``Conflict`` while the
    first request with this key is still running. Commits its own small transaction: the claim
    must be visible to a concurrent retry before the work starts.
    """
    # Insert first: one statement when the key is new (the common case); only a key seen before
    # is read. The statement is built once per dialect.
    values = {"user_id": user_id, "key": key, "method": method, "path": path,
              "request_hash": fingerprint, "created_at": clock.now()}  # fmt: skip
    if repository.insert_new(session, values):
        session.commit()
        return None
    existing = repository.get_record(session, user_id=user_id, key=key)
    if existing is None:  # released by its failed first request just now: it is not done
        session.rollback()
        raise Conflict("a request with this Idempotency-Key is still being processed")
    if existing.request_hash != fingerprint:
        raise Invalid(
            "this Idempotency-Key was used for a different request; use a new key for new work"
        )
    if existing.response_status is None:
        if clock.now() - existing.created_at < ABANDONED_AFTER:
            raise Conflict("a request with this Idempotency-Key is still being processed")
        existing.created_at = clock.now()
        session.commit()
        return None
    return Replay(existing.response_status, existing.response_body)


def complete(session: Session, *, user_id: int, key: str, status: int, body: Any) -> None:
    """Store the answer to replay for ``key``, in the caller's transaction (which may be the one
    that did the work, so that both are kept or neither)."""
    repository.store_answer(session, user_id=user_id, key=key, status=status, body=body)


def release(session: Session, *, user_id: int, key: str) -> None:
    """Forget the claim on ``key`` (the work failed unexpectedly, so a retry may do it), in the
    caller's transaction."""
    repository.delete_record(session, user_id=user_id, key=key)


def recall_or_claim(
    session: Session, *, user_id: int, key: str, method: str, path: str
) -> Replay | None:
    """A form's key in the caller's transaction: the stored answer of the first submit, or None
    after claiming the key (go ahead, then :func:`answer`).

    Unlike :func:`claim` this does not commit: the key is kept only if the work is (a refused
    form rolls both back, so the corrected form may be sent with the same key). A concurrent
    submit of the same key waits on the unique index (PostgreSQL; SQLite holds the write lock)
    and then replays the first answer.
    """
    fingerprint = request_fingerprint(method, path, b"")

    def stored() -> Replay | None:
        found = repository.get_record(session, user_id=user_id, key=key)
        if found is None:
            return None
        if found.request_hash != fingerprint:
            raise Invalid("this form key was used for another form; reload the page")
        return Replay(found.response_status or 0, found.response_body)

    replay = stored()
    if replay is not None:
        return replay
    try:
        with session.begin_nested():
            session.add(
                IdempotencyRecord(
                    user_id=user_id, key=key, method=method, path=path, request_hash=fingerprint
                )
            )
    except IntegrityError:
        return stored()
    return None


def answer(session: Session, *, user_id: int, key: str, status: int, body: Any) -> None:
    """Keep the answer of a claimed form key, in the caller's transaction."""
    record = repository.get_record(session, user_id=user_id, key=key)
    if record is None:  # answered without a claim: a bug in the caller
        raise LookupError(f"form key {key!r} was never claimed")
    record.response_status = status
    record.response_body = body
    session.flush()
