"""A durable job: one row per piece of background work (allocation runs, dispatch plans; resident
notices and webhook retries later), claimed by a worker and kept through restarts."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from relieflink import clock
from relieflink.db import Base


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


ACTIVE_JOB_STATUSES = (JobStatus.queued, JobStatus.running)


class Job(Base):
    """A job of some ``kind`` with its JSON ``payload``, where it is and how it ended.

    A worker claims a queued job whose ``run_after`` has come and holds it for a lease
    (``lease_until``) it keeps extending; a job still ``running`` after its lease ran out lost
    its worker and is queued again. ``exclusive_key``: jobs sharing one never run at once.
    """

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status_run_after", "status", "run_after"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[JobStatus] = mapped_column(String(20), default=JobStatus.queued)
    exclusive_key: Mapped[str | None] = mapped_column(String(80))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    run_after: Mapped[datetime] = mapped_column(default=clock.now)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    worker: Mapped[str] = mapped_column(String(120), default="")
    lease_until: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=3)
    progress_done: Mapped[int] = mapped_column(default=0)
    progress_total: Mapped[int] = mapped_column(default=0)
    message: Mapped[str] = mapped_column(Text, default="")  # the step it is at
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    result_ref: Mapped[str | None] = mapped_column(String(80))  # e.g. "allocation_run:12"
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # a short summary
    error: Mapped[str] = mapped_column(Text, default="")  # why it failed: a reason, no trace
