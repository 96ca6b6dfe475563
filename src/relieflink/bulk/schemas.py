from __future__ import annotations

from pydantic import BaseModel


class RowError(BaseModel):
    """Why one cell (or one whole row) of an imported file was refused."""

    line: int
    column: str | None
    column_number: int | None
    reason: str

    def __str__(self) -> str:
        where = f"line {self.line}"
        if self.column is not None:
            where += f", column {self.column_number} ({self.column})"
        return f"{where}: {self.reason}"


class ImportReport(BaseModel):
    kind: str
    rows: int
    created: int
    updated: int
    rejected: int
    errors: list[RowError]
    reject_file: str | None = None
