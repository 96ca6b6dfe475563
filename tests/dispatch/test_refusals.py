"""Wrong code, replayed event, event from the wrong courier: each gets a clear refusal and
nothing moves. Plus the gate hand-off count, the supervisor override and residents' scoping."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relieflink.dispatch import codes
from relieflink.flows import dispatch as dispatch_flow
from relieflink.models import (
    AuditEvent,
    HandoffDiscrepancy,
    NeedRequest,
    Parcel,
    ParcelStatus,
    Role,
    Route,
    RouteStop,
    StockMovement,
    TrackingEvent,
)
from tests.dispatch.factories import TODAY, City, make_city
from tests.factories import make_user, sign_in


def eid() -> str:
    return f"evt-{uuid.uuid4()}"


def snapshot(db: Session) -> tuple[object, ...]:
    """Everything an event could move."""
    db.rollback()
    return (
        db.scalar(select(func.count()).select_from(StockMovement)),
        db.scalar(select(func.count()).select_from(TrackingEvent)),
        tuple(db.execute(select(Parcel.id, Parcel.status, Parcel.last_seq).order_by(Parcel.id))),
        tuple(db.execute(select(NeedRequest.id, NeedRequest.status).order_by(NeedRequest.id))),
        tuple(db.execute(select(Route.id, Route.status).order_by(Route.id))),
    )


@pytest.fixture
def scene(db: Session, client: TestClient) -> dict[str, object]:
    city = make_city(db)
    courier = make_user(db, Role.courier, organization_id=city.carrier.id)
    db.commit()
    dispatch_flow.plan_dispatch(db, day=TODAY, actor=None, time_limit=0.3)
    db.commit()
    headers = sign_in(client, courier)
    route = db.scalars(
        select(Route)
        .join(RouteStop, RouteStop.route_id == Route.id)
        .where(RouteStop.inner_mode == "courier")
    ).first()
    assert route is not None
    for kind in ("loaded", "departed"):
        r = client.post(
            "/api/v1/dispatch/events",
            json={"client_event_id": eid(), "kind": kind, "route_id": route.id},
            headers=headers,
        )
        assert r.status_code == 200, r.text
    parcel = db.scalars(
        select(Parcel)
        .join(RouteStop, RouteStop.id == Parcel.stop_id)
        .where(Parcel.route_id == route.id, RouteStop.inner_mode == "courier")
    ).first()
    assert parcel is not None
    db.rollback()  # end the read snapshot: the API writes next
    return {"city": city, "courier": headers, "route": route, "parcel": parcel}


def deliver(
    client: TestClient, headers: dict[str, str], parcel_id: int, code: str, event: str | None = None
):
    return client.post(
        "/api/v1/dispatch/events",
        json={
            "client_event_id": event or eid(),
            "kind": "delivered",
            "parcel_id": parcel_id,
            "code": code,
        },
        headers=headers,
    )


def test_wrong_code_is_refused_and_nothing_moves(db: Session, client: TestClient, scene) -> None:
    parcel = scene["parcel"]
    right = codes.derive(parcel.code_nonce)
    wrong = str((int(right) + 1) % 10**6).zfill(6)
    before = snapshot(db)
    response = deliver(client, scene["courier"], parcel.id, wrong)
    assert response.status_code == 403
    assert "wrong pickup code" in response.json()["detail"]
    assert response.json()["errors"][0]["loc"] == ["code"]
    assert snapshot(db) == before
    assert db.get(Parcel, parcel.id).code_attempts == 1  # kept for the rate limit
    # After five wrong codes the parcel is locked, even for the right code.
    for _ in range(codes.MAX_ATTEMPTS - 1):
        assert deliver(client, scene["courier"], parcel.id, wrong).status_code == 403
    locked = deliver(client, scene["courier"], parcel.id, right)
    assert locked.status_code == 409 and "locked" in locked.json()["detail"]
    assert snapshot(db) == before
    # A supervisor confirms with a photo and a reason; it is audited.
    supervisor = make_user(db, Role.coordinator)
    db.commit()
    boss = sign_in(client, supervisor)
    no_photo = client.post(
        "/api/v1/dispatch/events",
        json={
            "client_event_id": eid(),
            "kind": "delivered",
            "parcel_id": parcel.id,
            "override_reason": "resident's phone is broken",
        },
        headers=boss,
    )
    assert no_photo.status_code == 422
    ok = client.post(
        "/api/v1/dispatch/events",
        json={
            "client_event_id": eid(),
            "kind": "delivered",
            "parcel_id": parcel.id,
            "override_reason": "resident's phone is broken",
            "photo_ref": "photo/123.jpg",
        },
        headers=boss,
    )
    assert ok.status_code == 200, ok.text
    db.rollback()
    assert db.get(Parcel, parcel.id).status == ParcelStatus.delivered
    assert (
        db.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "override", AuditEvent.entity_id == parcel.id)
        )
        == 1
    )
    # A courier may not override.
    other = db.scalars(
        select(Parcel).where(Parcel.id != parcel.id, Parcel.route_id == parcel.route_id)
    ).first()
    if other is not None:
        denied = client.post(
            "/api/v1/dispatch/events",
            json={
                "client_event_id": eid(),
                "kind": "delivered",
                "parcel_id": other.id,
                "override_reason": "trust me, really",
                "photo_ref": "p.jpg",
            },
            headers=scene["courier"],
        )
        assert denied.status_code == 403


def test_replays_and_reuse_are_refused(db: Session, client: TestClient, scene) -> None:
    parcel = scene["parcel"]
    code = codes.derive(parcel.code_nonce)
    event = eid()
    first = deliver(client, scene["courier"], parcel.id, code, event)
    assert first.status_code == 200, first.text
    after = snapshot(db)
    # The same event retried: the first answer, nothing moves.
    retry = deliver(client, scene["courier"], parcel.id, code, event)
    assert retry.status_code == 200 and retry.json()["replayed"] is True
    assert retry.json()["id"] == first.json()["id"]
    # The same delivery replayed under a new event id: refused.
    replay = deliver(client, scene["courier"], parcel.id, code)
    assert replay.status_code == 409 and "delivered" in replay.json()["detail"]
    # An event the parcel has passed (out of order): refused.
    late = client.post(
        "/api/v1/dispatch/events",
        json={"client_event_id": eid(), "kind": "loaded", "parcel_id": parcel.id},
        headers=scene["courier"],
    )
    assert late.status_code == 409
    # The same client event id for something else: refused.
    reuse = client.post(
        "/api/v1/dispatch/events",
        json={
            "client_event_id": event,
            "kind": "failed",
            "parcel_id": parcel.id,
            "reason": "refused",
        },
        headers=scene["courier"],
    )
    assert reuse.status_code == 409 and "already used" in reuse.json()["detail"]
    assert snapshot(db) == after


def test_event_from_the_wrong_courier_is_refused(db: Session, client: TestClient, scene) -> None:
    city: City = scene["city"]
    parcel = scene["parcel"]
    stranger = make_user(db, Role.courier, organization_id=city.other_carrier.id)
    resident = city.residents[parcel.household_id]
    db.commit()
    before = snapshot(db)
    for user in (stranger, resident):
        response = deliver(
            client, sign_in(client, user), parcel.id, codes.derive(parcel.code_nonce)
        )
        assert response.status_code == 403, response.text
    # A route given to one courier is that courier's alone, even within the carrier.
    db.rollback()
    colleague = make_user(db, Role.courier, organization_id=city.carrier.id)
    db.commit()
    boss = sign_in(client, city.admin)
    assign = client.put(
        f"/api/v1/dispatch/routes/{scene['route'].id}/courier",
        json={"courier_id": colleague.id},
        headers=boss,
    )
    assert assign.status_code == 200, assign.text
    response = deliver(client, scene["courier"], parcel.id, codes.derive(parcel.code_nonce))
    assert response.status_code == 403
    assert snapshot(db)[:4] == before[:4]


def test_gate_handoff_count_mismatch_records_a_discrepancy(db: Session, client: TestClient) -> None:
    city = make_city(db)
    courier = make_user(db, Role.courier, organization_id=city.carrier.id)
    db.commit()
    dispatch_flow.plan_dispatch(db, day=TODAY, actor=None, time_limit=0.3)
    db.commit()
    headers = sign_in(client, courier)
    stop = db.scalars(select(RouteStop).where(RouteStop.inner_mode != "courier")).first()
    assert stop is not None
    for kind, target in (("loaded", "route_id"), ("departed", "route_id"), ("arrived", "stop_id")):
        value = stop.route_id if target == "route_id" else stop.id
        r = client.post(
            "/api/v1/dispatch/events",
            json={"client_event_id": eid(), "kind": kind, target: value},
            headers=headers,
        )
        assert r.status_code == 200, r.text
    r = client.post(
        "/api/v1/dispatch/events",
        json={
            "client_event_id": eid(),
            "kind": "handed_off",
            "stop_id": stop.id,
            "counted": stop.parcels - 1,
        },
        headers=headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["result"]["expected"] == stop.parcels
    db.rollback()
    (d,) = db.scalars(select(HandoffDiscrepancy)).all()
    assert (d.stop_id, d.expected, d.counted) == (stop.id, stop.parcels, stop.parcels - 1)


def test_residents_see_only_their_own_codes(db: Session, client: TestClient) -> None:
    city = make_city(db)
    dispatch_flow.plan_dispatch(db, day=TODAY, actor=None, time_limit=0.3)
    db.commit()
    home = city.homes["open"][0]
    mine = client.get(
        "/api/v1/dispatch/my-deliveries", headers=sign_in(client, city.residents[home.id])
    ).json()
    parcels = db.scalars(select(Parcel).where(Parcel.household_id == home.id)).all()
    assert sorted(d["parcel_id"] for d in mine) == sorted(p.id for p in parcels)
    for d, p in zip(
        sorted(mine, key=lambda d: d["parcel_id"]), sorted(parcels, key=lambda p: p.id), strict=True
    ):
        assert codes.matches(p.code_nonce, d["pickup_code"], p.code_hash)
        assert d["pickup_code"] not in (p.code_hash, p.code_nonce)
    db.rollback()
    courier = make_user(db, Role.courier, organization_id=city.carrier.id)
    db.commit()
    assert (
        client.get("/api/v1/dispatch/my-deliveries", headers=sign_in(client, courier)).status_code
        == 403
    )
