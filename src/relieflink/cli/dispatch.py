"""``relieflink dispatch``: fleets, the day's plan, re-plans and manifests."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import select

from relieflink.cli.common import console, transaction
from relieflink.dispatch import fleet, manifests
from relieflink.flows import dispatch as dispatch_flow
from relieflink.models import Role, Route, User
from relieflink.optim.routing import MAX_SEED

Seed = Annotated[int, typer.Option(min=0, max=MAX_SEED, help="the routing engine's seed")]

app = typer.Typer(help="Carriers' fleets, dispatch plans and manifests.", no_args_is_help=True)


def _system() -> User:
    """The CLI acts as an administrator (it runs on the server, like ``db upgrade``)."""
    return User(id=None, username="cli", full_name="command line", role=Role.admin)


@app.command("import-fleet")
def import_fleet(
    file: Annotated[Path, typer.Argument(help="vehicles.csv from `relieflink scenario generate`")],
) -> None:
    """Load the carriers' vehicles and robots (all rows valid, or nothing)."""
    with transaction() as session:
        created, updated = fleet.import_fleet(session, file, actor=None)
    console.print(f"{created} vehicle groups created, {updated} updated")


@app.command("availability")
def availability(
    vehicle_id: int,
    day: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"])],
    available: Annotated[int, typer.Option(help="vehicles of the group working that day")],
    note: str | None = None,
) -> None:
    """Mark some of a group's vehicles unavailable for a day (ill or locked-in couriers)."""
    with transaction() as session:
        fleet.set_availability(
            session,
            vehicle_id=vehicle_id,
            day=day.date(),
            available=available,
            note=note,
            actor=None,
        )
    console.print(f"vehicle group {vehicle_id}: {available} available on {day.date()}")


Iterations = Annotated[
    int | None,
    typer.Option(help="fixed search work per warehouse: the same plan on any machine or cluster"),
]
Workers = Annotated[int | None, typer.Option(help="local worker processes (default: all cores)")]
Scheduler = Annotated[
    str | None, typer.Option(help="route on this Dask cluster, e.g. tcp://host:8786")
]


def _run(
    day: date | None,
    time_limit: float | None,
    seed: int,
    replan_of: int | None,
    failed: list[int],
    *,
    iterations: int | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
) -> None:
    if time_limit is not None and iterations is not None:
        console.print("[red]error:[/red] give only one of --time-limit and --iterations")
        raise typer.Exit(code=2)
    with transaction() as session, Progress(console=console, transient=True) as bar:
        task = bar.add_task("planning", total=100)
        plan = dispatch_flow.plan_dispatch(
            session,
            day=day,  # type: ignore[arg-type]
            actor=None,
            time_limit=time_limit,
            seed=seed,
            replan_of_id=replan_of,
            failed_route_ids=failed,
            iterations=iterations,
            workers=workers,
            scheduler=scheduler,
            progress=lambda p, m: bar.update(task, completed=p, description=m),
        )
        summary = plan.summary
    console.print(f"plan {plan.id} for {plan.day}: {plan.message}")
    table = Table(title="dispatch plan")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key in (
        "parcels",
        "planned_parcels",
        "routes",
        "distance_m",
        "cost_fen",
        "solve_s",
        "write_s",
    ):
        table.add_row(key, str(summary.get(key)))
    for kind, n in summary.get("by_kind", {}).items():
        table.add_row(f"routes by {kind}", str(n))
    for reason, n in summary.get("unassigned", {}).items():
        table.add_row(f"released, allocated again next wave: {reason}", str(n))
    console.print(table)
    if summary.get("violations"):
        console.print(f"[red]{len(summary['violations'])} checker violations[/]")


@app.command("plan")
def plan(
    day: Annotated[datetime, typer.Option("--date", formats=["%Y-%m-%d"], help="the day")],
    time_limit: Annotated[
        float | None, typer.Option(help="routing search budget in seconds (default: by size)")
    ] = None,
    seed: Seed = 1,
    iterations: Iterations = None,
    workers: Workers = None,
    scheduler: Scheduler = None,
) -> None:
    """Turn the day's allocations into routes, stops with ETAs and manifests."""
    _run(
        day.date(),
        time_limit,
        seed,
        None,
        [],
        iterations=iterations,
        workers=workers,
        scheduler=scheduler,
    )


@app.command("replan")
def replan(
    plan_id: int,
    failed_route: Annotated[
        list[int] | None, typer.Option(help="a route whose vehicle broke down (repeatable)")
    ] = None,
    time_limit: float | None = None,
    seed: Seed = 1,
    iterations: Iterations = None,
    workers: Workers = None,
    scheduler: Scheduler = None,
) -> None:
    """Re-plan the undelivered remainder of a day; parcels on board are left alone."""
    _run(
        None,
        time_limit,
        seed,
        plan_id,
        failed_route or [],
        iterations=iterations,
        workers=workers,
        scheduler=scheduler,
    )


@app.command("manifest")
def manifest(
    route_id: int,
    out: Annotated[Path, typer.Option(help="file to write: .html or .csv")],
) -> None:
    """Write a route's manifest (printable HTML or CSV)."""
    with transaction() as session:
        if out.suffix.lower() == ".html":
            text = manifests.manifest_html(session, route_id, actor=_system())
        else:
            text = manifests.manifest_csv(session, route_id, actor=_system())
    out.write_text(text, encoding="utf-8")
    console.print(f"wrote {out}")


@app.command("manifests")
def manifests_of_plan(
    plan_id: int,
    out: Annotated[Path, typer.Option(help="directory to write one CSV per route into")],
) -> None:
    """Write the manifest of every route of a plan (route-ID.csv), in one session."""
    out.mkdir(parents=True, exist_ok=True)
    with transaction() as session:
        route_ids = session.scalars(
            select(Route.id).where(Route.plan_id == plan_id).order_by(Route.id)
        ).all()
        for route_id in route_ids:
            text = manifests.manifest_csv(session, route_id, actor=_system())
            (out / f"route-{route_id}.csv").write_text(text, encoding="utf-8")
    console.print(f"wrote {len(route_ids)} manifests to {out}")
