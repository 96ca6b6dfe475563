"""Routes for a registry record: list (paged, filtered), read, create, update.

Each registry kind has the same four endpoints with the same rules; one factory keeps them alike.
The route functions are built here with the kind's schemas as their annotations, which FastAPI
reads to validate input and to document the OpenAPI schema.
"""

from collections.abc import Callable, Sequence
from typing import Annotated, Any, cast

from fastapi import APIRouter, Query, status
from pydantic import BaseModel

from relieflink.api.deps import SessionDep, require_role
from relieflink.common.fields import Id
from relieflink.common.schemas import ListQuery, Page
from relieflink.models import Role, User


def registry_routes(
    router: APIRouter,
    *,
    path: str,
    label: str,
    read_schema: type[BaseModel],
    create_schema: type[BaseModel],
    update_schema: type[BaseModel],
    filters_schema: type[BaseModel],
    list_fn: Callable[..., tuple[Sequence[Any], int]],
    require_fn: Callable[..., Any],
    create_fn: Callable[..., Any],
    update_fn: Callable[..., Any],
    readers: frozenset[Role],
    writers: frozenset[Role],
    to_read: Callable[[Any], BaseModel] | None = None,
) -> None:
    """Add ``GET path``, ``GET path/{id}``, ``POST path`` and ``PATCH path/{id}`` to ``router``."""
    convert = to_read or read_schema.model_validate

    @router.get(path, response_model=Page[read_schema], summary=f"List {label}s")  # type: ignore[valid-type]
    def list_records(
        session: SessionDep,
        user: Annotated[User, require_role(readers)],
        query: Annotated[filters_schema, Query()],  # type: ignore[valid-type]
    ) -> Page[Any]:
        page = cast(ListQuery, query)
        rows, total = list_fn(session, page, offset=page.offset, limit=page.limit)
        return Page(
            items=[convert(r) for r in rows], total=total, offset=page.offset, limit=page.limit
        )

    @router.get(f"{path}/{{record_id}}", response_model=read_schema, summary=f"Read one {label}")
    def read_record(
        record_id: Id, session: SessionDep, user: Annotated[User, require_role(readers)]
    ) -> BaseModel:
        return convert(require_fn(session, record_id))

    @router.post(
        path,
        response_model=read_schema,
        status_code=status.HTTP_201_CREATED,
        summary=f"Create a {label}",
    )
    def create_record(
        data: create_schema,  # type: ignore[valid-type]
        session: SessionDep,
        user: Annotated[User, require_role(writers)],
    ) -> BaseModel:
        return convert(create_fn(session, data, actor=user))

    @router.patch(f"{path}/{{record_id}}", response_model=read_schema, summary=f"Change a {label}")
    def update_record(
        record_id: Id,
        data: update_schema,  # type: ignore[valid-type]
        session: SessionDep,
        user: Annotated[User, require_role(writers)],
    ) -> BaseModel:
        return convert(update_fn(session, record_id, data, actor=user))
