"""A fresh database for a benchmark run: a SQLite file in ``workdir``, or a new PostgreSQL
database (dropped first if it exists) next to ``BENCH_POSTGRES_ADMIN_URL``."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import create_engine, text

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def fresh_database(
    kind: str, name: str, workdir: Path | None = None, template: str | None = None
) -> str:
    """The URL of an empty database called ``name`` (``kind``: sqlite, postgres or postgresql),
    or on PostgreSQL a copy of ``template``."""
    if kind == "sqlite":
        if workdir is None:
            raise ValueError("a SQLite benchmark database needs a working directory")
        return f"sqlite:///{workdir / (name + '.db')}"
    admin = os.environ.get("BENCH_POSTGRES_ADMIN_URL", ADMIN_URL)
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        copy = f" TEMPLATE {template}" if template else ""
        conn.execute(text(f"CREATE DATABASE {name}{copy}"))
    engine.dispose()
    return admin.rsplit("/", 1)[0] + f"/{name}"
