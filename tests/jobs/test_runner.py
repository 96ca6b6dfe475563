"""The durable job runner: a job runs end to end on a worker, survives its worker's death,
can be listed and cancelled, and the database caps how many run at once."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from relieflink import clock
from relieflink.db import begin_write, session_scope
from relieflink.errors import Conflict, Invalid, TooManyRequests
from relieflink.jobs import repository as repo
from relieflink.jobs import runner, service
from relieflink.jobs.allocation import start_allocation_job
from relieflink.jobs.dispatch import start_plan_job
from relieflink.models import AllocationRun, DispatchPlan, Job, JobStatus, PlanStatus, Role
from tests.conftest import configure as _configure
from tests.factories import headers_for, make_user
from tests.needs.test_allocation import TODAY, ask, city, receive

__all__ = ["city"]  # the fixture, shared with the allocation tests

CALLS: list[dict[str, Any]] = []
GATE = threading.Event()
STARTED = threading.Event()


def _steps(ctx: runner.JobContext) -> runner.Outcome:
    """A test kind: three steps of progress, then a result."""
    for step in range(1, 4):
        if ctx.payload.get("wait"):
            STARTED.set()
            assert GATE.wait(20)
        if ctx.payload.get("cancel_at") == step:
            with session_scope() as session:
                service.cancel_job(session, ctx.job_id, actor=None)
        ctx.progress(step, 3, f"step {step}")
    if ctx.payload.get("fail") == "internal":
        raise ValueError("boom\n  File 'x.py', line 1, in <module>")
    if ctx.payload.get("fail") == "refused":
        raise Invalid("nothing to do for this day")
    CALLS.append(ctx.payload)
    return runner.Outcome(result_ref="test:1", result={"steps": 3})


runner.register("test_steps", _steps)


def _enqueue(db: Session, **payload: Any) -> Job:
    job = service.enqueue(db, kind="test_steps", payload=payload, actor=None)
    db.commit()
    return job


def _job(db: Session, job_id: int) -> Job:
    db.rollback()
    job = db.get(Job, job_id, populate_existing=True)
    assert job is not None
    return job


def test_an_allocation_job_runs_end_to_end_on_a_worker(db: Session, city: dict) -> None:
    receive(db, city, "KIT-FAMILY-FOOD", 2)
    ask(db, city, "small", ("KIT-FAMILY-FOOD", 1))
    ask(db, city, "large", ("KIT-FAMILY-FOOD", 2))
    coordinator = make_user(db, Role.coordinator)
    job = start_allocation_job(db, day=TODAY, actor=coordinator)
    db.commit()
    with pytest.raises(Conflict, match=f"already in progress \\(job {job.id}\\)"):
        start_allocation_job(db, day=TODAY, actor=coordinator)
    db.rollback()

    assert runner.Worker().run_one()
    done = _job(db, job.id)
    assert done.status == JobStatus.succeeded, done.error
    assert (done.attempts, done.progress_done, done.progress_total) == (1, 100, 100)
    run = db.scalars(select(AllocationRun)).one()
    assert done.result_ref == f"allocation_run:{run.id}"
    assert done.result["units_allocated"] == run.units_allocated == 2
    assert not runner.Worker().run_one()  # nothing left


def test_a_job_left_running_by_a_dead_worker_is_queued_again_and_finishes(
    db: Session,
) -> None:
    job = _enqueue(db, n=1)
    # A worker claims it, then dies: its lease runs out and nobody extends it.
    with session_scope() as session:
        begin_write(session)
        now = clock.now()
        claimed = repo.claim(
            session,
            now=now,
            due_before=now,
            worker="dead-worker",
            lease_until=now - timedelta(seconds=1),
            max_running=10,
        )
        assert claimed is not None and claimed.id == job.id
    assert _job(db, job.id).status == JobStatus.running

    assert runner.Worker("alive").run_one()
    done = _job(db, job.id)
    assert (done.status, done.attempts, done.worker) == (JobStatus.succeeded, 2, "alive")
    assert (done.progress_done, done.progress_total, done.result_ref) == (100, 100, "test:1")


def test_a_job_whose_worker_keeps_dying_fails_with_a_reason(db: Session) -> None:
    job = _enqueue(db)
    with session_scope() as session:
        session.get(Job, job.id).max_attempts = 1  # type: ignore[union-attr]
        now = clock.now()
        repo.claim(
            session,
            now=now,
            due_before=now,
            worker="w1",
            lease_until=now - timedelta(seconds=1),
            max_running=10,
        )
    assert runner.Worker().recover() == 1
    failed = _job(db, job.id)
    assert failed.status == JobStatus.failed
    assert failed.error == "its worker w1 stopped (1 attempts); not tried again"


def test_the_cap_on_running_jobs_is_global(db: Session, settings: pytest.MonkeyPatch) -> None:
    _configure(settings, jobs_max_running=1)
    first = _enqueue(db, wait=True)
    second = _enqueue(db)
    GATE.clear()
    STARTED.clear()
    busy = threading.Thread(target=runner.Worker("a").run_one)
    busy.start()
    try:
        assert STARTED.wait(20)
        # Another worker (it could be another process: the count is in the database) waits.
        assert not runner.Worker("b").run_one()
        assert _job(db, second.id).status == JobStatus.queued
    finally:
        GATE.set()
        busy.join(30)
    assert _job(db, first.id).status == JobStatus.succeeded
    assert runner.Worker("b").run_one()
    assert _job(db, second.id).status == JobStatus.succeeded


def test_a_user_may_queue_only_so_many_jobs(db: Session, settings: pytest.MonkeyPatch) -> None:
    _configure(settings, jobs_max_queued_per_user=2)
    user = make_user(db, Role.coordinator)
    for _ in range(2):
        service.enqueue(db, kind="test_steps", payload={}, actor=user)
    with pytest.raises(TooManyRequests, match="2 jobs queued or running") as refused:
        service.enqueue(db, kind="test_steps", payload={}, actor=user)
    assert refused.value.status_code == 429
    service.enqueue(db, kind="test_steps", payload={}, actor=None)  # the system's own: no cap


def test_a_failed_job_stores_a_clear_reason_never_a_trace(db: Session) -> None:
    internal = _enqueue(db, fail="internal")
    refused = _enqueue(db, fail="refused")
    assert runner.Worker().run_pending() == 2
    assert _job(db, internal.id).status == JobStatus.failed
    assert _job(db, internal.id).error == "internal error (ValueError): boom"
    assert _job(db, refused.id).error == "nothing to do for this day"


def test_cancel_a_queued_job_and_a_running_one(db: Session) -> None:
    queued = _enqueue(db)
    with session_scope() as session:
        service.cancel_job(session, queued.id, actor=None)
    running = _enqueue(db, cancel_at=2)
    before = len(CALLS)
    assert runner.Worker().run_one()  # only the second: the first is cancelled
    assert _job(db, queued.id).status == JobStatus.cancelled
    stopped = _job(db, running.id)
    assert (stopped.status, stopped.progress_done, stopped.error) == (
        JobStatus.cancelled,
        2,  # it stopped at the step where it saw the cancel
        "cancelled",
    )
    assert len(CALLS) == before  # it never reached its end
    with session_scope() as session, pytest.raises(Conflict, match="already ended"):
        service.cancel_job(session, running.id, actor=None)


def test_jobs_through_the_api(db: Session, client: TestClient) -> None:
    coordinator = make_user(db, Role.coordinator)
    mine = service.enqueue(db, kind="test_steps", payload={}, actor=coordinator)
    theirs = _enqueue(db)
    headers = headers_for(db, client, Role.coordinator, username=coordinator.username + "x")
    own = headers_for(db, client, Role.admin)
    resident = headers_for(db, client, Role.resident)
    assert client.get("/api/v1/jobs", headers=resident).status_code == 403
    # An admin sees every job; a coordinator their own.
    every = client.get("/api/v1/jobs", headers=own).json()
    assert {j["id"] for j in every["items"]} == {mine.id, theirs.id}
    assert client.get("/api/v1/jobs", headers=headers).json()["total"] == 0
    assert client.get(f"/api/v1/jobs/{mine.id}", headers=headers).status_code == 404
    shown = client.get(f"/api/v1/jobs/{mine.id}", headers=own).json()
    assert (shown["kind"], shown["status"]) == ("test_steps", "queued")
    queued = client.get("/api/v1/jobs?status=queued&kind=test_steps", headers=own).json()
    assert queued["total"] == 2
    cancelled = client.post(f"/api/v1/jobs/{mine.id}/cancel", headers=own)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = client.post(f"/api/v1/jobs/{mine.id}/cancel", headers=own)
    assert again.status_code == 409 and again.json()["title"] == "Conflict"


def test_the_servers_own_worker_thread_takes_jobs_no_request_is_running(
    db: Session, settings: pytest.MonkeyPatch
) -> None:
    _configure(settings, jobs_poll_seconds=0.2)
    left = service.enqueue(
        db,
        kind="test_steps",
        payload={},
        actor=None,
        run_after=clock.now() - timedelta(minutes=5),  # e.g. queued before a restart
    )
    fresh = _enqueue(db)  # its request runs it (``run_in_process``): the thread leaves it
    db.commit()
    stop = runner.start_in_process(1)
    try:
        for _ in range(100):
            if _job(db, left.id).status == JobStatus.succeeded:
                break
            threading.Event().wait(0.2)
    finally:
        stop()
    assert _job(db, left.id).status == JobStatus.succeeded
    assert _job(db, fresh.id).status == JobStatus.queued
    runner.run_in_process(fresh.id)  # what the request's background task does
    assert _job(db, fresh.id).status == JobStatus.succeeded


def test_a_cancelled_plan_job_says_so_on_the_plan_its_clients_poll(db: Session) -> None:
    coordinator = make_user(db, Role.coordinator)
    plan, job = start_plan_job(db, day=TODAY, actor=coordinator)
    db.commit()
    with session_scope() as session:
        service.cancel_job(session, job.id, actor=None)
    db.expire_all()
    assert db.get(Job, job.id).status == JobStatus.cancelled  # type: ignore[union-attr]
    polled = db.get(DispatchPlan, plan.id)
    assert polled is not None
    assert (polled.status, polled.message) == (PlanStatus.failed, "cancelled from the command line")
    assert not runner.Worker().run_one()  # nothing left to run
