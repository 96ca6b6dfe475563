"""The offline field app's API: ``GET /dispatch/my-day`` (a courier's own routes, a volunteer
leader's own team's gate, nobody else's), its shell, manifest and service worker, and a batch
from the phone with a malformed event (answered with its field path; the others applied)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from relieflink import clock
from relieflink.flows import dispatch as dispatch_flow
from relieflink.models import Parcel, ParcelStatus, Role, Route
from tests.dispatch.factories import make_city
from tests.factories import make_user, sign_in
from tests.teams.test_gate_page import _at_the_gates
from tests.web.operations_kit import courier_of

# Plans made today: the clock at a morning hour, whatever the hour the suite runs at.
pytestmark = pytest.mark.usefixtures("morning")

MY_DAY = "/api/v1/dispatch/my-day"
BATCH = "/api/v1/dispatch/events:batch"


def _parcels(day: dict[str, Any]) -> set[int]:
    return {p["id"] for r in day["routes"] for s in r["stops"] for p in s["parcels"]} | {
        p["id"] for g in day["gates"] for p in g["parcels"]
    }


def test_a_courier_gets_its_own_routes_only(db: Session, client: TestClient) -> None:
    city = make_city(db, per_community=6)
    plan = dispatch_flow.plan_dispatch(db, day=clock.today(), actor=None, time_limit=0.5, seed=1)
    routes = list(db.scalars(select(Route).where(Route.plan_id == plan.id).order_by(Route.id)))
    assert len(routes) >= 2
    mine, other = courier_of(db, city), courier_of(db, city)
    routes[0].courier_id = other.id  # given to another courier of the same carrier
    db.commit()
    day = client.get(MY_DAY, headers=sign_in(client, mine))
    assert day.status_code == 200, day.text
    body = day.json()
    assert body["gates"] == []
    seen = {r["route"]["id"] for r in body["routes"]}
    assert seen == {r.id for r in routes[1:]}  # the carrier's routes given to nobody; not routes[0]
    sheet = body["routes"][0]
    assert {"can_load", "can_depart", "stops"} <= set(sheet)
    assert {"id", "household_code", "status", "attempts_left", "can_deliver"} <= set(
        sheet["stops"][0]["parcels"][0]
    )
    theirs = client.get(MY_DAY, headers=sign_in(client, other)).json()
    assert {r["route"]["id"] for r in theirs["routes"]} == {r.id for r in routes}


def test_a_leader_gets_its_teams_gate_only_and_other_roles_none(
    db: Session, client: TestClient
) -> None:
    gate = _at_the_gates(db)
    others = [
        make_user(db, r) for r in (Role.coordinator, Role.resident, Role.donor, Role.committee)
    ]
    db.commit()
    body = client.get(MY_DAY, headers=sign_in(client, gate.leader)).json()
    assert body["routes"] == []
    assert _parcels(body) == {p.id for p in gate.ours}  # not the other team's compound
    for user in others:
        refused = client.get(MY_DAY, headers=sign_in(client, user))
        assert refused.status_code == 403, user.role
    assert client.get(MY_DAY).status_code == 401


def test_a_malformed_event_is_answered_with_its_field_path_and_the_others_apply(
    db: Session, client: TestClient
) -> None:
    gate = _at_the_gates(db)
    first, second = gate.ours
    batch = [
        {"client_event_id": f"field-{uuid.uuid4()}", "kind": "delivered",
         "parcel_id": first.id, "code": gate.codes[first.id]},
        {"client_event_id": f"field-{uuid.uuid4()}", "kind": "failed",
         "parcel_id": "P2", "reason": "not_home"},
        {"client_event_id": f"field-{uuid.uuid4()}", "kind": "failed",
         "parcel_id": second.id, "reason": "lost in the rain"},
    ]  # fmt: skip
    answer = client.post(BATCH, json={"events": batch}, headers=sign_in(client, gate.leader))
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["status"] for r in results] == [200, 422, 422]
    assert results[1]["problem"]["errors"][0]["loc"] == ["events", 1, "parcel_id"]
    assert results[2]["problem"]["errors"][0]["loc"] == ["events", 2, "reason"]
    db.rollback()
    db.expire_all()
    assert db.get(Parcel, first.id).status == ParcelStatus.delivered  # type: ignore[union-attr]
    assert db.get(Parcel, second.id).status != ParcelStatus.failed  # type: ignore[union-attr]


def test_the_shell_manifest_and_service_worker_need_no_sign_in(client: TestClient) -> None:
    shell = client.get("/field", headers={"Accept-Language": "zh-CN"})
    assert shell.status_code == 200
    assert "外勤应用" in shell.text and 'rel="manifest"' in shell.text
    manifest = client.get("/field.webmanifest")
    assert manifest.headers["content-type"].startswith("application/manifest+json")
    assert manifest.json()["scope"] == manifest.json()["start_url"] == "/field"
    worker = client.get("/field-sw.js")
    assert worker.headers["content-type"].startswith("text/javascript")
    assert worker.headers["cache-control"] == "no-cache"
