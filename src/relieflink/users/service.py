"""Users and sign-in. Services never commit: the caller owns the transaction."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from relieflink import clock
from relieflink.audit import service as audit
from relieflink.common import crud
from relieflink.common.repository import apply_update
from relieflink.config import get_settings
from relieflink.errors import Conflict, FieldError, Invalid, NotFound, TooManyRequests
from relieflink.models import AuthSession, Household, Organization, Role, User
from relieflink.users import repository, security
from relieflink.users.schemas import UserCreate, UserFilters, UserUpdate

# A sliding session is touched at most this often, so reads do not turn into writes.
_TOUCH_EVERY = timedelta(minutes=1)
ADDRESS_LIMIT_FACTOR = 4  # an address may fail for several accounts (a shared NAT, a building)


def get_user(session: Session, user_id: int) -> User | None:
    """The user with this id, or None."""
    return repository.get_user(session, user_id)


def require_user(session: Session, user_id: int) -> User:
    """The user with this id; ``NotFound`` if there is none."""
    user = repository.get_user(session, user_id)
    if user is None:
        raise NotFound(f"no user with id {user_id}")
    return user


def list_users(
    session: Session, filters: UserFilters, *, offset: int = 0, limit: int = 50
) -> tuple[Sequence[User], int]:
    """One page of users matching ``filters``."""
    return repository.list_users(session, filters, offset=offset, limit=limit)


_LINKS = {"organization_id": Organization, "household_id": Household}


def _check_links(session: Session, organization_id: int | None, household_id: int | None) -> None:
    links = {"organization_id": organization_id, "household_id": household_id}
    message = "the user refers to records that do not exist"
    crud.check_references(session, links, _LINKS, message=message)


def _check_committee(role: Role, organization_id: int | None) -> None:
    """A committee user belongs to its residents' committee: households are scoped by that link
    (without it the user would sign in and see no household)."""
    if role == Role.committee and organization_id is None:
        raise Invalid(
            "a committee user needs its residents' committee",
            [
                FieldError(
                    ("organization_id",),
                    "name the committee organization whose compounds the user serves",
                )
            ],
        )


def create_user(session: Session, data: UserCreate, *, actor: User | None) -> User:
    """Create a user (``actor`` None only when bootstrapping the first admin from the CLI)."""
    if repository.get_user_by_username(session, data.username) is not None:
        raise Conflict(f"the username {data.username!r} is taken")
    _check_links(session, data.organization_id, data.household_id)
    _check_committee(data.role, data.organization_id)
    user = User(
        username=data.username,
        full_name=data.full_name,
        role=data.role,
        organization_id=data.organization_id,
        household_id=data.household_id,
        password_hash=security.hash_password(data.password),
    )
    session.add(user)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="create",
        entity="user",
        entity_id=user.id,
        detail={"username": user.username, "role": user.role},
    )
    return user


def update_user(session: Session, user_id: int, data: UserUpdate, *, actor: User) -> User:
    """Change a user's details, role, links, password or active flag."""
    user = require_user(session, user_id)
    changes = data.model_dump(exclude_unset=True)
    _check_links(session, changes.get("organization_id"), changes.get("household_id"))
    _check_committee(
        changes.get("role", user.role),
        changes.get("organization_id", user.organization_id),
    )
    password = changes.pop("password", None)
    diff = apply_update(user, changes)
    if password is not None:
        user.password_hash = security.hash_password(password)
        diff["password"] = "changed"
    audit.record(
        session, actor=actor, action="update", entity="user", entity_id=user.id, detail=diff
    )
    return user


@dataclass(frozen=True)
class SignedIn:
    token: str
    expires_at: datetime
    user: User


# Failed sign-ins of one account from one address (OWASP ASVS 2.2.1): past the per-minute limit,
# each further failure doubles the wait, from a minute up to an hour; they count for a day. The
# account alone is never locked, so a stranger guessing from elsewhere cannot lock its owner out.
FAILURE_MEMORY = timedelta(days=1)
FIRST_DELAY = timedelta(minutes=1)
LONGEST_DELAY = timedelta(hours=1)


def failure_delay(failures: int, limit: int) -> timedelta:
    """How long an account must wait at an address after ``failures`` failed sign-ins there."""
    if failures < limit:
        return timedelta(0)
    return min(FIRST_DELAY * (1 << min(failures - limit, 16)), LONGEST_DELAY)


def _check_attempts(session: Session, username: str, address: str | None) -> tuple[str, ...]:
    """Refuse a sign-in while its account waits at this address, or while the address failed
    too often in the last minute (for any accounts); returns the keys a failure counts under."""
    now = clock.now()
    limit = get_settings().login_attempts_per_minute
    account = f"user:{username.lower()}@{address or ''}"
    failures, last = repository.failures_since(session, account, now - FAILURE_MEMORY)
    wait = (last + failure_delay(failures, limit) - now) if last is not None else timedelta(0)
    if wait > timedelta(0):
        seconds = math.ceil(wait.total_seconds())
        raise TooManyRequests(
            f"too many failed sign-ins; wait {seconds} s and try again", retry_after=seconds
        )
    if not address:
        return (account,)
    per_address = f"addr:{address}"
    recent, _ = repository.failures_since(session, per_address, now - timedelta(minutes=1))
    if recent >= limit * ADDRESS_LIMIT_FACTOR:
        raise TooManyRequests("too many failed sign-ins; wait a minute and try again")
    return account, per_address


def sign_in(
    session: Session, username: str, password: str, *, address: str | None
) -> SignedIn | None:
    """A new session token, or None for a wrong password or unknown user (the same answer).

    A failed attempt is recorded in the caller's transaction, which must be committed even though
    the sign-in failed. While the account waits at this address after failures there (or the
    address failed too often), ``TooManyRequests`` is raised before the password is checked.
    """
    now = clock.now()
    keys = _check_attempts(session, username, address)
    user = repository.get_user_by_username(session, username)
    ok = security.verify_password(user.password_hash if user else None, password)
    if user is None or not ok or not user.is_active:
        for key in keys:
            repository.add_attempt(session, key)
        return None
    repository.forget_attempts(session, keys[0])
    settings = get_settings()
    token = security.new_token()
    auth = AuthSession(
        token_hash=security.token_digest(token),
        user_id=user.id,
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(hours=settings.session_absolute_hours),
        client_address=address,
    )
    session.add(auth)
    audit.record(session, actor=user, action="sign_in", entity="user", entity_id=user.id)
    return SignedIn(token=token, expires_at=auth.expires_at, user=user)


def resolve_token(session: Session, token: str) -> User | None:
    """The active user behind a token, or None if it is unknown, revoked, idle or expired.

    Every API request runs this, so it is one read (the sign-in joined to its user); the sliding
    expiry is written back at most once per ``_TOUCH_EVERY``, not on every request.
    """
    found = repository.get_sign_in_by_digest(session, security.token_digest(token))
    if found is None:
        return None
    auth, user = found
    if auth.revoked_at is not None or not user.is_active:
        return None
    now = clock.now()
    idle = timedelta(minutes=get_settings().session_idle_minutes)
    if now >= auth.expires_at or now - auth.last_seen_at >= idle:
        return None
    if now - auth.last_seen_at >= _TOUCH_EVERY:
        repository.touch_sign_in(session, auth.id, now)
    return user


def sign_out(session: Session, token: str) -> None:
    """Revoke a session token (unknown tokens are ignored: signing out twice is harmless)."""
    auth = repository.get_session_by_digest(session, security.token_digest(token))
    if auth is not None and auth.revoked_at is None:
        auth.revoked_at = clock.now()
