"""Issue #17, findings 3, 9 and 10: out-of-range numbers and control characters are refused at
the edge with problem documents (never a 500), JSON bodies are read strictly, every API answer
carries no-store and nosniff, undeclared methods get 405 with ``Allow``, and the OpenAPI
document describes the errors as they are sent.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relieflink.app import create_app
from relieflink.models import District, Role, StockLot
from tests.factories import headers_for, make_community, make_user
from tests.stock.factories import make_item, make_warehouse
from tests.web.helpers import csrf_of, signed_in

BIG = 2**31  # one past PostgreSQL's integer
HUGE = 9999999999999999999  # past its bigint too


def _is_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


@pytest.mark.parametrize(
    "path",
    [
        f"/api/v1/districts/{BIG}",
        f"/api/v1/districts?offset={HUGE}",
        f"/api/v1/households?community_id={BIG}",
        f"/api/v1/stock/expiring?within_days={HUGE}",
        f"/api/v1/audit?entity_id={BIG}",
        "/api/v1/districts?search=a%00b",
        "/api/v1/audit?entity=a%01b",
    ],
)
def test_out_of_range_numbers_and_control_characters_in_the_url_are_422(
    db: Session, client: TestClient, path: str
) -> None:
    headers = headers_for(db, client, Role.admin)
    _is_problem(client.get(path, headers=headers), 422)


def test_a_receipt_quantity_past_the_integer_column_is_refused_and_nothing_written(
    db: Session, client: TestClient
) -> None:
    warehouse = make_warehouse(db)
    item = make_item(db)
    headers = headers_for(db, client, Role.admin)
    lot = {"item_id": item.id, "quantity": BIG}
    response = client.post(
        "/api/v1/stock/receipts",
        json={"warehouse_id": warehouse.id, "lots": [lot]},
        headers=headers,
    )
    body = _is_problem(response, 422)
    assert body["errors"][0]["loc"] == ["body", "lots", 0, "quantity"]
    assert db.scalar(select(func.count()).select_from(StockLot)) == 0


def test_a_nul_byte_in_a_name_is_refused_with_its_field(db: Session, client: TestClient) -> None:
    headers = headers_for(db, client, Role.admin)
    district = {"code": "D1", "name": "Bad\x00name", "name_zh": "区", "lat": 31.2, "lon": 121.4}
    body = _is_problem(client.post("/api/v1/districts", json=district, headers=headers), 422)
    assert [e["loc"] for e in body["errors"]] == [["body", "name"]]
    assert db.scalar(select(func.count()).select_from(District)) == 0


def test_sign_in_with_a_nul_byte_in_the_username_is_422_without_a_token(client: TestClient) -> None:
    response = client.post(
        "/api/v1/auth/sign-in", json={"username": "adm\x00in", "password": "x" * 12}
    )
    _is_problem(response, 422)


def test_an_unexpected_exception_is_a_500_problem_document(db: Session) -> None:
    app = create_app()

    @app.get("/api/v1/boom")
    def boom() -> None:
        raise RuntimeError("a bug")

    with TestClient(app, raise_server_exceptions=False) as client:
        body = _is_problem(client.get("/api/v1/boom"), 500)
    assert "a bug" not in str(body)  # no internals leak to the client


@pytest.mark.parametrize(
    ("path", "body", "loc"),
    [
        ("/api/v1/allocation-runs", {"dry_run": 0}, ["body", "dry_run"]),
        ("/api/v1/dispatch/plans", {"day": "2026-12-07", "seed": False}, ["body", "seed"]),
        ("/api/v1/dispatch/plans", {"day": "2026-12-07", "seed": "1"}, ["body", "seed"]),
    ],
)
def test_json_bodies_are_strict(
    db: Session, client: TestClient, path: str, body: dict[str, Any], loc: list[str]
) -> None:
    headers = headers_for(db, client, Role.admin)
    problem = _is_problem(client.post(path, json=body, headers=headers), 422)
    assert [e["loc"] for e in problem["errors"]] == [loc]


def test_strict_json_still_reads_dates_and_enums_from_strings(
    db: Session, client: TestClient
) -> None:
    headers = headers_for(db, client, Role.admin)
    user = {"username": "nurse1", "full_name": "N", "role": "doctor", "password": "x" * 12}
    assert client.post("/api/v1/users", json=user, headers=headers).status_code == 201
    run = client.post("/api/v1/allocation-runs", json={"dry_run": True}, headers=headers)
    assert run.status_code == 200, run.text


def test_api_answers_are_not_stored_or_sniffed(db: Session, client: TestClient) -> None:
    community = make_community(db)
    headers = headers_for(db, client, Role.admin)
    for response in (
        client.get(f"/api/v1/communities/{community.id}", headers=headers),
        client.get("/api/v1/households/424242", headers=headers),  # a problem document too
        client.get("/api/v1/health"),
    ):
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["x-content-type-options"] == "nosniff"


def test_pages_for_a_signed_in_user_are_not_stored(db: Session, client: TestClient) -> None:
    user = make_user(db, Role.admin)
    db.commit()
    response = signed_in(client, user).get("/dashboard")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "no-store" not in client.get("/static/app.css").headers.get("cache-control", "")


@pytest.mark.parametrize("method", ["TRACE", "PUT", "DELETE"])
def test_undeclared_methods_get_405_with_allow(client: TestClient, method: str) -> None:
    response = client.request(method, "/api/v1/health")
    _is_problem(response, 405)
    assert response.headers["allow"] == "GET"
    # Every method of the path, though two routes answer them
    response = client.request(method, "/api/v1/allocation-runs")
    assert response.headers["allow"] == "GET, POST"


def _spec(app: FastAPI) -> dict[str, Any]:
    with TestClient(app) as client:
        spec: dict[str, Any] = client.get("/api/v1/openapi.json").json()
    return spec


def test_openapi_documents_errors_as_problem_documents(db: Session) -> None:
    spec = _spec(create_app())
    sign_in_op = spec["paths"]["/api/v1/auth/sign-in"]["post"]["responses"]
    assert "application/problem+json" in sign_in_op["422"]["content"]
    assert {"422", "default"} <= sign_in_op.keys()  # 401, 429: "any other error"
    read = spec["paths"]["/api/v1/households/{household_id}"]["get"]["responses"]
    assert {"401", "403", "404", "422"} <= read.keys()
    assert "application/problem+json" in read["404"]["content"]
    batch = spec["paths"]["/api/v1/dispatch/events:batch"]["post"]["description"]
    assert "one by one" in batch


def _inputs(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every schema a request can carry: parameters and JSON bodies, references followed."""
    components = spec["components"]["schemas"]
    found: list[tuple[str, dict[str, Any]]] = []

    def walk(where: str, schema: dict[str, Any], seen: frozenset[str]) -> None:
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            if name not in seen:
                walk(f"{where}>{name}", components[name], seen | {name})
            return
        found.append((where, schema))
        for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
            for i, sub in enumerate(schema.get(key, [])):
                walk(f"{where}[{i}]", sub, seen)
        for name, sub in schema.get("properties", {}).items():
            walk(f"{where}.{name}", sub, seen)
        for key in ("items", "additionalProperties"):
            if isinstance(schema.get(key), dict):
                walk(f"{where}[]", schema[key], seen)

    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            for param in op.get("parameters", []):
                walk(f"{method} {path} {param['name']}", param["schema"], frozenset())
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            if body:
                walk(f"{method} {path} body", body["schema"], frozenset())
    return found


