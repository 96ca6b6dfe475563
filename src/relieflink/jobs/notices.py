"""The notice sender (kind ``notices``): sends the outbox's due notices.

Notices are written to their outbox (the ``notices`` table) in the transaction of the event that
causes them; workers queue the sender when any is due (the kind's feed: a new notice, a retry
whose backoff ran out, one held back by the hourly cap). One sender runs at a time and sends
every notice due, so a city's day of notices is a few jobs, not one per notice.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from relieflink import clock
from relieflink.db import begin_write, session_scope
from relieflink.jobs import service
from relieflink.jobs.runner import JobContext, Outcome, register
from relieflink.notices import sender
from relieflink.notices import service as notices

KIND = "notices"


def feed(session: Session) -> int:
    """Queue the sender when a notice is due and none is queued or running (a plain read when
    nothing is due)."""
    if not notices.anything_due(session, now=clock.now()) or service.active_of_kind(session, KIND):
        return 0
    session.rollback()  # end the read: the write below starts with SQLite's write lock
    begin_write(session)
    if service.active_of_kind(session, KIND):  # again, under the lock
        return 0
    service.enqueue(session, kind=KIND, payload={}, actor=None, exclusive_key=KIND)
    return 1


def run(ctx: JobContext) -> Outcome:
    total = sender.SendReport()
    while True:
        report = sender.deliver_due(
            keep_going=lambda: ctx.progress(total.sent, 0, f"sending: {total}")
        )
        total.add(report)
        if report.sent + report.retried + report.dead == 0:
            break  # nothing (more) can go now; the feed queues the sender when something is due
    outcome = Outcome(result={"sent": total.sent, "retried": total.retried, "dead": total.dead})
    with session_scope() as session:
        ctx.succeed(session, outcome)
    return outcome


register(KIND, run, feed=feed)
