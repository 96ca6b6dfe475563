"""Browser tests: Playwright driving Debian's Chromium against a real uvicorn server.

They write screenshots of the key pages to ``test-artifacts/screenshots/`` (git-ignored), at
1280 px and 360 px wide, in English and Chinese. Every request to another host is blocked, so the
pages are checked as they work offline (vendored scripts, the map on its plain background).
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relieflink.models import Household, LockdownStatus, OrgKind, Role, User
from relieflink.places import service as places
from relieflink.places.schemas import WarehouseCreate
from tests.factories import (
    PASSWORD,
    make_community,
    make_district,
    make_household,
    make_org,
    make_user,
)

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WIDE = {"width": 1280, "height": 900}
PHONE = {"width": 360, "height": 740}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install chromium; "
        ".ci/run installs it)",
    ),
]

sync_api = pytest.importorskip("playwright.sync_api")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(engine: object) -> Iterator[str]:
    """The real application under uvicorn on a free loopback port, on the test database."""
    from relieflink.app import create_app

    port = _free_port()
    config = uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not instance.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    instance.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _context(browser: object, base_url: str, *, locale: str, viewport: dict[str, int]) -> object:
    context = browser.new_context(  # type: ignore[attr-defined]
        base_url=base_url, locale=locale, viewport=viewport
    )
    # Offline: nothing but our own server answers.
    context.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/])"), lambda route: route.abort())
    return context


def _sign_in(page: object, user: User) -> None:
    page.goto("/sign-in")  # type: ignore[attr-defined]
    page.fill("#username", user.username)  # type: ignore[attr-defined]
    page.fill("#password", PASSWORD)  # type: ignore[attr-defined]
    page.click("form.stack button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_url(re.compile(r"/dashboard$"))  # type: ignore[attr-defined]


def _shot(page: object, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    return path


def _fits(page: object, width: int) -> None:
    """Nothing makes the page wider than the screen (tables scroll inside their own box)."""
    # Measure the laid-out page: styles, fonts and the map's tiles loaded (a busy machine is slow).
    page.wait_for_load_state("networkidle")  # type: ignore[attr-defined]
    page.evaluate("document.fonts.ready.then(() => true)")  # type: ignore[attr-defined]
    scroll_width = page.evaluate("document.documentElement.scrollWidth")  # type: ignore[attr-defined]
    assert scroll_width <= width, f"the page is {scroll_width} px wide on a {width} px screen"


def _city(db: Session) -> User:
    """A small district: communities in each lockdown status, a warehouse, some households."""
    coordinator = make_user(db, Role.coordinator, full_name="Li Wei")
    district = make_district(db, lat=31.23, lon=121.47)
    spots = [
        ("Sunny Garden", "阳光花园", 31.235, 121.455, LockdownStatus.open),
        ("Riverside Court", "滨江苑", 31.228, 121.49, LockdownStatus.controlled),
        ("Plum Blossom Lane", "梅花里", 31.242, 121.478, LockdownStatus.sealed),
        ("Harbour View", "港景小区", 31.219, 121.468, LockdownStatus.sealed),
    ]
    communities = [
        make_community(
            db, district, name=n, name_zh=z, lat=lat, lon=lon, lockdown_status=s, households=120
        )
        for n, z, lat, lon, s in spots
    ]
    owner = make_org(db, OrgKind.ngo)
    places.create_warehouse(
        db,
        WarehouseCreate(
            code="WH1", name="North Hub", name_zh="北部仓库", owner_id=owner.id,
            lat=31.25, lon=121.46, capacity_kg=50_000,
        ),
        actor=None,
    )  # fmt: skip
    for i, community in enumerate(communities * 2):
        make_household(
            db, community, actor=coordinator, size=2 + i % 4, infants=i % 2, elderly_80=i % 3 == 0
        )
    db.commit()
    return coordinator


def test_a_coordinator_signs_in_sees_the_map_and_uploads_a_file_with_a_bad_row(
    db: Session, server: str, browser: object
) -> None:
    coordinator = _city(db)
    community_code = db.scalars(select(Household.community_id)).first()
    code = places.require_community(db, community_code).code if community_code else ""

    context = _context(browser, server, locale="en-GB", viewport=WIDE)
    page = context.new_page()  # type: ignore[attr-defined]
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    _sign_in(page, coordinator)

    # The dashboard: counts and the map with every community and the warehouse.
    page.wait_for_selector("#map[data-points='5']", timeout=10_000)
    page.wait_for_selector("#map[data-tiles='none']", timeout=10_000)  # offline: plain background
    assert page.locator(".leaflet-overlay-pane canvas").count() == 1  # the communities
    assert page.locator(".wh-icon").count() == 1
    assert page.inner_text("[data-stat=communities]") == "4"
    _shot(page, "dashboard-1280-en")

    # Households: search narrows the table without a reload (htmx), the URL follows.
    page.click("nav.main-nav >> text=Households")
    page.wait_for_url(re.compile(r"/households$"))
    assert page.locator("#results tbody tr").count() == 8
    _shot(page, "households-1280-en")
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
    _shot(page, "import-error-1280-en")
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(Household)) == before
    assert not errors, errors
    context.close()  # type: ignore[attr-defined]


def test_pages_in_chinese_on_a_phone_and_by_keyboard(
    db: Session, server: str, browser: object
) -> None:
    coordinator = _city(db)
    context = _context(browser, server, locale="zh-CN", viewport=PHONE)
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
    assert page.inner_text("h1") == "今日概览"
    page.keyboard.press("Tab")  # the first stop is the skip link, shown when focused
    assert page.evaluate("document.activeElement.className") == "skip-link"
    assert page.locator(".skip-link").is_visible()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"#main$"))  # the skip link moves to the main content
    _fits(page, PHONE["width"])
    _shot(page, "dashboard-360-zh")
    page.goto("/households")
    assert page.inner_text("h1") == "住户"
    _fits(page, PHONE["width"])
    _shot(page, "households-360-zh")

    # The switch in the header: English on the phone, and Chinese again on a wide screen.
    page.click("nav.lang-switch >> text=English")
    page.wait_for_selector("html[lang=en]")
    assert page.inner_text("h1") == "Households"
    _fits(page, PHONE["width"])
    _shot(page, "households-360-en")
    page.goto("/dashboard")
    page.wait_for_selector("#map[data-points='5']", timeout=10_000)
    _fits(page, PHONE["width"])
    _shot(page, "dashboard-360-en")
    page.set_viewport_size(WIDE)
    page.click("nav.lang-switch >> text=简体中文")
    page.wait_for_selector("html[lang=zh-CN]")
    page.wait_for_selector("#map[data-points='5']", timeout=10_000)
    _shot(page, "dashboard-1280-zh")
    page.goto("/households")
    _shot(page, "households-1280-zh")
    assert not errors, errors
    context.close()  # type: ignore[attr-defined]
