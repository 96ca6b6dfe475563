"""Browser test of a volunteer team leader's phone page (``/gate``): today's parcels at the
team's gate, in Chinese and English, on a phone and a wide screen, with nothing wider than the
screen. Screenshots go to ``test-artifacts/screenshots/``."""

from __future__ import annotations

import re

import pytest
from sqlalchemy.orm import Session

from tests.factories import PASSWORD
from tests.teams.test_gate_page import _at_the_gates
from tests.web.browser_kit import BROWSER_MARKS, PHONE, WIDE, fits, new_context, shot

# Its parcels are planned today: the clock at a morning hour, whatever the hour the suite runs at.
pytestmark = [*BROWSER_MARKS, pytest.mark.usefixtures("morning")]


def test_the_leader_sees_the_gates_parcels_on_a_phone_and_a_wide_screen(
    db: Session, server: str, browser: object
) -> None:
    gate = _at_the_gates(db)
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
        page.goto("/sign-in")
        page.fill("#username", gate.leader.username)
        page.fill("#password", PASSWORD)
        page.click("form.stack button[type=submit]")
        page.wait_for_url(re.compile(r"/(dashboard|home|gate)$"))
        page.goto("/gate")
        text = page.inner_text("main")
        for parcel in gate.ours:  # the team's own parcels, each with its hand-out form
            assert page.locator(f"#parcel-{parcel.id}").count() == 1
        assert page.locator(f"#parcel-{gate.theirs.id}").count() == 0  # not another gate's
        assert ("今日我的小区门口" in text) == locale.startswith("zh")
        fits(page, viewport["width"])
        shot(page, f"gate-{name}")
        assert errors == []
        context.close()  # type: ignore[attr-defined]
