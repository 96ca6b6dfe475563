"""A resident chooses how the household hears from the operation; nobody else may."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from relieflink.models import Role
from tests.factories import headers_for, make_community, make_district, make_household, make_user

URL = "/api/v1/notices/preferences"


def test_a_resident_reads_and_changes_the_households_preferences(
    db: Session, client: TestClient
) -> None:
    admin = make_user(db, Role.admin)
    home = make_household(db, make_community(db, make_district(db)), actor=admin)
    resident = headers_for(db, client, Role.resident, household_id=home.id)
    first = client.get(URL, headers=resident)
    assert first.status_code == 200
    assert first.json() == {"language": "zh", "email": None, "opted_out": False, "channels": []}
    changed = client.put(URL, json={"language": "en", "opted_out": True}, headers=resident)
    assert changed.status_code == 200
    assert changed.json()["language"] == "en" and changed.json()["opted_out"] is True
    again = client.put(URL, json={"opted_out": False}, headers=resident)
    assert again.json()["language"] == "en" and again.json()["opted_out"] is False
    for bad in ({"language": "fr"}, {"email": "not an address"}, {"colour": "red"}):
        refused = client.put(URL, json=bad, headers=resident)
        assert refused.status_code == 422, bad
        assert refused.headers["content-type"].startswith("application/problem+json")


def test_other_roles_may_not(db: Session, client: TestClient) -> None:
    for role in (Role.courier, Role.coordinator, Role.doctor):
        headers = headers_for(db, client, role)
        assert client.get(URL, headers=headers).status_code == 403
    assert client.get(URL).status_code == 401
