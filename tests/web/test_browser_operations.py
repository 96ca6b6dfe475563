"""Browser tests of the operations pages: a coordinator runs allocation and dispatch from the
dashboard and watches them finish, then sees the routes on the map; a courier on a phone marks
a delivery with the resident's pickup code. Screenshots go to ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relieflink.models import (
    Allocation,
    AllocationRun,
    AllocationState,
    DispatchPlan,
    NeedRequest,
    Parcel,
    ParcelLine,
    ParcelStatus,
    PlanStatus,
    RequestLine,
    RequestStatus,
    Role,
    Route,
    StockMovement,
    TrackingEvent,
    User,
)
from relieflink.stock import service as stock
from tests.dispatch.factories import ask, make_city
from tests.factories import PASSWORD, make_household, make_user
from tests.web.browser_kit import (
    BROWSER_MARKS,
    PHONE,
    WIDE,
    fits,
    new_context,
    shot,
    sign_in,
    sync_api,
)
from tests.web.operations_kit import courier_of, courier_route, pickup_code, planned_city

pytestmark = [*BROWSER_MARKS, pytest.mark.usefixtures("morning")]
JOB_TIMEOUT = 60_000  # ms: the machine's two cores are shared with other test runs


def _fresh(db: Session) -> None:
    """End the test's snapshot: see what the server committed."""
    db.rollback()
    db.expire_all()


def _sign_in_as(page: object, user: User, landing: str) -> None:
    page.goto("/sign-in")  # type: ignore[attr-defined]
    page.fill("#username", user.username)  # type: ignore[attr-defined]
    page.fill("#password", PASSWORD)  # type: ignore[attr-defined]
    page.click("form.stack button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_url(re.compile(landing + "$"))  # type: ignore[attr-defined]


def test_a_coordinator_runs_allocation_and_dispatch_and_sees_the_routes_on_the_map(
    db: Session, server: str, browser: object
) -> None:
    city = make_city(db)  # six households, already allocated
    late = make_household(db, city.communities["open"], actor=city.admin, size=2, infants=1)
    ask(db, city, late, (city.rice, 2), (city.oil, 1))  # a new request: allocation has work
    coordinator = make_user(db, Role.coordinator, full_name="Li Wei")
    db.commit()
    runs = db.scalar(select(func.count()).select_from(AllocationRun)) or 0

    context = new_context(browser, server, locale="en-GB", viewport=WIDE)
    page = context.new_page()  # type: ignore[attr-defined]
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, coordinator)
    page.wait_for_selector("#map[data-points='4'][data-routes='0']", timeout=10_000)
    waiting = page.locator("#panels tr[data-class=vulnerable] td").first.inner_text()
    assert waiting == "1"  # the infant's household: vulnerable, food
    assert page.locator("#panels").get_by_text("No dispatch plan for this day yet.").is_visible()

    # Allocation: the button answers at once with the job's progress, polled until done.
    page.click("#run-allocation")
    page.wait_for_selector("#job-allocation progress", timeout=10_000)
    shot(page, "operations-allocation-progress-1280-en")
    page.wait_for_selector("#job-allocation[data-status=done]", timeout=JOB_TIMEOUT)
    assert "Reserved 3 of the 3 units asked for" in page.inner_text("#job-allocation")
    # The panels reloaded: nothing waits for stock any more.
    sync_api.expect(page.locator("#panels tr[data-class=vulnerable] td").first).to_have_text("0")

    # Dispatch: a background job; its progress shows while the engine searches.
    page.click("#run-dispatch")
    page.wait_for_selector("#job-dispatch progress", timeout=10_000)
    shot(page, "operations-dispatch-progress-1280-en")
    page.wait_for_selector("#job-dispatch[data-status=done]", timeout=JOB_TIMEOUT)
    assert "Parcels planned: 7 of 7." in page.inner_text("#job-dispatch")

    # The job's end reloads the map with the day's routes and the panels with the plan.
    page.wait_for_selector("#map:not([data-routes='0'])", timeout=10_000)
    page.wait_for_selector("#panels tr[data-plan]", timeout=10_000)
    drawn = int(page.get_attribute("#map", "data-routes") or 0)
    assert page.locator(".leaflet-overlay-pane canvas").count() == 1  # points and routes
    assert page.locator("#panels tr[data-route]").count() == drawn
    assert page.inner_text("#panels tr[data-plan] td[data-group=waiting]") == "7"
    page.locator("#map").scroll_into_view_if_needed()
    shot(page, "operations-dashboard-routes-1280-en")

    _fresh(db)
    assert db.scalar(select(func.count()).select_from(AllocationRun)) == runs + 1
    plan = db.scalars(select(DispatchPlan)).one()
    assert plan.status == PlanStatus.done and plan.created_by_id == coordinator.id
    assert (
        db.scalar(select(func.count()).select_from(Route).where(Route.plan_id == plan.id)) == drawn
    )
    statuses = set(db.scalars(select(NeedRequest.status)))
    assert statuses == {RequestStatus.dispatched}
    assert not errors, errors

    # The same dashboard in Chinese on a phone: nothing wider than the screen.
    page.set_viewport_size(PHONE)
    page.click("nav.lang-switch >> text=简体中文")
    page.wait_for_selector("html[lang=zh-CN]")
    page.wait_for_selector(f"#map[data-routes='{drawn}']", timeout=10_000)
    fits(page, PHONE["width"])
    shot(page, "operations-dashboard-360-zh")
    assert not errors, errors
    context.close()  # type: ignore[attr-defined]


