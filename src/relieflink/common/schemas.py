"""Schema building blocks: the ``Page`` envelope and the base model for reads."""

from __future__ import annotations

import copy
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, GetCoreSchemaHandler, ValidationError
from pydantic_core import CoreSchema

from relieflink.common.fields import INT_MAX, INT_MIN, NO_CONTROL_CHARACTERS, Count
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


def _bound_inputs(node: Any) -> None:
    """Add :class:`StrictModel`'s two rules to every ``int`` and ``str`` in a core schema."""
    if isinstance(node, list):
        for child in node:
            _bound_inputs(child)
        return
    if not isinstance(node, dict):
        return
    for child in node.values():
        _bound_inputs(child)
    if node.get("type") == "int":
        if "le" not in node and "lt" not in node:
            node["le"] = INT_MAX
        if "ge" not in node and "gt" not in node:
            node["ge"] = INT_MIN
    elif node.get("type") == "str":
        if "pattern" not in node:
            node["pattern"] = NO_CONTROL_CHARACTERS
        elif node["pattern"] != NO_CONTROL_CHARACTERS:  # a field's own pattern, and this one
            own = dict(node)
            node.clear()
            node.update(
                type="chain", steps=[own, {"type": "str", "pattern": NO_CONTROL_CHARACTERS}]
            )


class StrictModel(BaseModel):
    """Input (request bodies and queries, forms, import rows): unknown fields are an error, not
    silently dropped; no NaN or infinity; and two rules for every field, in this one place:
    an integer fits the database's 32-bit integer unless its field sets its own limit (amounts
    in fen: :data:`~relieflink.common.fields.Fen`), and text holds no control character. They
    are written into the validator itself (pydantic-core checks them, so an import of a million
    rows pays nothing in Python) and into the JSON schema the OpenAPI document shows."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, allow_inf_nan=False)

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: type[BaseModel], handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        schema = copy.deepcopy(handler(source))  # nested schemas may be shared: edit a copy
        _bound_inputs(schema)
        return schema


class ListQuery(StrictModel):
    """Query parameters of a list endpoint: the page, plus each kind's filters in subclasses."""

    offset: Count = 0
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
