"""What every command shares: the console, the transaction, and one way to report errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from sqlalchemy.orm import Session

from relieflink.db import get_engine, require_migrated, session_scope
from relieflink.errors import RelieflinkError

console = Console()
err_console = Console(stderr=True)


def fail(exc: RelieflinkError) -> typer.Exit:
    """Print ``exc`` as a clear message (one line per field error) and return the exit to raise."""
    err_console.print(f"[bold red]error:[/] {exc.message}", highlight=False)
    for error in exc.errors:
        if len(error.loc) >= 2 and error.loc[0] == "line":  # a file row: line N, column name
            where = f"line {error.loc[1]}" + "".join(f", {part}" for part in error.loc[2:] if part)
        else:
            where = ".".join(str(part) for part in error.loc)
        err_console.print(f"  {where}: {error.msg}", highlight=False, markup=False, soft_wrap=True)
    return typer.Exit(code=1)


@contextmanager
def transaction() -> Iterator[Session]:
    """A committed-on-success session on a migrated database; domain errors exit non-zero."""
    try:
        require_migrated(get_engine())
        with session_scope() as session:
            yield session
    except RelieflinkError as exc:
        raise fail(exc) from None
