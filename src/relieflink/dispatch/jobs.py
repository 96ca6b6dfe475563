"""A dispatch plan's row as the face of its planning job.

The job itself runs on the durable runner (:mod:`relieflink.jobs.dispatch`); clients still poll
the plan (``GET /dispatch/plans/{id}``, the dashboard), so the job mirrors its progress and its
failure here. Plain ORM updates of one row, in the caller's transaction.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from relieflink import clock
from relieflink.errors import NotFound
from relieflink.models import DispatchPlan, PlanStatus


def require_plan(session: Session, plan_id: int) -> DispatchPlan:
    plan = session.get(DispatchPlan, plan_id)
    if plan is None:
        raise NotFound(f"no dispatch plan {plan_id}")
    return plan


def set_progress(session: Session, plan_id: int, percent: int, message: str) -> None:
    """The plan is running, at ``percent`` (the step it is at in ``message``)."""
    plan = require_plan(session, plan_id)
    if plan.status in (PlanStatus.queued, PlanStatus.running):
        plan.status, plan.progress, plan.message = PlanStatus.running, percent, message


def fail_plan(session: Session, plan_id: int, reason: str) -> None:
    """The plan's job failed or was cancelled: say why on the plan."""
    plan = session.get(DispatchPlan, plan_id)
    if plan is not None and plan.status != PlanStatus.done:
        plan.status, plan.message, plan.finished_at = PlanStatus.failed, reason, clock.now()
