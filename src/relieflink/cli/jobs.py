"""``relieflink jobs`` (list, cancel) and ``relieflink worker`` (run them)."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Annotated

import typer
from rich.table import Table

from relieflink.cli.common import console, fail, transaction
from relieflink.config import get_settings
from relieflink.db import get_engine, require_migrated
from relieflink.errors import RelieflinkError
from relieflink.jobs import runner
from relieflink.jobs import service as jobs
from relieflink.jobs.schemas import JobFilters
from relieflink.models import JobStatus

app = typer.Typer(help="Background jobs: allocation runs, dispatch plans.", no_args_is_help=True)


@app.command("list")
def list_jobs(
    status: Annotated[JobStatus | None, typer.Option(help="only jobs in this state")] = None,
    kind: Annotated[str | None, typer.Option(help="e.g. allocation, dispatch_plan")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
) -> None:
    """The newest jobs with their state, progress and outcome."""
    with transaction() as session:
        rows, total = jobs.list_jobs(
            session, JobFilters(status=status, kind=kind, limit=limit), actor=None
        )
        table = Table(title=f"jobs ({len(rows)} of {total})")
        for column in ("id", "kind", "status", "progress", "attempts", "created", "outcome"):
            table.add_column(column, justify="right" if column in ("id", "attempts") else "left")
        for job in rows:
            percent = (
                f"{job.progress_done * 100 // job.progress_total} %" if job.progress_total else ""
            )
            step = f"{percent} {job.message}".strip()
            outcome = job.error if job.status in (JobStatus.failed, JobStatus.cancelled) else ""
            table.add_row(
                str(job.id),
                job.kind,
                str(job.status) + (" (cancel asked)" if job.cancel_requested else ""),
                step,
                f"{job.attempts}/{job.max_attempts}",
                f"{job.created_at:%Y-%m-%d %H:%M:%S}",
                outcome or (job.result_ref or ""),
            )
    console.print(table)


@app.command("cancel")
def cancel(job_id: int) -> None:
    """Cancel a queued job, or stop a running one at its next step."""
    with transaction() as session:
        job = jobs.cancel_job(session, job_id, actor=None)
        state = "cancelled" if job.status == JobStatus.cancelled else "will stop at its next step"
    console.print(f"job {job_id} ({job.kind}) {state}")


def worker(
    concurrency: Annotated[int, typer.Option(min=1, help="jobs this process runs at once")] = 1,
    once: Annotated[
        bool, typer.Option(help="run the jobs due now, then exit (instead of waiting for more)")
    ] = False,
) -> None:
    """Run queued jobs until stopped (Ctrl-C finishes the running jobs first).

    However many workers run, at most RELIEFLINK_JOBS_MAX_RUNNING jobs run at once in all.
    """
    try:
        require_migrated(get_engine())
    except RelieflinkError as exc:
        raise fail(exc) from None
    logging.basicConfig(level=get_settings().log_level)
    if once:
        ran = runner.Worker().run_pending()
        console.print(f"ran {ran} job(s)")
        return
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    threads = [
        threading.Thread(target=runner.Worker().run_forever, args=(stop,), daemon=True)
        for _ in range(concurrency)
    ]
    for thread in threads:
        thread.start()
    console.print(f"{concurrency} job worker(s) waiting for jobs; Ctrl-C stops them")
    try:
        while any(t.is_alive() for t in threads):
            stop.wait(1)
            if stop.is_set():
                break
    except KeyboardInterrupt:
        stop.set()
    for thread in threads:
        thread.join()
