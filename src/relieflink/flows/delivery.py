"""Tracking events and their outcomes, written once: the one path from a courier's event to
the ledger and the requests.

``loaded`` issues the parcels' reserved stock (picked); ``delivered`` closes their allocations
and every request with nothing left reserved; ``failed`` returns the stock to the warehouse
(written off if the reason is ``damaged``), releases what its allocations still held reserved,
and carries the requests over with a raised priority. Dispatch checks and stores the events
(:mod:`relieflink.dispatch.tracking_apply`), the stock domain moves the ledger, the needs
domain closes or reopens requests; none of them calls another back.

Batches (:func:`record_events`): a phone on a flaky network buffers its events and sends them
together. They are applied in the order given, in the caller's transaction, each all or nothing
and each answered on its own (applied, replayed, or refused with the error the single endpoint
would raise); a refused event does not stop the ones after it (a later event that needed it is
refused by the parcel's state). A wrong pickup code is kept (the rate limit counts it) while its
event is refused. A single event (:func:`record_event`) is a batch of one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy.orm import Session

from relieflink import clock
from relieflink.dispatch import tracking, waves
from relieflink.dispatch import tracking_apply as apply
from relieflink.dispatch.schemas import EventIn
from relieflink.dispatch.tracking_rules import MAX_BATCH, EventAnswer, EventOutcome
from relieflink.errors import FieldError, Invalid, RelieflinkError
from relieflink.models import AllocationState, FailureReason, User
from relieflink.needs import service as needs
from relieflink.notices import service as notices
from relieflink.stock import ledger
from relieflink.users import access

__all__ = [
    "EventAnswer",
    "EventOutcome",
    "close_delivered",
    "issue_loaded",
    "record_event",
    "record_events",
    "return_failed",
]


class ParcelLine(Protocol):
    """A parcel line as loading issues it and a failure returns it."""

    @property
    def parcel_id(self) -> int: ...
    @property
    def allocation_id(self) -> int: ...
    @property
    def reference(self) -> str: ...
    @property
    def quantity(self) -> int: ...
    @property
    def state(self) -> str: ...


def record_event(session: Session, data: EventIn, *, actor: User) -> EventOutcome:
    """Apply one tracking event (idempotent by ``client_event_id``); a refusal is raised (a
    wrong pickup code as ``CodeRefused``, its attempt written: the entry point commits it)."""
    access.ensure_role(actor, access.DELIVERY_ACTORS)
    (answer,) = _apply(session, [data], actor=actor, isolate=False)
    if answer.error is not None:
        raise answer.error
    assert answer.outcome is not None
    return answer.outcome


def record_events(session: Session, events: Sequence[EventIn], *, actor: User) -> list[EventAnswer]:
    """Apply a batch of tracking events in order, each all or nothing and answered on its own
    (see the module's docstring). A ``Conflict`` for the whole batch means another request is
    applying one of its client event ids right now: nothing was applied; retry."""
    access.ensure_role(actor, access.DELIVERY_ACTORS)
    if len(events) > MAX_BATCH:
        raise Invalid(f"at most {MAX_BATCH} events a batch", [FieldError(("events",), "too many")])
    return _apply(session, list(events), actor=actor, isolate=True)


class _LoadRefused(Exception):
    def __init__(self, index: int, error: RelieflinkError) -> None:
        super().__init__(error.message)
        self.index, self.error = index, error


def _apply(
    session: Session, events: list[EventIn], *, actor: User, isolate: bool
) -> list[EventAnswer]:
    """Check, apply the outcomes, store. The ledger may refuse a loading only when it is
    written; in a batch (``isolate``) that event alone is refused: what the batch wrote is
    rolled back to its savepoint and the batch checked again without it."""
    apply.begin(session)
    refused: dict[int, RelieflinkError] = {}
    while True:
        batch = apply.check(session, events, actor=actor, refused=refused)
        savepoint = session.begin_nested() if isolate and batch.loads else None
        try:
            results = _outcomes(session, batch, actor=actor)
        except _LoadRefused as failure:
            if savepoint is None:
                raise failure.error from None
            savepoint.rollback()
            refused[failure.index] = failure.error
            continue
        answers = apply.store(session, batch, results)
        if savepoint is not None:
            savepoint.commit()
        return answers


def _outcomes(session: Session, batch: apply.Batch, *, actor: User) -> dict[int, dict[str, Any]]:
    """The ledger and the requests, in the order events can follow one another: loadings,
    then deliveries, then failures. Returns what each event's answer adds, by index."""
    for load in batch.loads:
        try:
            issue_loaded(session, load.lines, actor=actor)
        except RelieflinkError as error:
            raise _LoadRefused(load.index, error) from None
    results: dict[int, dict[str, Any]] = {}
    if batch.deliveries:
        closed = close_delivered(
            session,
            {d.parcel_id: (d.allocations, d.requests) for d in batch.deliveries},
            actor=actor,
        )
        for d in batch.deliveries:
            results[d.index] = {"closed_requests": closed[d.parcel_id]}
    if batch.failures:
        outcomes = return_failed(
            session, [(f.parcel_id, f.reason, f.lines) for f in batch.failures], actor=actor
        )
        for f, (requests, lost) in zip(batch.failures, outcomes, strict=True):
            results[f.index] = {
                "reason": str(f.reason),
                "carried_over": requests,
                "written_off": lost,
            }
    if notices.enabled():
        notices.notify(session, _notices(session, batch))
    return results


def _notices(session: Session, batch: apply.Batch) -> list[notices.Notice]:
    """What the households hear of this batch: on its way (with the pickup code), delivered,
    failed and when the next try is."""
    loaded = sorted({line.parcel_id for load in batch.loads for line in load.lines})
    delivered = [d.parcel_id for d in batch.deliveries]
    failed = [(f.parcel_id, f.reason) for f in batch.failures]
    recipient = tracking.parcel_recipients(session, loaded + delivered + [p for p, _ in failed])
    household = {p: h for p, (h, _) in recipient.items()}
    next_try = f"{waves.next_wave(clock.now()):%m-%d %H:%M}"
    out = [
        notices.Notice(
            f"parcel:{p}:on_the_way",
            household[p],
            "on_the_way",
            {"parcel": p, "code": recipient[p][1]},
        )
        for p in loaded
    ]
    out += [
        notices.Notice(f"parcel:{p}:delivered", household[p], "delivered", {"parcel": p})
        for p in delivered
    ]
    out += [
        notices.Notice(
            f"parcel:{p}:failed",
            household[p],
            "failed",
            {"parcel": p, "reason": str(reason).replace("_", " "), "next_try": next_try},
        )
        for p, reason in failed
    ]
    return out


def issue_loaded(session: Session, lines: Sequence[ParcelLine], *, actor: User | None) -> None:
    """Parcels loaded: issue the reserved stock of their ``lines`` from its warehouse,
    set-based."""
    ledger.issue_many(
        session,
        [ledger.Issue(line.reference, line.quantity, f"parcel:{line.parcel_id}") for line in lines],
        actor=actor,
    )


def close_delivered(
    session: Session,
    deliveries: Mapping[int, tuple[Sequence[int], Sequence[int]]],
    *,
    actor: User | None,
) -> dict[int, list[int]]:
    """Parcels delivered at the door: parcel id → (its allocations, the requests they serve).
    Their stock, issued when they were loaded, is handed over in the ledger (from on the way to
    delivered). Returns the requests closed, per parcel."""
    ledger.hand_over(session, [f"parcel:{parcel_id}" for parcel_id in deliveries], actor=actor)
    return needs.deliver_allocations(session, deliveries)


def return_failed(
    session: Session,
    failures: Sequence[tuple[int, FailureReason, Sequence[ParcelLine]]],
    *,
    actor: User | None,
) -> list[tuple[list[int], int]]:
    """Failed deliveries, each (parcel id, reason, its lines): the stock goes back to where it
    was issued from (written off if damaged), what the allocations still hold reserved is
    released, the allocations are returned and their requests carried over. Returns, per
    failure, its requests and the units written off."""
    returns = [
        ledger.Return(
            line.reference,
            line.quantity,
            f"parcel:{parcel_id}",
            note=f"delivery failed: {reason}",
            write_off=(
                f"parcel {parcel_id} damaged in delivery"
                if reason == FailureReason.damaged
                else None
            ),
        )
        for parcel_id, reason, lines in failures
        for line in lines
    ]
    back = ledger.return_many(session, returns, actor=actor)
    held = {
        line.reference
        for _, _, lines in failures
        for line in lines
        if line.state == AllocationState.reserved and line.reference in back.still_reserved
    }
    ledger.release_many(
        session, [ledger.Release(r) for r in sorted(held)], actor=actor, returning=False
    )
    requests = needs.return_allocations(
        session,
        [([line.allocation_id for line in lines], str(reason)) for _, reason, lines in failures],
        actor=actor,
    )
    written = iter(back.written_off)
    return [
        (carried, sum(next(written) for _ in lines))
        for (_, _, lines), carried in zip(failures, requests, strict=True)
    ]
