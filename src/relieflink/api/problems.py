"""One error format for every 4xx: RFC 9457 problem details with field paths."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from relieflink.errors import RelieflinkError

PROBLEM_JSON = "application/problem+json"


def problem_document(
    status: int, title: str, detail: str, errors: Sequence[Mapping[str, Any]] = ()
) -> dict[str, Any]:
    """The problem document: every refusal the API answers (an error handler, the
    Idempotency-Key middleware, rate limiting, one refused event of a batch) is built here."""
    return {
        "type": f"https://relieflink.org/problems/{status}",
        "title": title,
        "status": status,
        "detail": detail,
        "errors": [dict(e) for e in errors],
    }


def error_document(exc: RelieflinkError) -> dict[str, Any]:
    """The problem document of a domain error."""
    return problem_document(
        exc.status_code, exc.title, exc.message, [e.as_dict() for e in exc.errors]
    )


def validation_errors(
    errors: Iterable[Mapping[str, Any]], prefix: Sequence[str | int] = ()
) -> list[dict[str, Any]]:
    """Pydantic's errors as the document's ``errors[]`` (``loc`` under ``prefix``)."""
    return [
        {"loc": [*prefix, *err["loc"]], "msg": err["msg"], "type": err["type"]} for err in errors
    ]


def problem(
    status: int, title: str, detail: str, errors: Sequence[Mapping[str, Any]] = ()
) -> JSONResponse:
    """A problem document as a response."""
    return _respond(problem_document(status, title, detail, errors))


def error_problem(exc: RelieflinkError) -> JSONResponse:
    """The response to a domain error."""
    return _respond(error_document(exc), retry_after=getattr(exc, "retry_after", None))


def _respond(document: dict[str, Any], *, retry_after: int | None = None) -> JSONResponse:
    status = document["status"]
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None  # ask for a bearer token
    if status in (429, 503):
        headers = {"Retry-After": str(retry_after or 60)}
    return JSONResponse(document, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _domain_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RelieflinkError)
    return error_problem(exc)


def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = validation_errors(exc.errors())
    return problem(422, "Invalid input", "the request does not match the schema", errors)


def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return problem(exc.status_code, str(exc.detail), str(exc.detail))


def install(app: FastAPI) -> None:
    """Register the handlers that turn errors into problem details."""
    app.add_exception_handler(RelieflinkError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
