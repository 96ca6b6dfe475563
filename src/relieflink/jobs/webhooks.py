"""Webhook deliveries (kind ``webhook``): one job sends one event to one partner's URL.

The donations service records each event as a pending delivery in the transaction that causes
it (the outbox); workers queue a job for each (the kind's feed), and the job POSTs the signed
body. An answer other than 2xx, or none, queues the job again after an exponential backoff
(``RELIEFLINK_WEBHOOK_RETRY_SECONDS``, doubled each time, at most :data:`RETRY_CAP`); after
``RELIEFLINK_WEBHOOK_MAX_ATTEMPTS`` the job fails and the delivery goes to the dead-letter list
(``relieflink pledges deliver-webhooks --dead``, re-sent with ``--resend ID``).

Once delivered, an event is not sent again. If a process dies between a partner's 2xx and the
commit that records it, the job runs again and the partner gets the event twice: partners
deduplicate by the ``X-RelieFlink-Delivery`` id (at least once, like every webhook sender).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from relieflink.config import get_settings
from relieflink.db import begin_write, session_scope
from relieflink.donations import service as donations
from relieflink.jobs import service
from relieflink.jobs.runner import JobContext, Outcome, RetryLater, backoff, register

KIND = "webhook"
RETRY_CAP = 6 * 3600.0  # seconds: a partner down for a day is still tried every six hours
FEED_BATCH = 200


def feed(session: Session) -> int:
    """Queue a job for every pending delivery that has none (a plain read when there is none)."""
    if not donations.unscheduled_deliveries(session, limit=1):
        return 0
    session.rollback()  # end the read: the write below starts with SQLite's write lock
    begin_write(session)
    attempts = get_settings().webhook_max_attempts
    ids = donations.unscheduled_deliveries(session, limit=FEED_BATCH)  # again, under the lock
    for delivery_id in ids:
        job = service.enqueue(
            session,
            kind=KIND,
            payload={"delivery_id": delivery_id},
            actor=None,
            max_attempts=attempts,
        )
        donations.schedule_delivery(session, delivery_id, job_id=job.id)
    return len(ids)


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str | None]:
    """POST once: the status code, or None and why there was no answer."""
    import httpx  # here: a second of every command's start-up otherwise

    try:
        response = httpx.post(
            url, content=body, headers=headers, timeout=get_settings().webhook_timeout_seconds
        )
    except httpx.HTTPError as exc:
        return None, f"no answer: {type(exc).__name__}: {exc}"[:300]
    return response.status_code, None


def run(ctx: JobContext) -> Outcome:
    delivery_id = int(ctx.payload["delivery_id"])
    with session_scope() as session:
        request = donations.delivery_request(session, delivery_id, job_id=ctx.job_id)
    if request is None:
        return Outcome(result={"sent": False, "reason": "nothing to send"})
    # No transaction is open while the partner answers (SQLite would be locked meanwhile).
    status_code, error = post(request.url, request.body, request.headers)
    outcome = Outcome(f"webhook_delivery:{delivery_id}", {"status_code": status_code})
    with session_scope() as session:
        begin_write(session)
        delivered = donations.record_attempt(
            session, delivery_id, status_code=status_code, error=error
        )
        if delivered:
            ctx.succeed(session, outcome)
    if not delivered:
        base = get_settings().webhook_retry_seconds
        raise RetryLater(
            error or f"{request.url} answered HTTP {status_code}",
            after=backoff(ctx.attempts, base=base, cap=RETRY_CAP),
        )
    return outcome


def bury(session: Session, payload: dict[str, Any], reason: str) -> None:
    donations.bury_delivery(session, int(payload["delivery_id"]), reason)


register(KIND, run, on_failed=bury, feed=feed)
