"""Crash tests: the real CLI is killed with SIGKILL (``kill -9``, its whole process group, the
routing engine's worker processes too) while it writes, then nothing of its work is in the
database, the ledger is sound, and the same command run again completes.

The kill is timed from outside, without a hook in the code: the test polls until the process
holds an open write transaction (SQLite: another connection cannot take the write lock;
PostgreSQL: its backend has a transaction id), so it dies in the middle of its work."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from relieflink.cli import app
from relieflink.models import DispatchPlan, Household, Parcel, PlanStatus, Route
from tests.dispatch.factories import TODAY, make_city

pytestmark = pytest.mark.slow

CLI = str(Path(sys.executable).with_name("relieflink"))
ROWS = 3000


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


def _kill_while_writing(engine: Engine, args: Sequence[str], *, after: float = 0.0) -> None:
    """Start ``relieflink *args``, wait until it writes (then ``after`` seconds more), kill -9."""
    process = subprocess.Popen(
        [CLI, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the pool's workers die with it
    )
    deadline = time.monotonic() + 120
    try:
        while not _writing(engine):
            if process.poll() is not None:
                out = process.stdout.read().decode() if process.stdout else ""
                pytest.fail(f"relieflink {' '.join(args)} ended before it wrote: {out}")
            assert time.monotonic() < deadline, "the command never started writing"
            time.sleep(0.02)
        time.sleep(after)
        assert process.poll() is None, "the command finished before it was killed"
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)
    assert process.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 30
    while _writing(engine):  # PostgreSQL: the server notices the dead client and rolls back
        assert time.monotonic() < deadline
        time.sleep(0.05)


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

    _kill_while_writing(engine, ["import", "households", str(big)])
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
