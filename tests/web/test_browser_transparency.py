"""Browser test of the public transparency page: no sign-in, Chinese and English, a phone and a
wide screen, nothing wider than the screen, no household count from 1 to 9 on screen.
Screenshots go to ``test-artifacts/screenshots/``."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from relieflink.reports.suppression import THRESHOLD
from tests.reports.test_transparency import World, world  # noqa: F401 (the fixture)
from tests.web.browser_kit import BROWSER_MARKS, PHONE, WIDE, fits, new_context, shot

pytestmark = [*BROWSER_MARKS, pytest.mark.slow]


def test_the_public_page_on_a_phone_and_a_wide_screen(
    world: World,  # noqa: F811
    db: Session,
    server: str,
    browser: object,
) -> None:
    for locale, viewport, name in (
        ("zh-CN", PHONE, "360-zh"),
        ("en-GB", PHONE, "360-en"),
        ("zh-CN", WIDE, "1280-zh"),
        ("en-GB", WIDE, "1280-en"),
    ):
        context = new_context(browser, server, locale=locale, viewport=viewport)
        page = context.new_page()  # type: ignore[attr-defined]
        errors: list[str] = []
        page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
        page.goto("/transparency")
        assert page.url.endswith("/transparency")  # no sign-in
        heading = page.inner_text("h1")
        assert heading == ("捐赠物资去向" if locale.startswith("zh") else "Where the gifts went")
        shown = page.eval_on_selector_all(
            "#reach-table td", "cells => cells.map(c => c.textContent.trim())"
        )
        numbers = [int(v) for v in shown if v.isdigit()]
        assert numbers and all(n == 0 or n >= THRESHOLD for n in numbers)
        assert "—" in shown
        fits(page, viewport["width"])
        shot(page, f"transparency-{name}")
        assert errors == []
        context.close()  # type: ignore[attr-defined]
