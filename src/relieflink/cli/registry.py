"""``relieflink registry``: list, show, create and update any registry record from the shell.

The same services and schemas as the JSON API (:data:`relieflink.registry.REGISTRY`), so the same
validation, the same audit log and the same errors (each field's path and reason). Households are
left to the API and the web pages, where the caller's role scopes what is seen; the command line
acts as the operator.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from pydantic import BaseModel, ValidationError
from rich.table import Table

from relieflink.cli.common import console, fail, transaction
from relieflink.errors import FieldError, Invalid
from relieflink.registry import REGISTRY, RegistryKind

app = typer.Typer(help="List, show, create and update registry records.", no_args_is_help=True)


KINDS = REGISTRY
KIND_HELP = f"one of: {', '.join(KINDS)}"
SET_HELP = "field=value (repeatable); a value that parses as JSON is taken as JSON"


def _kind(name: str) -> RegistryKind:
    if name not in KINDS:
        raise fail(Invalid(f"unknown kind {name!r}; {KIND_HELP}"))
    return KINDS[name]


def _fields(pairs: list[str], data: str | None) -> dict[str, Any]:
    values: dict[str, Any] = json.loads(data) if data else {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep:
            raise fail(Invalid(f"--set {pair!r}: write field=value"))
        try:
            values[name.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            values[name.strip()] = raw
    return values


def _validated(schema: type[BaseModel], values: dict[str, Any]) -> BaseModel:
    try:
        return schema.model_validate(values)
    except ValidationError as exc:
        errors = [FieldError(tuple(e["loc"]), e["msg"]) for e in exc.errors(include_url=False)]
        raise fail(Invalid("the record is not valid", errors)) from None


def _print(record: BaseModel) -> None:
    console.print_json(record.model_dump_json())


@app.command("list")
def list_records(
    kind: Annotated[str, typer.Argument(help=KIND_HELP)],
    where: Annotated[list[str], typer.Option("--where", help="filter=value")] = [],  # noqa: B006
    offset: int = 0,
    limit: int = 50,
) -> None:
    """List records (paged, filtered as the API's list endpoints are)."""
    spec = _kind(kind)
    filters = _validated(spec.filters, _fields(where, None) | {"offset": offset, "limit": limit})
    with transaction() as session:
        rows, total = spec.list_fn(session, filters, offset=offset, limit=limit)
        shown = [spec.show(r).model_dump(mode="json") for r in rows]
    table = Table(title=f"{kind}: {len(shown)} of {total}")
    columns = [c for c in (shown[0] if shown else {}) if not isinstance(shown[0][c], list | dict)]
    for column in columns:
        table.add_column(column)
    for row in shown:
        table.add_row(*(str(row[c]) for c in columns))
    console.print(table)


@app.command("show")
def show_record(kind: Annotated[str, typer.Argument(help=KIND_HELP)], record_id: int) -> None:
    """Show one record as JSON."""
    spec = _kind(kind)
    with transaction() as session:
        _print(spec.show(spec.require_fn(session, record_id)))


@app.command("create")
def create_record(
    kind: Annotated[str, typer.Argument(help=KIND_HELP)],
    set_: Annotated[list[str], typer.Option("--set", help=SET_HELP)] = [],  # noqa: B006
    data: Annotated[str | None, typer.Option("--json", help="the whole record as JSON")] = None,
) -> None:
    """Create a record (validated like the API's POST)."""
    spec = _kind(kind)
    body = _validated(spec.create, _fields(set_, data))
    with transaction() as session:
        _print(spec.show(spec.create_fn(session, body, actor=None)))


@app.command("update")
def update_record(
    kind: Annotated[str, typer.Argument(help=KIND_HELP)],
    record_id: int,
    set_: Annotated[list[str], typer.Option("--set", help=SET_HELP)] = [],  # noqa: B006
) -> None:
    """Change the given fields of a record (the others are left as they are)."""
    spec = _kind(kind)
    body = _validated(spec.update, _fields(set_, None))
    with transaction() as session:
        _print(spec.show(spec.update_fn(session, record_id, body, actor=None)))
