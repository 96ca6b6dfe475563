"""``relieflink demo``: the whole operation on a small synthetic city, with a Rich summary."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from relieflink.cli.common import console
from relieflink.sim.demo import run_demo


def demo(
    seed: Annotated[int, typer.Option(help="random seed of the synthetic city")] = 7,
    scale: Annotated[float, typer.Option(help="share of Shanghai's 24.9 M people")] = 0.0005,
    days: Annotated[int, typer.Option(help="simulated days", min=1, max=14)] = 2,
    out: Annotated[
        Path, typer.Option(help="folder for the database, the city and the report")
    ] = Path("relieflink-report"),
) -> None:
    """Simulate relief days on a synthetic city: priority policy against first come, first served.

    Writes an offline HTML report and summary.json.
    """
    if not 0 < scale <= 1:
        console.print("[bold red]error:[/] --scale must be in (0, 1]")
        raise typer.Exit(code=2)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("starting", total=None)
        result = run_demo(
            out=out,
            seed=seed,
            scale=scale,
            days=days,
            progress=lambda m: bar.update(task, description=m),
        )
    summary = result.summary
    table = Table(title=f"RelieFlink demo · seed {seed} · scale {scale} · {result.seconds} s")
    table.add_column("")
    table.add_column("priority", justify="right")
    table.add_column("first come, first served", justify="right")
    for label, key in (
        ("requests", "requests"),
        ("packs delivered", "delivered_packs"),
        ("packs still needed", "unmet_packs"),
        ("failed deliveries", "failed_deliveries"),
        ("dispatch routes driven", "routes_driven"),
        ("vehicle breakdowns (re-planned)", "van_breakdowns"),
    ):
        table.add_row(label, f"{summary['priority'][key]:,}", f"{summary['fifo'][key]:,}")
    for group, p in summary["priority"]["groups"].items():
        f = summary["fifo"]["groups"][group]
        table.add_row(
            f"{group}: median hours / within 24 h",
            f"{_hours(p['median_hours_to_delivery'])} / {_pct(p['served_within_24h'])}",
            f"{_hours(f['median_hours_to_delivery'])} / {_pct(f['served_within_24h'])}",
        )
    console.print(table)
    console.print(f"ledger reconciled: {summary['ledger_reconciled']}")
    console.print(f"report: {result.report}\nsummary: {out / 'summary.json'}")


def _hours(value: float | None) -> str:
    return "not reached" if value is None else f"{value:.1f}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"
