"""The role x endpoint matrix, generated from the route table: every API route declares the roles
it admits once (``require_role`` in its signature), and every other signed-in role gets 403 there.

``tests/api/test_roles.py`` writes a few expectations out by hand; this one checks that what each
route declares is what it enforces, for all of them, and that route bodies check no role and
commit nothing (the request session decides).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from relieflink.api.deps import route_roles
from relieflink.app import create_app
from relieflink.models import Role
from tests.factories import make_community, make_household, make_org, make_user, sign_in
from tests.stock.factories import make_item

SRC = Path(__file__).resolve().parents[2] / "src" / "relieflink"
ROUTE_DIRS = (SRC / "api" / "routes", SRC / "web" / "routes")


def _declared() -> list[tuple[str, str, frozenset[Role]]]:
    table = []
    for route in iter_route_contexts(create_app(check_schema=False).routes):
        roles = route_roles(route)
        if roles is None or not route.methods or not (route.path or "").startswith("/api/"):
            continue
        # Any value fills a path parameter: the role is checked before the parameters are.
        path = re.sub(r"\{[^}]+\}", "1", route.path or "")
        table.extend((method, path, roles) for method in sorted(route.methods - {"HEAD"}))
    return table


def test_the_route_table_declares_roles() -> None:
    table = _declared()
    assert len(table) > 80  # nearly every route; the rest are open or for any signed-in user
    assert ("POST", "/api/v1/consultations/take", frozenset({Role.doctor})) in table


def test_every_role_a_route_does_not_declare_gets_403(db: Session, client: TestClient) -> None:
    org = make_org(db)
    users = {role: make_user(db, role, organization_id=org.id) for role in Role}
    db.commit()
    headers = {role: sign_in(client, user) for role, user in users.items()}
    wrong = []
    for method, path, roles in _declared():
        for role in set(Role) - roles:
            response = client.request(method, path, headers=headers[role])
            if response.status_code != 403:
                wrong.append(f"{method} {path} as {role.value}: {response.status_code}")
    assert wrong == []


# Routes any signed-in user may call, because they show nothing of anyone else's: the rest of
# the routes that declare no role are scoped by row (``relieflink.users.access``).
OPEN = {
    "/api/v1/openapi.json",
    "/api/v1/docs",
    "/api/v1/health",
    "/api/v1/health/ready",  # whether the database answers
    "/api/v1/auth/sign-in",
    "/api/v1/auth/sign-out",
    "/api/v1/auth/me",
    "/api/v1/dispatch/my-deliveries",  # the caller's own household's
    "/api/v1/kits/{kit_id}/nutrition",  # the catalog
    "/api/v1/consultations/questionnaire",
}


def _row_scoped() -> list[tuple[str, str]]:
    return [
        (method, route.path or "")
        for route in iter_route_contexts(create_app(check_schema=False).routes)
        if route_roles(route) is None
        and route.methods
        and (route.path or "").startswith("/api/")
        and route.path not in OPEN
        for method in sorted(route.methods - {"HEAD"})
    ]


def test_every_role_sees_no_rows_of_a_household_it_has_nothing_to_do_with(
    db: Session, client: TestClient
) -> None:
    """The matrix for the routes scoped by row: a household's request, read, listed and
    cancelled by every role but staff, as users unrelated to the household."""
    assert {p for _, p in _row_scoped()} == {
        "/api/v1/requests",
        "/api/v1/requests/{request_id}",
        "/api/v1/requests/{request_id}/cancel",
        "/api/v1/allocation-runs/{run_id}/allocations",
        "/api/v1/dispatch/parcels/{parcel_id}/events",
        "/api/v1/dispatch/parcels/{parcel_id}/trace",
    }
    community = make_community(db, committee=make_org(db))
    admin = make_user(db, Role.admin)
    household = make_household(db, community, actor=admin)
    owner = make_user(db, Role.resident, household_id=household.id)
    item = make_item(db)
    stranger_org = make_org(db)
    strangers = {
        role: make_user(db, role, organization_id=stranger_org.id)
        for role in set(Role) - {Role.admin, Role.coordinator}
    }
    db.commit()
    line = {"item_sku": item.sku, "quantity": 1}
    made = client.post(
        "/api/v1/requests",
        json={"household_id": household.id, "lines": [line]},
        headers=sign_in(client, owner),
    )
    assert made.status_code == 201, made.text
    ids = {"request_id": made.json()["request"]["id"], "run_id": 1, "parcel_id": 1}
    wrong = []
    for role, user in strangers.items():
        headers = sign_in(client, user)
        for method, path in _row_scoped():
            url = re.sub(r"\{([^}]+)\}", lambda m: str(ids[m.group(1)]), path)
            response = client.request(method, url, headers=headers)
            rows = response.json().get("items") if response.status_code == 200 else None
            if response.status_code not in (403, 404) and rows != []:
                wrong.append(f"{method} {url} as {role.value}: {response.status_code}")
    assert wrong == []


def _calls(path: Path, name: str) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        f"{path.name}:{node.lineno}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute | ast.Name)
        and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id) == name
    ]


def test_route_bodies_check_no_role_and_commit_nothing() -> None:
    files = [p for d in ROUTE_DIRS for p in sorted(d.glob("*.py"))]
    assert files
    assert [hit for p in files for hit in _calls(p, "ensure_role")] == []
    assert [hit for p in files for hit in _calls(p, "commit")] == []
