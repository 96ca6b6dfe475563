"""``relieflink route``: solve routing files (VRPLIB, Solomon, engine JSON) and plot plans."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from relieflink.cli.route_plot import draw_plan
from relieflink.optim.routing import (
    ProgressEvent,
    RoutingParams,
    load_instance,
    make_executor,
    result_to_json,
    solve_routing,
    write_vrplib_solution,
)

app = typer.Typer(help="Vehicle routing: solve VRPLIB/Solomon/JSON problems and plot plans.")
console = Console(stderr=True)


def _fail(msg: str) -> None:
    console.print(f"[red]error:[/red] {msg}")
    raise typer.Exit(code=2)


@app.command()
def solve(
    file: Annotated[Path, typer.Argument(help="VRPLIB .vrp, Solomon .txt or engine .json")],
    time_limit: Annotated[
        float | None, typer.Option("--time-limit", help="Wall-clock budget in seconds")
    ] = None,
    iterations: Annotated[
        int | None,
        typer.Option("--iterations", help="Iteration-bounded, reproducible mode instead"),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed")] = 0,
    workers: Annotated[
        int | None, typer.Option(help="Local worker processes (default: all cores)")
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler, e.g. tcp://host:8786")
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the plan as JSON")] = None,
    sol_out: Annotated[Path | None, typer.Option("--sol", help="Write a VRPLIB .sol file")] = None,
    direct_limit: Annotated[
        int | None, typer.Option(help="Solve whole up to this many stops (default 1500)")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress display")] = False,
) -> None:
    """Solve FILE and print a summary (cost, vehicles, unassigned, run time)."""
    if time_limit is None and iterations is None:
        _fail("give --time-limit SECONDS (or --iterations N for a reproducible run)")
    if time_limit is not None and iterations is not None:
        _fail("give only one of --time-limit and --iterations")
    try:
        loaded = load_instance(file)
    except ValueError as exc:
        _fail(str(exc))
        return
    params = RoutingParams() if direct_limit is None else RoutingParams(direct_limit=direct_limit)
    logging.getLogger("pyvrp").setLevel(logging.WARNING)
    try:
        executor = make_executor(workers, scheduler)
    except (OSError, ValueError) as exc:
        _fail(f"cannot start executor: {exc}")
        return
    total = time_limit if time_limit is not None else 1.0
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        console=console,
        disable=quiet,
        transient=True,
    ) as bar:
        task = bar.add_task(f"solving {file.name}", total=total, info="")

        def on_progress(ev: ProgressEvent) -> None:
            info = ev.phase if ev.cost is None else f"{ev.phase}: cost {ev.cost:,.1f}"
            done = ev.elapsed_s if time_limit is not None else (ev.done / max(ev.total, 1))
            bar.update(task, completed=min(done, total), info=info)

        try:
            result = solve_routing(
                loaded.problem,
                time_limit=time_limit,
                iterations=iterations,
                seed=seed,
                executor=executor,
                provider=loaded.provider,
                params=params,
                progress=on_progress,
            )
        finally:
            executor.close()
    payload = result_to_json(result, loaded)
    out = Console()
    out.print(
        f"cost {payload['cost']:,.1f} | vehicles {len(result.routes)} | unassigned "
        f"{len({u.stop for u in result.unassigned})} | run time {result.runtime_s:.1f} s | "
        f"{'feasible' if result.is_feasible() else 'INFEASIBLE'}"
    )
    for u in result.unassigned[:10]:
        out.print(f"  unassigned {u.stop_id}: {u.reason}")
    if json_out is not None:
        json_out.write_text(json.dumps(payload, indent=1))
    if sol_out is not None:
        write_vrplib_solution(sol_out, result, loaded)
    if not result.is_feasible():
        raise typer.Exit(code=1)


@app.command()
def plot(
    file: Annotated[Path, typer.Argument(help="The problem file that was solved")],
    plan: Annotated[Path, typer.Argument(help="Plan JSON written by `route solve --json`")],
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG to write")] = Path("routes.png"),
) -> None:
    """Draw the routes of PLAN to a PNG: one colour per route (distinct up to 100), the
    depots as squares on top, a legend with the cost and the number of vehicles."""
    try:
        loaded = load_instance(file)
        data: dict[str, Any] = json.loads(plan.read_text())
        fig = draw_plan(loaded, data)
    except (ValueError, OSError) as exc:
        _fail(str(exc))
        return
    fig.savefig(out, dpi=120, bbox_inches="tight")
    Console().print(f"wrote {out}")