def test_every_integer_and_text_an_api_request_takes_is_bounded(db: Session) -> None:
    """The guard for finding 3: a new route or field without bounds fails here."""
    inputs = _inputs(_spec(create_app()))
    assert len(inputs) > 300
    unbounded = [w for w, s in inputs if s.get("type") == "integer" and "maximum" not in s]
    free_text = [
        w
        for w, s in inputs
        if s.get("type") == "string" and not ({"pattern", "enum", "format", "const"} & s.keys())
    ]
    assert unbounded == []
    assert free_text == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.mark.slow
def test_behind_a_tls_proxy_the_session_cookie_is_secure(tmp_path: Path) -> None:
    """``relieflink serve`` believes X-Forwarded-Proto from the addresses in
    RELIEFLINK_FORWARDED_ALLOW_IPS (here the test, on 127.0.0.1, plays the proxy)."""
    bin_dir = Path(sys.executable).parent
    env = os.environ | {
        "RELIEFLINK_DATABASE_URL": f"sqlite:///{tmp_path / 'proxy.db'}",
        "RELIEFLINK_FORWARDED_ALLOW_IPS": "127.0.0.1",
        "RELIEFLINK_ENVIRONMENT": "test",
    }
    cli = [str(bin_dir / "relieflink")]
    subprocess.run([*cli, "db", "upgrade"], env=env, check=True, capture_output=True)
    password = "correct horse battery"
    create = [*cli, "users", "create", "boss", "--role", "admin", "--password", password]
    subprocess.run(create, env=env, check=True, capture_output=True)
    port = _free_port()
    server = subprocess.Popen(
        [*cli, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(240):
            try:
                if httpx.get(f"{base}/api/v1/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        cookies = {}
        for proto in ("https", "http"):
            with httpx.Client(base_url=base, headers={"X-Forwarded-Proto": proto}) as browser:
                form = browser.get("/sign-in")
                data = {"username": "boss", "password": password, "csrf_token": csrf_of(form.text)}
                # Sent back by hand: the client keeps a Secure cookie from a plain-http URL.
                jar = "; ".join(f"{k}={v}" for k, v in form.cookies.items())
                answer = browser.post("/sign-in", data=data, headers={"Cookie": jar})
                assert answer.status_code == 303, answer.text
                cookies[proto] = answer.headers.get_list("set-cookie")
        assert all("secure" in c.lower() for c in cookies["https"])
        assert not any("secure" in c.lower() for c in cookies["http"])
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_null_for_a_required_column_in_a_change_is_422_not_500(
    db: Session, client: TestClient
) -> None:
    """Found by the fuzzing: PATCH with an explicit null reached a NOT NULL column."""
    community = make_community(db)
    headers = headers_for(db, client, Role.admin)
    url = f"/api/v1/communities/{community.id}"
    body = _is_problem(client.patch(url, json={"lockdown_status": None}, headers=headers), 422)
    assert [e["loc"] for e in body["errors"]] == [["lockdown_status"]]
    me = client.get("/api/v1/auth/me", headers=headers).json()
    answer = client.patch(f"/api/v1/users/{me['id']}", json={"full_name": None}, headers=headers)
    _is_problem(answer, 422)
