"""Backups of the whole database, taken while RelieFlink runs, and their restore.

SQLite: the online backup API (``sqlite3.Connection.backup``) copies a consistent snapshot
while other processes go on writing (WAL), and restores the same way into the live file.
PostgreSQL: ``pg_dump -Fc`` (a consistent snapshot too) and ``pg_restore --clean`` in one
transaction, with the client programs of the server's major version (``pg_dump`` refuses a
newer server). A backup is written beside its target and renamed when complete, so a file with
the backup's name is never half-written.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

from sqlalchemy import Engine, text

from relieflink.errors import Invalid, RelieflinkError


def backup(engine: Engine, target: Path) -> None:
    """Write a backup of the database behind ``engine`` to ``target`` (replaced if it exists)."""
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    try:
        if engine.dialect.name == "sqlite":
            with closing(_sqlite(engine)) as source, closing(sqlite3.connect(partial)) as copy:
                source.backup(copy)
        else:
            _run(engine, "pg_dump", "--format=custom", f"--file={partial}")
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


def restore(engine: Engine, source: Path) -> None:
    """Replace the database behind ``engine`` with the backup in ``source`` (all or nothing)."""
    if not source.is_file():
        raise Invalid(f"{source}: no such backup file")
    if engine.dialect.name == "sqlite":
        with closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as copy:
            try:
                ok = copy.execute("PRAGMA quick_check").fetchone()
            except sqlite3.DatabaseError as exc:
                raise Invalid(f"{source}: not a SQLite backup ({exc})") from None
            if ok != ("ok",):
                raise Invalid(f"{source}: the backup is damaged ({ok[0] if ok else '?'})")
            with closing(_sqlite(engine, create=True)) as live:  # e.g. on a new machine
                copy.backup(live)
        engine.dispose()  # pooled connections may hold pages of the database as it was
        return
    if source.read_bytes()[:5] != b"PGDMP":
        raise Invalid(f"{source}: not a pg_dump custom-format backup")
    engine.dispose()
    _run(engine, "pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction",
         "--exit-on-error", str(source))  # fmt: skip


def _sqlite(engine: Engine, *, create: bool = False) -> sqlite3.Connection:
    path = engine.url.database
    if not path or path == ":memory:" or not (create or Path(path).is_file()):
        raise Invalid(f"no SQLite database file at {path!r}")
    return sqlite3.connect(path, timeout=30)


def _run(engine: Engine, program: str, *args: str) -> None:
    """Run a PostgreSQL client program against the database behind ``engine``."""
    url = engine.url
    executable = _client(engine, program)
    env = os.environ | ({"PGPASSWORD": url.password} if url.password else {})
    command = [executable, "--host", url.host or "localhost", "--port", str(url.port or 5432),
               "--username", url.username or "postgres", "--dbname", url.database or "",
               "--no-password", *args]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RelieflinkError(f"{program} failed: {done.stderr.strip() or done.returncode}")


def _client(engine: Engine, program: str) -> str:
    """The path of ``program`` (pg_dump, pg_restore) for the server's major version."""
    with engine.connect() as conn:
        major = int(conn.execute(text("SHOW server_version_num")).scalar_one()) // 10000
    candidates = [Path(f"/usr/lib/postgresql/{major}/bin/{program}")]
    found = shutil.which(program)
    if found:
        candidates.append(Path(found))
    for path in candidates:
        if path.is_file() and _major(path) >= major:
            return str(path)
    raise RelieflinkError(
        f"{program} for PostgreSQL {major} was not found (looked in "
        f"{', '.join(map(str, candidates)) or 'PATH'}); install the client programs of that "
        f"version (Debian: postgresql-client-{major}) or put them on PATH"
    )


def _major(path: Path) -> int:
    out = subprocess.run([str(path), "--version"], capture_output=True, text=True, check=False)
    found = re.search(r"(\d+)(?:\.\d+)?", out.stdout)
    return int(found.group(1)) if found else 0
