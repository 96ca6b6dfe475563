"""Crash tests: the real CLI is killed with SIGKILL (``kill -9``, its whole process group, the
routing engine's worker processes too) while it writes, then nothing of its work is in the
database, the ledger is sound, and the same command run again completes.

The kill is timed from outside, without a hook in the code: the test polls until the process
holds an open write transaction (SQLite: another connection cannot take the write lock;
PostgreSQL: its backend has a transaction id), so it dies in the middle of its work."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from relieflink import clock
from relieflink.cli import app
from relieflink.config import get_settings
from relieflink.jobs import runner
from relieflink.jobs.dispatch import start_plan_job
from relieflink.models import DispatchPlan, Household, Job, JobStatus, Parcel, PlanStatus, Route
from tests.dispatch.factories import TODAY, make_city

pytestmark = pytest.mark.slow

CLI = str(Path(sys.executable).with_name("relieflink"))
# Many small chunks in one transaction: the import writes for seconds, not milliseconds, so the
# kill lands inside the write even on a loaded machine (3,000 rows in one chunk once finished
# between the probe seeing the lock and the kill).
ROWS = 30_000
CHUNK_ROWS = "200"


def _writing(engine: Engine) -> bool:
    """Whether another process holds an open write transaction on the database."""
    if engine.dialect.name == "sqlite":
        probe = sqlite3.connect(str(engine.url.database), timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            return False
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise
            return True
        finally:
            probe.close()
    with engine.connect() as conn:
        return bool(
            conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL"
                )
            )
        )


def _kill_while_writing(
    engine: Engine, args: Sequence[str], *, after: float = 0.0, env: dict[str, str] | None = None
) -> None:
    """Start ``relieflink *args``, wait until it writes (then ``after`` seconds more), kill -9."""
    _kill_when(lambda: _writing(engine), args, after=after, env=env)
    deadline = time.monotonic() + 30
    while _writing(engine):  # PostgreSQL: the server notices the dead client and rolls back
        assert time.monotonic() < deadline
        time.sleep(0.05)


def _kill_when(
    ready: Callable[[], bool],
    args: Sequence[str],
    *,
    after: float = 0.0,
    env: dict[str, str] | None = None,
) -> None:
    """Start ``relieflink *args``, wait until ``ready()`` (then ``after`` seconds), kill -9."""
    process = subprocess.Popen(
        [CLI, *args],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the pool's workers die with it
    )
    deadline = time.monotonic() + 120
    try:
        while not ready():
            if process.poll() is not None:
                out = process.stdout.read().decode() if process.stdout else ""
                pytest.fail(f"relieflink {' '.join(args)} ended too soon: {out}")
            assert time.monotonic() < deadline, "the command never got there"
            time.sleep(0.02)
        time.sleep(after)
        assert process.poll() is None, "the command ended before it was killed"
    finally:
        with contextlib.suppress(ProcessLookupError):  # ended already: the assert above says so
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)
    assert process.returncode == -signal.SIGKILL


def _run(*args: str) -> str:
    """``relieflink *args`` to the end (in this process: the same commands, a faster start)."""
    done = CliRunner().invoke(app, list(args))
    assert done.exit_code == 0, done.output
    return done.output


def _count(db: Session, model: type) -> int:
    db.rollback()
    return db.scalar(select(func.count()).select_from(model)) or 0


def _ledger_sound() -> None:
    assert "ledger sound" in _run("stock", "check")


def test_an_import_killed_mid_write_leaves_nothing_and_runs_again(
    db: Session, engine: Engine, examples_dir: Path, tmp_path: Path
) -> None:
    for kind in ("organizations", "districts", "communities"):
        _run("import", kind, str(examples_dir / f"{kind}.csv"))
    rows = "".join(f"H{n:07d},C00001,{n % 50},{n % 900 + 100},3\n" for n in range(ROWS))
    big = tmp_path / "households.csv"
    big.write_text("code,community_code,building,unit,size\n" + rows)

    _kill_while_writing(
        engine, ["import", "households", str(big)], env={"RELIEFLINK_IMPORT_CHUNK_ROWS": CHUNK_ROWS}
    )
    assert _count(db, Household) == 0  # all or nothing: nothing
    db.close()

    assert f"{ROWS} created" in _run("import", "households", str(big))
    assert _count(db, Household) == ROWS


def test_a_plan_killed_mid_search_leaves_nothing_and_runs_again(
    db: Session, engine: Engine
) -> None:
    make_city(db)
    db.commit()
    parcels_before = _count(db, Parcel)
    db.close()
    day = TODAY.isoformat()

    # The plan row is written first, then the search runs in the same transaction: killed in it.
    _kill_while_writing(engine, ["dispatch", "plan", "--date", day, "--time-limit", "5"], after=1)
    assert (_count(db, DispatchPlan), _count(db, Route)) == (0, 0)
    assert _count(db, Parcel) == parcels_before
    _ledger_sound()
    db.close()

    _run("dispatch", "plan", "--date", day, "--time-limit", "0.5")
    plan = db.scalars(select(DispatchPlan)).one()
    assert plan.status == PlanStatus.done
    assert _count(db, Route) > 0
    _ledger_sound()


def test_a_plan_job_whose_worker_is_killed_is_run_again_and_completes(db: Session) -> None:
    """The API's way: a queued plan job, ``relieflink worker --once`` killed mid-search; the
    plan has no routes, and once the dead worker's lease runs out another worker runs it."""
    make_city(db)
    plan, job = start_plan_job(db, day=TODAY, actor=None, time_limit=3)
    # Due by any clock: the suite may run with its clock moved ahead, the worker process not.
    job.run_after = datetime(2000, 1, 1, tzinfo=UTC)
    db.commit()
    plan_id, job_id = plan.id, job.id

    def searching() -> bool:
        db.rollback()
        return db.scalar(select(Job.progress_done).where(Job.id == job_id)) not in (None, 0, 2)

    _kill_when(searching, ["worker", "--once"], after=0.5)
    db.rollback()
    assert db.get(Job, job_id, populate_existing=True).status == JobStatus.running  # type: ignore[union-attr]
    assert _count(db, Route) == 0
    db.close()

    lease = timedelta(seconds=get_settings().jobs_lease_seconds + 1)
    later = clock.now() + lease
    previous = clock.use(lambda: later)
    try:
        assert runner.Worker("survivor").run_one()
    finally:
        clock.use(previous)
    done = db.get(Job, job_id, populate_existing=True)
    assert done is not None and (done.status, done.attempts) == (JobStatus.succeeded, 2)
    assert db.get(DispatchPlan, plan_id, populate_existing=True).status == PlanStatus.done  # type: ignore[union-attr]
    assert _count(db, Route) > 0
    _ledger_sound()
