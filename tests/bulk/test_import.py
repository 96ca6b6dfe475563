from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from openpyxl import Workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relieflink.bulk import service as bulk
from relieflink.bulk.formats import FORMATS
from relieflink.common import files
from relieflink.errors import Invalid
from relieflink.models import AuditEvent, Community, Household, Role
from tests.factories import headers_for

ORDER = [
    "organizations",
    "districts",
    "communities",
    "warehouses",
    "households",
    "items",
    "teams",
    "programs",
    "pledges",
]
HEADER = "code,community_code,building,unit,size,infants,pregnant,chronic,elderly_80,disabled,phone"


def load_examples(db: Session, examples_dir: Path) -> None:
    for kind in ORDER:
        bulk.import_file(db, kind, examples_dir / f"{kind}.csv", actor=None)
    db.commit()


def count(db: Session, model: type) -> int:
    return db.scalar(select(func.count()).select_from(model)) or 0


def test_every_example_file_imports_as_it_is(db: Session, examples_dir: Path) -> None:
    assert sorted(p.stem for p in examples_dir.glob("*.csv")) == sorted(bulk.KINDS)
    load_examples(db, examples_dir)
    assert count(db, Household) == 5


def test_a_bad_csv_reports_line_column_reason_and_writes_nothing(
    db: Session, examples_dir: Path, tmp_path: Path
) -> None:
    load_examples(db, examples_dir)
    before = count(db, Household)
    audit_before = count(db, AuditEvent)
    bad = tmp_path / "households.csv"
    bad.write_text(
        f"{HEADER}\n"
        "N1,C00001,1,101,2,0,0,0,0,0,\n"
        "N2,NOWHERE,1,102,2,0,0,0,0,0,\n"
        "N3,C00001,1,103,two,0,0,0,0,0,\n"
        "N4,C00001,1,104,1,0,0,0,3,0,\n"
        "N1,C00001,1,105,2,0,0,0,0,0,\n"
    )
    with pytest.raises(Invalid) as caught:
        bulk.import_file(db, "households", bad, actor=None)
    db.rollback()
    where = {(e.loc[1], e.loc[2]) for e in caught.value.errors}
    assert (3, "community_code") in where
    assert (4, "size") in where
    assert (5, "") in where  # a row-level rule: more people aged 80+ than the household has
    assert (6, "code") in where  # a key repeated from line 2
    assert "4 of 5 rows are invalid" in caught.value.message
    assert count(db, Household) == before
    assert count(db, AuditEvent) == audit_before


def test_a_bad_xlsx_reports_line_and_column_and_writes_nothing(
    db: Session, examples_dir: Path, tmp_path: Path
) -> None:
    load_examples(db, examples_dir)
    before = count(db, Household)
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(HEADER.split(","))
    sheet.append(["X1", "C00001", "1", "1", 2, 0, 0, 0, 0, 0, None])
    sheet.append(["X2", "C00001", "1", "1", -1, 0, 0, 0, 0, 0, None])
    path = tmp_path / "households.xlsx"
    workbook.save(path)
    with pytest.raises(Invalid) as caught:
        bulk.import_file(db, "households", path, actor=None)
    db.rollback()
    assert [(e.loc[1], e.loc[2]) for e in caught.value.errors] == [(3, "size")]
    assert count(db, Household) == before


def test_skip_invalid_imports_good_rows_and_writes_rejects(
    db: Session, examples_dir: Path, tmp_path: Path
) -> None:
    load_examples(db, examples_dir)
    path = tmp_path / "h.csv"
    path.write_text(f"{HEADER}\nG1,C00001,1,1,2,0,0,0,0,0,\nB1,C00001,1,1,0,0,0,0,0,0,\n")
    report = bulk.import_file(db, "households", path, actor=None, skip_invalid=True)
    db.commit()
    assert (report.created, report.rejected) == (1, 1)
    rejects = Path(report.reject_file or "").read_text().splitlines()
    assert rejects[0].endswith(",error")
    assert rejects[1].startswith("B1,") and "line 3, column 5 (size)" in rejects[1]


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_export_reimports_unchanged(
    db: Session, examples_dir: Path, tmp_path: Path, suffix: str
) -> None:
    load_examples(db, examples_dir)
    for kind in ORDER:
        first = tmp_path / f"{kind}{suffix}"
        bulk.export_file(db, kind, first, actor=None)
        report = bulk.import_file(db, kind, first, actor=None)
        assert report.created == 0 and report.updated == report.rows > 0
        second = tmp_path / f"{kind}-again{suffix}"
        bulk.export_file(db, kind, second, actor=None)
        if suffix == ".csv":
            assert first.read_text() == second.read_text()
            # the same values as the example file (cells a spreadsheet would run as formulas,
            # such as phones starting with "+", are written with a leading quote)
            assert _cells(first) == _cells(examples_dir / f"{kind}.csv")


