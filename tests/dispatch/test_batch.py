"""Batches of tracking events (``POST /dispatch/events:batch``): applied in order, each all or
nothing and answered on its own, safe to resend; a bad event is refused without touching the
others; another carrier's courier is refused. Plus loading a route in bulk."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from relieflink.dispatch import codes
from relieflink.dispatch.schemas import EventIn
from relieflink.errors import Conflict
from relieflink.flows import delivery
from relieflink.flows import dispatch as dispatch_flow
from relieflink.models import (
    Allocation,
    AllocationState,
    LoginAttempt,
    MovementKind,
    NeedRequest,
    Parcel,
    ParcelLine,
    ParcelStatus,
    Role,
    Route,
    RouteStop,
    StockMovement,
    TrackingEvent,
)
from relieflink.stock import service as stock
from tests.dispatch.factories import TODAY, City, make_city
from tests.factories import make_user, sign_in

BATCH = "/api/v1/dispatch/events:batch"


def eid() -> str:
    return f"evt-{uuid.uuid4()}"


def snapshot(db: Session) -> tuple[object, ...]:
    """Everything an event could move: stock movements that change a balance (a delivery's
    handover changes none: the stock left at loading), events, parcels."""
    db.rollback()
    return (
        db.scalar(
            select(func.count())
            .select_from(StockMovement)
            .where(StockMovement.kind != MovementKind.handover)
        ),
        db.scalar(select(func.count()).select_from(TrackingEvent)),
        tuple(
            db.execute(
                select(Parcel.id, Parcel.status, Parcel.last_seq, Parcel.code_attempts).order_by(
                    Parcel.id
                )
            )
        ),
        tuple(db.execute(select(NeedRequest.id, NeedRequest.status).order_by(NeedRequest.id))),
        tuple(db.execute(select(Route.id, Route.status).order_by(Route.id))),
    )


def delivered(parcel: Parcel, code: str | None = None, cid: str | None = None) -> dict[str, Any]:
    return {
        "client_event_id": cid or eid(),
        "kind": "delivered",
        "parcel_id": parcel.id,
        "code": code or codes.derive(parcel.code_nonce),
    }


@pytest.fixture
def scene(db: Session, client: TestClient) -> dict[str, Any]:
    """A courier's route to an open compound, loaded and on its way."""
    city = make_city(db, per_community=5)
    courier = make_user(db, Role.courier, organization_id=city.carrier.id)
    db.commit()
    dispatch_flow.plan_dispatch(db, day=TODAY, actor=None, time_limit=0.3)
    db.commit()
    headers = sign_in(client, courier)
    route = db.scalars(
        select(Route)
        .join(RouteStop, RouteStop.route_id == Route.id)
        .where(RouteStop.inner_mode == "courier")
        .order_by(Route.id)
    ).first()
    assert route is not None
    batch = [
        {"client_event_id": eid(), "kind": kind, "route_id": route.id}
        for kind in ("loaded", "departed")
    ]
    r = client.post(BATCH, json={"events": batch}, headers=headers)
    assert r.status_code == 200, r.text
    assert [a["status"] for a in r.json()["results"]] == [200, 200]
    db.rollback()  # end the read snapshot: see what the API committed
    parcels = db.scalars(
        select(Parcel)
        .join(RouteStop, RouteStop.id == Parcel.stop_id)
        .where(Parcel.route_id == route.id, RouteStop.inner_mode == "courier")
        .order_by(Parcel.id)
    ).all()
    assert len(parcels) >= 3
    assert {p.status for p in parcels} == {ParcelStatus.departed}
    db.rollback()  # end the read snapshot: the API writes next
    return {"city": city, "courier": headers, "route": route, "parcels": parcels}


def statuses(response: Any) -> list[int]:
    assert response.status_code == 200, response.text
    return [a["status"] for a in response.json()["results"]]


