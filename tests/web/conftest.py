"""Fixtures of the browser tests: the real app under uvicorn, and Debian's Chromium."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.live_server import live_server
from tests.web.browser_kit import CHROMIUM, CHROMIUM_ARGS


@pytest.fixture(scope="module")
def server(engine: object) -> Iterator[str]:
    """The real application under uvicorn on a free loopback port, on the test database."""
    from relieflink.app import create_app

    with live_server(create_app()) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's Chromium, driven by Playwright (one per test module)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
