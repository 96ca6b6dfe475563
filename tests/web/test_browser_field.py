"""Browser test of the offline field app (``/field``): a courier's phone loses the network, the
events wait in IndexedDB, and the server decides when it comes back.

The courier loads the day online; offline, the app still opens (its shell from the service
worker, the day from IndexedDB). Loaded and departed are sent once with the answer lost on the
way back (the server applied them): sent again, they are answered "replayed". Then, offline
again, three deliveries with codes (one code wrong) and one failure; nothing counts as delivered
on the phone until the server has answered. Each event is stored once, the wrong code is refused,
and the ledger reconciles."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relieflink.dispatch import codes
from relieflink.flows import dispatch as dispatch_flow
from relieflink.models import (
    InnerMode,
    MovementKind,
    Parcel,
    ParcelStatus,
    Role,
    Route,
    RouteStop,
    StockMovement,
    TrackingEvent,
)
from relieflink.stock import service as stock
from tests.dispatch.factories import make_city
from tests.factories import PASSWORD, make_user
from tests.web.browser_kit import BROWSER_MARKS, PHONE, WIDE, fits, new_context, shot
from tests.web.operations_kit import today

pytestmark = [*BROWSER_MARKS, pytest.mark.slow, pytest.mark.usefixtures("morning")]
BATCH = re.compile(r".*/api/v1/dispatch/events:batch$")


def _route_with_door_parcels(db: Session) -> tuple[Route, list[Parcel]]:
    """The route with the most parcels its courier carries to the door (at least four)."""
    rows = db.execute(
        select(Parcel, RouteStop.route_id)
        .join(RouteStop, RouteStop.id == Parcel.stop_id)
        .where(RouteStop.inner_mode == InnerMode.courier)
        .order_by(Parcel.id)
    ).all()
    by_route: dict[int, list[Parcel]] = {}
    for parcel, route_id in rows:
        by_route.setdefault(route_id, []).append(parcel)
    route_id = max(by_route, key=lambda r: len(by_route[r]))
    assert len(by_route[route_id]) >= 4, by_route
    route = db.get(Route, route_id)
    assert route is not None
    return route, by_route[route_id][:4]


def _fresh(db: Session) -> None:
    """End the test's snapshot: see what the server committed."""
    db.rollback()
    db.expire_all()


def _states(page: object) -> Counter[str]:
    found = page.eval_on_selector_all(  # type: ignore[attr-defined]
        "#events li", "items => items.map(i => i.dataset.state)"
    )
    return Counter(found)


def _wait_sent(page: object) -> None:
    page.wait_for_selector("#count-queued:text-is('0')", timeout=20_000)  # type: ignore[attr-defined]


