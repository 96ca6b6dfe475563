"""Households' phones and health data: scoped per role, never listed, masked, every read audited."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from relieflink.models import AuditEvent, Role
from tests.factories import (
    headers_for,
    make_community,
    make_household,
    make_org,
    make_user,
    sign_in,
)

PHONE = "+86 170 1234 5678"


def test_lists_never_carry_phones_and_reads_are_masked_and_audited(
    db: Session, client: TestClient
) -> None:
    community = make_community(db)
    coordinator = make_user(db, Role.coordinator)
    household = make_household(db, community, actor=coordinator, phone=PHONE, chronic=1)
    db.commit()
    headers = sign_in(client, coordinator)

    listed = client.get("/api/v1/households", headers=headers)
    assert listed.status_code == 200
    assert "5678" not in listed.text and "phone" not in listed.text

    one = client.get(f"/api/v1/households/{household.id}", headers=headers).json()
    assert one["phone_masked"] == "*******5678"
    assert "1234" not in str(one)

    contact = client.get(f"/api/v1/households/{household.id}/contact", headers=headers).json()
    assert contact["phone"] == PHONE

    actions = db.scalars(
        select(AuditEvent.action)
        .where(AuditEvent.entity == "household", AuditEvent.actor_id == coordinator.id)
        .order_by(AuditEvent.id)
    ).all()
    assert actions == ["create", "list", "read", "read_phone"]


def test_committee_sees_only_its_communities(db: Session, client: TestClient) -> None:
    mine, theirs = make_org(db), make_org(db)
    my_community = make_community(db, committee=mine)
    other_community = make_community(db, committee=theirs)
    admin = make_user(db, Role.admin)
    inside = make_household(db, my_community, actor=admin)
    outside = make_household(db, other_community, actor=admin)
    headers = headers_for(db, client, Role.committee, organization_id=mine.id)

    listed = client.get("/api/v1/households", headers=headers).json()
    assert [h["id"] for h in listed["items"]] == [inside.id]
    assert client.get(f"/api/v1/households/{outside.id}", headers=headers).status_code == 403
    assert (
        client.get(f"/api/v1/households/{outside.id}/contact", headers=headers).status_code == 403
    )
    refused = client.post(
        "/api/v1/households",
        json={"code": "HX", "community_id": other_community.id, "size": 1},
        headers=headers,
    )
    assert refused.status_code == 403


def test_resident_sees_only_their_own_household_and_no_full_phone(
    db: Session, client: TestClient
) -> None:
    community = make_community(db)
    admin = make_user(db, Role.admin)
    own = make_household(db, community, actor=admin, phone=PHONE)
    other = make_household(db, community, actor=admin)
    headers = headers_for(db, client, Role.resident, household_id=own.id)

    listed = client.get("/api/v1/households", headers=headers).json()
    assert [h["id"] for h in listed["items"]] == [own.id]
    assert (
        client.get(f"/api/v1/households/{own.id}", headers=headers).json()["phone_masked"]
        == "*******5678"
    )
    assert client.get(f"/api/v1/households/{own.id}/contact", headers=headers).status_code == 403
    assert client.get(f"/api/v1/households/{other.id}", headers=headers).status_code == 403


def test_counts_must_fit_the_household_size_on_update(db: Session, client: TestClient) -> None:
    community = make_community(db)
    admin = make_user(db, Role.admin)
    household = make_household(db, community, actor=admin, size=2, elderly_80=2)
    db.commit()
    headers = sign_in(client, admin)
    refused = client.patch(f"/api/v1/households/{household.id}", json={"size": 1}, headers=headers)
    assert refused.status_code == 422
    assert "elderly_80" in refused.text


def test_a_committee_cannot_take_over_another_communitys_household_by_import(
    db: Session, client: TestClient
) -> None:
    # The audit's finding: a committee uploaded `code,community_code,size` with another
    # community's household code and its own community; the household moved, its building,
    # unit and size were overwritten, its phone erased, and the committee could read it.
    mine, theirs = make_org(db), make_org(db)
    my_community = make_community(db, committee=mine)
    other_community = make_community(db, committee=theirs)
    admin = make_user(db, Role.admin)
    victim = make_household(db, other_community, actor=admin, phone=PHONE, size=4)
    own = make_household(db, my_community, actor=admin, size=2)
    headers = headers_for(db, client, Role.committee, organization_id=mine.id)
    db.commit()
    body = f"code,community_code,size\n{own.code},{my_community.code},3\n"
    body += f"{victim.code},{my_community.code},1\n"
    answer = client.post(
        "/api/v1/imports/households",
        files={"file": ("h.csv", body.encode(), "text/csv")},
        headers=headers,
    )
    assert answer.status_code == 422, answer.text
    (error,) = answer.json()["errors"]
    assert error["loc"] == ["line", 3, "code"]
    db.expire_all()
    assert (victim.community_id, victim.size, victim.phone) == (other_community.id, 4, PHONE)
    assert own.size == 2  # all or nothing: the good row was not written either
    assert client.get(f"/api/v1/households/{victim.id}/contact", headers=headers).status_code == 403


def test_an_import_without_an_optional_column_leaves_stored_values(
    db: Session, client: TestClient
) -> None:
    community = make_community(db)
    admin = make_user(db, Role.admin)
    home = make_household(db, community, actor=admin, phone=PHONE, size=4)
    db.commit()
    headers = sign_in(client, admin)
    body = f"code,community_code,size\n{home.code},{community.code},5\n"
    answer = client.post(
        "/api/v1/imports/households",
        files={"file": ("h.csv", body.encode(), "text/csv")},
        headers=headers,
    )
    assert answer.status_code == 200, answer.text
    db.expire_all()
    assert (home.size, home.phone) == (5, PHONE)  # size updated; the absent phone kept
