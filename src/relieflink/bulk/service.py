"""Import and export of registry files.

An import streams: it reads, checks and writes the file a chunk of rows at a time, so its memory
does not grow with the file, all in the caller's one transaction. With any bad row the whole file
is refused (``Invalid`` carries each row's line, column and reason, from every chunk; the caller's
transaction rolls back what earlier chunks wrote) unless ``skip_invalid`` is set, in which case the
good rows are written and the bad ones go to a reject file. Rows whose key (code or SKU) exists
already update that record, so importing an export, or retrying an import, changes nothing. A key
given twice is refused on its second line, wherever the first was (a compact set of key hashes).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO, cast

from pydantic import BaseModel, TypeAdapter, ValidationError
from sqlalchemy import Table
from sqlalchemy.orm import Session

from relieflink import clock
from relieflink.audit import service as audit
from relieflink.bulk import pledges, repository
from relieflink.bulk.formats import FORMATS, Format
from relieflink.bulk.rows import Parsed, check_header, reason_of, refusal
from relieflink.bulk.schemas import ImportReport, RowError
from relieflink.common import files
from relieflink.common import repository as common
from relieflink.common.streaming import MAX_REPORTED_ERRORS, SeenKeys, chunks
from relieflink.config import get_settings
from relieflink.db.bulk import insert_rows
from relieflink.errors import Invalid
from relieflink.models import Role, User
from relieflink.users import access

CHUNK = 20_000  # rows validated by one pydantic call
Row = tuple[int, list[str]]  # a file's line number and its cells

# Kinds whose rows are not one record each (a pledge's lines share its code): bulk/pledges.py.
GROUPED = ("pledges",)
KINDS = (*FORMATS, *GROUPED)


def require_format(kind: str) -> Format:
    """The file format for ``kind``; ``Invalid`` naming the known kinds otherwise."""
    try:
        return FORMATS[kind] if kind not in GROUPED else pledges.FORMAT
    except KeyError:
        raise Invalid(f"unknown kind {kind!r}; choose one of {', '.join(KINDS)}") from None


def _parse(
    fmt: Format, header: list[str], rows: Iterable[tuple[int, list[str]]], seen: SeenKeys
) -> Parsed:
    parsed = Parsed(header=header)
    width = len(header)
    for line, cells in rows:
        if len(cells) > width:
            parsed.refuse(line, None, f"{len(cells)} cells but the header has {width} columns")
        values = {h: c.strip() for h, c in zip(header, cells, strict=False) if c.strip() != ""}
        key = values.get(fmt.key)
        if key is not None:
            first = seen.first_line(key)
            if first is not None:
                parsed.refuse(line, fmt.key, f"{fmt.key} {key!r} is also on line {first}")
            else:
                seen.add(key, line)
        parsed.lines.append(line)
        parsed.raws.append(cells)
        parsed.values.append(values)
    return parsed


def _resolve_refs(session: Session, fmt: Format, header: list[str], parsed: Parsed) -> None:
    """Replace each ``*_code`` cell by the referenced row's id, or record that it is unknown."""
    for ref in fmt.refs:
        if ref.column not in header:
            continue
        codes = {v[ref.column] for v in parsed.values if ref.column in v}
        ids = common.ids_by_code(session, ref.model, codes, column=ref.key)
        for line, values in zip(parsed.lines, parsed.values, strict=True):
            code = values.pop(ref.column, None)
            if code is None:
                continue
            if code in ids:
                values[ref.field] = ids[code]
            else:
                values[ref.field] = -1  # the row is refused already; no second "missing" error
                reason = f"no {ref.model.__tablename__} row with {ref.key} {code!r}"
                parsed.refuse(line, ref.column, reason)


def _check_kind_rows(session: Session, fmt: Format, parsed: Parsed) -> None:
    """The kind's own rules across rows and the database, on the rows not refused already."""
    if fmt.check_rows is None:
        return
    rows = [
        (line, values)
        for line, values in zip(parsed.lines, parsed.values, strict=True)
        if line not in parsed.bad_lines
    ]
    column_of = {ref.field: ref.column for ref in fmt.refs}
    for index, name, reason in fmt.check_rows(session, [values for _, values in rows]):
        parsed.refuse(rows[index][0], column_of.get(name, name), reason)