def test_a_courier_works_offline_and_the_server_decides(
    db: Session, server: str, browser: object
) -> None:
    city = make_city(db, per_community=6)
    courier = make_user(db, Role.courier, organization_id=city.carrier.id, full_name="Zhang Min")
    db.commit()
    dispatch_flow.plan_dispatch(db, day=today(), actor=None, time_limit=0.5, seed=1)
    db.commit()
    route, (p1, p2, p3, p4) = _route_with_door_parcels(db)
    route.courier_id = courier.id
    db.commit()
    right = {p.id: codes.derive(p.code_nonce) for p in (p1, p2, p3)}
    wrong = str((int(right[p2.id]) + 1) % 10**6).zfill(6)
    db.rollback()

    context = new_context(browser, server, locale="zh-CN", viewport=PHONE)
    page = context.new_page()  # type: ignore[attr-defined]
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto("/field")
    page.fill("#f-username", courier.username)
    page.fill("#f-password", PASSWORD)
    page.click("#sign-in button[type=submit]")
    page.wait_for_selector(f"#route-{route.id}")
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    page.reload()  # now under the service worker's control
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    fits(page, PHONE["width"])
    box = page.locator(f"#loaded-{route.id}").bounding_box()
    assert box is not None and box["height"] >= 44 and box["width"] >= 300  # big touch targets
    shot(page, "field-online-360-zh")

    # Offline: the app opens from the phone (shell from the cache, the day from IndexedDB).
    context.set_offline(True)  # type: ignore[attr-defined]
    page.reload()
    page.wait_for_selector(f"#route-{route.id}")
    page.wait_for_selector("#net.field-offline")
    page.click(f"#loaded-{route.id}")
    page.click(f"#departed-{route.id}")
    page.wait_for_selector(f"#code-{p1.id}")  # on its way (on the phone): codes can be taken

    # Back online, the server applies both, but the answer is lost on the way back.
    lost: list[int] = []

    def lose_the_answer(r: object) -> None:
        lost.append(r.fetch().status)  # type: ignore[attr-defined]
        r.abort()  # type: ignore[attr-defined]

    page.route(BATCH, lose_the_answer)
    context.set_offline(False)  # type: ignore[attr-defined]
    page.wait_for_function(
        "() => document.querySelector('#net').classList.contains('field-online')"
    )
    page.wait_for_function("() => !document.querySelector('#sync').textContent.includes('…')")
    page.wait_for_timeout(300)
    assert lost == [200]
    assert page.inner_text("#count-queued") == "2"  # unanswered: still queued on the phone
    page.unroute(BATCH)

    # Offline again: three deliveries (one code wrong) and a failure.
    context.set_offline(True)  # type: ignore[attr-defined]
    page.wait_for_selector("#net.field-offline")
    for parcel, code in ((p1, right[p1.id]), (p2, wrong), (p3, right[p3.id])):
        page.fill(f"#code-{parcel.id}", code)
        page.click(f"#parcel-{parcel.id} form.ops-deliver button")
        page.wait_for_selector(f"#parcel-{parcel.id}[data-status=pending]")
    page.click(f"#parcel-{p4.id} details summary")
    page.select_option(f"#reason-{p4.id}", "not_home")
    page.click(f"#fail-{p4.id}")
    page.wait_for_selector(f"#parcel-{p4.id}[data-status=pending]")
    assert page.inner_text("#count-delivered") == "0"  # nothing counts before the server says so
    assert page.inner_text("#count-queued") == "6"
    fits(page, PHONE["width"])
    shot(page, "field-offline-queued-360-zh")
    _fresh(db)
    assert db.get(Parcel, p1.id).status == ParcelStatus.departed  # type: ignore[union-attr]

    # Online: the queue goes in order; each event gets its own answer.
    context.set_offline(False)  # type: ignore[attr-defined]
    _wait_sent(page)
    page.wait_for_selector(f"#parcel-{p1.id}[data-status=delivered]")
    assert _states(page) == Counter({"replayed": 2, "accepted": 3, "refused": 1})
    assert page.inner_text("#count-delivered") == "2"
    assert page.inner_text("#count-refused") == "1"
    refused = page.inner_text(f"#parcel-{p2.id}")
    assert "取件码错误" in refused
    assert page.locator(f"#code-{p2.id}").count() == 1  # the right code can still be entered
    fits(page, PHONE["width"])
    shot(page, "field-synced-360-zh")
    assert errors == []
    client_ids = page.eval_on_selector_all(
        "#events li", "items => items.map(i => [i.dataset.clientEventId, i.dataset.state])"
    )
    context.close()  # type: ignore[attr-defined]

    # The server: each accepted event stored exactly once, the refused one not at all.
    _fresh(db)
    for cid, state in client_ids:
        n = db.scalar(
            select(func.count())
            .select_from(TrackingEvent)
            .where(TrackingEvent.client_event_id == cid)
        )
        assert n == (0 if state == "refused" else 1), (cid, state)
    rows = db.execute(
        select(Parcel.id, Parcel.status, Parcel.code_attempts).where(
            Parcel.id.in_([p1.id, p2.id, p3.id, p4.id])
        )
    )
    status = {pid: (st, attempts) for pid, st, attempts in rows}
    assert status == {
        p1.id: (ParcelStatus.delivered, 0),
        p2.id: (ParcelStatus.departed, 1),  # the wrong code: one attempt counted, nothing moved
        p3.id: (ParcelStatus.delivered, 0),
        p4.id: (ParcelStatus.failed, 0),
    }
    handed = set(
        db.scalars(
            select(StockMovement.delivery_ref).where(StockMovement.kind == MovementKind.handover)
        )
    )
    assert handed == {f"parcel:{p1.id}", f"parcel:{p3.id}"}
    assert stock.check_ledger(db) == []
    assert all(f.balanced for f in stock.donor_report(db))


def test_the_field_app_in_english_on_a_wide_screen(
    db: Session, server: str, browser: object
) -> None:
    city = make_city(db)
    courier = make_user(db, Role.courier, organization_id=city.carrier.id)
    db.commit()
    dispatch_flow.plan_dispatch(db, day=today(), actor=None, time_limit=0.5, seed=1)
    db.commit()
    for locale, viewport, name in (("en-GB", WIDE, "1280-en"), ("en-GB", PHONE, "360-en")):
        context = new_context(browser, server, locale=locale, viewport=viewport)
        page = context.new_page()  # type: ignore[attr-defined]
        page.goto("/field")
        assert "Field app" in page.inner_text("h1")
        page.fill("#f-username", courier.username)
        page.fill("#f-password", PASSWORD)
        page.click("#sign-in button[type=submit]")
        page.wait_for_selector(".field-route")
        assert "Delivered (confirmed by the server)" in page.inner_text("main")
        fits(page, viewport["width"])
        shot(page, f"field-{name}")
        context.close()  # type: ignore[attr-defined]
