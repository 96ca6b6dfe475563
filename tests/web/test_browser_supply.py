"""Browser tests of the supply pages: warehouse staff receive goods against a pledge; the donor
opens their trace and sees the chart. Screenshots go to ``test-artifacts/screenshots/``
(``supply-*``), at 1280 px in English and 360 px in Chinese, where nothing may be wider than
the screen."""

from __future__ import annotations

import re

from sqlalchemy.orm import Session

from relieflink.models import User
from relieflink.stock import ledger
from relieflink.stock import service as stock
from tests.factories import PASSWORD
from tests.web.browser_kit import BROWSER_MARKS, PHONE, WIDE, fits, new_context, shot
from tests.web.supply_world import supply_world

pytestmark = BROWSER_MARKS


def _sign_in(page: object, user: User) -> None:
    """Sign in and land on the role's first page (not the dashboard: these roles have none)."""
    page.goto("/sign-in")  # type: ignore[attr-defined]
    page.fill("#username", user.username)  # type: ignore[attr-defined]
    page.fill("#password", PASSWORD)  # type: ignore[attr-defined]
    page.click("form.stack button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_url(re.compile(r"^(?!.*/sign-in)"))  # type: ignore[attr-defined]


def test_warehouse_staff_receive_goods_against_a_pledge(
    db: Session, server: str, browser: object
) -> None:
    w = supply_world(db)
    context = new_context(browser, server, locale="en-GB", viewport=WIDE)
    page = context.new_page()  # type: ignore[attr-defined]
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    _sign_in(page, w.warehouse_user)

    # Header link → the warehouse tabs → the pledges waiting for goods → this pledge's form.
    page.click("nav.main-nav >> a[href='/warehouse']")
    page.wait_for_url(re.compile(r"/warehouse$"))
    page.click("nav.tabs >> text=Receive")
    page.click(f"text=Receive against #{w.pledge.id}")
    page.wait_for_selector("#receive-form")
    # The form starts with what is still to come; the staff correct it to what arrived.
    assert page.input_value("#lots-0-quantity") == "100"
    page.select_option("#warehouse_id", str(w.warehouse.id))
    page.fill("#lots-0-quantity", "80")
    page.fill("#lots-0-expiry", "2027-03-01")
    page.fill("#lots-1-quantity", "abc")  # a typo: refused, shown on its field
    shot(page, "supply-receive-form-1280-en")
    page.click("#receive-form button[type=submit]")
    page.wait_for_selector("#lots-1-quantity-error")
    assert page.get_attribute("#lots-1-quantity", "aria-invalid") == "true"
    assert page.input_value("#lots-0-quantity") == "80"  # what was typed comes back
    db.commit()
    assert stock.stock_on_hand(db, warehouse_id=w.warehouse.id) == []  # nothing written
    shot(page, "supply-receive-error-1280-en")

    page.fill("#lots-1-quantity", "20")
    page.click("#receive-form button[type=submit]")
    page.wait_for_url(re.compile(r"/warehouse/receipts/\d+$"))
    lots = page.locator("#receipt-lots tbody tr").all_inner_texts()
    assert len(lots) == 2 and "Rice 5 kg" in lots[0] and "80" in lots[0]
    shot(page, "supply-receipt-1280-en")
    db.commit()
    on_hand = {r.item_id: r.on_hand for r in stock.stock_on_hand(db, warehouse_id=w.warehouse.id)}
    assert on_hand == {w.rice.id: 80, w.oil.id: 20}

    # The pledge page: partly received, what is still to come.
    page.click(f"a[href='/donations/{w.pledge.id}']")
    page.wait_for_selector("[data-status=partly_received]")
    assert "20" in page.inner_text("#lines tbody tr >> nth=0")  # rice: 20 still to come
    shot(page, "supply-pledge-1280-en")
    # The stock by item and expiry, and the transfers page with its form.
    page.click("nav.main-nav >> a[href='/warehouse']")
    page.wait_for_selector("table.stock")
    assert page.locator("table.stock tbody tr").count() == 2
    shot(page, "supply-stock-1280-en")
    page.click("nav.tabs >> text=Transfers")
    page.wait_for_selector("#transfer-form")
    shot(page, "supply-transfers-1280-en")
    assert not errors, errors
    context.close()  # type: ignore[attr-defined]

    # On a phone, in Chinese: the receipt form fits the screen.
    phone = new_context(browser, server, locale="zh-CN", viewport=PHONE)
    page = phone.new_page()  # type: ignore[attr-defined]
    _sign_in(page, w.warehouse_user)
    page.goto(f"/warehouse/receive?pledge_id={w.pledge.id}")
    assert page.locator("label[for=lots-0-quantity]").inner_text() == "数量"
    assert page.inner_text("fieldset.lots legend") == "收到的批次"
    fits(page, PHONE["width"])
    shot(page, "supply-receive-form-360-zh")
    for path, name in (("/warehouse", "stock"), ("/warehouse/transfers", "transfers")):
        page.goto(path)
        fits(page, PHONE["width"])
        shot(page, f"supply-{name}-360-zh")
    phone.close()  # type: ignore[attr-defined]


def test_the_donor_opens_their_trace_and_sees_the_chart(
    db: Session, server: str, browser: object
) -> None:
    w = supply_world(db)
    from relieflink.flows import receipts
    from relieflink.stock.schemas import ReceiveIn

    lots = [
        {"item_id": w.rice.id, "quantity": 90, "unit_value_fen": 5000},
        {"item_id": w.oil.id, "quantity": 20, "unit_value_fen": 12000},
    ]
    data = {"warehouse_id": w.warehouse.id, "pledge_id": w.pledge.id, "lots": lots}
    receipts.receive_against_pledge(db, ReceiveIn.model_validate(data), actor=None)
    stock.reserve(db, warehouse_id=w.warehouse.id, item_id=w.rice.id, quantity=40,
                  reference="alloc:1:line:1", actor=None)  # fmt: skip
    stock.issue(db, reference="alloc:1:line:1", delivery_ref="parcel:1", actor=None)
    ledger.hand_over(db, ["parcel:1"], actor=None)  # at the door: delivered, not on the way
    db.commit()

    for locale, viewport, name in (("en-GB", WIDE, "1280-en"), ("zh-CN", PHONE, "360-zh")):
        context = new_context(browser, server, locale=locale, viewport=viewport)
        page = context.new_page()  # type: ignore[attr-defined]
        errors: list[str] = []
        page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
        _sign_in(page, w.donor_user)
        page.click("nav.main-nav >> a[href='/donations/trace']")
        page.wait_for_selector("#trace-chart")
        bars = page.locator("#trace-chart svg.trace-bar")
        assert bars.count() == 2
        assert page.locator("#trace-chart svg.trace-bar >> nth=0").is_visible()
        # The rice bar: 40 delivered and 50 in stock of 100 pledged, drawn to scale.
        rice = page.locator("#trace-chart li.bar-row >> nth=0")  # rows in item order: rice first
        delivered = rice.locator("rect.seg-delivered").bounding_box()
        in_stock = rice.locator("rect.seg-stock").bounding_box()
        assert delivered and in_stock
        assert abs(in_stock["width"] / delivered["width"] - 50 / 40) < 0.02
        # Drawn at full size: 20 px high, the 90 received units 90 % of the bar's width.
        track = rice.locator("svg.trace-bar").bounding_box()
        assert track and delivered["height"] >= 18
        assert abs((delivered["width"] + in_stock["width"]) / track["width"] - 0.9) < 0.02
        assert page.locator("[data-balanced=yes]").count() == 2
        if viewport is PHONE:
            assert page.get_attribute("html", "lang") == "zh-CN"
            assert "大米5公斤" in page.inner_text("#trace-chart")
            fits(page, PHONE["width"])
        shot(page, f"supply-trace-{name}")
        # The pledge page and its thread, too.
        page.goto(f"/donations/{w.pledge.id}")
        page.wait_for_selector("#thread")
        if viewport is PHONE:
            fits(page, PHONE["width"])
        shot(page, f"supply-pledge-donor-{name}")
        assert not errors, errors
        context.close()  # type: ignore[attr-defined]