def _validate(fmt: Format, header: list[str], parsed: Parsed) -> list[dict[str, Any]]:
    """Validate with the kind's ``*Create`` schema, in chunks; per row only where a chunk fails."""
    adapter = TypeAdapter(list[fmt.schema])  # type: ignore[name-defined]
    column_of = {ref.field: ref.column for ref in fmt.refs}
    good: list[dict[str, Any]] = []
    for start in range(0, len(parsed.values), CHUNK):
        chunk = parsed.values[start : start + CHUNK]
        try:
            models: list[BaseModel] = adapter.validate_python(chunk)
        except ValidationError as exc:
            models = []
            failed: dict[int, list[Any]] = {}
            for err in exc.errors(include_url=False):
                failed.setdefault(int(err["loc"][0]), []).append(err)
            for offset, values in enumerate(chunk):
                line = parsed.lines[start + offset]
                for err in failed.get(offset, []):
                    name = str(err["loc"][1]) if len(err["loc"]) > 1 else None
                    column = column_of.get(name, name) if name else None
                    parsed.refuse(line, column, reason_of(err["msg"], column, header))
                if offset in failed:
                    models.append(None)  # type: ignore[arg-type]
                else:
                    models.append(fmt.schema.model_validate(values))
        for offset, model in enumerate(models):
            if model is not None and parsed.lines[start + offset] not in parsed.bad_lines:
                good.append(model.model_dump())
    return good


def _check_actor_rows(session: Session, fmt: Format, actor: User | None, parsed: Parsed) -> None:
    """A committee may only import households into the communities it manages, and may only
    change households that are already in them (a row naming another community's household
    would move it into the committee's community and expose its contact)."""
    if actor is None or actor.role in access.STAFF:
        return
    if fmt.kind != "households" or actor.role != Role.committee:
        access.ensure_role(actor, access.STAFF)
        return
    managed = repository.managed_communities(session, actor.organization_id)
    owners = repository.household_communities(
        session, [str(v["code"]) for v in parsed.values if v.get("code")]
    )
    for line, values in zip(parsed.lines, parsed.values, strict=True):
        if values.get("community_id") is not None and values["community_id"] not in managed:
            parsed.refuse(line, "community_code", "this community is not managed by your committee")
        owner = owners.get(str(values.get("code")))
        if owner is not None and owner not in managed:
            parsed.refuse(
                line, "code", "this household is in a community your committee does not manage"
            )


def import_file(
    session: Session,
    kind: str,
    path: Path,
    *,
    actor: User | None,
    skip_invalid: bool = False,
    reject_path: Path | None = None,
    chunk_rows: int | None = None,
) -> ImportReport:
    """Check and write ``path`` a chunk of ``chunk_rows`` rows at a time (by default
    ``RELIEFLINK_IMPORT_CHUNK_ROWS``), creating or updating the records in bulk. With a bad row
    (and no ``skip_invalid``) the rest of the file is still checked, so every error is reported,
    but nothing more is written, and ``Invalid`` is raised for the caller to roll back."""
    fmt = require_format(kind)
    if kind in GROUPED:
        if skip_invalid:
            raise Invalid(f"{kind} are imported all or nothing: --skip-invalid does not apply")
        return pledges.import_pledges(session, path, actor=actor)
    chunk_rows = chunk_rows or get_settings().import_chunk_rows
    header, rows = files.read_rows(path)
    check_header(fmt, header, path.name)
    present = _fields_in(fmt, header)
    seen = SeenKeys()
    errors: list[RowError] = []
    total = rejected = created = updated = 0
    rejects = _Rejects(reject_path or path.with_name(path.stem + ".rejects.csv"), header)
    try:
        for chunk in chunks(rows, chunk_rows):
            parsed = _parse(fmt, header, chunk, seen)
            _resolve_refs(session, fmt, header, parsed)
            _check_actor_rows(session, fmt, actor, parsed)
            _check_kind_rows(session, fmt, parsed)
            good = _validate(fmt, header, parsed)
            parsed.errors.sort(key=lambda e: (e.line, e.column_number or 0))
            total += len(parsed.lines)
            rejected += len(parsed.bad_lines)
            errors.extend(parsed.errors[: MAX_REPORTED_ERRORS - len(errors)])
            if skip_invalid:
                rejects.write(parsed)
            elif rejected:
                continue  # the file is refused: check on, write nothing more
            c, u = _upsert(session, fmt, good, present)
            created, updated = created + c, updated + u
    finally:
        rejects.close()
    if rejected and not skip_invalid:
        raise refusal(path, errors, rejected=rejected, total=total)
    audit.record(
        session,
        actor=actor,
        action="import",
        entity=fmt.kind,
        detail={"file": path.name, "created": created, "updated": updated, "rejected": rejected},
    )
    return ImportReport(
        kind=fmt.kind,
        rows=total,
        created=created,
        updated=updated,
        rejected=rejected,
        errors=errors,
        reject_file=str(rejects.path) if rejects.opened else None,
    )


