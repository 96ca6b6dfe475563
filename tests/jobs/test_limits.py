"""Audit finding 7: a plan's seed is checked where it comes in (API schema, CLI option), and the
job runner caps queued jobs per user and for everyone together (429 with Retry-After)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from relieflink.cli import app
from relieflink.config import get_settings
from relieflink.errors import TooManyRequests
from relieflink.jobs import service
from relieflink.models import DispatchPlan, Job, Role
from relieflink.optim.routing import MAX_SEED
from tests.factories import headers_for, make_user


def _count(db: Session, model: type) -> int:
    db.rollback()
    return db.scalar(select(func.count()).select_from(model)) or 0


@pytest.mark.parametrize("seed", [-1, MAX_SEED + 1, 2**63])
def test_a_seed_outside_the_solvers_range_is_refused_before_anything_is_queued(
    db: Session, client: TestClient, seed: int
) -> None:
    headers = headers_for(db, client, Role.coordinator)
    for path in ("/api/v1/dispatch/plans", "/api/v1/dispatch/plans/1/replan"):
        body = {"day": "2026-12-07", "seed": seed} if path.endswith("plans") else {"seed": seed}
        response = client.post(path, json=body, headers=headers)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert [e["loc"] for e in response.json()["errors"]] == [["body", "seed"]]
    assert _count(db, DispatchPlan) == _count(db, Job) == 0


def test_the_cli_refuses_a_seed_outside_the_solvers_range(db: Session) -> None:
    result = CliRunner().invoke(
        app, ["dispatch", "plan", "--date", "2026-12-07", "--seed", str(MAX_SEED + 1)]
    )
    assert result.exit_code == 2
    assert "--seed" in result.output
    assert str(MAX_SEED) in result.output
    assert _count(db, DispatchPlan) == 0


def test_jobs_are_capped_for_everyone_together(
    db: Session, client: TestClient, settings: pytest.MonkeyPatch
) -> None:
    settings.setenv("RELIEFLINK_JOBS_MAX_QUEUED", "2")
    get_settings.cache_clear()
    for _ in range(2):  # two other users' (here: the system's) jobs fill the queue
        service.enqueue(db, kind="test_steps", payload={}, actor=None)
    with pytest.raises(TooManyRequests, match="2 jobs are queued or running") as refused:
        service.enqueue(db, kind="test_steps", payload={}, actor=make_user(db, Role.admin))
    assert refused.value.retry_after == service.RETRY_AFTER_SECONDS
    db.commit()
    headers = headers_for(db, client, Role.coordinator)

    response = client.post("/api/v1/dispatch/plans", json={"day": "2026-12-07"}, headers=headers)
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == str(service.RETRY_AFTER_SECONDS)
    assert "at most 2" in response.json()["detail"]
    assert _count(db, DispatchPlan) == 0  # the plan row went with the refused job
    assert _count(db, Job) == 2
