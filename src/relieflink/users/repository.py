"""SQL for users, sign-in sessions and failed attempts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, Table, bindparam, delete, func, select, update
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.util import identity_key

from relieflink.common import repository as common
from relieflink.models import AuthSession, Community, Household, LoginAttempt, User
from relieflink.users.schemas import UserFilters


def get_user(session: Session, user_id: int) -> User | None:
    return common.get_by_id(session, User, user_id)


def get_user_by_username(session: Session, username: str) -> User | None:
    return common.get_by_code(session, User, username, column="username")


def managed_households(organization_id: int) -> Select[int]:
    """The ids of the households in the communities a committee manages (for row scoping)."""
    return select(Household.id).where(
        Household.community_id.in_(
            select(Community.id).where(Community.committee_id == organization_id)
        )
    )


def home_community(household_id: int) -> Select[int]:
    """The id of the community a household lives in (for row scoping)."""
    return select(Household.community_id).where(Household.id == household_id)


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


@dataclass(frozen=True)
class SignInState:
    """What a request needs of its sign-in to accept the token."""

    id: int
    revoked_at: datetime | None
    expires_at: datetime
    last_seen_at: datetime


# Every API request resolves its token: one prebuilt Core statement (the sign-in joined to its
# user) instead of loading two ORM entities, which costs several times more per request.
_AUTH: Table = AuthSession.__table__  # type: ignore[assignment]
_USERS: Table = User.__table__  # type: ignore[assignment]
_SIGN_IN = (
    select(_AUTH.c.id, _AUTH.c.revoked_at, _AUTH.c.expires_at, _AUTH.c.last_seen_at, *_USERS.c)
    .join(_USERS, _USERS.c.id == _AUTH.c.user_id)
    .where(_AUTH.c.token_hash == bindparam("digest"))
)
_USER_KEYS = tuple(c.key for c in _USERS.c)
_TOUCH = (
    update(_AUTH).where(_AUTH.c.id == bindparam("auth_id")).values(last_seen_at=bindparam("at"))
)


def get_sign_in_by_digest(session: Session, digest: str) -> tuple[SignInState, User] | None:
    """The sign-in with this token digest and its user (a persistent object of ``session``: the
    one already there, or one built from the row read here, with no second read)."""
    session.flush()  # a Core statement does not autoflush; pending changes must be seen
    row = session.connection().execute(_SIGN_IN, {"digest": digest}).first()
    if row is None:
        return None
    state = SignInState(row[0], row[1], row[2], row[3])
    values = dict(zip(_USER_KEYS, row[4:], strict=True))
    user = session.identity_map.get(identity_key(User, values["id"]))
    if user is None:
        user = User(**values)
        make_transient_to_detached(user)  # as if loaded: clean, with its identity
        session.add(user)
    return state, user


def touch_sign_in(session: Session, auth_id: int, at: datetime) -> None:
    """Slide a sign-in's idle expiry to ``at``."""
    session.connection().execute(_TOUCH, {"auth_id": auth_id, "at": at})
    stale = session.identity_map.get(identity_key(AuthSession, auth_id))
    if stale is not None:
        session.expire(stale, ["last_seen_at"])


def failures_since(session: Session, key: str, since: datetime) -> tuple[int, datetime | None]:
    """How many failed sign-ins ``key`` has since ``since``, and when the last one was."""
    stmt = select(func.count(), func.max(LoginAttempt.attempted_at)).where(
        LoginAttempt.key == key, LoginAttempt.attempted_at >= since
    )
    count, last = session.execute(stmt).one()
    return count, last


def add_attempt(session: Session, key: str) -> None:
    session.add(LoginAttempt(key=key))


def forget_attempts(session: Session, key: str) -> None:
    session.execute(delete(LoginAttempt).where(LoginAttempt.key == key))
