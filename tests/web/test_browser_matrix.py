"""Every page in each role's navigation, on a phone (360 px) and a wide screen (1280 px), in
Chinese and English: nothing is wider than the screen and no table cell is clipped. A screenshot
of each goes to ``test-artifacts/screenshots/matrix/``.

What "clipped" means (``CLIPPED_CELLS``): a table cell is clipped when its own content is wider
than the cell (``scrollWidth > clientWidth + 1``) or when it sticks out past the visible box of
the nearest ancestor that hides or scrolls overflow. Cells inside an intentionally scrolling
wrapper are exempt: a ``.table-wrap`` that is a labelled, keyboard-scrollable region
(``role="region"`` and ``tabindex="0"``), as the wide lists and the dashboard's plan, route
and failure tables are. A small table without that wrapper (the dashboard's stock days left,
the need by priority class) must fit whole. The header links must all show on a wide screen
(on a phone they scroll sideways on purpose).

Slow (each distinct page × 4); ``.ci/run`` runs slow tests once, on SQLite.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy.orm import Session

from relieflink.models import Role
from relieflink.web import nav
from tests.factories import PASSWORD
from tests.web.browser_kit import BROWSER_MARKS, PHONE, SCREENSHOTS, WIDE, new_context
from tests.web.test_roles import World

pytestmark = [*BROWSER_MARKS, pytest.mark.slow]

CLIPPED_CELLS = """() => {
  const exempt = (el) => el.closest('.table-wrap[role="region"][tabindex="0"]') !== null;
  const clipper = (el) => {
    for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      const x = getComputedStyle(p).overflowX;
      if (x === 'auto' || x === 'scroll' || x === 'hidden' || x === 'clip') return p;
    }
    return null;
  };
  const out = [];
  for (const cell of document.querySelectorAll('main td, main th')) {
    if (exempt(cell) || cell.offsetParent === null) continue;
    const box = clipper(cell);
    const sticksOut = box !== null &&
      cell.getBoundingClientRect().right > box.getBoundingClientRect().right + 1;
    if (cell.scrollWidth > cell.clientWidth + 1 || sticksOut) {
      out.push(cell.textContent.trim().slice(0, 40));
    }
  }
  return out;
}"""


def _sign_in(page: object, username: str) -> None:
    page.goto("/sign-in")  # type: ignore[attr-defined]
    page.fill("#username", username)  # type: ignore[attr-defined]
    page.fill("#password", PASSWORD)  # type: ignore[attr-defined]
    page.click("form.stack button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_url(re.compile(r"^(?!.*/sign-in)"))  # type: ignore[attr-defined]


def test_every_page_of_every_role_fits_a_phone_and_a_wide_screen_in_both_languages(
    db: Session, server: str, browser: object
) -> None:
    world = World(db)
    folder = SCREENSHOTS / "matrix"
    folder.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    seen: set[tuple[str, str, int]] = set()  # a page every role shares is checked once
    for role in Role:
        paths = [spec.path for spec in nav.for_role(role)]
        assert paths, role
        for locale, lang in (("zh-CN", "zh"), ("en-GB", "en")):
            for viewport in (PHONE, WIDE):
                width = viewport["width"]
                context = new_context(browser, server, locale=locale, viewport=viewport)
                page = context.new_page()  # type: ignore[attr-defined]
                errors: list[str] = []
                page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
                _sign_in(page, world.users[role].username)
                for path in paths:
                    if (path, lang, width) in seen:
                        continue
                    seen.add((path, lang, width))
                    page.goto(path)
                    page.evaluate("document.fonts.ready.then(() => true)")
                    where = f"{role} {lang} {width}px {path}"
                    scroll = page.evaluate("document.documentElement.scrollWidth")
                    if scroll > width:
                        problems.append(f"{where}: the page is {scroll} px wide")
                    if width >= 760:
                        nav_overflow = page.evaluate(
                            "(() => { const n = document.querySelector('.main-nav');"
                            " return n ? n.scrollWidth - n.clientWidth : 0; })()"
                        )
                        if nav_overflow > 1:
                            problems.append(f"{where}: header links cut by {nav_overflow} px")
                    clipped = page.evaluate(CLIPPED_CELLS)
                    if clipped:
                        problems.append(f"{where}: clipped cells {clipped[:5]}")
                    name = path.strip("/").replace("/", "_") or "root"
                    page.screenshot(
                        path=str(folder / f"{role}-{name}-{width}-{lang}.png"), full_page=True
                    )
                problems.extend(f"{role} {lang} {width}px: script error {e}" for e in errors)
                context.close()  # type: ignore[attr-defined]
    assert problems == [], "\n".join(problems)
