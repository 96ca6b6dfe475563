"""Commands: db, catalog, users, import, export, serve, demo (and sub-apps of other domains)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from relieflink.bulk import service as bulk
from relieflink.catalog import service as catalog
from relieflink.cli import (
    consult,
    dispatch,
    jobs,
    needs,
    notify,
    pledges,
    registry,
    route,
    scenario,
)
from relieflink.cli import stock as stock_cli
from relieflink.cli.common import console, fail, transaction
from relieflink.cli.demo import demo
from relieflink.config import get_settings
from relieflink.db import backup, get_engine, require_migrated
from relieflink.errors import RelieflinkError
from relieflink.models import Role
from relieflink.organizations import service as organizations
from relieflink.users import service as users
from relieflink.users.schemas import UserCreate

app = typer.Typer(
    help="RelieFlink: pandemic and disaster relief from donation to doorstep.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
catalog_app = typer.Typer(help="The item and kit catalog.", no_args_is_help=True)
users_app = typer.Typer(help="Users and roles.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(catalog_app, name="catalog")
app.add_typer(users_app, name="users")
app.add_typer(scenario.app, name="scenario")
app.add_typer(registry.app, name="registry")
app.add_typer(stock_cli.app, name="stock")
app.add_typer(pledges.app, name="pledges")
app.add_typer(consult.app, name="consult")
app.add_typer(dispatch.app, name="dispatch")
app.add_typer(route.app, name="route")
app.command("demo")(demo)
app.add_typer(needs.requests_app, name="requests")
app.command("allocate")(needs.allocate)
app.add_typer(jobs.app, name="jobs")
app.add_typer(notify.app, name="notify")
app.command("worker")(jobs.worker)

KINDS = ", ".join(bulk.KINDS)


@db_app.command("upgrade")
def db_upgrade(revision: str = "heads") -> None:
    """Create or migrate the database to the newest schema."""
    from relieflink.db import migrations  # Alembic: only this command needs it

    url = get_settings().database_url
    migrations.upgrade(url, revision)
    where = get_engine().url.render_as_string(hide_password=True)
    console.print(f"database at [bold]{where}[/] is at {revision}")


@db_app.command("backup")
def db_backup(
    file: Annotated[Path, typer.Argument(help="the file to write (replaced if it exists)")],
) -> None:
    """Back up the whole database while RelieFlink runs (a consistent snapshot)."""
    engine = get_engine()
    try:
        backup.backup(engine, file)
    except RelieflinkError as exc:
        raise fail(exc) from None
    console.print(f"backed up {engine.url.render_as_string(hide_password=True)} to {file}")


@db_app.command("restore")
def db_restore(
    file: Annotated[Path, typer.Argument(help="a file written by `relieflink db backup`")],
    yes: Annotated[bool, typer.Option("--yes", help="do not ask for confirmation")] = False,
) -> None:
    """Replace the whole database with a backup (stop the servers and workers first)."""
    engine = get_engine()
    where = engine.url.render_as_string(hide_password=True)
    if not yes:
        typer.confirm(f"replace everything in {where} with {file}?", abort=True)
    try:
        backup.restore(engine, file)
        require_migrated(engine)
    except RelieflinkError as exc:
        raise fail(exc) from None
    console.print(f"restored {where} from {file}; check it with `relieflink stock check`")


@catalog_app.command("seed")
def catalog_seed() -> None:
    """Load the reference items and kits (existing SKUs are left unchanged)."""
    with transaction() as session:
        result = catalog.seed_catalog(session, actor=None)
    console.print(
        f"items: {result.items_created} added, {result.items_existing} already there; "
        f"kits: {result.kits_created} added, {result.kits_existing} already there"
    )


@users_app.command("create")
def users_create(
    username: str,
    role: Annotated[Role, typer.Option(help="admin, coordinator, warehouse, courier, ...")],
    full_name: Annotated[str, typer.Option()] = "",
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)
    ] = "",
    organization_id: int | None = None,
    organization: Annotated[
        str | None,
        typer.Option(help="the user's organization by code, e.g. a committee's RC-00001"),
    ] = None,
    household_id: int | None = None,
) -> None:
    """Create a user (use it to bootstrap the first admin). A committee user names its
    residents' committee (``--organization RC-00001`` on a generated city)."""
    if organization is not None:
        with transaction() as session:
            org = organizations.get_organization_by_code(session, organization)
            if org is None:
                raise fail(RelieflinkError(f"--organization: no organization {organization!r}"))
            organization_id = org.id
    try:
        data = UserCreate(
            username=username,
            full_name=full_name or username,
            role=role,
            password=password,
            organization_id=organization_id,
            household_id=household_id,
        )
    except ValueError as exc:
        raise fail(RelieflinkError(f"invalid user: {exc}")) from None
    with transaction() as session:
        user = users.create_user(session, data, actor=None)
        console.print(f"created {user.role} [bold]{user.username}[/] (id {user.id})")


