"""``relieflink pledges``: list pledges, change their status, export IATI, send webhooks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from relieflink.cli.common import console, transaction
from relieflink.donations import service as donations
from relieflink.donations.schemas import PledgeFilters
from relieflink.jobs import runner, webhooks
from relieflink.jobs import service as jobs
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
    dead: Annotated[bool, typer.Option("--dead", help="list the dead-letter list instead")] = False,
    resend: Annotated[
        int | None, typer.Option(help="send this dead delivery again (fresh retries)")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="at most this many deliveries")] = 100,
) -> None:
    """Send the webhook events due now, in this process (workers also send them on their own,
    retrying with backoff); ``--dead`` lists those that gave up, ``--resend ID`` re-sends one."""
    if dead:
        _list_dead(limit)
        return
    worker = runner.Worker()
    if resend is not None:
        with transaction() as session:
            donations.resend_delivery(session, resend)
    worker.feed()  # a job for each pending delivery that has none (the resent one too)
    with transaction() as session:
        if resend is not None:
            delivery = donations.get_delivery(session, resend)
            due = [delivery.job_id] if delivery is not None and delivery.job_id else []
        else:
            due = jobs.due_job_ids(session, kind=webhooks.KIND, limit=limit)
    for job_id in due:
        worker.run_one(job_id=job_id)
    with transaction() as session:
        counts = donations.delivery_counts(session)
    console.print(f"sent {len(due)} now; " + ", ".join(f"{k}: {v}" for k, v in counts.items()))


def _list_dead(limit: int) -> None:
    with transaction() as session:
        rows = donations.dead_deliveries(session, limit=limit)
        table = Table(title=f"{len(rows)} dead webhook deliveries")
        for col in ("id", "event", "organization", "url", "attempts", "last answer", "created"):
            table.add_column(col)
        for delivery, hook in rows:
            answer = delivery.last_error or f"HTTP {delivery.last_status_code}"
            created = f"{delivery.created_at:%Y-%m-%d %H:%M}"
            table.add_row(str(delivery.id), delivery.event, str(hook.organization_id), hook.url,
                          str(delivery.attempts), answer, created)  # fmt: skip
    console.print(table)