class _Rejects:
    """The reject file of a lenient import: the bad rows with their reasons, opened at the first."""

    def __init__(self, path: Path, header: list[str]) -> None:
        self.path, self.header = path, header
        self.handle: TextIO | None = None
        self.writer: Any = None

    @property
    def opened(self) -> bool:
        return self.handle is not None

    def write(self, parsed: Parsed) -> None:
        if not parsed.bad_lines:
            return
        if self.handle is None:
            self.handle = self.path.open("w", newline="", encoding="utf-8")
            self.writer = csv.writer(self.handle, lineterminator="\n")
            self.writer.writerow([*self.header, "error"])
        width = len(self.header)
        reasons: dict[int, list[str]] = {}
        for err in parsed.errors:
            reasons.setdefault(err.line, []).append(str(err))
        for line, raw in zip(parsed.lines, parsed.raws, strict=True):
            if line in parsed.bad_lines:
                cells = [*raw[:width], *[""] * (width - len(raw))]
                row = [*cells, "; ".join(reasons[line])]
                self.writer.writerow([files.neutralise(c) for c in row])

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


def _fields_in(fmt: Format, header: list[str]) -> set[str]:
    """The schema fields behind the columns a file has."""
    by_column = dict(zip(fmt.header, fmt.fields, strict=True))
    return {by_column.get(column, column) for column in header}


def _upsert(
    session: Session, fmt: Format, rows: list[dict[str, Any]], present: set[str]
) -> tuple[int, int]:
    """Insert new keys and update existing ones, in bulk; returns (created, updated). An
    existing record gets only the fields whose column the file has: an absent optional column
    leaves the stored values as they are (importing communities without committees must not
    remove the committees)."""
    existing = common.ids_by_code(session, fmt.model, (r[fmt.key] for r in rows), column=fmt.key)
    now = clock.now()
    new = [r | {"created_at": now, "updated_at": now} for r in rows if r[fmt.key] not in existing]
    changed = [
        {k: v for k, v in r.items() if k in present}
        | {"id": existing[r[fmt.key]], "updated_at": now}
        for r in rows
        if r[fmt.key] in existing
    ]
    insert_rows(session, cast(Table, fmt.model.__table__), new)
    repository.update_rows(session, fmt.model, changed)
    return len(new), len(changed)


def export_file(session: Session, kind: str, path: Path, *, actor: User | None) -> int:
    """Write every record of ``kind`` to ``path`` in the import columns; returns the row count."""
    fmt = require_format(kind)
    if kind in GROUPED:
        return pledges.export_pledges(session, path, actor=actor)
    files.check_suffix(path)
    if actor is not None:
        access.ensure_role(actor, access.STAFF)
    codes = {ref.field: common.codes_by_id(session, ref.model, column=ref.key) for ref in fmt.refs}
    fields = fmt.fields

    def rows() -> Iterator[list[Any]]:
        for record in repository.stream(session, fmt.model, fields):
            yield [
                _export_value(codes[name].get(value) if name in codes else value)
                for name, value in zip(fields, record, strict=True)
            ]

    count = files.write_rows(path, fmt.columns, rows())
    audit.record(
        session,
        actor=actor,
        action="export",
        entity=fmt.kind,
        detail={"file": path.name, "rows": count},
    )
    return count


def _export_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return value
