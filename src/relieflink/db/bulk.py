"""Bulk writes for the paths that move a city's worth of rows: COPY on PostgreSQL, one
``executemany`` on SQLite. Both run in the caller's transaction."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import psycopg
from sqlalchemy import Table, bindparam, insert, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

CHUNK = 20_000


def _is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


#: A bulk write of this many rows or more refreshes the planner statistics of what it wrote
#: (:func:`refresh_statistics`).
ANALYZE_FROM = 10_000


def refresh_statistics(session: Session, tables: Sequence[Table], rows: int) -> None:
    """Have PostgreSQL read ``tables`` afresh for its planner after a bulk write of ``rows`` rows
    (from :data:`ANALYZE_FROM`; in the writing transaction, whose own rows count). Autovacuum
    comes to a table a minute or more after a load, so a query just after it is planned for
    the table as it was: the allocation's read after a request file, or each route's manifest
    after a city's plan (a parallel scan of 600,000 parcels, 200 ms a route, instead of an
    index lookup, 1 ms)."""
    if rows >= ANALYZE_FROM and _is_postgres(session):
        session.execute(text("ANALYZE " + ", ".join(t.name for t in tables)))


def insert_rows(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys) into ``table``, as fast as the database can."""
    if not rows:
        return
    if _is_postgres(session):
        columns = list(rows[0])
        dbapi = session.connection().connection.driver_connection
        sql = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
        try:
            with dbapi.cursor() as cursor, cursor.copy(sql) as copy:  # type: ignore[union-attr]
                for row in rows:
                    copy.write_row([row[c] for c in columns])
        except psycopg.errors.IntegrityError as exc:  # as the executemany path raises it
            raise IntegrityError(sql, None, exc) from exc
        return
    for start in range(0, len(rows), CHUNK):
        session.execute(insert(table), list(rows[start : start + CHUNK]))


# The binary COPY formats of column types (``pg_catalog.format_type`` names), as psycopg's
# dumpers know them. A varchar or json column takes text (its binary input is the text).
_BINARY = {
    "smallint": "int2",
    "integer": "int4",
    "bigint": "int8",
    "boolean": "bool",
    "double precision": "float8",
    "date": "date",
    "timestamp with time zone": "timestamptz",
    "text": "text",
    "character varying": "text",
    "json": "text",
}


def _binary_types(session: Session, table: Table, columns: Sequence[str]) -> list[str] | None:
    """The binary COPY type of each of ``columns``, read from the database (None if one has
    a type not in ``_BINARY``)."""
    result = session.connection().execute(
        text(
            "SELECT attname, format_type(atttypid, NULL) FROM pg_attribute "
            "WHERE attrelid = CAST(:t AS regclass) AND attnum > 0 AND NOT attisdropped"
        ),
        {"t": table.name},
    )
    found: dict[str, str] = dict(result.all())
    types = [_BINARY.get(found.get(c, "")) for c in columns]
    return None if None in types else [t for t in types if t is not None]


def copy_rows(
    session: Session, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """Insert ``rows``, each the values of ``columns`` in order, as fast as the database can:
    on PostgreSQL one binary COPY (no dict a row, and no text for the server to parse; values
    of the columns' Python types: ``int``, ``str`` (or a ``StrEnum``), ``date``, an aware
    ``datetime``, a JSON column's text), one text COPY for a column type it does not know;
    ``executemany`` elsewhere."""
    if not _is_postgres(session):
        keyed = [dict(zip(columns, row, strict=True)) for row in rows]
        for start in range(0, len(keyed), CHUNK):
            session.execute(insert(table), keyed[start : start + CHUNK])
        return
    types = _binary_types(session, table, columns)
    dbapi = session.connection().connection.driver_connection
    sql = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
    binary = sql + (" (FORMAT BINARY)" if types else "")
    try:
        with dbapi.cursor() as cursor, cursor.copy(binary) as copy:  # type: ignore[union-attr]
            if types:
                copy.set_types(types)
            for row in rows:
                copy.write_row(row)
    except psycopg.errors.IntegrityError as exc:  # as the executemany path raises it
        raise IntegrityError(sql, None, exc) from exc


def copy_rows_with_ids(
    session: Session, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> list[int]:
    """:func:`copy_rows` for new rows whose ids are wanted: their ids in the order given (on
    PostgreSQL drawn from the table's sequence first, so that the rows go in with one COPY)."""
    if not rows:
        return []
    if not _is_postgres(session):
        return insert_rows_with_ids(
            session, table, [dict(zip(columns, row, strict=True)) for row in rows]
        )
    ids = _next_ids(session, table, len(rows))
    copy_rows(
        session, table, ["id", *columns], ((i, *row) for i, row in zip(ids, rows, strict=True))
    )
    return ids


def _next_ids(session: Session, table: Table, n: int) -> list[int]:
    return list(
        session.scalars(
            text("SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)"),
            {"t": table.name, "n": n},
        )
    )


def insert_rows_with_ids(
    session: Session, table: Table, rows: Sequence[Mapping[str, Any]]
) -> list[int]:
    """Insert ``rows`` and return their new ids in the order given. On PostgreSQL the ids are
    drawn from the table's sequence first, so that the rows can go in with one COPY."""
    if not rows:
        return []
    if not _is_postgres(session):
        stmt = insert(table).returning(table.c.id, sort_by_parameter_order=True)
        ids: list[int] = []
        for start in range(0, len(rows), CHUNK):
            ids.extend(session.scalars(stmt, list(rows[start : start + CHUNK])))
        return ids
    ids = _next_ids(session, table, len(rows))
    insert_rows(session, table, [{"id": i, **row} for i, row in zip(ids, rows, strict=True)])
    return ids


def add_to_column(session: Session, table: Table, column: str, deltas: Mapping[int, int]) -> None:
    """``column += delta`` for each primary key in ``deltas``, in one statement per chunk."""
    if not deltas:
        return
    target = table.c[column]
    if _is_postgres(session):
        temp = f"tmp_delta_{uuid.uuid4().hex[:12]}"
        conn = session.connection()
        conn.exec_driver_sql(
            f"CREATE TEMP TABLE {temp} (id bigint PRIMARY KEY, delta bigint) ON COMMIT DROP"
        )
        dbapi = conn.connection.driver_connection
        sql = f"COPY {temp} (id, delta) FROM STDIN"
        with dbapi.cursor() as cursor, cursor.copy(sql) as copy:  # type: ignore[union-attr]
            for key, delta in deltas.items():
                copy.write_row([key, delta])
        conn.exec_driver_sql(
            f"UPDATE {table.name} AS t SET {column} = t.{column} + d.delta "
            f"FROM {temp} AS d WHERE t.id = d.id"
        )
        return
    stmt = (
        update(table)
        .where(table.c.id == bindparam("row_id"))
        .values({column: target + bindparam("delta")})
    )
    items = [{"row_id": key, "delta": delta} for key, delta in deltas.items()]
    for start in range(0, len(items), CHUNK):
        session.execute(stmt, items[start : start + CHUNK])
