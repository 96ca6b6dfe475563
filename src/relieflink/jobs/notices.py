"""The notice sender (kind ``notices``): sends the outbox's due notices, then queues itself
again for the next one that waits (a retry's backoff, the hourly cap). Writing a notice wakes
it (:func:`relieflink.notices.service.notify`); one runs at a time."""

from __future__ import annotations

from relieflink import clock
from relieflink.db import session_scope
from relieflink.jobs.runner import JobContext, Outcome, register
from relieflink.notices import repository as notices_repo
from relieflink.notices import sender

KIND = notices_repo.SENDER_JOB_KIND


def run(ctx: JobContext) -> Outcome:
    total = sender.SendReport()
    while True:
        report = sender.deliver_due(
            keep_going=lambda: ctx.progress(total.sent, 0, f"sending: {total}")
        )
        for name in ("sent", "retried", "dead", "postponed"):
            setattr(total, name, getattr(total, name) + getattr(report, name))
        if report.sent + report.retried + report.dead == 0:
            break  # nothing (more) can go now
    with session_scope() as session:
        later = notices_repo.next_due_at(session)
        if later is not None:
            notices_repo.wake_sender(session, run_after=max(later, clock.now()))
        outcome = Outcome(result={k: getattr(total, k) for k in ("sent", "retried", "dead")})
        ctx.succeed(session, outcome)
    return outcome


register(KIND, run)
