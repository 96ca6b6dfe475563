"""SQL for users, sign-in sessions and failed attempts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from relieflink.common import repository as common
from relieflink.models import AuthSession, LoginAttempt, User
from relieflink.users.schemas import UserFilters


def get_user(session: Session, user_id: int) -> User | None:
    return common.get_by_id(session, User, user_id)


def get_user_by_username(session: Session, username: str) -> User | None:
    return common.get_by_code(session, User, username, column="username")


def list_users(
    session: Session, filters: UserFilters, *, offset: int, limit: int
) -> tuple[Sequence[User], int]:
    stmt = select(User)
    if filters.role is not None:
        stmt = stmt.where(User.role == filters.role)
    if filters.organization_id is not None:
        stmt = stmt.where(User.organization_id == filters.organization_id)
    return common.page(session, stmt, offset=offset, limit=limit, order_by=User.id)


def get_session_by_digest(session: Session, digest: str) -> AuthSession | None:
    return session.scalars(
        select(AuthSession).where(AuthSession.token_hash == digest)
    ).one_or_none()


def count_attempts_since(session: Session, key: str, since: datetime) -> int:
    stmt = select(func.count()).where(LoginAttempt.key == key, LoginAttempt.attempted_at >= since)
    return session.scalar(stmt) or 0


def add_attempt(session: Session, key: str) -> None:
    session.add(LoginAttempt(key=key))


def forget_attempts(session: Session, key: str) -> None:
    session.execute(delete(LoginAttempt).where(LoginAttempt.key == key))
