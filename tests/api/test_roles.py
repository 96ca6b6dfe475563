"""Every role is refused where it does not belong (403), admitted where it does; no token is 401.

The expectations are written out here on purpose, not imported from the code under test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from relieflink.models import Role
from tests.factories import make_community, make_org, make_user, sign_in

ALL = set(Role)
STAFF = {Role.admin, Role.coordinator}

Body = Callable[[dict[str, Any]], dict[str, Any] | None]


def item_body(ctx: dict[str, Any]) -> dict[str, Any]:
    return {
        "sku": f"SKU-{ctx['n']}",
        "name": "Rice",
        "name_zh": "大米",
        "category": "food",
        "unit": "bag",
    }


def warehouse_body(ctx: dict[str, Any]) -> dict[str, Any]:
    return {
        "code": f"W{ctx['n']}",
        "name": "Hub",
        "name_zh": "仓",
        "owner_id": ctx["org"].id,
        "lat": 31.2,
        "lon": 121.5,
    }


def household_body(ctx: dict[str, Any]) -> dict[str, Any]:
    return {"code": f"H-{ctx['n']}", "community_id": ctx["community"].id, "size": 2}


CASES: list[tuple[str, str, Body | None, set[Role]]] = [
    ("GET", "/api/v1/items", None, ALL),
    ("POST", "/api/v1/items", item_body, STAFF),
    ("GET", "/api/v1/communities", None, ALL),
    ("GET", "/api/v1/warehouses", None, STAFF | {Role.warehouse, Role.courier}),
    ("POST", "/api/v1/warehouses", warehouse_body, STAFF),
    ("GET", "/api/v1/households", None, STAFF | {Role.committee, Role.resident}),
    ("POST", "/api/v1/households", household_body, STAFF | {Role.committee}),
    ("GET", "/api/v1/users", None, {Role.admin}),
    ("GET", "/api/v1/audit", None, {Role.admin}),
    ("GET", "/api/v1/exports/households.csv", None, STAFF),
]


@pytest.fixture
def world(db: Session) -> dict[str, Any]:
    committee = make_org(db)
    org = make_org(db)
    community = make_community(db, committee=committee)
    users = {
        role: make_user(db, role, organization_id=committee.id if role == Role.committee else None)
        for role in Role
    }
    db.commit()
    return {"org": org, "community": community, "users": users}


@pytest.mark.parametrize(
    ("method", "path", "body", "allowed"), CASES, ids=[f"{m} {p}" for m, p, _, _ in CASES]
)
def test_role_matrix(
    client: TestClient,
    world: dict[str, Any],
    method: str,
    path: str,
    body: Body | None,
    allowed: set[Role],
) -> None:
    assert (
        client.request(method, path, json=body({**world, "n": 0}) if body else None).status_code
        == 401
    )
    for n, role in enumerate(Role, start=1):
        headers = sign_in(client, world["users"][role])
        payload = body({**world, "n": n}) if body else None
        response = client.request(method, path, json=payload, headers=headers)
        if role in allowed:
            assert response.status_code < 300, (role, response.status_code, response.text)
        else:
            assert response.status_code == 403, (role, response.status_code, response.text)
            assert response.json()["title"] == "Forbidden"
