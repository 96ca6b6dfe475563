"""``relieflink pledges``: list pledges, change their status, export IATI, send webhooks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.table import Table

from relieflink.cli.common import console, transaction
from relieflink.donations import service as donations
from relieflink.donations.schemas import PledgeFilters
from relieflink.models import PledgeStatus
from relieflink.stock import exports

app = typer.Typer(help="Donors' pledges and partner coordination.", no_args_is_help=True)


@app.command("list")
def list_pledges(
    program: Annotated[int | None, typer.Option(help="program id")] = None,
    status: Annotated[PledgeStatus | None, typer.Option()] = None,
) -> None:
    """Pledges, newest last."""
    with transaction() as session:
        rows, total = donations.list_pledges(
            session, PledgeFilters(program_id=program, status=status, limit=500), actor=None
        )
        table = Table(title=f"{total} pledges")
        for col in ("id", "program", "donor", "recipient", "value CNY", "arrival", "status"):
            table.add_column(col)
        for p in rows:
            table.add_row(str(p.id), str(p.program_id), str(p.donor_org_id),
                          str(p.recipient_org_id), f"{p.declared_value_fen / 100:,.2f}",
                          str(p.expected_arrival or "-"), str(p.status))  # fmt: skip
    console.print(table)


@app.command("status")
def change_status(
    pledge_id: int,
    status: PledgeStatus,
    note: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Confirm, cancel or close a pledge (recorded, posted to its thread, sent to webhooks)."""
    with transaction() as session:
        pledge = donations.change_status(session, pledge_id, status, actor=None, note=note)
    console.print(f"pledge {pledge.id}: {pledge.status}")


@app.command("iati")
def iati(program_id: int, out: Path) -> None:
    """Write a program's pledges and disbursements as an IATI activity file."""
    with transaction() as session:
        out.write_bytes(exports.iati_activity_xml(session, program_id))
    console.print(f"wrote {out}")


@app.command("deliver-webhooks")
def deliver_webhooks(
    limit: Annotated[int, typer.Option(min=1)] = 100,
    timeout: Annotated[float, typer.Option(help="seconds per request")] = 10.0,
) -> None:
    """Send queued webhook events (HMAC-SHA256 signed); failures are retried next time."""
    with httpx.Client(timeout=timeout) as client:

        def post(url: str, body: bytes, headers: dict[str, str]) -> int:
            return client.post(url, content=body, headers=headers).status_code

        with transaction() as session:
            counts = donations.deliver_pending(session, post=post, limit=limit)
    console.print(", ".join(f"{k}: {v}" for k, v in counts.items()))
