"""Backups taken while the ledger is being written restore to a sound ledger: ``relieflink db
backup`` in the middle of a run of receipts (another thread, committing one by one), then
``relieflink db restore`` and ``relieflink stock check``."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from relieflink.cli import app
from relieflink.db import backup, session_scope
from relieflink.errors import RelieflinkError
from relieflink.models import StockMovement
from tests.needs.test_allocation import city, receive

__all__ = ["city"]

RECEIPTS = 60
runner = CliRunner()


def _movements(db: Session) -> int:
    db.rollback()
    return db.scalar(select(func.count()).select_from(StockMovement)) or 0


def test_a_backup_taken_mid_operation_restores_to_a_sound_ledger(
    db: Session, city: dict, tmp_path: Path
) -> None:
    db.commit()
    halfway = threading.Event()
    failures: list[BaseException] = []

    def receipts() -> None:
        try:
            for n in range(RECEIPTS):
                with session_scope() as session:
                    receive(session, city, "KIT-FAMILY-FOOD", 1 + n % 3)
                if n == RECEIPTS // 3:
                    halfway.set()
        except BaseException as exc:  # reported by the test below
            failures.append(exc)
            halfway.set()

    worker = threading.Thread(target=receipts)
    worker.start()
    assert halfway.wait(60)
    target = tmp_path / "mid.backup"
    taken = runner.invoke(app, ["db", "backup", str(target)])
    worker.join(60)
    assert not failures, failures
    assert taken.exit_code == 0, taken.output
    assert target.stat().st_size > 0
    assert not list(tmp_path.glob(".*partial"))
    after = _movements(db)
    assert after >= RECEIPTS

    db.close()
    restored = runner.invoke(app, ["db", "restore", str(target), "--yes"])
    assert restored.exit_code == 0, restored.output
    in_backup = _movements(db)
    assert RECEIPTS // 3 < in_backup <= after  # taken while the receipts went on
    db.close()
    checked = runner.invoke(app, ["stock", "check"])
    assert checked.exit_code == 0, checked.output
    assert "ledger sound" in checked.output


def test_restore_refuses_what_is_not_a_backup(db: Session, tmp_path: Path) -> None:
    junk = tmp_path / "junk.backup"
    junk.write_bytes(b"not a database at all" * 100)
    result = runner.invoke(app, ["db", "restore", str(junk), "--yes"])
    assert result.exit_code == 1
    assert "not a" in " ".join(result.output.split())
    missing = runner.invoke(app, ["db", "restore", str(tmp_path / "none"), "--yes"])
    assert missing.exit_code == 1
    assert "no such backup file" in " ".join(missing.output.split())


def test_restore_asks_first(db: Session, tmp_path: Path) -> None:
    target = tmp_path / "b.backup"
    assert runner.invoke(app, ["db", "backup", str(target)]).exit_code == 0
    result = runner.invoke(app, ["db", "restore", str(target)], input="n\n")
    assert result.exit_code == 1
    assert "Aborted" in result.output


def test_a_missing_postgresql_client_is_named_clearly(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("pg_dump and pg_restore are PostgreSQL's")
    with pytest.raises(RelieflinkError, match=r"pg_nothing for PostgreSQL \d+ was not found"):
        backup._client(engine, "pg_nothing")