def test_events_are_applied_in_order(db: Session, client: TestClient, scene) -> None:
    p, q, r = scene["parcels"][:3]
    stop = p.stop_id
    batch = [
        {"client_event_id": eid(), "kind": "arrived", "stop_id": stop},
        delivered(p),
        {"client_event_id": eid(), "kind": "failed", "parcel_id": q.id, "reason": "not_home"},
        delivered(q),  # q has failed just before: refused
        delivered(r),
        delivered(r),  # a second delivery of r under a new id: refused
    ]
    response = client.post(BATCH, json={"events": batch}, headers=scene["courier"])
    assert statuses(response) == [200, 200, 200, 409, 200, 409]
    body = response.json()
    assert (body["applied"], body["replayed"], body["refused"]) == (4, 0, 2)
    assert [a["index"] for a in body["results"]] == list(range(len(batch)))
    assert [a["client_event_id"] for a in body["results"]] == [e["client_event_id"] for e in batch]
    assert "failed" in body["results"][3]["problem"]["detail"]
    db.rollback()
    # Each parcel's events in sequence: loaded 1, departed 2, arrived 3, then delivered or failed.
    assert db.get(Parcel, p.id).status == ParcelStatus.delivered
    assert db.get(Parcel, q.id).status == ParcelStatus.failed
    for parcel in (p, q):
        seqs = db.scalars(
            select(TrackingEvent.seq)
            .where(TrackingEvent.parcel_id == parcel.id)
            .order_by(TrackingEvent.id)
        ).all()
        assert seqs == [db.get(Parcel, parcel.id).last_seq] == [4]
    assert db.get(Parcel, r.id).last_seq == 4
    events = db.scalars(select(TrackingEvent).order_by(TrackingEvent.id)).all()
    applied = [batch[i]["client_event_id"] for i in (0, 1, 2, 4)]
    assert [e.client_event_id for e in events][-4:] == applied
    # The failed parcel went back on the shelf; the delivered one closed its request.
    request = db.scalars(
        select(NeedRequest).where(NeedRequest.household_id == q.household_id)
    ).one()
    assert request.status == "open" and request.carried_over == 1
    closed = body["results"][1]["event"]["result"]["closed_requests"]
    done = db.scalars(select(NeedRequest).where(NeedRequest.household_id == p.household_id)).one()
    assert closed == [done.id] and done.status == "delivered"
    assert stock.check_ledger(db) == []


def test_a_resent_batch_is_replayed_and_moves_nothing(
    db: Session, client: TestClient, scene
) -> None:
    p, q = scene["parcels"][:2]
    first_p = delivered(p)
    batch = [first_p, delivered(q), first_p]  # the phone buffered the same event twice
    first = client.post(BATCH, json={"events": batch}, headers=scene["courier"])
    assert statuses(first) == [200, 200, 200]
    answers = first.json()["results"]
    assert [a["event"]["replayed"] for a in answers] == [False, False, True]
    assert answers[2]["event"]["id"] == answers[0]["event"]["id"]
    after = snapshot(db)
    again = client.post(BATCH, json={"events": batch}, headers=scene["courier"])
    assert statuses(again) == [200, 200, 200]
    assert all(a["event"]["replayed"] for a in again.json()["results"])
    assert [a["event"]["id"] for a in again.json()["results"]] == [
        a["event"]["id"] for a in answers
    ]
    assert again.json()["replayed"] == 3 and again.json()["applied"] == 0
    # The same events one at a time: the first answers too.
    single = client.post("/api/v1/dispatch/events", json=batch[1], headers=scene["courier"])
    assert single.status_code == 200 and single.json()["id"] == answers[1]["event"]["id"]
    assert single.json()["replayed"] is True
    assert snapshot(db) == after


def test_a_mixed_batch_answers_each_event_and_writes_only_the_new_one(
    db: Session, client: TestClient, scene
) -> None:
    """A replay, a new delivery, a malformed event and one the parcel's state refuses, in one
    batch: each answered as the single endpoint answers it, only the new delivery written."""
    p, q, r = scene["parcels"][:3]
    done = delivered(p)
    single = client.post("/api/v1/dispatch/events", json=done, headers=scene["courier"])
    assert single.status_code == 200, single.text
    first = single.json()
    assert set(first) == {"id", "client_event_id", "kind", "replayed", "parcels", "result"}
    assert first["replayed"] is False and first["parcels"] == [p.id]
    before = snapshot(db)
    malformed = delivered(r) | {"code": 123456}  # a number, not the code's text: 422
    batch = [done, delivered(q), malformed, delivered(p)]  # the last: p is delivered already
    response = client.post(BATCH, json={"events": batch}, headers=scene["courier"])
    assert statuses(response) == [200, 200, 422, 409]
    body = response.json()
    assert (body["applied"], body["replayed"], body["refused"]) == (1, 1, 2)
    assert body["results"][0]["event"] == first | {"replayed": True}
    assert body["results"][2]["problem"]["errors"][0]["loc"][:2] == ["events", 2]
    after = snapshot(db)
    assert after[1] == before[1] + 1  # q's delivery only
    moved = {row[0] for row in set(after[2]) - set(before[2])}
    assert moved == {q.id}
    assert db.get(Parcel, r.id).status == ParcelStatus.departed
    again = client.post("/api/v1/dispatch/events", json=batch[1], headers=scene["courier"])
    assert again.status_code == 200
    assert again.json() == body["results"][1]["event"] | {"replayed": True}
    assert snapshot(db) == after
    assert stock.check_ledger(db) == []


