"""SQL for idempotency records. Every keyed API request runs these: the statements of the hot
path are prebuilt Core statements (an ORM round trip costs several times more per request)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from relieflink.models import IdempotencyRecord

# The statements of every keyed request, built once.
_RECORDS: Table = IdempotencyRecord.__table__  # type: ignore[assignment]
_COMPLETE = (
    update(_RECORDS)
    .where(_RECORDS.c.user_id == bindparam("of_user"), _RECORDS.c.key == bindparam("of_key"))
    .values(response_status=bindparam("status"), response_body=bindparam("body"))
)
_CLAIMS: dict[str, Any] = {}


def _claim_statement(session: Session) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING id for the session's dialect (built once)."""
    dialect = session.get_bind().dialect.name
    if dialect not in _CLAIMS:
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        _CLAIMS[dialect] = (
            insert(_RECORDS)
            .on_conflict_do_nothing(index_elements=["user_id", "key"])
            .returning(_RECORDS.c.id)
        )
    return _CLAIMS[dialect]


def insert_new(session: Session, values: dict[str, Any]) -> bool:
    """Insert a record unless its (user, key) exists; True when this call inserted it."""
    return session.connection().execute(_claim_statement(session), values).first() is not None


def get_record(session: Session, *, user_id: int, key: str) -> IdempotencyRecord | None:
    return session.scalars(
        select(IdempotencyRecord).where(
            IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key
        )
    ).one_or_none()


def store_answer(session: Session, *, user_id: int, key: str, status: int, body: Any) -> None:
    session.connection().execute(
        _COMPLETE, {"of_user": user_id, "of_key": key, "status": status, "body": body}
    )


def delete_record(session: Session, *, user_id: int, key: str) -> None:
    session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key
        )
    )
