"""What every browser test file shares: Debian's Chromium, a live server, sign-in, screenshots.

A browser test module sets ``pytestmark = BROWSER_MARKS`` and asks for the ``server`` and
``browser`` fixtures (``tests/web/conftest.py``); ``new_context`` opens an offline browser context.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from relieflink.models import LockdownStatus, OrgKind, Role, User
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

BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.slow,  # CI runs browser tests once, on SQLite
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install chromium; "
        ".ci/run installs it)",
    ),
]

sync_api = pytest.importorskip("playwright.sync_api")


def new_context(browser: object, base_url: str, *, locale: str, viewport: dict[str, int]) -> object:
    context = browser.new_context(  # type: ignore[attr-defined]
        base_url=base_url, locale=locale, viewport=viewport
    )
    # Offline: nothing but our own server answers.
    context.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/])"), lambda route: route.abort())
    return context


def sign_in(page: object, user: User) -> None:
    page.goto("/sign-in")  # type: ignore[attr-defined]
    page.fill("#username", user.username)  # type: ignore[attr-defined]
    page.fill("#password", PASSWORD)  # type: ignore[attr-defined]
    page.click("form.stack button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_url(re.compile(r"/dashboard$"))  # type: ignore[attr-defined]


def shot(page: object, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    return path


def fits(page: object, width: int) -> None:
    """Nothing makes the page wider than the screen (tables scroll inside their own box)."""
    # Measure the laid-out page: styles, fonts and the map's tiles loaded (a busy machine is slow).
    page.wait_for_load_state("networkidle")  # type: ignore[attr-defined]
    page.evaluate("document.fonts.ready.then(() => true)")  # type: ignore[attr-defined]
    scroll_width = page.evaluate("document.documentElement.scrollWidth")  # type: ignore[attr-defined]
    assert scroll_width <= width, f"the page is {scroll_width} px wide on a {width} px screen"


def small_city(db: Session) -> User:
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