def test_one_bad_event_is_refused_without_touching_the_others(
    db: Session, client: TestClient, scene
) -> None:
    p, q, r, s = scene["parcels"][:4]
    right = codes.derive(p.code_nonce)
    wrong = str((int(right) + 1) % 10**6).zfill(6)
    reused = eid()
    client.post(BATCH, json={"events": [delivered(r, cid=reused)]}, headers=scene["courier"])
    before = snapshot(db)
    batch = [
        delivered(p, code=wrong),  # wrong code: refused, the attempt is kept
        delivered(q),
        {"client_event_id": eid(), "kind": "delivered"},  # names no parcel: 422
        {"client_event_id": reused, "kind": "failed", "parcel_id": q.id, "reason": "refused"},
    ]
    response = client.post(BATCH, json={"events": batch}, headers=scene["courier"])
    assert statuses(response) == [403, 200, 422, 409]
    problems = [a["problem"] for a in response.json()["results"]]
    assert problems[0]["errors"][0]["loc"] == ["code"]
    assert problems[2]["errors"][0]["loc"][:2] == ["events", 2]
    assert "already used" in problems[3]["detail"]
    after = snapshot(db)
    moved = {row[0] for row in set(after[2]) - set(before[2])}
    assert moved == {p.id, q.id}  # q delivered; p only counts one wrong code
    assert db.get(Parcel, p.id).status == ParcelStatus.departed
    assert db.get(Parcel, p.id).code_attempts == 1
    assert db.get(Parcel, q.id).status == ParcelStatus.delivered
    assert db.scalar(select(func.count()).select_from(LoginAttempt)) == 1
    assert after[1] == before[1] + 1  # one new event stored: q's delivery
    handed = select(StockMovement.delivery_ref).where(StockMovement.kind == MovementKind.handover)
    at_door = set(db.scalars(handed))
    assert f"parcel:{q.id}" in at_door  # q's stock reached the door; p's did not
    assert f"parcel:{p.id}" not in at_door

    # A failure checks every rule before it writes: an allocation delivered meanwhile (by
    # hand, at the warehouse) cannot go back, so the failure is refused and moves nothing.
    line = db.scalars(select(ParcelLine).where(ParcelLine.parcel_id == s.id)).first()
    assert line is not None
    db.get(Allocation, line.allocation_id).state = AllocationState.delivered
    db.commit()
    before = snapshot(db)
    batch = [
        {"client_event_id": eid(), "kind": "failed", "parcel_id": s.id, "reason": "not_home"},
        delivered(p),
    ]
    response = client.post(BATCH, json={"events": batch}, headers=scene["courier"])
    assert statuses(response) == [409, 200]
    assert "cannot be returned" in response.json()["results"][0]["problem"]["detail"]
    after = snapshot(db)
    assert after[0] == before[0]  # no stock came back for s
    assert db.get(Parcel, s.id).status == ParcelStatus.departed
    assert db.get(Parcel, p.id).status == ParcelStatus.delivered
    assert stock.check_ledger(db) == []


