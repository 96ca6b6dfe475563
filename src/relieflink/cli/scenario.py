"""``relieflink scenario``: generate a synthetic city as CSV files for ``relieflink import``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from relieflink.scenario import CityManifest, derived_rates, generate_city
from relieflink.scenario import figures as fg

app = typer.Typer(
    help="Synthetic cities from public aggregate figures (deterministic by seed).",
    no_args_is_help=True,
)


@app.callback()
def _scenario() -> None:
    """Synthetic cities from public aggregate figures (deterministic by seed)."""


@app.command()
def generate(
    out: Path = typer.Option(..., "--out", help="Directory to write the CSV files into."),
    city: str = typer.Option("shanghai", "--city", help="City whose figures to use."),
    scale: float = typer.Option(
        0.01, "--scale", help="Share of the real city in (0, 1]; 1.0 ≈ 25 M people."
    ),
    seed: int = typer.Option(7, "--seed", help="Random seed; same seed, same files."),
) -> None:
    """Generate districts, communities, households, warehouses, fleet, donors and pledges."""
    console = Console()
    err = Console(stderr=True)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f} %"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(f"{stage} (residents housed)", total=total)
            bar.update(tasks[stage], completed=done)

        try:
            manifest = generate_city(city, scale=scale, seed=seed, out=out, progress=progress)
        except ValueError as exc:
            bar.stop()
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(code=2) from exc
    console.print(_summary(manifest))


def _summary(m: CityManifest) -> Table:
    rates = derived_rates()
    table = Table(
        title=f"{m.city} at scale {m.scale:g}, seed {m.seed} → {m.out} ({m.seconds:.1f} s)",
    )
    table.add_column("what")
    table.add_column("generated", justify="right")
    table.add_column("expected from figures", justify="right")
    for name, path in m.files.items():
        table.add_row(path.name, f"{m.counts[name]:,}", "")
    pop = m.population
    published = {
        "residents": fg.POPULATION_2020 * m.scale,
        "persons per household": fg.PERSONS_PER_HOUSEHOLD,
        "infants under 2": rates.infant_rate * pop,
        "pregnant": rates.pregnant_rate * pop,
        "aged 80+": rates.elderly_80_rate * pop,
        "80+ living alone": rates.alone_80_rate * pop,
    }
    generated = {
        "residents": pop,
        "persons per household": pop / max(1, m.households),
        "infants under 2": m.vulnerable["infants"],
        "pregnant": m.vulnerable["pregnant"],
        "aged 80+": m.vulnerable["elderly_80"],
        "80+ living alone": m.vulnerable["elderly_80_alone"],
    }
    for key, value in generated.items():
        if isinstance(value, float):
            table.add_row(key, f"{value:.3f}", f"{published[key]:.3f}")
        else:
            table.add_row(key, f"{value:,}", f"{published[key]:,.0f}")
    table.add_row("chronic on medication (assumed rates)", f"{m.vulnerable['chronic']:,}", "")
    table.add_row("disabled (assumed rate)", f"{m.vulnerable['disabled']:,}", "")
    total = max(1, m.communities)
    shares = {
        "sealed": fg.COMMUNITIES_SEALED,
        "controlled": fg.COMMUNITIES_CONTROLLED,
        "open": fg.COMMUNITIES_PRECAUTIONARY,
    }
    for status, count in m.lockdown.items():
        table.add_row(
            f"communities {status}",
            f"{count:,} ({count / total:.1%})",
            f"{shares[status] / fg.COMMUNITIES_TOTAL:.1%}",
        )
    return table
