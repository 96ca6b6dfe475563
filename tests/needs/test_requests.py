from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relieflink.catalog import service as catalog
from relieflink.errors import Forbidden, Invalid
from relieflink.models import Kit, NeedRequest, RequestLine, Role
from relieflink.needs import service as needs
from relieflink.needs.policy import default_policy
from relieflink.needs.schemas import RequestCreate
from tests.factories import headers_for, make_community, make_household, make_org, make_user

MONDAY = date(2026, 11, 30)


@pytest.fixture
def setup(db: Session) -> dict[str, object]:
    catalog.seed_catalog(db, actor=None)
    committee = make_org(db)
    community = make_community(db, committee=committee)
    admin = make_user(db, Role.admin)
    household = make_household(db, community, actor=admin, size=4, infants=1)
    db.commit()
    return {"committee": committee, "community": community, "household": household, "admin": admin}


def ask(household_id: int, *lines: tuple[str, int]) -> RequestCreate:
    return RequestCreate.model_validate(
        {"household_id": household_id, "lines": [{"kit_sku": s, "quantity": q} for s, q in lines]}
    )


def test_period_start_follows_the_policy() -> None:
    policy = default_policy()
    assert policy.period_days == 7
    assert needs.period_start(MONDAY, policy) == MONDAY
    assert needs.period_start(date(2026, 12, 6), policy) == MONDAY  # Sunday of the same week
    assert needs.period_start(date(2026, 12, 7), policy) == date(2026, 12, 7)


def test_asking_twice_in_a_period_is_merged_and_says_so(db: Session, setup: dict) -> None:
    hh = setup["household"]
    admin = setup["admin"]
    first = needs.create_request(db, ask(hh.id, ("KIT-FAMILY-FOOD", 1)), actor=admin, today=MONDAY)
    again = needs.create_request(
        db,
        ask(hh.id, ("KIT-FAMILY-FOOD", 2), ("KIT-INFANT", 1)),
        actor=admin,
        today=date(2026, 12, 3),
    )
    assert not first.merged
    assert again.merged
    assert again.request.id == first.request.id
    assert "merged into request" in again.message
    quantities = sorted(line.quantity for line in again.request.lines)
    assert quantities == [1, 2]  # the larger family quantity, plus the new infant line
    assert db.scalar(select(func.count()).select_from(NeedRequest)) == 1
    next_week = needs.create_request(
        db, ask(hh.id, ("KIT-FAMILY-FOOD", 1)), actor=admin, today=date(2026, 12, 7)
    )
    assert not next_week.merged


def test_unknown_sku_is_refused_at_its_path_and_nothing_is_stored(db: Session, setup: dict) -> None:
    with pytest.raises(Invalid) as caught:
        needs.create_request(
            db,
            ask(setup["household"].id, ("KIT-FAMILY-FOOD", 1), ("KIT-SPACESHIP", 1)),
            actor=setup["admin"],
            today=MONDAY,
        )
    assert caught.value.errors[0].loc == ("lines", 1, "kit_sku")
    assert db.scalar(select(func.count()).select_from(RequestLine)) == 0


def test_prescription_only_items_are_refused_at_their_path(db: Session, setup: dict) -> None:
    data = RequestCreate.model_validate(
        {
            "household_id": setup["household"].id,
            "lines": [
                {"item_sku": "RICE-5KG", "quantity": 1},
                {"item_sku": "MED-INSULIN-PEN-5", "quantity": 1},
            ],
        }
    )
    with pytest.raises(Invalid) as caught:
        needs.create_request(db, data, actor=setup["admin"], today=MONDAY)
    assert [e.loc for e in caught.value.errors] == [("lines", 1, "item_sku")]
    assert "prescription only" in caught.value.errors[0].msg
    assert db.scalar(select(func.count()).select_from(RequestLine)) == 0


def test_roles_that_may_not_ask_are_refused(db: Session, setup: dict) -> None:
    hh = setup["household"]
    for role in (Role.courier, Role.warehouse, Role.donor, Role.doctor):
        user = make_user(db, role)
        with pytest.raises(Forbidden):
            needs.create_request(db, ask(hh.id, ("KIT-FAMILY-FOOD", 1)), actor=user, today=MONDAY)
    stranger = make_user(db, Role.resident)  # a resident of no household
    with pytest.raises(Forbidden):
        needs.create_request(db, ask(hh.id, ("KIT-FAMILY-FOOD", 1)), actor=stranger, today=MONDAY)


def test_residents_and_committees_see_only_their_requests(
    db: Session, client: TestClient, setup: dict
) -> None:
    hh = setup["household"]
    other = make_household(db, make_community(db), actor=setup["admin"])
    resident = headers_for(db, client, Role.resident, household_id=hh.id)
    made = client.post(
        "/api/v1/requests", json=ask(hh.id, ("KIT-FAMILY-FOOD", 1)).model_dump(), headers=resident
    )
    assert made.status_code == 201, made.text
    merged = client.post(
        "/api/v1/requests", json=ask(hh.id, ("KIT-FAMILY-FOOD", 1)).model_dump(), headers=resident
    )
    assert merged.status_code == 200
    assert merged.json()["merged"] is True
    refused = client.post(
        "/api/v1/requests",
        json=ask(other.id, ("KIT-FAMILY-FOOD", 1)).model_dump(),
        headers=resident,
    )
    assert refused.status_code == 403

    admin_headers = headers_for(db, client, Role.admin)
    client.post(
        "/api/v1/requests",
        json=ask(other.id, ("KIT-FAMILY-FOOD", 1)).model_dump(),
        headers=admin_headers,
    )
    committee = headers_for(db, client, Role.committee, organization_id=setup["committee"].id)
    seen = client.get("/api/v1/requests", headers=committee).json()
    assert [r["household_id"] for r in seen["items"]] == [hh.id]
    assert client.get("/api/v1/requests", headers=admin_headers).json()["total"] == 2