def test_an_event_that_breaks_half_way_leaves_nothing_behind(
    db: Session, client: TestClient, scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loading issues stock line by line; if the ledger refuses half-way, what was issued for
    that event is rolled back with it, and the events around it still go through."""
    other = db.scalars(
        select(Route).where(Route.id != scene["route"].id, Route.status == "planned")
    ).first()
    assert other is not None
    real = delivery.ledger.issue_many

    def breaks_half_way(*args: Any, **kwargs: Any) -> int:
        real(*args, **kwargs)  # movements and balances written...
        raise Conflict("the warehouse's scanner rejected the pick list")  # ...then refused

    monkeypatch.setattr(delivery.ledger, "issue_many", breaks_half_way)
    p, q = scene["parcels"][:2]
    before = snapshot(db)
    batch = [
        delivered(p),
        {"client_event_id": eid(), "kind": "loaded", "route_id": other.id},
        delivered(q),
    ]
    response = client.post(BATCH, json={"events": batch}, headers=scene["courier"])
    assert statuses(response) == [200, 409, 200]
    after = snapshot(db)
    assert after[0] == before[0]  # no stock movement stayed
    assert after[1] == before[1] + 2  # the two deliveries are stored
    assert db.get(Route, other.id).status == "planned"
    assert {p.status for p in db.scalars(select(Parcel).where(Parcel.route_id == other.id))} == {
        ParcelStatus.planned
    }
    assert stock.check_ledger(db) == []


def test_events_from_the_wrong_courier_are_refused(db: Session, client: TestClient, scene) -> None:
    city: City = scene["city"]
    p, q = scene["parcels"][:2]
    stranger = make_user(db, Role.courier, organization_id=city.other_carrier.id)
    resident = city.residents[p.household_id]
    db.commit()
    before = snapshot(db)
    for user in (stranger, resident):
        response = client.post(
            BATCH, json={"events": [delivered(p), delivered(q)]}, headers=sign_in(client, user)
        )
        if user is resident:  # not a delivery role at all: the batch is refused
            assert response.status_code == 403, response.text
        else:
            assert statuses(response) == [403, 403]
            assert "not yours" in response.json()["results"][0]["problem"]["detail"]
    assert snapshot(db) == before


def test_a_batch_of_deliveries_costs_the_same_statements_whatever_its_size(
    db: Session, scene
) -> None:
    """Deliveries are written set-based: three cost what two cost (not a timing, a shape)."""
    actor = make_user(db, Role.admin)
    db.commit()
    parcels = scene["parcels"]
    assert len(parcels) >= 3
    counts = []
    assert len(parcels) >= 5
    for group in (parcels[:2], parcels[2:5]):
        seen: list[str] = []

        def count(_c: object, _cur: object, statement: str, *_: object) -> None:
            seen.append(statement)  # noqa: B023 (the listener is removed below)

        events = [EventIn.model_validate(delivered(p)) for p in group]
        engine = db.get_bind()
        event.listen(engine, "before_cursor_execute", count)
        try:
            answers = delivery.record_events(db, events, actor=actor)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        db.commit()
        assert all(a.outcome is not None for a in answers), [a.error for a in answers]
        counts.append(len(seen))
    assert counts[1] == counts[0], counts
    lines = db.scalar(
        select(func.count())
        .select_from(ParcelLine)
        .where(ParcelLine.parcel_id.in_([p.id for p in parcels[:5]]))
    )
    assert lines and lines >= 10  # rice and oil: not one statement per line either


def test_loading_a_route_issues_each_parcel_once(db: Session, client: TestClient) -> None:
    """Loading one parcel, then its route: the rest of the route is issued in bulk, the parcel
    already loaded is not issued again, and the ledger reconciles."""
    city = make_city(db)
    dispatch_flow.plan_dispatch(db, day=TODAY, actor=None, time_limit=0.3)
    db.commit()
    route = db.scalars(select(Route).order_by(Route.id)).first()
    assert route is not None
    first = db.scalars(
        select(Parcel).where(Parcel.route_id == route.id).order_by(Parcel.id)
    ).first()
    assert first is not None

    def load(target: dict[str, int]) -> None:
        data = EventIn.model_validate({"client_event_id": eid(), "kind": "loaded", **target})
        delivery.record_event(db, data, actor=city.admin)
        db.commit()

    load({"parcel_id": first.id})
    load({"route_id": route.id})
    with pytest.raises(Conflict, match="loaded refused"):  # nothing left to load
        load({"route_id": route.id})
    db.rollback()
    lines = db.scalars(select(ParcelLine).join(Parcel).where(Parcel.route_id == route.id)).all()
    issued = db.execute(
        select(StockMovement.reference, func.sum(StockMovement.d_on_hand))
        .where(StockMovement.kind == "issue")
        .group_by(StockMovement.reference)
    ).all()
    assert dict(issued) == {line.reference: -line.quantity for line in lines}
    assert {p.status for p in db.scalars(select(Parcel).where(Parcel.route_id == route.id))} == {
        ParcelStatus.loaded
    }
    assert stock.check_ledger(db) == []
