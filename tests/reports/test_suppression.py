"""Small-number suppression of published household tables: nothing from 1 to 9 shown (a zero
names nobody), and no hidden value recoverable from the shown ones (by a line's subtraction, or
any combination)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from relieflink.reports.suppression import THRESHOLD, recoverable, suppress


def _grid(s) -> list[list[int | None]]:  # type: ignore[no-untyped-def]
    """The published table with its margins, totals last (None: hidden)."""
    rows = [[*cells, total] for cells, total in zip(s.cells, s.row_totals, strict=True)]
    return [*rows, [*s.col_totals, s.total]]


def _check(counts: list[list[int]]) -> None:
    s = suppress(counts)
    grid = _grid(s)
    full = [[*row, sum(row)] for row in counts]
    full.append([sum(col) for col in zip(*full, strict=True)])
    hidden = set()
    for r, row in enumerate(grid):
        for c, value in enumerate(row):
            if value is None:
                hidden.add((r, c))
            else:
                assert value == full[r][c]  # what is shown is true
                assert value == 0 or value >= THRESHOLD  # and never a small number
    # No line (a row or a column with its total) has exactly one hidden value: subtraction
    # of the shown cells from the total recovers nothing.
    lines = [list(row) for row in grid] + [list(col) for col in zip(*grid, strict=True)]
    for line in lines:
        assert sum(v is None for v in line) != 1, line
    assert recoverable(counts, hidden) == set()


def test_a_small_cell_and_its_complement_are_hidden() -> None:
    s = suppress([[30, 4, 25], [40, 50, 60]])
    assert s.cells[0][1] is None  # 4 households: primary
    assert s.cells[0].count(None) == 2  # and a second one in its row
    assert sum(row[1] is None for row in s.cells) == 2  # and in its column
    assert s.total == 209
    _check([[30, 4, 25], [40, 50, 60]])


def test_the_audit_finds_what_subtraction_reveals() -> None:
    counts = [[30, 4], [40, 50]]
    assert recoverable(counts, {(0, 1)}) == {(0, 1)}  # row total 34 − 30
    # Hidden in pairs across a 2 × 2 block: still recoverable from the margins? No: each line
    # has two unknowns and the block can shift by ±k.
    assert recoverable(counts, {(0, 0), (0, 1), (1, 0), (1, 1)}) == set()


def test_all_small_and_empty_tables() -> None:
    s = suppress([[1, 2], [3, 0]])
    assert s.total is None and s.row_totals == [None, None]
    assert suppress([[0, 0], [0, 12]]).cells == [[0, 0], [0, 12]]  # zeros name nobody
    assert suppress([]).cells == []
    _check([[0, 0, 0]])
    _check([[100]])
    _check([[9]])


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 6).flatmap(
        lambda cols: st.lists(
            st.lists(st.integers(0, 80), min_size=cols, max_size=cols), min_size=1, max_size=6
        )
    )
)
def test_any_table(counts: list[list[int]]) -> None:
    _check(counts)
