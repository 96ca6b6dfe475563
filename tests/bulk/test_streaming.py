"""Imports stream a chunk of rows at a time: the errors, their lines and columns, and
all-or-nothing are the same whatever the chunk size, also through the API; a key repeated in a
later chunk is refused on its own line and names the first."""

from __future__ import annotations

import gc
import random
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relieflink.bulk import service as bulk
from relieflink.common.streaming import SeenKeys, chunks
from relieflink.config import get_settings
from relieflink.errors import Invalid
from relieflink.models import Household, Role
from tests.bulk.test_import import HEADER, load_examples
from tests.factories import headers_for

ROWS = [
    "S1,C00001,1,101,2,0,0,0,0,0,",
    "S2,C00001,1,102,2,0,0,0,0,0,",
    "S3,NOWHERE,1,103,2,0,0,0,0,0,",  # line 4: unknown community
    "S4,C00001,1,104,2,0,0,0,0,0,",
    "S5,C00001,1,105,two,0,0,0,0,0,",  # line 6: size
    "S6,C00001,1,106,2,0,0,0,0,0,",
    "S2,C00001,1,107,2,0,0,0,0,0,",  # line 8: S2 again, first on line 3
    "S7,C00001,1,108,2,0,0,0,0,0,",
]
ERRORS = [(4, "community_code"), (6, "size"), (8, "code")]


def households(db: Session) -> int:
    db.rollback()
    return db.scalar(select(func.count()).select_from(Household)) or 0


@pytest.mark.parametrize("chunk_rows", [1, 2, 3, 5, 1000])
def test_errors_and_all_or_nothing_do_not_depend_on_the_chunk_size(
    db: Session, examples_dir: Path, tmp_path: Path, chunk_rows: int
) -> None:
    load_examples(db, examples_dir)
    before = households(db)
    path = tmp_path / "households.csv"
    path.write_text(HEADER + "\n" + "\n".join(ROWS) + "\n")
    with pytest.raises(Invalid) as caught:
        bulk.import_file(db, "households", path, actor=None, chunk_rows=chunk_rows)
    assert [(e.loc[1], e.loc[2]) for e in caught.value.errors] == ERRORS
    assert "also on line 3" in caught.value.errors[2].msg
    assert "3 of 8 rows are invalid" in caught.value.message
    assert households(db) == before  # what earlier chunks wrote is rolled back with the rest


@pytest.mark.parametrize("chunk_rows", [1, 3])
def test_a_lenient_import_writes_every_good_row_and_rejects_from_every_chunk(
    db: Session, examples_dir: Path, tmp_path: Path, chunk_rows: int
) -> None:
    load_examples(db, examples_dir)
    before = households(db)
    path = tmp_path / "households.csv"
    path.write_text(HEADER + "\n" + "\n".join(ROWS) + "\n")
    report = bulk.import_file(
        db, "households", path, actor=None, skip_invalid=True, chunk_rows=chunk_rows
    )
    db.commit()
    assert (report.rows, report.created, report.rejected) == (8, 5, 3)
    assert households(db) == before + 5
    rejects = Path(report.reject_file or "").read_text().splitlines()
    assert [r.split(",")[0] for r in rejects[1:]] == ["S3", "S5", "S2"]
    assert "line 8, column 1 (code)" in rejects[3]


def test_the_upload_streams_and_rolls_back_as_a_whole(
    db: Session,
    client: TestClient,
    examples_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    load_examples(db, examples_dir)
    headers = headers_for(db, client, Role.coordinator)
    before = households(db)
    monkeypatch.setenv("RELIEFLINK_IMPORT_CHUNK_ROWS", "2")
    get_settings.cache_clear()
    try:
        body = (HEADER + "\n" + "\n".join(ROWS) + "\n").encode()
        response = client.post(
            "/api/v1/imports/households",
            files={"file": ("h.csv", body, "text/csv")},
            headers=headers,
        )
        assert response.status_code == 422, response.text
        assert [e["loc"][1:] for e in response.json()["errors"]] == [list(e) for e in ERRORS]
        assert households(db) == before
        good = HEADER + "\n" + "\n".join(r for i, r in enumerate(ROWS) if i not in (2, 4, 6))
        ok = client.post(
            "/api/v1/imports/households",
            files={"file": ("h.csv", good.encode(), "text/csv")},
            headers=headers,
        )
        assert ok.status_code == 200 and ok.json()["created"] == 5
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_the_key_set_finds_every_repeat_across_merges() -> None:
    rng = random.Random(5)
    keys = [f"K{rng.randrange(3000)}" for _ in range(5000)]
    seen = SeenKeys(buffer=7)  # merge the buffer into the sorted array often
    first: dict[str, int] = {}
    for line, key in enumerate(keys, start=2):
        expected = first.get(key)
        assert seen.first_line(key) == expected
        if expected is None:
            seen.add(key, line)
            first[key] = line
    assert len(seen.hashes) + len(seen.buffer) == len(first)


def test_chunks_keep_the_heap_out_of_the_collector_only_while_they_are_read() -> None:
    rows = chunks(iter(range(5)), 2)
    assert next(rows) == [0, 1]
    assert gc.get_freeze_count() > 0  # the objects alive before the first chunk
    assert list(rows) == [[2, 3], [4]]
    assert gc.get_freeze_count() == 0
    stopped = chunks(iter(range(5)), 2)
    assert next(stopped) == [0, 1]
    stopped.close()  # a caller that stops early (an error) unfreezes too
    assert gc.get_freeze_count() == 0


def test_integer_keys_a_chunk_at_a_time_find_what_one_at_a_time_would() -> None:
    rng = np.random.default_rng(3)
    seen = SeenKeys()
    first: dict[int, int] = {}
    line = 2
    for size in (0, 1, 5, 300, 2000, 7):
        keys = np.unique(rng.integers(0, 2**63, size=size, dtype=np.uint64) % 4000)
        rng.shuffle(keys)
        lines = np.arange(line, line + len(keys), dtype=np.int64)
        line += len(keys)
        expected = [first.get(int(k), -1) for k in keys]
        assert seen.first_lines(keys).tolist() == expected
        fresh = seen.first_lines(keys) < 0
        seen.add_many(keys[fresh], lines[fresh])
        first.update({int(k): int(n) for k, n in zip(keys[fresh], lines[fresh], strict=True)})
    assert list(seen.hashes) == sorted(first) and len(first) > 1000
    assert seen.first_lines(np.array([2**64 - 1], dtype=np.uint64)).tolist() == [-1]
