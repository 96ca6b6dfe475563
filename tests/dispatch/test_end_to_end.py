"""Pledge → receipt → request → allocation → dispatch plan → events → delivered, through the
API for the events, with failures and retries; afterwards the ledger reconciles exactly."""

from __future__ import annotations

import uuid
from collections import defaultdict
from fractions import Fraction

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relieflink.flows import allocation
from relieflink.flows import dispatch as dispatch_flow
from relieflink.models import (
    Allocation,
    AllocationState,
    AuditEvent,
    NeedRequest,
    Parcel,
    ParcelLine,
    ParcelStatus,
    RequestLine,
    RequestStatus,
    Role,
    Route,
    RouteStop,
    StockMovement,
)
from relieflink.stock import service as stock
from tests.dispatch.factories import TODAY, City, make_city
from tests.factories import make_user, sign_in


def eid() -> str:
    return f"evt-{uuid.uuid4()}"


def post(client: TestClient, headers: dict[str, str], body: dict[str, object]) -> dict:
    response = client.post("/api/v1/dispatch/events", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def code_of(client: TestClient, resident_headers: dict[str, str], parcel_id: int) -> str:
    response = client.get("/api/v1/dispatch/my-deliveries", headers=resident_headers)
    assert response.status_code == 200, response.text
    (mine,) = [d for d in response.json() if d["parcel_id"] == parcel_id]
    return mine["pickup_code"]


def run_routes(
    db: Session,
    client: TestClient,
    city: City,
    courier: dict[str, str],
    volunteer: dict[str, str],
    plan_id: int,
    *,
    fail: set[int] = frozenset(),  # type: ignore[assignment]
) -> None:
    """Drive every route of a plan: load, depart, arrive, hand off, deliver (or fail)."""
    routes = db.scalars(select(Route).where(Route.plan_id == plan_id).order_by(Route.id)).all()
    for route in routes:
        loaded = {"client_event_id": eid(), "kind": "loaded", "route_id": route.id}
        first = post(client, courier, loaded)
        again = post(client, courier, loaded)  # the phone retries: same answer, nothing moves
        assert again["replayed"] and again["id"] == first["id"]
        post(client, courier, {"client_event_id": eid(), "kind": "departed", "route_id": route.id})
        stops = db.scalars(
            select(RouteStop).where(RouteStop.route_id == route.id).order_by(RouteStop.seq)
        ).all()
        for stop in stops:
            post(client, courier, {"client_event_id": eid(), "kind": "arrived", "stop_id": stop.id})
            parcels = db.scalars(select(Parcel).where(Parcel.stop_id == stop.id)).all()
            actor = courier
            if stop.inner_mode != "courier":
                actor = volunteer
                post(
                    client,
                    courier,
                    {
                        "client_event_id": eid(),
                        "kind": "handed_off",
                        "stop_id": stop.id,
                        "counted": len(parcels),
                    },
                )
            for parcel in parcels:
                resident = sign_in(client, city.residents[parcel.household_id])
                if parcel.household_id in fail:
                    body = {
                        "client_event_id": eid(),
                        "kind": "failed",
                        "parcel_id": parcel.id,
                        "reason": "not_home",
                    }
                else:
                    body = {
                        "client_event_id": eid(),
                        "kind": "delivered",
                        "parcel_id": parcel.id,
                        "code": code_of(client, resident, parcel.id),
                    }
                first = post(client, actor, body)
                assert post(client, actor, body)["replayed"]
                assert first["parcels"] == [parcel.id]


def test_pledge_to_doorstep_and_the_ledger_reconciles(db: Session, client: TestClient) -> None:
    city = make_city(db)
    courier_user = make_user(db, Role.courier, organization_id=city.carrier.id)
    volunteer_user = make_user(db, Role.committee, organization_id=city.committee.id)
    db.commit()
    courier, volunteer = sign_in(client, courier_user), sign_in(client, volunteer_user)
    households = [h for group in city.homes.values() for h in group]

    plan = dispatch_flow.plan_dispatch(db, day=TODAY, actor=None, time_limit=0.5)
    db.commit()
    assert plan.summary["planned_parcels"] == len(households), plan.summary
    assert plan.summary["violations"] == []
    requests = db.scalars(select(NeedRequest)).all()
    assert {r.status for r in requests} == {RequestStatus.dispatched}

    unlucky = city.homes["controlled"][0].id
    run_routes(db, client, city, courier, volunteer, plan.id, fail={unlucky})
    db.rollback()  # end the read snapshot: see what the API committed

    # The failed pack went back on the shelf and its request is open again, carried over.
    failed = db.scalars(select(NeedRequest).where(NeedRequest.household_id == unlucky)).one()
    # One carry-over for the failed parcel, however many lines it had.
    assert failed.status == RequestStatus.open and failed.carried_over == 1
    assert all(line.allocated == 0 for line in failed.lines)
    returned = db.scalars(
        select(Allocation.state)
        .join(RequestLine, RequestLine.id == Allocation.line_id)
        .where(RequestLine.request_id == failed.id)
    ).all()
    assert set(returned) == {AllocationState.returned}
    # Each returned allocation is audited once, with the failure's reason.
    returned_ids = db.scalars(
        select(Allocation.id)
        .join(RequestLine, RequestLine.id == Allocation.line_id)
        .where(RequestLine.request_id == failed.id)
    ).all()
    audited = db.execute(
        select(AuditEvent.entity_id, AuditEvent.detail).where(
            AuditEvent.action == "return", AuditEvent.entity == "allocation"
        )
    ).all()
    assert sorted(i for i, _ in audited) == sorted(returned_ids)
    assert all(detail is not None and detail.get("reason") for _, detail in audited)
    others = [r for r in db.scalars(select(NeedRequest)) if r.household_id != unlucky]
    assert {r.status for r in others} == {RequestStatus.delivered}

    # The next day: allocate again (the carried-over request first), plan, deliver.
    allocation.run_allocation(db, actor=None, today=TODAY)
    db.commit()
    plan2 = dispatch_flow.plan_dispatch(db, day=TODAY, actor=None, time_limit=0.5)
    db.commit()
    assert plan2.summary["planned_parcels"] == 1
    run_routes(db, client, city, courier, volunteer, plan2.id)
    db.rollback()  # end the read snapshot: see what the API committed
    assert {r.status for r in db.scalars(select(NeedRequest))} == {RequestStatus.delivered}
    states = db.scalars(select(Allocation.state).distinct()).all()
    assert set(states) == {AllocationState.delivered, AllocationState.returned}

    # The ledger reconciles exactly: balances = movements, every donor's figures add up, and
    # what the ledger calls delivered is exactly what the delivered parcels carried.
    assert stock.check_ledger(db) == []
    report = stock.donor_report(db)
    assert report and all(row.balanced for row in report)
    delivered_by_item: dict[int, Fraction] = defaultdict(Fraction)
    for row in report:
        delivered_by_item[row.item_id or 0] += row.delivered
    carried = {
        item: int(units)
        for item, units in db.execute(
            select(ParcelLine.item_id, func.sum(ParcelLine.quantity))
            .join(Parcel, Parcel.id == ParcelLine.parcel_id)
            .where(Parcel.status == ParcelStatus.delivered)
            .group_by(ParcelLine.item_id)
        )
    }
    assert {k: int(v) for k, v in delivered_by_item.items() if v} == carried
    assert carried[city.rice.id] == 2 * len(households)
    # Every unit issued for the failed parcel came back under the same reference.
    failed_lines = db.scalars(
        select(ParcelLine).join(Parcel).where(Parcel.status == ParcelStatus.failed)
    ).all()
    for line in failed_lines:
        net = db.scalar(
            select(func.sum(StockMovement.d_on_hand)).where(
                StockMovement.reference == line.reference
            )
        )
        assert net == 0

    # Trace: a delivered pack names its donors (from the ledger), its route and courier.
    home = city.homes["open"][0]
    parcel = db.scalars(
        select(Parcel).where(Parcel.household_id == home.id, Parcel.status == "delivered")
    ).first()
    assert parcel is not None
    resident = sign_in(client, city.residents[home.id])
    trace = client.get(f"/api/v1/dispatch/parcels/{parcel.id}/trace", headers=resident)
    assert trace.status_code == 200, trace.text
    body = trace.json()
    assert body["route_id"] == parcel.route_id and body["courier_id"] == courier_user.id
    donors = {d["donor_org_id"]: d for d in body["donors"]}
    assert set(donors) <= {d.id for d in city.donors} and donors
    for donor in city.donors:  # named, with the exact share and its decimal
        if donor.id in donors:
            share = donors[donor.id]
            assert share["name"] == donor.name and share["name_zh"] == donor.name_zh
            assert share["quantity_decimal"] == round(float(Fraction(share["quantity"])), 3)
    rice_units = sum(
        Fraction(share["quantity"])
        for line in body["lines"]
        if line["item_id"] == city.rice.id
        for share in line["donors"]
    )
    assert rice_units == 2
    other = sign_in(client, city.residents[city.homes["sealed"][0].id])
    assert (
        client.get(f"/api/v1/dispatch/parcels/{parcel.id}/trace", headers=other).status_code == 403
    )
