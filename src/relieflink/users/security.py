"""Password hashing (Argon2id) and opaque session tokens (stored as SHA-256)."""

from __future__ import annotations

import hashlib
import secrets
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from relieflink.config import get_settings

_low_cost = False


def use_low_cost_hashing() -> None:
    """From now on this process hashes at the test suite's cost: for a process whose users are
    all synthetic with published passwords (a simulation), where the full cost (tens of ms per
    user, thousands of simulated residents) protects nothing."""
    global _low_cost
    _low_cost = True
    _hasher.cache_clear()


@lru_cache
def _hasher() -> tuple[PasswordHasher, str]:
    """Argon2id with its library defaults (RFC 9106 low-memory profile); the test suite uses a
    cheaper cost, which the hash records, so it still verifies the real scheme end to end."""
    if _low_cost or get_settings().environment == "test":
        hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    else:
        hasher = PasswordHasher()
    # Verified against when the username is unknown, so that both failures cost the same time.
    return hasher, hasher.hash(secrets.token_hex(16))


def hash_password(password: str) -> str:
    return _hasher()[0].hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True if ``password`` matches; always does the Argon2 work, even for an unknown user."""
    hasher, dummy = _hasher()
    try:
        return hasher.verify(password_hash or dummy, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
