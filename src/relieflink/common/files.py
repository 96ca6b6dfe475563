"""Reading and writing CSV and XLSX as rows of strings, with the line number of each row."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from relieflink.errors import FieldError, Invalid

SUFFIXES = (".csv", ".xlsx")


def check_suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise Invalid(f"{path.name}: unknown file type {suffix!r}; use .csv or .xlsx")
    return suffix


#: A text cell starting with one of these is taken for a formula by spreadsheet programs.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """A text cell as written to a file: one that a spreadsheet would run as a formula (or that
    starts with the quote itself) gets a leading ``'`` (OWASP's advice against CSV and formula
    injection); :func:`restore` takes it off again on import, so the round trip is exact."""
    if isinstance(value, str) and value.startswith((*FORMULA_STARTS, "'")):
        return "'" + value
    return value


def restore(cell: str) -> str:
    """The value behind a cell written by :func:`neutralise`."""
    if cell.startswith("'") and cell[1:2] and cell[1:2] in (*FORMULA_STARTS, "'"):
        return cell[1:]
    return cell


def read_rows(path: Path) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """The header and an iterator of ``(line number, cells)``; line 1 is the header."""
    if not path.is_file():
        raise Invalid(f"{path}: no such file")
    if check_suffix(path) == ".xlsx":
        return _read_xlsx(path)
    return _read_csv(path)


def _read_csv(path: Path) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    handle = path.open(newline="", encoding="utf-8-sig")
    reader = csv.reader(handle)
    try:
        header = next(reader)
    except StopIteration:
        handle.close()
        raise Invalid(
            f"{path.name}: the file is empty", [FieldError(("line", 1), "no header row")]
        ) from None
    except UnicodeDecodeError as exc:
        handle.close()
        raise Invalid(f"{path.name}: not UTF-8 text ({exc.reason})") from None

    def rows() -> Iterator[tuple[int, list[str]]]:
        with handle:
            line = reader.line_num
            try:
                for cells in reader:
                    if any(cells):
                        yield line + 1, [restore(c) for c in cells]
                    line = reader.line_num
            except UnicodeDecodeError as exc:
                raise Invalid(
                    f"{path.name}: not UTF-8 text after line {line} ({exc.reason})"
                ) from None

    return [h.strip() for h in header], rows()


def _read_xlsx(path: Path) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    from openpyxl import load_workbook  # only for .xlsx: not on every start-up

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged file
        raise Invalid(f"{path.name}: not a readable XLSX workbook ({exc})") from None
    sheet = workbook.worksheets[0]
    values = sheet.iter_rows(values_only=True)
    try:
        header = [_cell(v).strip() for v in next(values)]
    except StopIteration:
        workbook.close()
        raise Invalid(
            f"{path.name}: the sheet is empty", [FieldError(("line", 1), "no header row")]
        ) from None

    def rows() -> Iterator[tuple[int, list[str]]]:
        try:
            for number, row in enumerate(values, start=2):
                cells = [restore(_cell(v)) for v in row]
                if any(cells):
                    yield number, cells
        finally:
            workbook.close()

    return header, rows()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def save_upload(stream: BinaryIO, filename: str | None, directory: Path) -> Path:
    """Copy an uploaded file into ``directory`` under its own name (CSV or XLSX only), a MiB at
    a time; returns the saved path. (The upload arrived spooled to disk, and no larger than
    ``RELIEFLINK_MAX_UPLOAD_BYTES``: ``api.guards.BodyLimit`` refused it otherwise.)"""
    name = Path(filename or "upload.csv")
    suffix = check_suffix(name)
    path = directory / f"{name.stem or 'upload'}{suffix}"
    with path.open("wb") as out:
        shutil.copyfileobj(stream, out, 1 << 20)
    return path


def write_rows(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Write ``rows`` under ``header`` as CSV or XLSX (by suffix); return how many were written."""
    count = 0
    if check_suffix(path) == ".xlsx":
        from openpyxl import Workbook  # only for .xlsx: not on every start-up

        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet()
        sheet.append(list(header))
        for row in rows:
            sheet.append([neutralise(v) for v in row])
            count += 1
        workbook.save(path)
        return count
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow([neutralise(v) for v in row])
            count += 1
    return count
