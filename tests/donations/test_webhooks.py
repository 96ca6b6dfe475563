"""Webhook deliveries on the job runner: retries with exponential backoff (on the injectable
clock), the dead-letter list after N tries, re-sending from the CLI, and never a second
successful delivery of one event. The partner is a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from relieflink import clock
from relieflink.cli import app
from relieflink.donations import service as donations
from relieflink.donations.schemas import PledgeCreate, WebhookIn
from relieflink.jobs import runner, webhooks
from relieflink.models import Job, JobStatus, WebhookDelivery
from tests.conftest import configure as _configure
from tests.donations.conftest import Partner
from tests.donations.test_pledges_api import _pledge_body, _setup

SECRET = "partner-secret-0123"
cli = CliRunner()


def _one_event(db: Session, url: str) -> WebhookDelivery:
    """A pledge whose donor has a webhook at ``url``: one pending delivery (pledge.created)."""
    s = _setup(db)
    donations.set_webhook(db, s["donor"].id, WebhookIn(url=url, secret=SECRET), actor=None)
    donations.create_pledge(db, PledgeCreate.model_validate(_pledge_body(s)), actor=None)
    db.commit()
    return db.scalars(select(WebhookDelivery)).one()


def _run_at(moment: datetime) -> int:
    """Run every job due at ``moment`` (the clock stopped there); how many ran."""
    with clock.frozen(moment):
        return runner.Worker().run_pending()


def _state(db: Session, delivery_id: int) -> tuple[WebhookDelivery, Job]:
    db.rollback()  # a fresh snapshot: the workers committed in their own sessions
    delivery = db.get(WebhookDelivery, delivery_id)
    assert delivery is not None and delivery.job_id is not None
    job = db.get(Job, delivery.job_id)
    assert job is not None
    return delivery, job


def test_a_failing_partner_is_retried_with_exponential_backoff_and_served_once(
    db: Session, partner: Partner, settings: pytest.MonkeyPatch
) -> None:
    _configure(settings, webhook_retry_seconds=30, webhook_max_attempts=8)
    delivery_id = _one_event(db, partner.url).id
    partner.failures = 3
    t0 = clock.now()
    assert _run_at(t0) == 1  # the worker queues a job for the new event and runs it: 503
    delivery, job = _state(db, delivery_id)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, 503)
    assert delivery.last_error == "answered HTTP 503"
    assert (job.status, job.run_after) == (JobStatus.queued, t0 + timedelta(seconds=30))

    # 30 s, then 60 s, then 120 s after each failure; nothing runs before it is due.
    moment = t0
    for attempt, wait in ((2, 30), (3, 60), (4, 120)):
        assert _run_at(moment + timedelta(seconds=wait - 1)) == 0
        moment += timedelta(seconds=wait)
        assert _run_at(moment) == 1
        delivery, job = _state(db, delivery_id)
        assert delivery.attempts == attempt
        if attempt < 4:
            assert job.run_after == moment + timedelta(seconds=2 * wait)
    assert (delivery.status, delivery.last_status_code, delivery.last_error) == (
        "delivered",
        204,
        None,
    )
    assert job.status == JobStatus.succeeded and job.result_ref == f"webhook_delivery:{delivery_id}"

    # Nothing is sent again, however long the workers keep running.
    assert _run_at(moment + timedelta(days=2)) == 0
    assert [r.answered for r in partner.received] == [503, 503, 503, 204]
    for request in partner.received:  # the same signed event each time
        assert request.path == "/hooks"
        assert request.headers["X-RelieFlink-Delivery"] == str(delivery_id)
        signature = request.headers[donations.SIGNATURE_HEADER]
        assert donations.verify(SECRET, request.body, signature)
        assert json.loads(request.body)["event"] == "pledge.created"


def test_after_n_tries_the_event_is_dead_listed_and_resent_from_the_cli(
    db: Session, partner: Partner, settings: pytest.MonkeyPatch
) -> None:
    _configure(settings, webhook_retry_seconds=10, webhook_max_attempts=3)
    delivery_id = _one_event(db, partner.url).id
    partner.failures = 1_000  # down for good
    moment = clock.now()
    for wait in (0, 10, 20):
        moment += timedelta(seconds=wait)
        assert _run_at(moment) == 1
    delivery, job = _state(db, delivery_id)
    assert (delivery.status, delivery.attempts) == ("dead", 3)
    assert job.status == JobStatus.failed
    assert job.error == f"{partner.url} answered HTTP 503 (after 3 attempts)"
    assert _run_at(moment + timedelta(days=1)) == 0  # no fourth try
    assert len(partner.received) == 3

    listed = cli.invoke(app, ["pledges", "deliver-webhooks", "--dead"])
    assert listed.exit_code == 0, listed.output
    assert "1 dead webhook deliveries" in listed.output  # (the table wraps at 80 columns)
    assert "pledge." in listed.output and "HTTP 503" in listed.output

    partner.failures = 0  # the partner is back
    resent = cli.invoke(app, ["pledges", "deliver-webhooks", "--resend", str(delivery_id)])
    assert resent.exit_code == 0, resent.output
    assert "sent 1 now; pending: 0, delivered: 1, dead: 0" in resent.output
    delivery, job = _state(db, delivery_id)
    assert delivery.status == "delivered" and job.status == JobStatus.succeeded
    assert [r.answered for r in partner.received] == [503, 503, 503, 204]

    # A delivered event is not re-sent, neither by hand nor by the workers.
    again = cli.invoke(app, ["pledges", "deliver-webhooks", "--resend", str(delivery_id)])
    assert again.exit_code == 1 and "is delivered, not dead" in again.output
    assert cli.invoke(app, ["pledges", "deliver-webhooks", "--resend", "999999"]).exit_code == 1
    assert _run_at(clock.now() + timedelta(days=1)) == 0
    assert len(partner.received) == 4


def test_a_partner_that_does_not_answer_counts_as_a_failed_try(
    db: Session, settings: pytest.MonkeyPatch
) -> None:
    _configure(settings, webhook_max_attempts=1, webhook_timeout_seconds=2)
    delivery_id = _one_event(db, "http://127.0.0.1:1/hooks").id  # nothing listens there
    result = cli.invoke(app, ["pledges", "deliver-webhooks"])
    assert result.exit_code == 0, result.output
    assert "sent 1 now; pending: 0, delivered: 0, dead: 1" in result.output
    delivery, _ = _state(db, delivery_id)
    assert delivery.last_status_code is None
    assert delivery.last_error is not None and delivery.last_error.startswith("no answer: Conn")


def test_a_worker_queues_one_job_per_event_however_often_it_feeds(db: Session) -> None:
    _one_event(db, "http://127.0.0.1:1/hooks")
    assert runner.Worker().feed() == 1
    assert runner.Worker().feed() == 0
    db.rollback()
    assert len(db.scalars(select(Job).where(Job.kind == webhooks.KIND)).all()) == 1
