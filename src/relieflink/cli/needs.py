"""``relieflink requests`` and ``relieflink allocate``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from relieflink import clock
from relieflink.cli.common import console, transaction
from relieflink.flows import allocation
from relieflink.needs import allocation as allocation_rules
from relieflink.needs import service as needs
from relieflink.needs.policy import load_policy

requests_app = typer.Typer(help="Requests for help.", no_args_is_help=True)


@requests_app.command("import")
def import_requests(
    file: Annotated[
        Path, typer.Argument(help="CSV or XLSX: household_code,kit_sku,item_sku,quantity,note")
    ],
) -> None:
    """Import many households' requests at once (all rows valid, or nothing is created)."""
    with transaction() as session:
        report = needs.import_requests(session, file, actor=None, today=clock.today())
    console.print(f"{report.rows} rows: {report.created} requests created, {report.merged} merged")
    for m in report.merged_rows:
        console.print(f"line {m.line}: the same as line {m.into_line}, merged into it")


def allocate(
    dry_run: Annotated[
        bool, typer.Option(help="show what would be allocated; reserve nothing")
    ] = False,
    policy: Annotated[
        Path | None, typer.Option(help="a ration policy YAML (default: configured)")
    ] = None,
    json_file: Annotated[
        Path | None,
        typer.Option(
            "--json", help="also write the allocations and the capped warehouses to this file"
        ),
    ] = None,
) -> None:
    """Allocate available stock to open requests, the most vulnerable first, fairly.

    Classes are served strictly (medical, infants and mothers, other vulnerable people,
    everyone); within a class nobody gets a second pack while someone eligible has none.
    """
    with transaction() as session:
        chosen = load_policy(policy) if policy else None
        with console.status("allocating…") as status:
            report = allocation.run_allocation(
                session,
                actor=None,
                today=clock.today(),
                dry_run=dry_run,
                policy=chosen,
                progress=lambda message: status.update(message),
                with_allocations=json_file is not None,
            )
        if dry_run:
            session.rollback()
    title = "dry run: nothing reserved" if dry_run else f"allocation run {report.run_id}"
    console.print(
        f"{title} · policy {report.policy_version} · {report.lines:,} lines · "
        f"{report.units_allocated:,} of {report.units_requested:,} units · {report.runtime_s} s"
    )
    if json_file is not None:
        document = {"run_id": report.run_id, "allocations": report.allocations, "caps": report.caps}
        json_file.write_text(json.dumps(document, ensure_ascii=False, indent=1), encoding="utf-8")
        console.print(f"wrote {len(report.allocations):,} allocations to {json_file}")
    if not report.summary:
        return
    groups = Table(title="coverage per vulnerable group: this policy vs first come, first served")
    for column in ("group", "coverage", "FCFS coverage"):
        groups.add_column(column, justify="right" if column != "group" else "left")
    for row in allocation_rules.group_report(report.summary):
        groups.add_row(row.group, _share(row.policy), _share(row.fcfs))
    console.print(groups)
    priority, fcfs = report.summary["priority"], report.summary["fcfs"]
    table = Table(title="coverage per class: this policy vs first come, first served")
    for column in ("class", "coverage", "FCFS coverage", "lines served", "FCFS served", "Gini"):
        table.add_column(column, justify="right" if column != "class" else "left")
    for name, value in priority["coverage"].items():
        gini = priority["gini"][name]
        table.add_row(
            name,
            _share(value),
            _share(fcfs["coverage"][name]),
            _share(priority["lines_served"][name]),
            _share(fcfs["lines_served"][name]),
            "—" if gini is None else f"{gini:.3f}",
        )
    console.print(table)
    for cap in report.caps:
        console.print(allocation_rules.cap_line(cap))
    if priority["unmet_by_item"]:
        console.print(
            "unmet units by item: "
            + ", ".join(f"{k} {v:,}" for k, v in priority["unmet_by_item"].items())
        )


def _share(value: float | None) -> str:
    """A share as a percentage; "—" for a class or group with no lines (nothing to cover)."""
    return "—" if value is None else f"{value:.1%}"
