"""The create/update rules every registry record shares: unique code, existing references, audit.

Domain services call these with their own model and schema, so each domain keeps a typed,
explicit surface while the rules stay in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel
from sqlalchemy.orm import Session

from relieflink.audit import service as audit
from relieflink.common import repository as common
from relieflink.db import Base
from relieflink.errors import Conflict, FieldError, Invalid, NotFound

if TYPE_CHECKING:
    from relieflink.models import User

M = TypeVar("M", bound=Base)


def require(session: Session, model: type[M], id_: int, *, label: str) -> M:
    """The record with this id; ``NotFound`` naming ``label`` if there is none."""
    obj = common.get_by_id(session, model, id_)
    if obj is None:
        raise NotFound(f"no {label} with id {id_}")
    return obj


def check_references(
    session: Session,
    values: Mapping[str, Any],
    refs: Mapping[str, type[Base]],
    *,
    message: str = "the record refers to rows that do not exist",
) -> None:
    """Every foreign key in ``values`` named in ``refs`` points at an existing row."""
    errors = [
        FieldError((field,), f"no {model.__tablename__[:-1]} with id {values[field]}")
        for field, model in refs.items()
        if values.get(field) is not None and common.get_by_id(session, model, values[field]) is None
    ]
    if errors:
        raise Invalid(message, errors)


def create(
    session: Session,
    model: type[M],
    data: BaseModel,
    *,
    actor: User | None,
    entity: str,
    refs: Mapping[str, type[Base]] | None = None,
    code_field: str = "code",
    exclude: set[str] | None = None,
) -> M:
    """Insert a record from ``data`` after checking its code is free and its references exist."""
    values = data.model_dump(exclude=exclude)
    code = values.get(code_field)
    if code is not None and common.get_by_code(session, model, code, column=code_field):
        raise Conflict(
            f"a {entity} with {code_field} {code!r} exists already",
            [FieldError((code_field,), "already taken")],
        )
    check_references(session, values, refs or {})
    obj = model(**values)
    session.add(obj)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="create",
        entity=entity,
        entity_id=obj.id,  # type: ignore[attr-defined]
        detail={code_field: code} if code is not None else None,
    )
    return obj


def update(
    session: Session,
    obj: M,
    data: BaseModel,
    *,
    actor: User | None,
    entity: str,
    refs: Mapping[str, type[Base]] | None = None,
    exclude: set[str] | None = None,
) -> M:
    """Apply the fields ``data`` sets (``exclude_unset``) and audit what changed."""
    changes = data.model_dump(exclude_unset=True, exclude=exclude)
    check_references(session, changes, refs or {})
    diff = common.apply_update(obj, changes)
    if diff:
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="update",
            entity=entity,
            entity_id=obj.id,  # type: ignore[attr-defined]
            detail={k: [_jsonable(v) for v in pair] for k, pair in diff.items()},
        )
    return obj


def _jsonable(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool | None) else str(value)
