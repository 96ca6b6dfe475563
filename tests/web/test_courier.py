"""Courier pages: my routes today, one route's stops and parcels, and the event buttons, through
the real pages (CSRF, the per-form client event id, the pickup code check)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relieflink.dispatch import tracking
from relieflink.flows import allocation
from relieflink.flows import dispatch as dispatch_flow
from relieflink.models import (
    Allocation,
    AllocationState,
    NeedRequest,
    Parcel,
    ParcelLine,
    ParcelStatus,
    RequestLine,
    RequestStatus,
    Role,
    Route,
    RouteStatus,
    StockMovement,
)
from tests.dispatch.factories import ask
from tests.factories import make_household, make_org, make_user
from tests.web.helpers import csrf_of, signed_in
from tests.web.operations_kit import (
    courier_of,
    courier_route,
    event_form,
    make_route,
    pickup_code,
    planned_city,
)

# Plans made today: the clock at a morning hour, whatever the hour the suite runs at.
pytestmark = pytest.mark.usefixtures("morning")


def _post(client: TestClient, route_id: int, fields: dict[str, str], **extra: str) -> Response:
    return client.post(
        f"/courier/routes/{route_id}/events", data=fields | extra, follow_redirects=False
    )


def fresh(db: Session) -> None:
    """End the test's read snapshot and forget loaded rows: see what the pages committed."""
    db.rollback()
    db.expire_all()


def _issued(db: Session, parcel_id: int) -> int:
    return int(
        db.scalar(
            select(func.count())
            .select_from(StockMovement)
            .where(
                StockMovement.delivery_ref == f"parcel:{parcel_id}", StockMovement.kind == "issue"
            )
        )
        or 0
    )


def test_a_courier_sees_only_its_own_routes(db: Session, client: TestClient) -> None:
    city, plan = planned_city(db)
    ours = db.scalars(select(Route).where(Route.plan_id == plan.id)).first()
    assert ours is not None and ours.courier_id is None  # the carrier's, given to no one yet
    mine, colleague = courier_of(db, city), courier_of(db, city)
    stranger = make_user(db, Role.courier, organization_id=make_org(db).id)
    theirs = make_route(db, courier=stranger)
    db.commit()

    signed_in(client, mine)
    listing = client.get("/courier").text
    assert f'href="/courier/routes/{ours.id}"' in listing
    assert f'href="/courier/routes/{theirs.id}"' not in listing
    assert client.get(f"/courier/routes/{ours.id}").status_code == 200
    other = client.get(f"/courier/routes/{theirs.id}")
    assert other.status_code == 404 and f"no route {theirs.id} that you may see" in other.text
    # Nor may it post events there: the route is "not found" before anything moves.
    token = csrf_of(listing)
    refused = _post(
        client, theirs.id, {"csrf_token": token, "client_event_id": "web-test-01", "kind": "loaded"}
    )
    assert refused.status_code == 404
    fresh(db)
    assert db.get(Route, theirs.id).status == RouteStatus.planned  # type: ignore[union-attr]

    # Once the carrier's route is given to a colleague, it is the colleague's alone.
    tracking.assign_courier(db, ours.id, colleague.id, actor=city.admin)
    db.commit()
    assert f'href="/courier/routes/{ours.id}"' not in client.get("/courier").text
    assert client.get(f"/courier/routes/{ours.id}").status_code == 404
    client.cookies.clear()
    signed_in(client, colleague)
    assert client.get(f"/courier/routes/{ours.id}").status_code == 200

    client.cookies.clear()
    signed_in(client, stranger)  # another carrier's courier: only the route given to it
    listing = client.get("/courier").text
    assert f'href="/courier/routes/{theirs.id}"' in listing
    assert f'href="/courier/routes/{ours.id}"' not in listing


