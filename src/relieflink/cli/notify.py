"""``relieflink notify``: check the templates, send what is due, list notices and dead letters,
send a dead one again, and set a household's preferences."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from relieflink.cli.common import console, fail, transaction
from relieflink.config import get_settings
from relieflink.db import get_engine, require_migrated
from relieflink.errors import RelieflinkError
from relieflink.models import NoticeStatus
from relieflink.notices import sender, templates
from relieflink.notices import service as notices

app = typer.Typer(help="Notices to residents (SMS, e-mail).", no_args_is_help=True)


@app.command("check")
def check(
    file: Annotated[
        Path | None, typer.Argument(help="a templates file (default: the configured one)")
    ] = None,
) -> None:
    """Check the notice templates: every event, every language, every placeholder."""
    path = file or get_settings().notices_templates
    try:
        texts = templates.load(path)
    except RelieflinkError as exc:
        raise fail(exc) from None
    console.print(
        f"{path or 'the built-in templates'}: {len(texts)} events × "
        f"{len(templates.LANGUAGES)} languages, all placeholders in place"
    )


@app.command("send")
def send(
    limit: Annotated[int | None, typer.Option(min=1, help="at most this many")] = None,
) -> None:
    """Send the notices due now (the worker does this on its own; this is for a one-off)."""
    require_migrated(get_engine())
    report = sender.deliver_due(limit=limit)
    console.print(str(report))


@app.command("list")
def list_notices(
    dead: Annotated[bool, typer.Option("--dead", help="only the dead letters")] = False,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
) -> None:
    """The newest notices (recipients masked) and the count in each state."""
    with transaction() as session:
        rows = notices.list_notices(
            session, status=NoticeStatus.dead if dead else None, limit=limit
        )
        counts = notices.counts(session)
    table = Table(title="notices: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    for column in ("id", "event", "channel", "to", "status", "tries", "last error"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            str(row.id),
            row.event_key,
            str(row.channel),
            notices.mask(row.recipient, row.channel),
            str(row.status),
            str(row.attempts),
            row.last_error,
        )
    console.print(table)


@app.command("resend")
def resend(notice_id: int) -> None:
    """Send a dead letter again (its tries start over)."""
    with transaction() as session:
        notices.resend(session, notice_id)
    console.print(f"notice {notice_id} is queued again")


@app.command("preferences")
def preferences(
    household_id: int,
    language: Annotated[str | None, typer.Option(help="zh or en")] = None,
    email: Annotated[str | None, typer.Option(help="an address; '' removes it")] = None,
    opt_out: Annotated[
        bool | None, typer.Option("--opt-out/--opt-in", help="stop or restart notices")
    ] = None,
) -> None:
    """Set how a household hears from the operation."""
    with transaction() as session:
        pref = notices.set_preference(
            session, household_id, language=language, email=email, opted_out=opt_out
        )
        state = "opted out" if pref.opted_out else "notices on"
        console.print(f"household {household_id}: {pref.language}, {state}")
