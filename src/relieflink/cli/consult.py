"""``relieflink consult``: the triage rules, doctors' staffing (Erlang C) and due refills."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from relieflink import clock
from relieflink.cli.common import console, err_console, transaction
from relieflink.consult import service as consult
from relieflink.consult import staffing as erlang
from relieflink.consult import triage
from relieflink.flows import prescriptions

app = typer.Typer(
    help="Online consultations: triage rules, staffing, chronic refills.", no_args_is_help=True
)


@app.command("triage-rules")
def triage_rules(
    check: Annotated[
        bool, typer.Option("--check", help="only check the file; exit 1 if bad")
    ] = False,
    file: Annotated[
        Path | None, typer.Option(help="a rules file (default: the packaged one)")
    ] = None,
) -> None:
    """Show (or only check) the triage rules: every rule, its urgency, outcome and red flag."""
    path = file or triage.RULES_PATH
    try:
        rules = triage.load_rules(path)
    except triage.RulesError as exc:
        err_console.print(f"[bold red]error:[/] {path} has {len(exc.problems)} problem(s)")
        for problem in exc.problems:
            err_console.print(f"  {problem}", markup=False, highlight=False)
        raise typer.Exit(1) from None
    except (OSError, ValueError) as exc:
        err_console.print(f"[bold red]error:[/] cannot read {path}: {exc}", markup=False)
        raise typer.Exit(1) from None
    red = sum(r.red_flag for r in rules.rules)
    summary = (
        f"{path.name}: version {rules.version}, {len(rules.questions)} questions, "
        f"{len(rules.rules)} rules ({red} red flags), {len(rules.routing)} routing entries: OK"
    )
    if check:
        console.print(summary, highlight=False)
        return
    table = Table(title=f"triage rules {rules.version}")
    for column in ("rule", "if", "urgency", "target min", "outcome"):
        table.add_column(column)
    for rule in rules.rules:
        cond = ", ".join(f"{k}={'|'.join(map(str, v))}" for k, v in rule.conditions.items())
        level = rules.levels[rule.urgency]
        table.add_row(
            ("[red]" if rule.red_flag else "") + rule.id,
            cond,
            rule.urgency,
            str(level.target_minutes),
            rule.outcome,
        )
    console.print(table)
    console.print(summary, highlight=False)


def _rates(text: str) -> list[float]:
    parts = [p for p in text.replace(" ", "").split(",") if p]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise typer.BadParameter("give numbers separated by commas") from None
    if len(values) == 1:
        values *= 24
    if len(values) != 24 or any(v < 0 for v in values):
        raise typer.BadParameter("give one rate for every hour (24, ≥ 0) or a single rate")
    return values


@app.command("staffing")
def staffing(
    arrivals_per_hour: Annotated[
        str | None,
        typer.Option(help="24 comma-separated hourly arrival rates (or one for every hour)"),
    ] = None,
    service_minutes: Annotated[
        float | None, typer.Option(min=0.1, help="mean consultation length")
    ] = None,
    service_level: Annotated[
        float, typer.Option(min=0.01, max=0.99, help="share that must meet the target")
    ] = 0.8,
    from_db: Annotated[
        bool, typer.Option("--from-db", help="use the last --days of requests in the database")
    ] = False,
    days: Annotated[int, typer.Option(min=1, max=90)] = 7,
) -> None:
    """Doctors needed per hour to meet every urgency's target (Erlang C), with the queue now."""
    rules = triage.default_rules()
    targets = {name: float(lv.target_minutes) for name, lv in rules.levels.items()}
    queue = None
    if from_db:
        with transaction() as session:
            report = consult.staffing_report(
                session,
                actor=None,
                days=days,
                service_minutes=service_minutes,
                service_level=service_level,
            )
        plan, minutes, queue = report.plan, report.service_minutes, report.queue
    else:
        if arrivals_per_hour is None:
            raise typer.BadParameter("give --arrivals-per-hour, or --from-db")
        minutes = service_minutes or 12.0
        plan = erlang.staffing_plan(
            _rates(arrivals_per_hour),
            service_minutes=minutes,
            targets=targets,
            service_level=service_level,
        )
    table = Table(
        title=f"doctors needed (Erlang C, {minutes:.1f} min per consultation, "
        f"{service_level:.0%} within target)"
    )
    table.add_column("hour", justify="right")
    table.add_column("arrivals/h", justify="right")
    table.add_column("load (erl)", justify="right")
    for name in targets:
        table.add_column(f"{name} ({targets[name]:.0f} min)", justify="right")
    table.add_column("doctors", justify="right", style="bold")
    table.add_column("mean wait min", justify="right")
    for h in plan:
        table.add_row(
            f"{h.hour:02d}",
            f"{h.arrivals_per_hour:.1f}",
            f"{h.load_erlangs:.2f}",
            *[str(h.needed_by_level[name]) for name in targets],
            str(h.doctors_needed),
            f"{h.mean_wait_minutes:.1f}" if h.doctors_needed else "-",
        )
    console.print(table)
    console.print(f"peak: {max(h.doctors_needed for h in plan)} doctors", highlight=False)
    if queue is not None:
        waiting = ", ".join(
            f"{lv.urgency} {lv.waiting} ({lv.overdue} overdue)" for lv in queue.levels
        )
        console.print(
            f"queue now: {waiting}; in progress {queue.in_progress}; "
            f"doctors on duty {queue.doctors_on_duty}",
            highlight=False,
        )


@app.command("due-refills")
def due_refills(
    lead_days: Annotated[int, typer.Option(min=0, max=60)] = 5,
    today: Annotated[str | None, typer.Option(help="YYYY-MM-DD (default: today)")] = None,
    create: Annotated[bool, typer.Option(help="turn each into a medical request")] = False,
) -> None:
    """Registered chronic patients whose medicine runs out within --lead-days (and, with
    --create, a medical request for each, so the refill arrives before it runs out)."""
    day = date.fromisoformat(today) if today else clock.today()
    with transaction() as session:
        if create:
            due = prescriptions.request_due_refills(
                session, today=day, lead_days=lead_days, actor=None
            )
        else:
            due = consult.due_refills(session, today=day, lead_days=lead_days)
    table = Table(title=f"refills due by {day.isoformat()} + {lead_days} days")
    for column in ("patient", "household", "member", "item", "packs", "supply until", "days left"):
        table.add_column(column)
    for d in due:
        table.add_row(
            str(d.patient_id),
            str(d.household_id),
            d.member_label,
            str(d.item_id),
            str(d.quantity),
            d.supply_until.isoformat(),
            str(d.days_left),
        )
    console.print(table)
