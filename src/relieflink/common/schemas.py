"""Schema building blocks: the ``Page`` envelope and the base model for reads."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from relieflink.errors import FieldError, Invalid

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


def validate_as(schema: type[M], data: dict[str, Any]) -> M:
    """Validate ``data`` with ``schema`` inside a service; errors become ``Invalid`` with paths."""
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        errors = [
            FieldError(tuple(e["loc"]), e["msg"].removeprefix("Value error, "), e["type"])
            for e in exc.errors(include_url=False)
        ]
        raise Invalid("the resulting record would not be valid", errors) from None


class ReadModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class StrictModel(BaseModel):
    """Request bodies: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ListQuery(StrictModel):
    """Query parameters of a list endpoint: the page, plus each kind's filters in subclasses."""

    offset: int = Field(default=0, ge=0)
    limit: int = Field(default=50, ge=1, le=500)


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    offset: int
    limit: int


class ProblemRead(BaseModel):
    """Why one item of a batch was refused (the problem the single endpoint would answer)."""

    status: int
    title: str
    detail: str
    errors: list[dict[str, Any]] = Field(default_factory=list)
