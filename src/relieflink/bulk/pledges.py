"""Pledges from spreadsheets: one row per pledge line; rows sharing ``code`` are the lines of one
pledge and agree on donor, recipient, programme and expected arrival.

The registry imports' rules: every row is checked before anything is written, and with any bad
row nothing is imported (each error names its line and column). A pledge whose code exists
already is left as it is when the file says the same (importing an export, or retrying, creates
nothing) and refused when it says something else (a pledge changes in the app, where its
receipts are checked). New pledges go through ``donations.create_pledge``, as in the app.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from relieflink import columns
from relieflink.audit import service as audit
from relieflink.bulk.formats import Format
from relieflink.bulk.rows import Parsed, check_header, reason_of, refusal
from relieflink.bulk.schemas import ImportReport
from relieflink.catalog import service as catalog
from relieflink.common import files
from relieflink.common import repository as common
from relieflink.common.fields import Code, Fen, PositiveInt
from relieflink.common.schemas import StrictModel
from relieflink.donations import service as donations
from relieflink.donations.schemas import PledgeCreate, PledgeLineIn
from relieflink.models import Item, Kit, Organization, Pledge, PledgeLine, Program, User
from relieflink.users import access

KIND = "pledges"


class PledgeRow(StrictModel):
    """One line of a pledge as a file writes it (the value of the line, not per unit)."""

    code: Code
    donor_code: Code
    recipient_code: Code
    program_code: Code
    declared_value_fen: Fen  # 64-bit: a city's grain gift is well over ¥21.5 million
    item_sku: Code
    quantity: PositiveInt
    expected_arrival: date | None = None


FORMAT = Format(KIND, Pledge, PledgeRow, columns.PLEDGES)
# The columns that name the pledge rather than the line: every line of a pledge repeats them.
PLEDGE_COLUMNS = ("donor_code", "recipient_code", "program_code", "expected_arrival")


def _rows(parsed: Parsed, rows: Iterator[tuple[int, list[str]]]) -> list[tuple[int, PledgeRow]]:
    """Each row checked against :class:`PledgeRow` (refused with its line and column)."""
    good = []
    width = len(parsed.header)
    for line, cells in rows:
        if len(cells) > width:
            parsed.refuse(line, None, f"{len(cells)} cells but the header has {width} columns")
        values = {h: c.strip() for h, c in zip(parsed.header, cells, strict=False) if c.strip()}
        parsed.lines.append(line)
        parsed.raws.append(cells)
        parsed.values.append(values)
        try:
            row = PledgeRow.model_validate(values)
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                column = str(err["loc"][0]) if err["loc"] else None
                parsed.refuse(line, column, reason_of(err["msg"], column, parsed.header))
            continue
        if row.declared_value_fen % row.quantity:
            parsed.refuse(
                line,
                "declared_value_fen",
                f"{row.declared_value_fen} fen is not a whole number of fen for each of "
                f"{row.quantity} units",
            )
        if row.donor_code == row.recipient_code:
            parsed.refuse(line, "recipient_code", "the recipient must differ from the donor")
        good.append((line, row))
    return good


def _refs(session: Session, parsed: Parsed, rows: list[tuple[int, PledgeRow]]) -> dict[str, Any]:
    """Organisation, programme and SKU codes → ids; each unknown code refused on its line."""
    orgs = {r.donor_code for _, r in rows} | {r.recipient_code for _, r in rows}
    ids: dict[str, Any] = {
        "org": common.ids_by_code(session, Organization, orgs),
        "program": common.ids_by_code(session, Program, {r.program_code for _, r in rows}),
    }
    skus = {r.item_sku for _, r in rows}
    items = catalog.get_items_by_sku(session, sorted(skus))
    kits = catalog.kit_ids_by_sku(session, sorted(skus))
    ids["sku"] = {s: (i.id, None) for s, i in items.items()} | {
        s: (None, k) for s, k in kits.items()
    }
    for line, row in rows:
        for column, table, key in (
            ("donor_code", "organizations", "org"),
            ("recipient_code", "organizations", "org"),
            ("program_code", "programs", "program"),
        ):
            code = getattr(row, column)
            if code not in ids[key]:
                parsed.refuse(line, column, f"no {table} row with code {code!r}")
        if row.item_sku not in ids["sku"]:
            parsed.refuse(line, "item_sku", f"no item or kit with sku {row.item_sku!r}")
    return ids


def _group(
    parsed: Parsed, rows: list[tuple[int, PledgeRow]]
) -> dict[str, list[tuple[int, PledgeRow]]]:
    """The lines of each pledge; a line that disagrees with its pledge's first line, or repeats
    its SKU, is refused."""
    pledges: dict[str, list[tuple[int, PledgeRow]]] = {}
    for line, row in rows:
        lines = pledges.setdefault(row.code, [])
        if lines:
            first_line, first = lines[0]
            for column in PLEDGE_COLUMNS:
                if getattr(row, column) != getattr(first, column):
                    parsed.refuse(
                        line,
                        column,
                        f"pledge {row.code} has {getattr(first, column) or 'none'} on line "
                        f"{first_line}; all its lines give the same {column}",
                    )
            repeated = next((n for n, r in lines if r.item_sku == row.item_sku), None)
            if repeated is not None:
                parsed.refuse(line, "item_sku", f"{row.item_sku} is also on line {repeated}")
        lines.append((line, row))
    return pledges


def _create(ids: dict[str, Any], code: str, lines: list[tuple[int, PledgeRow]]) -> PledgeCreate:
    first = lines[0][1]
    return PledgeCreate(
        code=code,
        donor_org_id=ids["org"][first.donor_code],
        recipient_org_id=ids["org"][first.recipient_code],
        program_id=ids["program"][first.program_code],
        declared_value_fen=sum(r.declared_value_fen for _, r in lines),
        expected_arrival=first.expected_arrival,
        lines=[
            PledgeLineIn(
                item_id=ids["sku"][r.item_sku][0],
                kit_id=ids["sku"][r.item_sku][1],
                quantity=r.quantity,
                unit_value_fen=r.declared_value_fen // r.quantity,
            )
            for _, r in lines
        ],
    )


def _same(pledge: Pledge, lines: list[PledgeLine], data: PledgeCreate) -> bool:
    """Whether a stored pledge is what the file says: its parties, programme, arrival and lines
    (not its declared total: one recorded in the app may differ from the sum of its lines)."""
    stored = sorted((x.item_id or 0, x.kit_id or 0, x.quantity, x.unit_value_fen) for x in lines)
    given = sorted(
        (x.item_id or 0, x.kit_id or 0, x.quantity, x.unit_value_fen) for x in data.lines
    )
    return (
        pledge.donor_org_id,
        pledge.recipient_org_id,
        pledge.program_id,
        pledge.expected_arrival,
        stored,
    ) == (
        data.donor_org_id,
        data.recipient_org_id,
        data.program_id,
        data.expected_arrival,
        given,
    )


def import_pledges(session: Session, path: Path, *, actor: User | None) -> ImportReport:
    """Check every row of ``path``, then record the new pledges; all or nothing."""
    if actor is not None:
        access.ensure_role(actor, access.STAFF)
    header, raw = files.read_rows(path)
    check_header(FORMAT, header, path.name)
    parsed = Parsed(header=header)
    rows = _rows(parsed, raw)
    ids = _refs(session, parsed, rows)
    pledges = _group(parsed, rows)
    new: list[PledgeCreate] = []
    if not parsed.errors:
        existing = donations.pledges_by_code(session, list(pledges))
        for code, lines in pledges.items():
            data = _create(ids, code, lines)
            stored = existing.get(code)
            if stored is None:
                new.append(data)
            elif not _same(stored, donations.pledge_lines(session, stored.id), data):
                parsed.refuse(
                    lines[0][0],
                    "code",
                    f"pledge {code} exists with other values; change it in the app",
                )
    if parsed.errors:
        raise refusal(path, parsed.errors, rejected=len(parsed.bad_lines), total=len(parsed.lines))
    for data in new:
        donations.create_pledge(session, data, actor=actor)
    audit.record(
        session,
        actor=actor,
        action="import",
        entity=KIND,
        detail={"file": path.name, "pledges": len(new), "unchanged": len(pledges) - len(new)},
    )
    # As in the registry imports, a row whose record exists counts as updated (here: unchanged).
    created = sum(len(pledges[data.code or ""]) for data in new)
    return ImportReport(
        kind=KIND,
        rows=len(parsed.lines),
        created=created,
        updated=len(parsed.lines) - created,
        rejected=0,
        errors=[],
    )


def export_pledges(session: Session, path: Path, *, actor: User | None) -> int:
    """Every pledge, a row per line, in the columns the import reads; returns the row count."""
    files.check_suffix(path)
    if actor is not None:
        access.ensure_role(actor, access.STAFF)
    orgs = common.codes_by_id(session, Organization)
    programs = common.codes_by_id(session, Program)
    items = common.codes_by_id(session, Item, column="sku")
    kits = common.codes_by_id(session, Kit, column="sku")

    def rows() -> Iterator[list[Any]]:
        for pledge, lines in donations.pledges_with_lines(session):
            for line in lines:
                sku = items[line.item_id] if line.item_id else kits[line.kit_id or 0]
                yield [
                    pledge.code,
                    orgs[pledge.donor_org_id],
                    orgs[pledge.recipient_org_id],
                    programs[pledge.program_id],
                    line.unit_value_fen * line.quantity,
                    sku,
                    line.quantity,
                    pledge.expected_arrival or "",
                ]

    count = files.write_rows(path, FORMAT.columns, rows())
    detail = {"file": path.name, "rows": count}
    audit.record(session, actor=actor, action="export", entity=KIND, detail=detail)
    return count
