"""A request file streams a chunk of rows at a time: its errors (line and column), its merges,
its notes, what it stores and all-or-nothing are the same whatever the chunk size, also through
the API; a household whose rows fall into several chunks still gets one request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from relieflink.catalog import service as catalog
from relieflink.config import get_settings
from relieflink.db import bulk
from relieflink.errors import Invalid
from relieflink.models import AuditEvent, Kit, NeedRequest, Role
from relieflink.needs import service as needs
from relieflink.needs.schemas import BULK_COLUMNS, BulkRowReader
from tests.factories import headers_for, make_community, make_household, make_org, make_user
from tests.needs.test_requests import MONDAY

HEADER = "household_code,kit_sku,item_sku,quantity,note"
CHUNK_SIZES = [1, 2, 3, 4, 1000]


@pytest.fixture
def city(db: Session) -> dict[str, Any]:
    catalog.seed_catalog(db, actor=None)
    committee = make_org(db)
    mine = make_community(db, committee=committee)
    admin = make_user(db, Role.admin)
    homes = [make_household(db, mine, actor=admin) for _ in range(3)]
    other = make_household(db, make_community(db), actor=admin)
    user = make_user(db, Role.committee, organization_id=committee.id)
    db.commit()
    return {"homes": [h.code for h in homes], "other": other.code, "user": user}


def good_rows(city: dict[str, Any]) -> list[str]:
    a, b, c = city["homes"]
    return [
        f"{a},KIT-FAMILY-FOOD,,1,door code 1234",  # line 2
        f"{b},KIT-FAMILY-FOOD,,1,",
        f"{a},KIT-INFANT,,1,",
        f"{c},KIT-FAMILY-FOOD,,2,",  # line 5
        f"{a},KIT-FAMILY-FOOD,,2,call before",  # line 6: a's food again, merged into line 2
        f"{b},KIT-FAMILY-FOOD,,1,",  # line 7: into line 3
        f"{a},KIT-FAMILY-FOOD,,1,door code 1234",  # line 8: into line 2
    ]


def bad_rows(city: dict[str, Any]) -> list[str]:
    a, b, _ = city["homes"]
    return [
        *good_rows(city)[:4],
        f"{city['other']},KIT-FAMILY-FOOD,,1,",  # line 6: not this committee's household
        f"{a},KIT-NOPE,,1,",  # line 7: unknown kit
        f"{b},,,0,",  # line 8: quantity 0
        "NOBODY,KIT-INFANT,,1,",  # line 9: unknown household
        f"{b},KIT-INFANT,,1,",
    ]


BAD = [(6, "household_code"), (7, "kit_sku"), (8, "quantity"), (9, "household_code")]


def write(path: Path, rows: list[str]) -> Path:
    path.write_text(HEADER + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def requests(db: Session) -> int:
    db.rollback()  # as the caller's transaction would, after a refusal
    return db.scalar(select(func.count()).select_from(NeedRequest)) or 0


def stored(db: Session) -> list[tuple[str | None, list[tuple[str, int]]]]:
    """Each stored request: its note and its (kit SKU, quantity) lines."""
    sku = dict(db.execute(select(Kit.id, Kit.sku)).all())
    out = []
    for request in db.scalars(select(NeedRequest).order_by(NeedRequest.household_id)):
        lines = sorted((sku[line.kit_id], line.quantity) for line in request.lines if line.kit_id)
        out.append((request.note, lines))
    return out


@pytest.mark.parametrize("chunk_rows", CHUNK_SIZES)
def test_errors_and_all_or_nothing_do_not_depend_on_the_chunk_size(
    db: Session, city: dict[str, Any], tmp_path: Path, chunk_rows: int
) -> None:
    path = write(tmp_path / "requests.csv", bad_rows(city))
    with pytest.raises(Invalid) as caught:
        needs.import_requests(db, path, actor=city["user"], today=MONDAY, chunk_rows=chunk_rows)
    found = [(e.loc[1], e.loc[2] if len(e.loc) > 2 else None) for e in caught.value.errors]
    assert found == BAD
    assert "outside what your role may see" in caught.value.errors[0].msg
    assert "'KIT-NOPE'" in caught.value.errors[1].msg
    assert "'NOBODY'" in caught.value.errors[3].msg
    assert requests(db) == 0  # what the first chunks wrote goes with the rest


@pytest.mark.parametrize("chunk_rows", CHUNK_SIZES)
def test_merges_and_notes_do_not_depend_on_the_chunk_size(
    db: Session, city: dict[str, Any], tmp_path: Path, chunk_rows: int
) -> None:
    path = write(tmp_path / "requests.csv", good_rows(city))
    report = needs.import_requests(
        db, path, actor=city["user"], today=MONDAY, chunk_rows=chunk_rows
    )
    db.commit()
    assert (report.rows, report.created, report.merged) == (7, 3, 0)
    assert [(m.line, m.into_line) for m in report.merged_rows] == [(6, 2), (7, 3), (8, 2)]
    assert stored(db) == [
        ("door code 1234; call before", [("KIT-FAMILY-FOOD", 2), ("KIT-INFANT", 1)]),
        (None, [("KIT-FAMILY-FOOD", 1)]),
        (None, [("KIT-FAMILY-FOOD", 2)]),
    ]
    audited = db.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.entity == "request")
    )
    assert audited and audited >= 3
    # The same file again merges into the open requests, whatever the chunks: nothing doubles.
    again = needs.import_requests(db, path, actor=city["user"], today=MONDAY, chunk_rows=2)
    assert (again.created, again.merged) == (0, 3)
    assert stored(db)[0] == (
        "door code 1234; call before",
        [("KIT-FAMILY-FOOD", 2), ("KIT-INFANT", 1)],
    )


def test_the_upload_streams_and_rolls_back_as_a_whole(
    db: Session,
    client: TestClient,
    city: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    headers = headers_for(db, client, Role.coordinator)
    monkeypatch.setenv("RELIEFLINK_IMPORT_CHUNK_ROWS", "2")
    get_settings.cache_clear()
    try:
        rows = [r for i, r in enumerate(bad_rows(city)) if i != 4]  # no committee on the API
        body = (HEADER + "\n" + "\n".join(rows) + "\n").encode()
        response = client.post(
            "/api/v1/requests/import", files={"file": ("r.csv", body, "text/csv")}, headers=headers
        )
        assert response.status_code == 422, response.text
        errors = [tuple(e["loc"][1:3]) for e in response.json()["errors"]]
        assert errors[0] == (6, "kit_sku") and errors[-1] == (8, "household_code")
        assert requests(db) == 0
        good = (HEADER + "\n" + "\n".join(good_rows(city)) + "\n").encode()
        ok = client.post(
            "/api/v1/requests/import", files={"file": ("r.csv", good, "text/csv")}, headers=headers
        )
        assert ok.status_code == 200, ok.text
        assert (ok.json()["created"], len(ok.json()["merged_rows"])) == (3, 3)
        assert requests(db) == 3
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_the_plain_rows_read_without_the_model_are_what_the_model_reads() -> None:
    """The reader takes plainly valid rows without a model: for every row, the same values or
    the same errors (message, line, column) as through ``BulkRequestRow`` itself."""
    codes = ["H1", "h-1.2:3_x", "A" * 40, "A" * 41, "", " H1 ", "H 1", "H1\n", "户1", "H\x001"]
    quantities = ["0", "1", "05", "+5", "7", " 9 ", "99", "100", "101", "1.0", "-1", "x", "", "²"]
    notes = ["", "door", " door ", "x" * 500, "x" * 501, "门" * 500, "a\tb", "a\x01b", "a\x7f"]
    skus = [
        ("KIT-A", ""),
        ("", "RICE-5KG"),
        ("", ""),
        ("KIT-A", "RICE"),
        ("KIT A", ""),
        ("", "x" * 41),
    ]
    cells = [
        [code, kit, item, quantity, note]
        for code in codes
        for kit, item in skus
        for quantity in quantities[:: 1 if code == "H1" else 5]
        for note in notes[:: 1 if code == "H1" else 4]
    ]
    cells += [["H1", "", "RICE"], ["H1", "", "RICE", "3", "", "extra"], ["H1"]]
    chunk = [(line, row) for line, row in enumerate(cells, start=2)]
    for header in (BULK_COLUMNS, ["household_code", "item_sku", "quantity", "kit_sku", "note"]):
        order = [BULK_COLUMNS.index(h) for h in header]
        rows = [(line, [row[i] for i in order if i < len(row)]) for line, row in chunk]
        reader, model = BulkRowReader(header), BulkRowReader(header)
        model.fast = False  # every row through BulkRequestRow
        fast_rows, fast_errors = reader.read(rows)
        model_rows, model_errors = model.read(rows)
        assert fast_rows == model_rows
        assert [(e.loc, e.msg) for e in fast_errors] == [(e.loc, e.msg) for e in model_errors]
        assert len(fast_rows) > 100 and len(fast_errors) > 1000


def test_a_large_file_leaves_the_planner_statistics_of_what_it_wrote(
    db: Session, city: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL the import ends with ANALYZE of the requests and their lines, in its own
    transaction (the allocation run that follows is planned on them)."""
    if db.get_bind().dialect.name != "postgresql":
        pytest.skip("planner statistics are PostgreSQL's")
    path = write(tmp_path / "requests.csv", good_rows(city))
    monkeypatch.setattr(bulk, "ANALYZE_FROM", 7)  # the file's rows
    db.execute(text("ANALYZE need_requests, need_request_lines"))  # of the empty tables
    needs.import_requests(db, path, actor=city["user"], today=MONDAY)
    names = "('need_requests', 'need_request_lines')"
    sql = f"SELECT relname, reltuples FROM pg_class WHERE relname IN {names}"
    counted = dict(db.execute(text(sql)).all())
    assert counted == {"need_requests": 3, "need_request_lines": 4}
