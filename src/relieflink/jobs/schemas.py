"""What the API and the CLI show of a job."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from relieflink.common.fields import Text
from relieflink.common.schemas import ListQuery, ReadModel
from relieflink.models import JobStatus


class JobFilters(ListQuery):
    status: JobStatus | None = None
    kind: Text | None = None


class JobRead(ReadModel):
    id: int
    kind: str
    status: JobStatus
    payload: dict[str, Any]
    created_by_id: int | None
    created_at: datetime
    run_after: datetime
    started_at: datetime | None
    finished_at: datetime | None
    attempts: int
    max_attempts: int
    progress_done: int
    progress_total: int
    message: str
    cancel_requested: bool
    result_ref: str | None
    result: dict[str, Any]
    error: str