def test_a_courier_on_a_phone_delivers_with_the_residents_code(
    db: Session, server: str, browser: object
) -> None:
    city, plan = planned_city(db)
    route, stop, parcel = courier_route(db, plan)
    courier = courier_of(db, city, full_name="Zhang Min")
    db.commit()
    code = pickup_code(db, city, parcel)  # what the resident's own view shows
    wrong = "000000" if code != "000000" else "111111"

    context = new_context(browser, server, locale="zh-CN", viewport=PHONE)
    page = context.new_page()  # type: ignore[attr-defined]
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    _sign_in_as(page, courier, "/courier")
    assert page.inner_text("h1") == "我今天的路线"
    fits(page, PHONE["width"])
    shot(page, "operations-courier-routes-360-zh")

    page.click(f"a[href='/courier/routes/{route.id}']")
    page.wait_for_selector("#route-map[data-stops='3']", timeout=10_000)
    assert page.locator(".ops-stop").count() == 3
    fits(page, PHONE["width"])
    shot(page, "operations-courier-route-360-zh")
    # Big touch targets.
    box = page.locator("#mark-loaded").bounding_box()
    assert box is not None and box["height"] >= 44 and box["width"] >= 300

    page.click("#mark-loaded")
    page.wait_for_selector("#notice")
    page.click("#mark-departed")
    page.wait_for_selector(f"#stop-{stop.id} >> text=已到达门口")
    page.click(f"#stop-{stop.id} >> text=已到达门口")
    page.wait_for_selector(f"#parcel-{parcel.id}[data-status=at_gate]")

    # By keyboard: the code field is labelled; a wrong code moves nothing and says so.
    field = page.get_by_label(f"P{parcel.id} 的取件码")
    field.focus()
    page.keyboard.type(wrong)
    page.keyboard.press("Enter")
    page.wait_for_selector("#error")
    assert "取件码错误：未记录送达。此包裹还可尝试 4 次。" in page.inner_text("#error")
    assert page.get_attribute(f"#code-{parcel.id}", "aria-invalid") == "true"
    assert page.locator(f"#parcel-{parcel.id}").get_attribute("data-status") == "at_gate"
    fits(page, PHONE["width"])
    shot(page, "operations-courier-wrong-code-360-zh")
    _fresh(db)
    held = db.get(Parcel, parcel.id)
    assert held is not None and (held.status, held.code_attempts) == (ParcelStatus.at_gate, 1)

    page.get_by_label(f"P{parcel.id} 的取件码").fill(code)
    page.keyboard.press("Enter")
    page.wait_for_selector(f"#parcel-{parcel.id}[data-status=delivered]")
    assert "已送达" in page.inner_text("#notice")
    shot(page, "operations-courier-delivered-360-zh")

    # The ledger and the parcel, as the server left them.
    _fresh(db)
    done = db.get(Parcel, parcel.id)
    assert done is not None and done.status == ParcelStatus.delivered
    assert done.delivered_by_id == courier.id
    lines = db.scalars(select(ParcelLine).where(ParcelLine.parcel_id == parcel.id)).all()
    assert lines
    for line in lines:
        issued = db.scalar(
            select(func.sum(StockMovement.d_on_hand)).where(
                StockMovement.reference == line.reference, StockMovement.kind == "issue"
            )
        )
        assert issued == -line.quantity  # picked at loading, not returned
        state = db.scalar(select(Allocation.state).where(Allocation.id == line.allocation_id))
        assert state == AllocationState.delivered
    request = db.scalars(
        select(NeedRequest)
        .join(RequestLine, RequestLine.request_id == NeedRequest.id)
        .where(RequestLine.id == lines[0].request_line_id)
    ).one()
    assert request.status == RequestStatus.delivered
    kinds = db.scalars(
        select(TrackingEvent.kind)
        .where(TrackingEvent.route_id == route.id, TrackingEvent.actor_id == courier.id)
        .order_by(TrackingEvent.id)
    ).all()
    assert kinds == ["loaded", "departed", "arrived", "delivered"]
    assert stock.check_ledger(db) == []
    # The other parcels of the route are on board, untouched.
    others = db.scalars(
        select(Parcel.status).where(Parcel.route_id == route.id, Parcel.id != parcel.id)
    )
    assert set(others) <= {ParcelStatus.departed, ParcelStatus.at_gate}
    assert not errors, errors
    context.close()  # type: ignore[attr-defined]
