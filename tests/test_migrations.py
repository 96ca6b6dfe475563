from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine

from relieflink.db import Base
from relieflink.db.engine import NotMigrated, require_migrated


def test_migrations_build_exactly_the_models(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_an_unmigrated_database_is_refused_with_the_command_to_run(tmp_path: Path) -> None:
    empty = create_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(NotMigrated, match="relieflink db upgrade"):
        require_migrated(empty)


def test_the_app_refuses_to_start_on_an_unmigrated_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from relieflink.app import create_app
    from relieflink.config import get_settings
    from relieflink.db import reset_engine

    monkeypatch.setenv("RELIEFLINK_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    get_settings.cache_clear()
    reset_engine()
    try:
        with pytest.raises(NotMigrated, match="relieflink db upgrade"), TestClient(create_app()):
            pass
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
        reset_engine()