def test_committee_file_all_or_nothing(db: Session, setup: dict, tmp_path: Path) -> None:
    committee_user = make_user(db, Role.committee, organization_id=setup["committee"].id)
    other = make_household(db, make_community(db), actor=setup["admin"])
    hh = setup["household"]
    bad = tmp_path / "requests.csv"
    bad.write_text(
        "household_code,kit_sku,item_sku,quantity,note\n"
        f"{hh.code},KIT-FAMILY-FOOD,,1,\n"
        f"{other.code},KIT-FAMILY-FOOD,,1,\n"
        f"{hh.code},KIT-NOPE,,1,\n"
        f"{hh.code},,,0,\n"
    )
    with pytest.raises(Invalid) as caught:
        needs.import_requests(db, bad, actor=committee_user, today=MONDAY)
    lines = [(e.loc[1], e.loc[2] if len(e.loc) > 2 else None) for e in caught.value.errors]
    assert (3, "household_code") in lines  # not this committee's household
    assert (4, "kit_sku") in lines
    assert any(line == 5 for line, _ in lines)
    assert db.scalar(select(func.count()).select_from(NeedRequest)) == 0
    good = tmp_path / "good.csv"
    good.write_text(
        f"household_code,kit_sku,quantity\n{hh.code},KIT-FAMILY-FOOD,1\n{hh.code},KIT-INFANT,1\n"
    )
    report = needs.import_requests(db, good, actor=committee_user, today=MONDAY)
    assert (report.rows, report.created, report.merged) == (2, 1, 0)


def test_the_vectorised_score_equals_the_explained_one() -> None:
    import numpy as np

    from relieflink.models import LockdownStatus
    from relieflink.needs.policy import HouseholdFacts, priority_score, priority_scores

    rng = np.random.default_rng(1)
    n = 500
    cols = {
        k: rng.integers(0, 3, n)
        for k in ("infants", "pregnant", "chronic", "elderly_80", "disabled")
    }
    size = rng.integers(1, 5, n)
    lockdown = rng.choice([s.value for s in LockdownStatus], n)
    urgency, carried, waiting = (
        rng.integers(0, 4, n),
        rng.integers(0, 3, n),
        rng.integers(-2, 30, n),
    )
    since, left = rng.integers(-1, 20, n), rng.integers(0, 9, n)
    policy = default_policy()
    vector = priority_scores(
        policy,
        size=size,
        **cols,
        sealed=lockdown == "sealed",
        controlled=lockdown == "controlled",
        medical_urgency=urgency,
        carried_over=carried,
        days_waiting=waiting,
        days_since_delivery=since,
        supply_days_left=left,
    )
    for i in range(n):
        facts = HouseholdFacts(
            int(size[i]), *(int(cols[k][i]) for k in cols), LockdownStatus(lockdown[i])
        )
        score, _ = priority_score(
            policy,
            facts,
            medical_urgency=int(urgency[i]),
            carried_over=int(carried[i]),
            days_waiting=int(waiting[i]),
            days_since_delivery=None if since[i] < 0 else int(since[i]),
            supply_days_left=int(left[i]),
        )
        assert score == vector[i]


def test_a_request_file_keeps_notes_and_merges_duplicate_rows(
    db: Session, setup: dict, tmp_path: Path
) -> None:
    committee_user = make_user(db, Role.committee, organization_id=setup["committee"].id)
    hh = setup["household"]
    upload = tmp_path / "requests.csv"
    upload.write_text(
        "household_code,kit_sku,item_sku,quantity,note\n"
        f"{hh.code},KIT-FAMILY-FOOD,,1,door code 1234\n"
        f"{hh.code},KIT-INFANT,,1,\n"
        f"{hh.code},KIT-FAMILY-FOOD,,2,call before\n"  # the same kit again: one line
        f"{hh.code},KIT-FAMILY-FOOD,,1,door code 1234\n",
        encoding="utf-8",
    )
    report = needs.import_requests(db, upload, actor=committee_user, today=MONDAY)
    assert (report.rows, report.created, report.merged) == (4, 1, 0)
    assert [(m.line, m.into_line) for m in report.merged_rows] == [(4, 2), (5, 2)]
    request = db.scalars(select(NeedRequest).where(NeedRequest.household_id == hh.id)).one()
    assert request.note == "door code 1234; call before"
    lines = sorted((line.kit_id, line.quantity) for line in request.lines)
    assert len(lines) == 2  # one per kit
    assert (db.scalars(select(Kit.id).where(Kit.sku == "KIT-FAMILY-FOOD")).one(), 2) in lines
    # The same file again merges into the open request: nothing doubles, notes stay distinct.
    again = needs.import_requests(db, upload, actor=committee_user, today=MONDAY)
    assert (again.created, again.merged) == (0, 1)
    db.refresh(request)
    assert request.note == "door code 1234; call before"
    assert sorted(line.quantity for line in request.lines) == [1, 2]
