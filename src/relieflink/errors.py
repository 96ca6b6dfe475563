"""Domain exceptions. Each entry point (API, web, CLI) maps them in one handler."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FieldError:
    """One problem with one input field: where (a path such as ``lines.2.quantity`` or a CSV
    ``line``/``column``) and why."""

    loc: tuple[str | int, ...]
    msg: str
    type: str = "value_error"

    def as_dict(self) -> dict[str, object]:
        return {"loc": list(self.loc), "msg": self.msg, "type": self.type}


@dataclass(eq=False)
class RelieflinkError(Exception):
    """Base of every error the domain raises on purpose."""

    message: str
    errors: list[FieldError] = field(default_factory=list)
    status_code = 400
    title = "Bad request"

    def __str__(self) -> str:
        return self.message


class NotFound(RelieflinkError):
    status_code = 404
    title = "Not found"


class Conflict(RelieflinkError):
    status_code = 409
    title = "Conflict"


class Unauthorized(RelieflinkError):
    status_code = 401
    title = "Not signed in"


class Forbidden(RelieflinkError):
    status_code = 403
    title = "Forbidden"


class Invalid(RelieflinkError):
    status_code = 422
    title = "Invalid input"


class RetryLater(RelieflinkError):
    """Refused for now: ``retry_after`` says in how many seconds to try again (the API's
    ``Retry-After``)."""

    def __init__(self, message: str, *, retry_after: int = 60) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TooManyRequests(RetryLater):
    status_code = 429
    title = "Too many requests"


class Unavailable(RetryLater):
    """The service cannot answer for now (the database is unreachable)."""

    status_code = 503
    title = "Service unavailable"