def test_a_courier_loads_departs_arrives_and_delivers_with_the_code(
    db: Session, client: TestClient
) -> None:
    city, plan = planned_city(db)
    route, stop, parcel = courier_route(db, plan)
    courier = courier_of(db, city)
    db.commit()
    code = pickup_code(db, city, parcel)
    signed_in(client, courier)

    page = client.get(f"/courier/routes/{route.id}").text
    loaded = event_form(page, "loaded")
    first = _post(client, route.id, loaded)
    assert first.status_code == 303 and "done=loaded" in first.headers["location"]
    issued = _issued(db, parcel.id)
    assert issued > 0  # loading issued the reserved stock
    # A double submit of the same form: answered from the first event, nothing moves again.
    again = _post(client, route.id, loaded)
    assert again.status_code == 303 and "again=1" in again.headers["location"]
    fresh(db)
    assert _issued(db, parcel.id) == issued
    shown = client.get(again.headers["location"]).text
    assert "already been recorded" in shown

    page = client.get(f"/courier/routes/{route.id}").text
    assert _post(client, route.id, event_form(page, "departed")).status_code == 303
    page = client.get(f"/courier/routes/{route.id}").text
    assert _post(client, route.id, event_form(page, "arrived", stop_id=stop.id)).status_code == 303

    # A wrong code: a clear message, the parcel stays at the gate, the attempt counts.
    page = client.get(f"/courier/routes/{route.id}").text
    deliver = event_form(page, "delivered", parcel_id=parcel.id)
    wrong = "000000" if code != "000000" else "111111"
    refused = _post(client, route.id, deliver, code=wrong)
    assert refused.status_code == 403
    assert "Wrong pickup code: nothing was delivered. 4 attempts left" in refused.text
    fresh(db)
    held = db.get(Parcel, parcel.id)
    assert held is not None
    assert (held.status, held.code_attempts) == (ParcelStatus.at_gate, 1)

    # The right code (the same form may be sent again: nothing was recorded under its id).
    delivered = _post(client, route.id, deliver, code=code)
    assert delivered.status_code == 303, delivered.text
    assert "done=delivered" in delivered.headers["location"]
    fresh(db)
    done = db.get(Parcel, parcel.id)
    assert done is not None and done.status == ParcelStatus.delivered
    assert done.delivered_by_id == courier.id
    states = db.scalars(
        select(Allocation.state)
        .join(ParcelLine, ParcelLine.allocation_id == Allocation.id)
        .where(ParcelLine.parcel_id == parcel.id)
    ).all()
    assert states and set(states) == {AllocationState.delivered}
    request = db.scalars(
        select(NeedRequest)
        .join(RequestLine, RequestLine.request_id == NeedRequest.id)
        .join(ParcelLine, ParcelLine.request_line_id == RequestLine.id)
        .where(ParcelLine.parcel_id == parcel.id)
    ).first()
    assert request is not None and request.status == RequestStatus.delivered
    page = client.get(delivered.headers["location"]).text
    assert f'id="parcel-{parcel.id}" data-parcel="{parcel.id}" data-status="delivered"' in page


def test_a_failed_delivery_needs_a_reason_and_shows_on_the_dashboard(
    db: Session, client: TestClient
) -> None:
    city, plan = planned_city(db)
    route, _stop, parcel = courier_route(db, plan)
    courier = courier_of(db, city)
    coordinator = make_user(db, Role.coordinator)
    db.commit()
    signed_in(client, courier)
    for kind in ("loaded", "departed"):
        page = client.get(f"/courier/routes/{route.id}").text
        assert _post(client, route.id, event_form(page, kind)).status_code == 303
    page = client.get(f"/courier/routes/{route.id}").text
    failed = event_form(page, "failed", parcel_id=parcel.id)
    missing = _post(client, route.id, failed)  # no reason: refused, nothing recorded
    assert missing.status_code == 422 and "Nothing was recorded" in missing.text
    response = _post(client, route.id, failed, reason="not_home")
    assert response.status_code == 303, response.text
    fresh(db)
    assert db.get(Parcel, parcel.id).status == ParcelStatus.failed  # type: ignore[union-attr]

    client.cookies.clear()
    signed_in(client, coordinator)
    dashboard = client.get(f"/dashboard?day={plan.day}").text
    assert 'data-stat="failed">1<' in dashboard
    assert f'data-parcel="{parcel.id}"' in dashboard and "Nobody at home" in dashboard
    assert f'href="/courier/routes/{route.id}"' in dashboard


def test_a_parcel_of_another_route_is_refused_on_this_route_page(
    db: Session, client: TestClient
) -> None:
    city, plan = planned_city(db)
    route, _stop, _parcel = courier_route(db, plan)
    # A second plan of the day for a late request: another route of the same carrier.
    late = make_household(db, city.communities["open"], actor=city.admin, size=2)
    ask(db, city, late, (city.rice, 1))
    allocation.run_allocation(db, actor=None, today=plan.day)
    second = dispatch_flow.plan_dispatch(db, day=plan.day, actor=None, time_limit=0.5)
    elsewhere = db.scalars(select(Parcel).where(Parcel.plan_id == second.id)).one()
    assert elsewhere.route_id not in (None, route.id)
    courier = courier_of(db, city)
    db.commit()
    signed_in(client, courier)
    page = client.get(f"/courier/routes/{route.id}").text
    fields = event_form(page, "loaded") | {"kind": "failed", "parcel_id": str(elsewhere.id)}
    response = _post(client, route.id, fields, reason="refused")
    assert response.status_code == 422
    assert f"parcel {elsewhere.id} is not on route {route.id}" in response.text
    fresh(db)
    assert db.get(Parcel, elsewhere.id).status == ParcelStatus.planned  # type: ignore[union-attr]
