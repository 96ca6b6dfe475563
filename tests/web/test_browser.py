"""Browser tests: Playwright driving Debian's Chromium against a real uvicorn server.

They write screenshots of the key pages to ``test-artifacts/screenshots/`` (git-ignored), at
1280 px and 360 px wide, in English and Chinese. Every request to another host is blocked, so the
pages are checked as they work offline (vendored scripts, the map on its plain background).
"""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relieflink import clock
from relieflink.models import Household
from relieflink.places import service as places
from relieflink.places.schemas import WarehouseCreate
from relieflink.web import formats
from tests.factories import PASSWORD, make_org
from tests.web.browser_kit import (
    BROWSER_MARKS,
    PHONE,
    WIDE,
    fits,
    new_context,
    shot,
    sign_in,
    small_city,
    sync_api,
)

pytestmark = BROWSER_MARKS


def test_a_coordinator_signs_in_sees_the_map_and_uploads_a_file_with_a_bad_row(
    db: Session, server: str, browser: object
) -> None:
    coordinator = small_city(db)
    community_code = db.scalars(select(Household.community_id)).first()
    code = places.require_community(db, community_code).code if community_code else ""
    hong_kong = places.create_warehouse(
        db,
        WarehouseCreate(
            code="HK1", name="Hong Kong depot", name_zh="香港仓库", owner_id=make_org(db).id,
            lat=22.32, lon=114.17, capacity_kg=10_000,
        ),
        actor=None,
    )  # fmt: skip
    db.commit()

    context = new_context(browser, server, locale="en-GB", viewport=WIDE)
    page = context.new_page()  # type: ignore[attr-defined]
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, coordinator)

    # The dashboard: counts and the map fitted to the communities, with the near warehouse, the
    # district outlined around them, and the depot 1,200 km away as an arrow at the edge.
    page.wait_for_selector("#map[data-points='6']", timeout=10_000)
    page.wait_for_selector("#map[data-tiles='none']", timeout=10_000)  # offline: plain background
    assert page.locator(".leaflet-overlay-pane canvas").count() == 1  # the communities
    assert page.locator(".wh-icon").count() == 1
    assert page.get_attribute("#map", "data-far") == "1"
    assert page.get_attribute("#map", "data-districts") == "1"
    far = page.locator(".ops-far-label").inner_text()
    assert hong_kong.name in far and " km" in far
    arrow = page.locator(".ops-far-depot").bounding_box()
    frame = page.locator("#map").bounding_box()
    assert arrow and frame and frame["y"] < arrow["y"] < frame["y"] + frame["height"]
    # Fitted to the city, not to Shanghai-and-Hong Kong: the near warehouse is mid-map.
    depot = page.locator(".wh-icon").bounding_box()
    assert depot and frame
    middle = (depot["x"] + depot["width"] / 2 - frame["x"]) / frame["width"]
    assert 0.2 < middle < 0.8, middle
    assert page.inner_text("[data-stat=communities]") == "4"
    shot(page, "dashboard-1280-en")

    # Households: search narrows the table without a reload (htmx), the URL follows.
    page.click("nav.main-nav >> text=Households")
    page.wait_for_url(re.compile(r"/households$"))
    assert page.locator("#results tbody tr").count() == 8
    shot(page, "households-1280-en")
    first_code = page.inner_text("#results tbody tr >> nth=0 >> td >> nth=0")
    page.fill("#f-q", first_code)
    sync_api.expect(page.locator("#results tbody tr")).to_have_count(1)
    assert "q=" + first_code in page.url

    # One household: the phone masked; the full number only on request (htmx POST with the
    # session's CSRF token in its header), swapped into the page.
    page.click(f"#results >> text={first_code}")
    page.wait_for_selector("#phone .masked")
    masked = page.inner_text("#phone .masked")
    assert re.fullmatch(r"\*{7}\d{4}", masked), masked
    page.click("#phone button")
    page.wait_for_selector("#phone a.phone")
    full = page.inner_text("#phone a.phone")
    assert full.replace(" ", "").endswith(masked[-4:]) and "*" not in full

    # Upload a households file with one bad row: the row-level error table, nothing imported.
    before = db.scalar(select(func.count()).select_from(Household))
    page.click("nav.main-nav >> text=Import and export")
    content = (
        "code,community_code,building,unit,size,infants,pregnant,chronic,elderly_80,disabled,phone\n"
        f"NEW1,{code},1,101,3,0,0,0,0,0,+86 170 5555 0001\n"
        f"NEW2,{code},1,102,two,0,0,0,0,0,+86 170 5555 0002\n"
    )
    page.set_input_files(
        "#file",
        files=[{"name": "households.csv", "mimeType": "text/csv", "buffer": content.encode()}],
    )
    page.click("#import-title ~ form button[type=submit]")
    page.wait_for_selector("table.errors")
    cells = page.locator("table.errors tbody tr >> nth=0 >> td").all_inner_texts()
    assert cells[:2] == ["3", "size"]
    assert "Nothing was imported." in page.inner_text("#import-result")
    shot(page, "import-error-1280-en")
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(Household)) == before
    assert not errors, errors
    context.close()  # type: ignore[attr-defined]


def test_pages_in_chinese_on_a_phone_and_by_keyboard(
    db: Session, server: str, browser: object
) -> None:
    coordinator = small_city(db)
    context = new_context(browser, server, locale="zh-CN", viewport=PHONE)
    page = context.new_page()  # type: ignore[attr-defined]
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    # Keyboard only: the sign-in form in Chinese (the browser's language).
    page.goto("/sign-in")
    assert page.get_attribute("html", "lang") == "zh-CN"
    assert page.locator("label[for=username]").inner_text() == "用户名"
    assert page.evaluate("document.activeElement.id") == "username"  # autofocus
    page.keyboard.type(coordinator.username)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/dashboard$"))

    page.wait_for_selector("#map[data-points='5']", timeout=10_000)
    # The day in Chinese (Babel), not the browser's 12/07/2026.
    assert page.inner_text("h1") == f"今日概览 · {formats.day(clock.today(), 'zh_CN')}"
    page.keyboard.press("Tab")  # the first stop is the skip link, shown when focused
    assert page.evaluate("document.activeElement.className") == "skip-link"
    assert page.locator(".skip-link").is_visible()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"#main$"))  # the skip link moves to the main content
    fits(page, PHONE["width"])
    shot(page, "dashboard-360-zh")
    page.goto("/households")
    assert page.inner_text("h1") == "住户"
    fits(page, PHONE["width"])
    shot(page, "households-360-zh")

    # The switch in the header: English on the phone, and Chinese again on a wide screen.
    page.click("nav.lang-switch >> text=English")
    page.wait_for_selector("html[lang=en]")
    assert page.inner_text("h1") == "Households"
    fits(page, PHONE["width"])
    shot(page, "households-360-en")
    page.goto("/dashboard")
    page.wait_for_selector("#map[data-points='5']", timeout=10_000)
    fits(page, PHONE["width"])
    shot(page, "dashboard-360-en")
    page.set_viewport_size(WIDE)
    page.click("nav.lang-switch >> text=简体中文")
    page.wait_for_selector("html[lang=zh-CN]")
    page.wait_for_selector("#map[data-points='5']", timeout=10_000)
    shot(page, "dashboard-1280-zh")
    page.goto("/households")
    shot(page, "households-1280-zh")
    assert not errors, errors
    context.close()  # type: ignore[attr-defined]
