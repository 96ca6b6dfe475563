"""A volunteer team leader's phone page: today's parcels at the team's gate, handed out with the
resident's pickup code through the courier's tracking flow; another compound's parcel is
refused with 403 and the ledger does not move."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relieflink.dispatch.schemas import EventIn
from relieflink.flows import delivery
from relieflink.models import (
    Allocation,
    Parcel,
    ParcelStatus,
    Role,
    Route,
    RouteStop,
    StockMovement,
    User,
)
from tests.dispatch.factories import City
from tests.factories import make_user, sign_in
from tests.teams.factories import make_team
from tests.web.helpers import signed_in
from tests.web.operations_kit import courier_of, event_form, pickup_code, planned_city

# Plans made today: the clock at a morning hour, whatever the hour the suite runs at.
pytestmark = pytest.mark.usefixtures("morning")


def _event(db: Session, actor: User, **fields: object) -> None:
    data = EventIn.model_validate({"client_event_id": f"t-{uuid.uuid4().hex}"} | fields)
    delivery.record_event(db, data, actor=actor)


def _ledger(db: Session) -> tuple[int, list[tuple[int, str]]]:
    movements = db.scalar(select(func.count()).select_from(StockMovement)) or 0
    states = list(db.execute(select(Allocation.id, Allocation.state).order_by(Allocation.id)))
    return movements, [(i, str(s)) for i, s in states]


@dataclass
class Gate:
    city: City
    leader: User
    ours: list[Parcel]
    theirs: Parcel
    codes: dict[int, str]


def _at_the_gates(db: Session) -> Gate:
    """The dispatch tests' city planned for today; the sealed and the controlled compound each
    have a team; the courier has driven every route to its gates."""
    city, plan = planned_city(db)
    # Both compounds' last 100 metres go on foot or by robot, each with its own team.
    sealed, other = city.communities["sealed"], city.communities["controlled"]
    leader = make_user(db, Role.volunteer, organization_id=city.committee.id)
    make_team(db, sealed, leader=leader, headcount=7)
    make_team(db, other, leader=make_user(db, Role.volunteer), headcount=5)
    courier = courier_of(db, city)
    db.commit()
    for route in db.scalars(select(Route).where(Route.plan_id == plan.id)):
        _event(db, courier, kind="loaded", route_id=route.id)
        _event(db, courier, kind="departed", route_id=route.id)
        for stop in db.scalars(select(RouteStop).where(RouteStop.route_id == route.id)):
            _event(db, courier, kind="arrived", stop_id=stop.id)
    db.commit()
    ours = list(db.scalars(select(Parcel).where(Parcel.community_id == sealed.id)))
    theirs = db.scalars(select(Parcel).where(Parcel.community_id == other.id)).first()
    assert len(ours) == 2 and theirs is not None
    codes = {p.id: pickup_code(db, city, p) for p in [*ours, theirs]}
    return Gate(city, leader, ours, theirs, codes)


def test_a_leader_hands_out_at_its_gate_only(db: Session, client: TestClient) -> None:
    gate = _at_the_gates(db)
    leader, ours, theirs, codes = gate.leader, gate.ours, gate.theirs, gate.codes
    signed_in(client, leader)
    page = client.get("/gate")
    assert page.status_code == 200, page.text
    for parcel in ours:
        assert f'id="parcel-{parcel.id}"' in page.text
    assert f'id="parcel-{theirs.id}"' not in page.text

    # Hand one out with the resident's code.
    first = ours[0]
    form = event_form(page.text, "delivered", parcel_id=first.id)
    done = client.post(
        "/gate/events", data=form | {"code": codes[first.id]}, follow_redirects=False
    )
    assert done.status_code == 303, done.text
    db.rollback()
    db.expire_all()
    delivered = db.get(Parcel, first.id)
    assert delivered is not None and delivered.status == ParcelStatus.delivered
    assert delivered.delivered_by_id == leader.id

    # Another compound's parcel, even with the right code: 403, and nothing moves.
    before = _ledger(db)
    state = theirs.status
    forged = form | {"parcel_id": str(theirs.id), "client_event_id": f"web-{uuid.uuid4().hex}"}
    refused = client.post(
        "/gate/events", data=forged | {"code": codes[theirs.id]}, follow_redirects=False
    )
    assert refused.status_code == 403, refused.text
    db.rollback()
    db.expire_all()
    assert _ledger(db) == before
    still = db.get(Parcel, theirs.id)
    assert still is not None and still.status == state

    # A failure reported for a parcel at its own gate: the stock goes back.
    page = client.get("/gate")
    form = event_form(page.text, "failed", parcel_id=ours[1].id)
    failed = client.post("/gate/events", data=form | {"reason": "not_home"}, follow_redirects=False)
    assert failed.status_code == 303, failed.text
    db.rollback()
    db.expire_all()
    back = db.get(Parcel, ours[1].id)
    assert back is not None and back.status == ParcelStatus.failed


def test_the_api_applies_the_same_rule(db: Session, client: TestClient) -> None:
    gate = _at_the_gates(db)
    headers = sign_in(client, gate.leader)
    before = _ledger(db)
    theirs = {
        "client_event_id": f"api-{uuid.uuid4().hex}",
        "kind": "delivered",
        "parcel_id": gate.theirs.id,
        "code": gate.codes[gate.theirs.id],
    }
    refused = client.post("/api/v1/dispatch/events", json=theirs, headers=headers)
    assert refused.status_code == 403, refused.text
    db.rollback()
    assert _ledger(db) == before
    mine = theirs | {
        "client_event_id": f"api-{uuid.uuid4().hex}",
        "parcel_id": gate.ours[0].id,
        "code": gate.codes[gate.ours[0].id],
    }
    done = client.post("/api/v1/dispatch/events", json=mine, headers=headers)
    assert done.status_code == 200, done.text
    assert done.json()["parcels"] == [gate.ours[0].id]
