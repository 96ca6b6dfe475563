"""Signing in through the web form, and reading pages, for the web tests."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from httpx import Response

from relieflink.models import User
from tests.factories import PASSWORD

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    match = _CSRF.search(html)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


def web_sign_in(client: TestClient, user: User, password: str = PASSWORD) -> Response:
    """Sign ``user`` in through the sign-in page (the client keeps the session cookie)."""
    form = client.get("/sign-in")
    assert form.status_code == 200, form.text
    return client.post(
        "/sign-in",
        data={"username": user.username, "password": password, "csrf_token": csrf_of(form.text)},
        follow_redirects=False,
    )


def signed_in(client: TestClient, user: User) -> TestClient:
    response = web_sign_in(client, user)
    assert response.status_code == 303, response.text
    return client
