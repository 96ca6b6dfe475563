"""Background jobs (allocation runs, dispatch plans): list, look at one, cancel one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from relieflink.api.deps import SessionDep, require_role
from relieflink.common.fields import Id
from relieflink.common.schemas import Page
from relieflink.jobs import service as jobs
from relieflink.jobs.schemas import JobFilters, JobRead
from relieflink.models import User
from relieflink.users import access

router = APIRouter(prefix="/jobs", tags=["jobs"])
# Coordinators and admins start jobs; an admin sees every job, anyone else their own.
JobUser = Annotated[User, require_role(access.STAFF)]


@router.get("", response_model=Page[JobRead])
def list_jobs(
    session: SessionDep, user: JobUser, query: Annotated[JobFilters, Query()]
) -> Page[JobRead]:
    """Jobs, newest first (``status``, ``kind`` filter them)."""
    rows, total = jobs.list_jobs(session, query, actor=user)
    return Page(
        items=[JobRead.model_validate(j) for j in rows],
        total=total,
        offset=query.offset,
        limit=query.limit,
    )


@router.get("/{job_id}", response_model=JobRead)
def read_job(job_id: Id, session: SessionDep, user: JobUser) -> JobRead:
    """One job: its status, progress, attempts and outcome (or why it failed)."""
    return JobRead.model_validate(jobs.require_job(session, job_id, actor=user))


@router.post("/{job_id}/cancel", response_model=JobRead)
def cancel_job(job_id: Id, session: SessionDep, user: JobUser) -> JobRead:
    """Cancel a queued job, or stop a running one at its next step (409 once it has ended)."""
    return JobRead.model_validate(jobs.cancel_job(session, job_id, actor=user))
