"""Generic SQL used by every registry repository: fetch by id or code, pages, bulk code maps."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar, cast

from sqlalchemy import ColumnElement, Select, any_, bindparam, func, inspect, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from relieflink.db import Base
from relieflink.errors import FieldError, Invalid

M = TypeVar("M", bound=Base)
S = TypeVar("S")
_SCAN_ABOVE = 20_000


def get_by_id(session: Session, model: type[M], id_: int) -> M | None:
    return session.get(model, id_)


def get_by_code(session: Session, model: type[M], code: str, *, column: str = "code") -> M | None:
    return session.scalars(select(model).where(getattr(model, column) == code)).one_or_none()


def page(
    session: Session, stmt: Select[M], *, offset: int, limit: int, order_by: Any
) -> tuple[Sequence[M], int]:
    """One page of ``stmt`` and the total number of rows it matches."""
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    rows = session.scalars(stmt.order_by(order_by).offset(offset).limit(limit)).all()
    return rows, total


def one_of(session: Session, column: Any, values: Sequence[Any]) -> ColumnElement[bool]:
    """``column`` is one of ``values``: one array parameter on PostgreSQL (``= ANY(:values)``:
    no statement of thousands of placeholders for the driver to build and parse), ``IN (...)``
    elsewhere."""
    if session.get_bind().dialect.name == "postgresql":
        array = bindparam(None, list(values), type_=postgresql.ARRAY(column.type))
        return cast(ColumnElement[bool], column == any_(array))
    return cast(ColumnElement[bool], column.in_(values))


def _array_param(column: Any, name: str) -> ColumnElement[bool]:
    array = bindparam(name, type_=postgresql.ARRAY(column.type))
    return cast(ColumnElement[bool], column == any_(array))


def _expanding_param(column: Any, name: str) -> ColumnElement[bool]:
    return cast(ColumnElement[bool], column.in_(bindparam(name, expanding=True)))


#: What a prebuilt statement's builder gets: ``one_of(column, "name")`` is the condition that
#: ``column`` is one of the list passed as parameter ``name``.
OneOfParam = Callable[[Any, str], ColumnElement[bool]]


class Prebuilt(Generic[S]):
    """A hot-path statement built once per dialect, with its id lists as list parameters.

    ``build(one_of)`` makes the statement; ``one_of(column, "ids")`` is ``column = ANY(:ids)``
    (one array parameter) on PostgreSQL, so the statement's text is the same for any number of
    ids and psycopg prepares it once per connection; an expanding ``IN`` elsewhere. Calling the
    object with a session gives the statement for its dialect, built at the
    first call (SQLAlchemy then reuses its cache key and compiled form: building a statement
    costs more CPU than PostgreSQL spends running a small one)."""

    def __init__(self, build: Callable[[OneOfParam], S]) -> None:
        self._build = build
        self._built: dict[bool, S] = {}

    def __call__(self, session: Session) -> S:
        postgres = session.get_bind().dialect.name == "postgresql"
        built = self._built.get(postgres)
        if built is None:
            built = self._built[postgres] = self._build(
                _array_param if postgres else _expanding_param
            )
        return built


def ids_by_code(
    session: Session, model: type[Base], codes: Iterable[str], *, column: str = "code"
) -> dict[str, int]:
    """Map codes to primary keys for the given codes (for bulk imports).

    Small sets are looked up with one array parameter on PostgreSQL (``= ANY(:codes)``: no
    statement of 20,000 placeholders for the driver to build and parse), in chunks of
    ``IN (...)`` elsewhere; for a large set one scan of the code column is much cheaper than
    hundreds of chunked lookups.
    """
    col = getattr(model, column)
    primary_key = inspect(model).primary_key[0]
    wanted = list(dict.fromkeys(codes))
    if len(wanted) > _SCAN_ABOVE:
        if session.execute(select(primary_key).limit(1)).first() is None:
            return {}
        wanted_set = set(wanted)
        rows = session.execute(select(col, primary_key)).all()
        return {code: id_ for code, id_ in rows if code in wanted_set}
    if wanted and session.get_bind().dialect.name == "postgresql":
        return dict(
            session.execute(select(col, primary_key).where(one_of(session, col, wanted))).all()
        )
    found: dict[str, int] = {}
    for start in range(0, len(wanted), 5000):
        chunk = wanted[start : start + 5000]
        found.update(session.execute(select(col, primary_key).where(col.in_(chunk))).all())
    return found


def codes_by_id(session: Session, model: type[Base], *, column: str = "code") -> dict[int, str]:
    """Every row's code by primary key (for exports, which write codes instead of ids)."""
    primary_key = inspect(model).primary_key[0]
    return dict(session.execute(select(primary_key, getattr(model, column))).all())


def apply_update(obj: Base, changes: dict[str, Any]) -> dict[str, Any]:
    """Set the changed attributes on ``obj``; return ``{field: [old, new]}`` for the audit log.
    An explicit null for a column that must hold a value is refused (an update's fields are all
    optional: null there means "no change" only when the field is left out)."""
    columns = inspect(type(obj)).columns
    nulled = [
        k for k, v in changes.items() if v is None and k in columns and not columns[k].nullable
    ]
    if nulled:
        errors = [
            FieldError((k,), "may not be null: leave the field out to keep it") for k in nulled
        ]
        raise Invalid("a required field was set to null", errors)
    diff: dict[str, Any] = {}
    for key, value in changes.items():
        old = getattr(obj, key)
        if old != value:
            diff[key] = [old, value]
            setattr(obj, key, value)
    return diff
