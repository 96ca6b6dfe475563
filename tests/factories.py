"""Typed ``make_*`` helpers that build valid records through the real services."""

from __future__ import annotations

import itertools

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from relieflink.households import service as households
from relieflink.households.schemas import HouseholdCreate
from relieflink.models import Community, District, Household, Organization, OrgKind, Role, User
from relieflink.organizations import service as organizations
from relieflink.organizations.schemas import OrganizationCreate
from relieflink.places import service as places
from relieflink.places.schemas import CommunityCreate, DistrictCreate
from relieflink.users import service as users
from relieflink.users.schemas import UserCreate

PASSWORD = "correct horse battery"
_seq = itertools.count(1)


def make_org(db: Session, kind: OrgKind = OrgKind.ngo, **overrides: object) -> Organization:
    n = next(_seq)
    data = {"code": f"ORG{n}", "kind": kind, "name": f"Org {n}", "country": "CN"} | overrides
    return organizations.create_organization(
        db, OrganizationCreate.model_validate(data), actor=None
    )


def make_district(db: Session, **overrides: object) -> District:
    n = next(_seq)
    data = {
        "code": f"D{n}",
        "name": f"District {n}",
        "name_zh": f"区{n}",
        "lat": 31.2,
        "lon": 121.4,
    }
    return places.create_district(db, DistrictCreate.model_validate(data | overrides), actor=None)


def make_community(
    db: Session,
    district: District | None = None,
    *,
    committee: Organization | None = None,
    **overrides: object,
) -> Community:
    n = next(_seq)
    district = district or make_district(db)
    data = {
        "code": f"C{n}",
        "name": f"Community {n}",
        "name_zh": f"小区{n}",
        "district_id": district.id,
        "lat": 31.2,
        "lon": 121.45,
        "committee_id": committee.id if committee else None,
    }
    return places.create_community(db, CommunityCreate.model_validate(data | overrides), actor=None)


def make_user(db: Session, role: Role, **overrides: object) -> User:
    if role == Role.committee and "organization_id" not in overrides:
        # A committee user belongs to its committee (users refuse one without).
        overrides["organization_id"] = make_org(db, OrgKind.committee).id
    n = next(_seq)
    data = {
        "username": f"{role.value}{n}",
        "full_name": f"{role.value} {n}",
        "role": role,
        "password": PASSWORD,
    } | overrides
    return users.create_user(db, UserCreate.model_validate(data), actor=None)


def make_household(
    db: Session, community: Community, *, actor: User, **overrides: object
) -> Household:
    n = next(_seq)
    data = {
        "code": f"H{n}",
        "community_id": community.id,
        "size": 3,
        "phone": f"+86 170 0000 {n:04d}",
    } | overrides
    return households.create_household(db, HouseholdCreate.model_validate(data), actor=actor)


def sign_in(client: TestClient, user: User) -> dict[str, str]:
    """Authorization headers for ``user`` (signed in through the API)."""
    response = client.post(
        "/api/v1/auth/sign-in", json={"username": user.username, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def headers_for(db: Session, client: TestClient, role: Role, **overrides: object) -> dict[str, str]:
    """Create a user with ``role``, commit what the test set up so far, and sign the user in."""
    user = make_user(db, role, **overrides)
    db.commit()
    return sign_in(client, user)