@app.command("import")
def import_command(
    kind: Annotated[str, typer.Argument(help=f"one of: {KINDS}")],
    file: Annotated[Path, typer.Argument(help="a .csv or .xlsx file")],
    skip_invalid: Annotated[
        bool, typer.Option(help="import the good rows; write the bad ones to a reject file")
    ] = False,
    rejects: Annotated[Path | None, typer.Option(help="where to write rejected rows")] = None,
) -> None:
    """Import a CSV or XLSX file. With any bad row nothing is imported (unless --skip-invalid)."""
    with transaction() as session:
        report = bulk.import_file(
            session, kind, file, actor=None, skip_invalid=skip_invalid, reject_path=rejects
        )
    console.print(
        f"{report.kind}: {report.rows} rows, {report.created} created, {report.updated} updated, "
        f"{report.rejected} rejected"
    )
    if report.reject_file:
        console.print(f"rejected rows and reasons: {report.reject_file}")
        for error in report.errors[:20]:
            console.print(f"  {error}", markup=False)


@app.command("export")
def export_command(
    kind: Annotated[str, typer.Argument(help=f"one of: {KINDS}")],
    file: Annotated[Path, typer.Argument(help="a .csv or .xlsx file (format by extension)")],
) -> None:
    """Export every record of a kind in the columns the import reads."""
    with transaction() as session:
        count = bulk.export_file(session, kind, file, actor=None)
    console.print(f"wrote {count} {kind} to {file}")


@app.command("serve")
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: Annotated[
        int, typer.Option(min=1, help="server processes (more than one: set RELIEFLINK_REDIS_URL)")
    ] = 1,
    jobs_in_process: Annotated[
        bool | None,
        typer.Option(
            help="run queued jobs in the server (default: yes on SQLite; on PostgreSQL run "
            "`relieflink worker`)"
        ),
    ] = None,
) -> None:
    """Run the API server (uvicorn)."""
    import os

    import uvicorn

    try:
        require_migrated(get_engine())
    except RelieflinkError as exc:
        raise fail(exc) from None
    if workers > 1 and not get_settings().redis_url:
        console.print(
            "[yellow]warning:[/] several workers without RELIEFLINK_REDIS_URL: a consultation "
            "chat message reaches only the sockets of the worker that stored it"
        )
    if jobs_in_process is not None:  # read again by each server process's settings
        os.environ["RELIEFLINK_JOBS_IN_PROCESS"] = "true" if jobs_in_process else "false"
    # Consultation chat messages are small: per-message deflate would cost more CPU than it saves
    # (measured in benchmarks/consult/bench_ws.py), so WebSockets are not compressed.
    uvicorn.run(
        "relieflink.app:create_serving_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        ws_per_message_deflate=False,
        # Behind a TLS proxy: its X-Forwarded-Proto makes the request https, so the session
        # cookie is sent Secure; only from the proxies named (a client could forge the header).
        proxy_headers=True,
        forwarded_allow_ips=get_settings().forwarded_allow_ips,
        # Workers import numpy, SciPy and PyVRP at start; on a busy machine that outlasts
        # uvicorn's 5 s health check, which would kill and restart them for ever.
        timeout_worker_healthcheck=60,
    )


def summary_table(title: str, rows: list[tuple[str, object]]) -> Table:
    table = Table(title=title)
    table.add_column("what")
    table.add_column("value", justify="right")
    for name, value in rows:
        table.add_row(name, str(value))
    return table
