from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from relieflink import clock
from relieflink.models import AuthSession, Role
from tests.factories import PASSWORD, make_user, sign_in


def test_passwords_are_stored_as_argon2id(db: Session) -> None:
    user = make_user(db, Role.coordinator)
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash


def test_sign_in_returns_a_token_that_only_its_hash_is_stored(
    db: Session, client: TestClient
) -> None:
    user = make_user(db, Role.coordinator)
    db.commit()
    response = client.post(
        "/api/v1/auth/sign-in", json={"username": user.username, "password": PASSWORD}
    )
    assert response.status_code == 200
    token = response.json()["access_token"]
    stored = db.scalars(select(AuthSession.token_hash)).all()
    assert token not in stored and len(stored) == 1
    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["username"] == user.username


def test_wrong_password_and_unknown_user_get_the_same_answer(
    db: Session, client: TestClient
) -> None:
    user = make_user(db, Role.donor)
    db.commit()
    wrong = client.post(
        "/api/v1/auth/sign-in", json={"username": user.username, "password": "nope nope nope"}
    )
    unknown = client.post(
        "/api/v1/auth/sign-in", json={"username": "nobody", "password": "nope nope nope"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()


def test_sign_in_is_rate_limited_per_account(db: Session, client: TestClient) -> None:
    user = make_user(db, Role.donor)
    db.commit()
    bad = {"username": user.username, "password": "wrong password!"}
    codes = [client.post("/api/v1/auth/sign-in", json=bad).status_code for _ in range(6)]
    assert codes == [401] * 5 + [429]
    # Even the right password is refused while the limit holds.
    good = client.post(
        "/api/v1/auth/sign-in", json={"username": user.username, "password": PASSWORD}
    )
    assert good.status_code == 429
    assert good.headers["Retry-After"] == "60"


def test_a_strangers_failures_do_not_lock_the_owner_out(db: Session, client: TestClient) -> None:
    """Audit finding 8: the limit is keyed by account and address together, so failures from a
    stranger's address leave the owner's own sign-in alone (OWASP ASVS 2.2.1)."""
    from relieflink.app import create_app

    user = make_user(db, Role.coordinator)
    db.commit()
    bad = {"username": user.username, "password": "wrong password!"}
    with TestClient(create_app(), client=("198.51.100.7", 40000)) as stranger:
        codes = [stranger.post("/api/v1/auth/sign-in", json=bad).status_code for _ in range(8)]
    assert codes == [401] * 5 + [429] * 3
    # The owner, from its own address (the test client's), signs in at once.
    good = {"username": user.username, "password": PASSWORD}
    assert client.post("/api/v1/auth/sign-in", json=good).status_code == 200


def test_failures_from_one_address_make_the_wait_grow(db: Session) -> None:
    """Past the limit, each further failure from the same address doubles the wait (1, 2, 4
    minutes ...), and Retry-After says how long is left."""
    from relieflink.errors import TooManyRequests
    from relieflink.users import service as users

    user = make_user(db, Role.donor)
    db.commit()
    start = clock.now()
    at = [start]
    previous = clock.use(lambda: at[0])
    try:

        def attempt(seconds_later: float) -> int | None:
            at[0] += timedelta(seconds=seconds_later)
            try:
                users.sign_in(db, user.username, "wrong password!", address="203.0.113.9")
            except TooManyRequests as refused:
                return refused.retry_after
            finally:
                db.commit()
            return None

        assert [attempt(1) for _ in range(5)] == [None] * 5
        for wait in (60, 120, 240, 480):
            assert attempt(1) == wait - 1  # refused one second later, with the time left
            assert attempt(wait - 1) is None  # tried when the wait is over: a failure again
        assert users.failure_delay(50, 5) == timedelta(hours=1)  # the longest wait
        # The right password from the same address, once the wait is over, signs in and clears it.
        at[0] += timedelta(minutes=17)
        assert users.sign_in(db, user.username, PASSWORD, address="203.0.113.9") is not None
        db.commit()
        assert attempt(1) is None
    finally:
        clock.use(previous)


def test_sign_out_revokes_the_token(db: Session, client: TestClient) -> None:
    user = make_user(db, Role.courier)
    db.commit()
    headers = sign_in(client, user)
    assert client.post("/api/v1/auth/sign-out", headers=headers).status_code == 204
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 401


def test_idle_and_absolute_expiry(db: Session, client: TestClient) -> None:
    user = make_user(db, Role.courier)
    db.commit()
    headers = sign_in(client, user)
    auth = db.scalars(select(AuthSession)).one()
    auth.last_seen_at = clock.now() - timedelta(hours=2)
    db.commit()
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 401

    headers = sign_in(client, user)
    newest = db.scalars(select(AuthSession).order_by(AuthSession.id.desc())).first()
    assert newest is not None
    newest.expires_at = clock.now() - timedelta(seconds=1)
    db.commit()
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 401


def test_missing_or_garbage_token_is_401_with_problem_details(client: TestClient) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        response = client.get("/api/v1/items", headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert response.json()["status"] == 401


def test_a_deactivated_user_is_signed_out(db: Session, client: TestClient) -> None:
    user = make_user(db, Role.warehouse)
    db.commit()
    headers = sign_in(client, user)
    user.is_active = False
    db.commit()
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 401
