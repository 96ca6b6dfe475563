"""One-time pickup codes for contactless delivery.

The code is *derived*, never stored: ``code = HMAC-SHA256(secret, "pickup:{nonce}")``
reduced to six digits. The parcel keeps only the random nonce and a keyed hash of the code
(``HMAC-SHA256(secret, "check:{nonce}:{code}")``), so a leaked database gives neither the codes
nor a way to test guesses offline (without the server secret six digits would be trivial to
brute-force from a plain hash). The resident can see the code again at any time because the
server re-derives it from the nonce. Guessing is limited per parcel (``MAX_ATTEMPTS`` wrong codes
lock the parcel until a supervisor override) and per courier account (``MAX_PER_ACTOR`` wrong
codes in ``WINDOW``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from relieflink.config import get_settings

MAX_ATTEMPTS = 5
MAX_PER_ACTOR = 20
WINDOW = timedelta(minutes=15)
DIGITS = 6


def _key() -> bytes:
    return get_settings().secret_key.encode()


def new_nonce() -> str:
    return secrets.token_hex(8)


def derive(nonce: str) -> str:
    """The plain code of a parcel (only ever shown to its household's residents)."""
    digest = hmac.new(_key(), f"pickup:{nonce}".encode(), hashlib.sha256).digest()
    return str(int.from_bytes(digest[:8], "big") % 10**DIGITS).zfill(DIGITS)


def digest(nonce: str, code: str) -> str:
    """The keyed hash stored with the parcel."""
    return hmac.new(_key(), f"check:{nonce}:{code}".encode(), hashlib.sha256).hexdigest()


def issue() -> tuple[str, str]:
    """A fresh (nonce, stored hash) pair for a new parcel."""
    nonce = new_nonce()
    return nonce, digest(nonce, derive(nonce))


def matches(nonce: str, code: str, stored: str) -> bool:
    return hmac.compare_digest(digest(nonce, code.strip()), stored)
