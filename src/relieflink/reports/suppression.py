"""Small-number suppression for published tables of households (pure: numpy only).

A table of counts is published with its row totals, column totals and grand total. Rules:

1. *Primary*: no cell or total of 1 to ``threshold - 1`` households is shown (a zero names
   nobody and is shown).
2. *Complementary*: no hidden value may be worked out from what is shown. Every row and column
   (with its total) is a linear equation ``cells = total``; a hidden value is recoverable when the
   equations of the shown values pin it down (a line with a single hidden value is the simple
   case: total minus the shown cells). While one is recoverable, the cheapest rectangle through
   it is hidden too (the four corners can shift by ±k without changing any total).

:func:`recoverable` is the audit (exact linear algebra over the hidden values); tests check
every published table against it, independently of how :func:`suppress` chose its cells.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

THRESHOLD = 10

Cell = tuple[
    int, int
]  # (row, column); row == n_rows is the totals row, column == n_cols the totals column


@dataclass(frozen=True)
class Suppressed:
    """A table with its margins; ``None`` where a value is hidden."""

    cells: list[list[int | None]]
    row_totals: list[int | None]
    col_totals: list[int | None]
    total: int | None


def _full(counts: Sequence[Sequence[int]]) -> np.ndarray:
    """The table with its margins: an (R + 1) × (C + 1) matrix, totals last."""
    table = np.asarray(counts, dtype=np.int64).reshape(len(counts), -1)
    rows = np.hstack([table, table.sum(axis=1, keepdims=True)])
    return np.vstack([rows, rows.sum(axis=0, keepdims=True)])


def _lines(n_rows: int, n_cols: int) -> list[list[Cell]]:
    """Each row and column of the full table: its cells, then its total."""
    rows = [[(r, c) for c in range(n_cols + 1)] for r in range(n_rows + 1)]
    cols = [[(r, c) for r in range(n_rows + 1)] for c in range(n_cols + 1)]
    return rows + cols


def recoverable(counts: Sequence[Sequence[int]], hidden: set[Cell]) -> set[Cell]:
    """The hidden values (margins included) that the shown values determine exactly."""
    if not counts or not hidden:
        return set()
    n_rows, n_cols = len(counts), len(counts[0])
    unknowns = sorted(hidden)
    index = {cell: i for i, cell in enumerate(unknowns)}
    equations = []
    for line in _lines(n_rows, n_cols):
        *cells, total = line
        row = np.zeros(len(unknowns))
        for cell in cells:
            if cell in index:
                row[index[cell]] += 1
        if total in index:
            row[index[total]] -= 1
        if row.any():
            equations.append(row)
    if not equations:
        return set()
    # A hidden value is determined exactly when the system's null space is zero in its place.
    system = np.array(equations)
    _, singular, vt = np.linalg.svd(system)
    rank = int((singular > 1e-9 * max(1.0, float(singular.max(initial=0.0)))).sum())
    null = vt[rank:]
    return {cell for cell, i in index.items() if not np.any(np.abs(null[:, i]) > 1e-9)}


def suppress(counts: Sequence[Sequence[int]], *, threshold: int = THRESHOLD) -> Suppressed:
    """Hide every value from 1 to ``threshold - 1``, then enough others that none can be
    recovered."""
    if not counts or not counts[0]:
        return Suppressed([[] for _ in counts], [None] * len(counts), [], None)
    n_rows, n_cols = len(counts), len(counts[0])
    full = _full(counts)
    hidden = {
        (r, c) for r in range(n_rows + 1) for c in range(n_cols + 1) if 0 < full[r, c] < threshold
    }
    while exposed := recoverable(counts, hidden):
        # Hide the cheapest rectangle through an exposed value: its row and column then each
        # hold a second hidden value, and the four can shift by ±k without changing any total.
        r, c = min(exposed)
        corners = min(
            (
                [(r, c2), (r2, c), (r2, c2)]
                for r2 in range(n_rows + 1)
                for c2 in range(n_cols + 1)
                if r2 != r and c2 != c
            ),
            key=lambda cells: sum(int(full[x]) for x in cells if x not in hidden),
        )
        hidden.update(corners)

    def value(r: int, c: int) -> int | None:
        return None if (r, c) in hidden else int(full[r, c])

    return Suppressed(
        cells=[[value(r, c) for c in range(n_cols)] for r in range(n_rows)],
        row_totals=[value(r, n_cols) for r in range(n_rows)],
        col_totals=[value(n_rows, c) for c in range(n_cols)],
        total=value(n_rows, n_cols),
    )
