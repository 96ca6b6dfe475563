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
    scale: Annotated[float, typer.Option(help="share of Shanghai's 24.9 M people")] = 0.002,
    out: Annotated[
        Path, typer.Option(help="folder for the database, the city and the report")
    ] = Path("relieflink-report"),
) -> None:
    """Generate a synthetic city, load it into a fresh SQLite database and summarise it."""
    if not 0 < scale <= 1:
        console.print("[bold red]error:[/] --scale must be in (0, 1]")
        raise typer.Exit(code=2)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("starting", total=None)
        summary = run_demo(
            out=out, seed=seed, scale=scale, progress=lambda m: bar.update(task, description=m)
        )
    table = Table(title=f"RelieFlink demo · seed {seed} · scale {scale} · {summary.seconds} s")
    table.add_column("what")
    table.add_column("count", justify="right")
    for kind, count in summary.counts.items():
        table.add_row(kind, f"{count:,}")
    for group, count in summary.vulnerable_households.items():
        table.add_row(f"households with {group}", f"{count:,}")
    for status, count in summary.lockdown.items():
        table.add_row(f"communities {status}", f"{count:,}")
    for sku, kcal in summary.kits.items():
        table.add_row(f"{sku} kcal/person/day", f"{kcal:,.0f}")
    console.print(table)
    console.print(f"database: {summary.database}\nsummary: {out / 'summary.json'}")
