from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from relieflink.models import OrgKind, Role
from tests.factories import headers_for, make_community, make_org, make_user, sign_in
from tests.teams.factories import make_team


def test_staff_register_a_team_others_may_not(db: Session, client: TestClient) -> None:
    committee = make_org(db, OrgKind.committee)
    compound = make_community(db, committee=committee)
    leader = make_user(db, Role.volunteer, organization_id=committee.id)
    coordinator = headers_for(db, client, Role.coordinator)
    body = {
        "code": "T-QIBAO",
        "community_id": compound.id,
        "leader_id": leader.id,
        "headcount": 40,
        "trolley_capacity_kg": 30,
        "shift_start_s": 7 * 3600,
        "shift_end_s": 21 * 3600,
    }
    for role in (Role.courier, Role.committee, Role.volunteer, Role.resident):
        response = client.post("/api/v1/teams", json=body, headers=headers_for(db, client, role))
        assert response.status_code == 403, (role, response.text)

    created = client.post("/api/v1/teams", json=body, headers=coordinator)
    assert created.status_code == 201, created.text
    team = created.json()
    assert team["community_id"] == compound.id and team["headcount"] == 40

    listed = client.get(
        "/api/v1/teams", params={"committee_id": committee.id}, headers=sign_in(client, leader)
    )
    assert listed.status_code == 200 and [t["code"] for t in listed.json()["items"]] == ["T-QIBAO"]

    changed = client.patch(
        f"/api/v1/teams/{team['id']}", json={"headcount": 42}, headers=coordinator
    )
    assert changed.status_code == 200 and changed.json()["headcount"] == 42


def test_bad_teams_are_refused_with_the_field(db: Session, client: TestClient) -> None:
    compound = make_community(db)
    coordinator = headers_for(db, client, Role.coordinator)
    good = {"code": "T1", "community_id": compound.id, "headcount": 5, "trolley_capacity_kg": 20}
    for field, value in (
        ("headcount", 0),
        ("trolley_capacity_kg", -5),
        ("community_id", 987_654),
    ):
        response = client.post("/api/v1/teams", json=good | {field: value}, headers=coordinator)
        assert response.status_code == 422, response.text
        assert [e["loc"][-1] for e in response.json()["errors"]] == [field]
    assert client.get("/api/v1/teams", headers=coordinator).json()["total"] == 0


def test_a_leader_records_its_own_teams_availability_only(db: Session, client: TestClient) -> None:
    leader = make_user(db, Role.volunteer)
    other_leader = make_user(db, Role.volunteer)
    team = make_team(db, make_community(db), leader=leader, headcount=40)
    db.commit()
    path = f"/api/v1/teams/{team.id}/availability/2022-04-12"

    before = client.get(path, headers=sign_in(client, leader))
    assert before.status_code == 200 and before.json()["available"] == 40

    refused = client.put(path, json={"available": 1}, headers=sign_in(client, other_leader))
    assert refused.status_code == 403
    too_many = client.put(path, json={"available": 41}, headers=sign_in(client, leader))
    assert too_many.status_code == 422

    answer = client.put(
        path, json={"available": 33, "note": "7 in quarantine"}, headers=sign_in(client, leader)
    )
    assert answer.status_code == 200, answer.text
    assert client.get(path, headers=sign_in(client, leader)).json()["available"] == 33
