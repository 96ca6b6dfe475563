"""Teams from CSV and XLSX: all or nothing, each bad row named by line and column."""

from __future__ import annotations

from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relieflink.bulk import service as bulk
from relieflink.errors import Invalid
from relieflink.models import Role, VolunteerTeam
from tests.factories import make_community, make_user
from tests.teams.factories import make_team

HEADER = (
    "code,community_code,leader_username,headcount,trolley_capacity_kg,shift_start_s,shift_end_s"
)


def count(db: Session) -> int:
    return db.scalar(select(func.count()).select_from(VolunteerTeam)) or 0


def test_a_good_file_imports_and_exports_the_same_columns(db: Session, tmp_path: Path) -> None:
    a, b = make_community(db, code="QIBAO-1"), make_community(db, code="QIBAO-2")
    make_user(db, Role.volunteer, username="leader-qibao")
    db.commit()
    good = tmp_path / "teams.csv"
    good.write_text(
        f"{HEADER}\nT-Q1,QIBAO-1,leader-qibao,40,30,25200,75600\nT-Q2,QIBAO-2,,7,25,,\n"
    )
    report = bulk.import_file(db, "teams", good, actor=None)
    db.commit()
    assert (report.created, report.updated) == (2, 0)
    teams = {t.code: t for t in db.scalars(select(VolunteerTeam))}
    assert teams["T-Q1"].community_id == a.id and teams["T-Q1"].leader_id is not None
    assert (teams["T-Q2"].community_id, teams["T-Q2"].headcount) == (b.id, 7)

    # Importing again changes nothing; the export reads back in.
    assert bulk.import_file(db, "teams", good, actor=None).updated == 2
    exported = tmp_path / "out.csv"
    assert bulk.export_file(db, "teams", exported, actor=None) == 2
    lines = exported.read_text().splitlines()
    assert lines[0] == HEADER + ",active"
    assert lines[1] == "T-Q1,QIBAO-1,leader-qibao,40,30,25200,75600,true"

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADER.split(","))
    sheet.append(["T-Q2", "QIBAO-2", None, 9, 25, None, None])
    book.save(tmp_path / "teams.xlsx")
    assert bulk.import_file(db, "teams", tmp_path / "teams.xlsx", actor=None).updated == 1


def test_bad_rows_are_named_by_line_and_column_and_nothing_is_written(
    db: Session, tmp_path: Path
) -> None:
    *_, taken = (make_community(db, code=f"K{i}") for i in range(3))
    make_team(db, taken, code="T-OLD")
    make_user(db, Role.courier, username="not-a-volunteer")
    db.commit()
    bad = tmp_path / "teams.csv"
    bad.write_text(
        f"{HEADER}\n"
        "T1,K0,,5,30,,\n"  # line 2: good
        "T2,K1,,0,30,,\n"  # line 3: zero headcount
        "T3,K1,,5,-2,,\n"  # line 4: negative capacity
        "T4,NOWHERE,,5,30,,\n"  # line 5: no such compound
        "T5,K2,,5,30,,\n"  # line 6: K2 has T-OLD already
        "T6,K0,,5,30,,\n"  # line 7: K0 twice in the file
        "T7,K1,not-a-volunteer,5,30,,\n"  # line 8: the leader is a courier
        "T8,K1,,5,30,72000,28800\n"  # line 9: the shift ends before it starts
    )
    with pytest.raises(Invalid) as caught:
        bulk.import_file(db, "teams", bad, actor=None)
    db.rollback()
    where = {(e.loc[1], e.loc[2]) for e in caught.value.errors}
    assert {
        (3, "headcount"),
        (4, "trolley_capacity_kg"),
        (5, "community_code"),
        (6, "community_code"),
        (7, "community_code"),
        (8, "leader_username"),
        (9, ""),
    } <= where, where
    assert (2, "community_code") not in where
    assert "nothing was imported" in caught.value.message
    assert count(db) == 1  # only T-OLD
