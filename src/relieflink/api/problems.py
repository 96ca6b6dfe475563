"""One error format for every error: RFC 9457 problem details with field paths."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from relieflink.errors import RelieflinkError

PROBLEM_JSON = "application/problem+json"


class Problem(BaseModel):
    """The problem document (RFC 9457), as the OpenAPI document describes every error."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[dict[str, Any]] = Field(
        description="each with ``loc`` (the field path), ``msg`` and ``type``"
    )


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


def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    response = problem(exc.status_code, str(exc.detail), str(exc.detail))
    response.headers.update(exc.headers or {})
    if exc.status_code == 405:  # Starlette names the methods of the first route of the path
        response.headers["Allow"] = ", ".join(_allowed_methods(request))
    return response


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route of the request's path answers."""
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        regex = getattr(route, "path_regex", None)
        if regex is not None and regex.match(request.scope["path"]):
            methods |= route.methods or set()
    return sorted(methods)


def _server_error(_request: Request, _exc: Exception) -> JSONResponse:
    """A bug: 500 as a problem document. The server logs the exception (Starlette raises it
    again once this answer is sent); the client learns nothing of it."""
    return problem(500, "Internal Server Error", "an unexpected error; it has been logged")


def install(app: FastAPI) -> None:
    """Register the handlers that turn errors into problem details, and describe them in the
    OpenAPI document."""
    app.add_exception_handler(RelieflinkError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _server_error)
    app.openapi = _with_problems(app.openapi)  # type: ignore[method-assign]


# Which errors an operation can answer, from what it declares: a bearer token (401; 403 where a
# role or the row does not allow it), a path parameter (404: no such record), any input (422).
# Everything else (409, 413, 429, 503 ...) is the ``default`` response: a problem document too.
_ERRORS = {
    401: "not signed in: the token is missing, expired or revoked",
    403: "signed in, but this role or this record is not allowed",
    404: "no record with this id",
    422: "the input does not match the schema, or would make an invalid record",
}


def _with_problems(openapi: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    def document() -> dict[str, Any]:
        spec = openapi()  # FastAPI builds it once and keeps it; so is this done once
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        if "Problem" in schemas:
            return spec
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        schemas["Problem"] = Problem.model_json_schema()
        for operations in spec["paths"].values():
            for operation in operations.values():
                _describe_errors(operation)
        return spec

    return document


def _describe_errors(operation: dict[str, Any]) -> None:
    content = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    params = operation.get("parameters", [])
    statuses = set()
    if operation.get("security"):
        statuses |= {401, 403}
    if any(p["in"] == "path" for p in params):
        statuses.add(404)
    if params or "requestBody" in operation:
        statuses.add(422)
    responses = operation.setdefault("responses", {})
    responses.pop("422", None)  # FastAPI's own, in a format it does not send here
    for status in sorted(statuses):
        responses[str(status)] = {"description": _ERRORS[status], "content": content}
    responses["default"] = {"description": "any other error", "content": content}
