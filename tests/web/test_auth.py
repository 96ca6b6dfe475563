"""Sign-in and sign-out pages: the API's session token in an HttpOnly cookie; CSRF on forms."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from relieflink.models import Role
from relieflink.web.deps import CSRF_COOKIE, SESSION_COOKIE
from relieflink.web.routes.auth import safe_next
from tests.factories import PASSWORD, make_user
from tests.web.helpers import csrf_of, signed_in, web_sign_in


def test_sign_in_sets_an_httponly_lax_cookie_that_the_api_refuses(
    db: Session, client: TestClient
) -> None:
    user = make_user(db, Role.coordinator)
    db.commit()
    response = web_sign_in(client, user)
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard"
    cookie = next(
        h for h in response.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE + "=")
    )
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "path", "expires"} <= attributes
    assert "samesite=lax" in cookie.lower()
    assert client.get("/dashboard").status_code == 200
    # The JSON API takes bearer tokens only: a browser's cookie sent cross-site proves nothing.
    assert client.get("/api/v1/auth/me").status_code == 401


def test_a_wrong_password_shows_the_form_again_with_a_message(
    db: Session, client: TestClient
) -> None:
    user = make_user(db, Role.coordinator)
    db.commit()
    response = web_sign_in(client, user, password="not the password")
    assert response.status_code == 401
    assert "Wrong username or password." in response.text
    assert SESSION_COOKIE not in response.cookies
    assert client.get("/dashboard", follow_redirects=False).status_code == 303


def test_sign_in_without_the_csrf_token_is_refused(db: Session, client: TestClient) -> None:
    user = make_user(db, Role.coordinator)
    db.commit()
    client.get("/sign-in")  # sets the double-submit cookie
    assert CSRF_COOKIE in client.cookies
    for token in (None, "forged"):
        data = {"username": user.username, "password": PASSWORD}
        if token:
            data["csrf_token"] = token
        response = client.post("/sign-in", data=data, follow_redirects=False)
        assert response.status_code == 403
        assert response.headers["content-type"].startswith("text/html")
        assert SESSION_COOKIE not in client.cookies


def test_a_form_from_another_origin_is_refused(db: Session, client: TestClient) -> None:
    user = make_user(db, Role.coordinator)
    db.commit()
    form = client.get("/sign-in")
    response = client.post(
        "/sign-in",
        data={"username": user.username, "password": PASSWORD, "csrf_token": csrf_of(form.text)},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert response.status_code == 403


def test_signed_in_forms_need_the_session_bound_token(db: Session, client: TestClient) -> None:
    user = make_user(db, Role.coordinator)
    db.commit()
    signed_in(client, user)
    anonymous = client.cookies.get(CSRF_COOKIE)
    # The sign-in form's double-submit token is not accepted once signed in.
    refused = client.post("/sign-out", data={"csrf_token": anonymous}, follow_redirects=False)
    assert refused.status_code == 403
    assert client.get("/dashboard").status_code == 200  # still signed in


def test_sign_out_revokes_the_session(db: Session, client: TestClient) -> None:
    user = make_user(db, Role.coordinator)
    db.commit()
    signed_in(client, user)
    page = client.get("/dashboard")
    token = client.cookies.get(SESSION_COOKIE)
    response = client.post(
        "/sign-out", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False
    )
    assert response.status_code == 303 and response.headers["location"] == "/sign-in"
    # Even a client that kept the old cookie is signed out: the token is revoked.
    revoked = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert revoked.status_code == 401


def test_pages_send_a_signed_out_visitor_to_sign_in_and_back(
    db: Session, client: TestClient
) -> None:
    user = make_user(db, Role.coordinator)
    db.commit()
    response = client.get("/households?q=H1", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/sign-in?next=/households%3Fq%3DH1"
    form = client.get(response.headers["location"])
    assert 'name="next" value="/households?q=H1"' in form.text
    done = client.post(
        "/sign-in",
        data={
            "username": user.username,
            "password": PASSWORD,
            "csrf_token": csrf_of(form.text),
            "next": "/households?q=H1",
        },
        follow_redirects=False,
    )
    assert done.headers["location"] == "/households?q=H1"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/households", "/households"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("", "/"),
        (None, "/"),
    ],
)
def test_redirects_stay_on_this_site(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


def test_htmx_requests_without_a_session_are_redirected_by_header(client: TestClient) -> None:
    response = client.get("/households", headers={"HX-Request": "true"}, follow_redirects=False)
    assert response.status_code == 204
    assert response.headers["HX-Redirect"].startswith("/sign-in?next=")
