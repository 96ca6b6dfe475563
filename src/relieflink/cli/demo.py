"""``relieflink demo``: the whole operation on a small synthetic city, with a Rich summary."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from relieflink.cli.common import console


def demo(
    seed: Annotated[int, typer.Option(help="random seed of the synthetic city")] = 7,
    scale: Annotated[float, typer.Option(help="share of Shanghai's 24.9 M people")] = 0.0005,
    days: Annotated[
        int,
        typer.Option(help="simulated days of requests (deliveries go on one more)", min=1, max=14),
    ] = 2,
    seeds: Annotated[
        int, typer.Option(help="run seeds seed … seed+N-1; figures are medians", min=1, max=20)
    ] = 1,
    supply: Annotated[
        float | None,
        typer.Option(help="donated packs per entitled pack (default 0.7: scarce)", min=0.01),
    ] = None,
    assume: Annotated[
        list[str] | None,
        typer.Option(
            help="what-if: change an assumption of sim/assumptions.py, NAME=VALUE "
            "(repeatable), e.g. breakdown_share=0.02"
        ),
    ] = None,
    out: Annotated[
        Path, typer.Option(help="folder for the database, the city and the report")
    ] = Path("relieflink-report"),
) -> None:
    """Simulate relief days on a synthetic city: priority policy against first come, first served.

    Writes an offline HTML report and summary.json.
    """
    # Imported here: the simulation and its charts cost every other command a second.
    from relieflink.sim.assumptions import ASSUMPTIONS, with_changes
    from relieflink.sim.demo import run_demo
    from relieflink.sim.report import figure_rows

    if not 0 < scale <= 1:
        console.print("[bold red]error:[/] --scale must be in (0, 1]")
        raise typer.Exit(code=2)
    changes = {}
    for k, text in enumerate(assume or [], 1):
        name, eq, raw = text.partition("=")
        if not eq or not name.strip():
            console.print(f"[bold red]error:[/] --assume #{k} {text!r}: expected NAME=VALUE")
            raise typer.Exit(code=2)
        changes[name.strip()] = raw.strip()
    try:
        with_changes(ASSUMPTIONS, changes)
    except ValueError as exc:
        console.print(f"[bold red]error:[/] --assume {exc}")
        raise typer.Exit(code=2) from None
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("starting", total=None)
        result = run_demo(
            out=out,
            seed=seed,
            scale=scale,
            days=days,
            seeds=seeds,
            supply=supply,
            assume=changes,
            progress=lambda m: bar.update(task, description=m),
        )
    summary = result.summary
    runs = summary["seeds"]
    over = f"seed {seed}" if len(runs) == 1 else f"median over seeds {runs[0]}–{runs[-1]}"
    table = Table(
        title=f"RelieFlink demo · {over} · scale {scale} · "
        f"supply {summary['supply_ratio']:.0%} of need · {result.seconds} s"
    )
    table.add_column("")
    table.add_column("priority", justify="right")
    table.add_column("first come, first served", justify="right")
    for label, value in figure_rows(summary):
        table.add_row(label, value("priority"), value("fifo"))
    console.print(table)
    if summary["assumptions_changed"]:
        what_if = ", ".join(f"{k} = {v}" for k, v in summary["assumptions_changed"].items())
        console.print(f"what-if: {what_if} (sim/assumptions.py otherwise)")
    console.print(f"ledger reconciled: {summary['ledger_reconciled']}")
    console.print(f"report: {result.report}\nsummary: {out / 'summary.json'}")
