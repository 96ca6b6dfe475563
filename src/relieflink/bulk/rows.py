"""What every import does with a file's rows: checks the header, records why a row is refused
(line, column and reason), and refuses the whole file when any row is bad."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relieflink.bulk.formats import Format
from relieflink.bulk.schemas import RowError
from relieflink.common.streaming import MAX_REPORTED_ERRORS
from relieflink.errors import FieldError, Invalid


@dataclass
class Parsed:
    lines: list[int] = field(default_factory=list)
    raws: list[list[str]] = field(default_factory=list)
    values: list[dict[str, Any]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    bad_lines: set[int] = field(default_factory=set)
    header: list[str] = field(default_factory=list)

    def refuse(self, line: int, column: str | None, reason: str) -> None:
        """Record why ``line`` is refused (at ``column``, when one is to blame)."""
        number = self.header.index(column) + 1 if column in self.header else None
        self.errors.append(RowError(line=line, column=column, column_number=number, reason=reason))
        self.bad_lines.add(line)


def check_header(fmt: Format, header: list[str], name: str) -> None:
    problems = []
    unknown = [h for h in header if h not in fmt.columns]
    if unknown:
        problems.append(
            FieldError(("line", 1), f"unknown columns {unknown}; expected {fmt.columns}")
        )
    missing = sorted(fmt.required_columns - set(header))
    if missing:
        problems.append(FieldError(("line", 1), f"missing required columns {missing}"))
    duplicated = sorted({h for h in header if header.count(h) > 1})
    if duplicated:
        problems.append(FieldError(("line", 1), f"columns given twice: {duplicated}"))
    if problems:
        raise Invalid(f"{name}: the header row does not match the {fmt.kind} format", problems)


def reason_of(msg: str, column: str | None, header: list[str]) -> str:
    msg = msg.removeprefix("Value error, ")
    return msg if column is None or column in header else f"{column}: {msg}"


def refusal(path: Path, errors: list[RowError], *, rejected: int, total: int) -> Invalid:
    """The error refusing the whole file: every bad row's line, column and reason (the first
    :data:`MAX_REPORTED_ERRORS`), of ``rejected`` bad rows out of ``total``."""
    errors = sorted(errors, key=lambda e: (e.line, e.column_number or 0))
    return Invalid(
        f"{path.name}: {rejected} of {total} rows are invalid; nothing was imported",
        [
            FieldError(("line", e.line, e.column or ""), e.reason)
            for e in errors[:MAX_REPORTED_ERRORS]
        ],
    )