def _cells(path: Path) -> list[list[str]]:
    header, rows = files.read_rows(path)
    return [header, *(cells for _, cells in rows)]


def test_a_wrong_header_is_refused_before_any_row(db: Session, tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text("code,community,size,colour\nH1,C1,2,red\n")
    with pytest.raises(Invalid) as caught:
        bulk.import_file(db, "households", path, actor=None)
    messages = " ".join(e.msg for e in caught.value.errors)
    assert "unknown columns ['community', 'colour']" in messages
    assert "missing required columns ['community_code']" in messages


def test_unknown_kind_and_file_type(db: Session, tmp_path: Path) -> None:
    with pytest.raises(Invalid, match="unknown kind"):
        bulk.import_file(db, "spaceships", tmp_path / "x.csv", actor=None)
    odd = tmp_path / "x.json"
    odd.write_text("{}")
    with pytest.raises(Invalid, match=r"use \.csv or \.xlsx"):
        bulk.import_file(db, "households", odd, actor=None)


def test_upload_through_the_api(db: Session, client: TestClient, examples_dir: Path) -> None:
    load_examples(db, examples_dir)
    headers = headers_for(db, client, Role.coordinator)
    bad = f"{HEADER}\nU1,C00001,1,1,2,0,0,0,0,0,\nU2,C00001,1,1,x,0,0,0,0,0,\n".encode()
    response = client.post(
        "/api/v1/imports/households", files={"file": ("h.csv", bad, "text/csv")}, headers=headers
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["line", 3, "size"]
    good = f"{HEADER}\nU1,C00001,1,1,2,0,0,0,0,0,\n".encode()
    ok = client.post(
        "/api/v1/imports/households", files={"file": ("h.csv", good, "text/csv")}, headers=headers
    )
    assert ok.status_code == 200 and ok.json()["created"] == 1
    exported = client.get("/api/v1/exports/households.csv", headers=headers)
    assert exported.status_code == 200 and "U1,C00001" in exported.text


def test_the_format_page_documents_every_column() -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "formats.md").read_text()
    for kind, fmt in FORMATS.items():
        section = page.split(f"## {kind}\n", 1)[1].split("\n## ", 1)[0]
        documented = [line.split("`")[1] for line in section.splitlines() if line.startswith("| `")]
        assert documented == fmt.columns, kind


def test_each_format_has_a_column_for_each_field_of_its_schema() -> None:
    for kind, fmt in FORMATS.items():
        assert sorted(fmt.fields) == sorted(fmt.schema.model_fields), kind


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_formulas_are_neutralised_on_export_and_come_back_exactly(
    db: Session, examples_dir: Path, tmp_path: Path, suffix: str
) -> None:
    # Committees can write names; a name a spreadsheet would run as a formula is written with a
    # leading quote (OWASP), and the import takes it off again.
    load_examples(db, examples_dir)
    tricky = ['=HYPERLINK("http://x","x")', "+1", "-2 blocks", "@SUM(A1)", "'quoted", "=1+1"]
    communities = list(db.scalars(select(Community).order_by(Community.id)))[:3]
    assert len(communities) == 3
    for community, name, name_zh in zip(communities, tricky[:3], tricky[3:], strict=True):
        community.name, community.name_zh = name, name_zh
    db.commit()
    path = tmp_path / f"communities{suffix}"
    bulk.export_file(db, "communities", path, actor=None)
    if suffix == ".csv":
        text = path.read_text()
        assert "'=HYPERLINK" in text and "'+1" in text and "'-2 blocks" in text
        assert "''quoted" in text and "\n=" not in text and ",=" not in text
    else:
        from openpyxl import load_workbook

        cells = [c for row in load_workbook(path).active.iter_rows(values_only=True) for c in row]
        assert not any(isinstance(c, str) and c.startswith("=") for c in cells)  # no formula
    for community in communities:
        community.name = community.name_zh = "renamed"
    db.commit()
    bulk.import_file(db, "communities", path, actor=None)
    db.commit()
    db.expire_all()
    assert [c.name for c in communities] + [c.name_zh for c in communities] == tricky
