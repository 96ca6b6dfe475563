"""``relieflink jobs list``, ``relieflink jobs cancel`` and ``relieflink worker --once``."""

from __future__ import annotations

from sqlalchemy.orm import Session
from typer.testing import CliRunner

from relieflink.cli import app
from relieflink.jobs import service
from relieflink.models import Job, JobStatus
from tests.jobs.test_runner import _steps  # registers the test kind

cli = CliRunner()
assert _steps


def test_list_cancel_and_run_jobs_from_the_command_line(db: Session) -> None:
    keep = service.enqueue(db, kind="test_steps", payload={}, actor=None)
    drop = service.enqueue(db, kind="test_steps", payload={}, actor=None)
    db.commit()
    listed = cli.invoke(app, ["jobs", "list", "--status", "queued"])
    assert listed.exit_code == 0, listed.output
    assert "test_steps" in listed.output and "(2 of 2)" in listed.output

    cancelled = cli.invoke(app, ["jobs", "cancel", str(drop.id)])
    assert cancelled.exit_code == 0 and "cancelled" in cancelled.output
    again = cli.invoke(app, ["jobs", "cancel", str(drop.id)])
    assert again.exit_code == 1 and "already ended" in again.output
    assert cli.invoke(app, ["jobs", "cancel", "999999"]).exit_code == 1

    ran = cli.invoke(app, ["worker", "--once"])
    assert ran.exit_code == 0 and "ran 1 job(s)" in ran.output, ran.output
    db.expire_all()
    assert db.get(Job, keep.id).status == JobStatus.succeeded  # type: ignore[union-attr]
    assert db.get(Job, drop.id).status == JobStatus.cancelled  # type: ignore[union-attr]
