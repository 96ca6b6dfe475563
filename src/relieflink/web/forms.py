"""Forms that change data: a key per rendered form (a double submit does the work once), field
errors shown next to their fields, and the redirect after a successful POST.

Every such form carries a hidden ``form_key`` made when the page was rendered. The action claims
the key in its own transaction (``idempotency.recall_or_claim``) and stores where it redirected;
a second submit of the same form (a double click, a retry after a lost answer) is redirected
there instead of doing the work again. A refused form rolls back with its key, so the corrected
form may be sent again with the same key.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from fastapi.responses import RedirectResponse

from relieflink.errors import FieldError, Invalid
from relieflink.idempotency import service as idempotency
from relieflink.web.pages import N_, Web

FORM_KEY = "form_key"
_KEY = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def new_form_key() -> str:
    return secrets.token_urlsafe(18)


def _stored_key(key: str) -> str:
    return "web-form:" + key


def replayed(web: Web, key: str | None) -> RedirectResponse | None:
    """Where the first submit of this form went (a 303 there), or None after claiming the key."""
    if not key or not _KEY.match(key):
        raise Invalid("the form is missing its key; reload the page", [FieldError((FORM_KEY,), "")])
    replay = idempotency.recall_or_claim(
        web.session,
        user_id=web.user.id,
        key=_stored_key(key),
        method="POST",
        path=web.request.url.path,
    )
    if replay is None:
        return None
    body = replay.body if isinstance(replay.body, dict) else {}
    return RedirectResponse(str(body.get("location") or web.request.url.path), status_code=303)


def done(web: Web, key: str, location: str) -> RedirectResponse:
    """Remember where this form's work led and go there."""
    idempotency.answer(
        web.session,
        user_id=web.user.id,
        key=_stored_key(key),
        status=303,
        body={"location": location},
    )
    return RedirectResponse(location, status_code=303)


@dataclass
class Errors:
    """Field errors of a form: ``name`` → message (a message id, translated when shown, or the
    service's English text); ``general`` for what belongs to no one field."""

    fields: dict[str, str] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)

    def add(self, name: str, message: str) -> None:
        self.fields.setdefault(name, message)

    def __bool__(self) -> bool:
        return bool(self.fields or self.general)

    def get(self, name: str) -> str | None:
        return self.fields.get(name)


def parse_quantity(raw: str, name: str, errors: Errors, *, signed: bool = False) -> int | None:
    """A whole number of units (positive, or non-zero when ``signed``)."""
    text = raw.strip()
    try:
        value = int(text)
    except ValueError:
        errors.add(name, N_("Enter a whole number."))
        return None
    if signed and value == 0:
        errors.add(name, N_("Must not be zero."))
        return None
    if not signed and value <= 0:
        errors.add(name, N_("Must be more than zero."))
        return None
    if abs(value) > 2**53:
        errors.add(name, N_("Too large."))
        return None
    return value


def parse_money_fen(raw: str, name: str, errors: Errors) -> int | None:
    """A value in yuan with at most two decimals ("12.50") as whole fen; empty is 0."""
    text = raw.strip().replace(",", "")
    if not text:
        return 0
    try:
        value = Decimal(text)
    except InvalidOperation:
        errors.add(name, N_("Enter an amount such as 12.50."))
        return None
    if not value.is_finite() or value < 0 or value != value.quantize(Decimal("0.01")):
        errors.add(name, N_("Enter an amount such as 12.50."))
        return None
    if value > Decimal(10) ** 12:
        errors.add(name, N_("Too large."))
        return None
    return int(value * 100)


def money(fen: int | float | Decimal | None) -> str:
    """Fen as yuan with two decimals and thousands separators (``1,234.50``)."""
    if fen is None:
        return "–"
    return f"{Decimal(str(fen)) / 100:,.2f}"


def row_errors(
    exc_errors: Sequence[FieldError],
    prefix: str,
    rows: Sequence[int],
    errors: Errors,
    *,
    fields: dict[str, str] | None = None,
) -> None:
    """Put a service's ``(prefix, i, field)`` errors on the form's field ``prefix-rows[i]-field``
    (``fields`` renames the service's field to the form's); others become general errors."""
    for error in exc_errors:
        loc = error.loc
        if len(loc) >= 2 and loc[0] == prefix and isinstance(loc[1], int) and loc[1] < len(rows):
            name = str(loc[2]) if len(loc) > 2 else "quantity"
            name = (fields or {}).get(name, name)
            errors.add(f"{prefix}-{rows[loc[1]]}-{name}", error.msg)
        else:
            where = ".".join(str(p) for p in loc)
            errors.general.append(f"{where}: {error.msg}" if where else error.msg)
