"""Tracking events from drivers' and robots' apps, contactless proof of delivery, the last
100 metres at the gate, and the trace from a delivered pack back to its donors.

Every event carries a ``client_event_id``: a retry with the same id and the same content gets
the first answer back (``replayed``) and moves nothing; the same id with other content is
refused. Events are applied in order per parcel (``Parcel.last_seq``); an event that the parcel
has already passed (a stale or replayed event under a new id) is refused and moves nothing.

Ledger moves: ``loaded`` issues the reserved stock (picked); ``delivered`` closes the request
when all of it is delivered; ``failed`` returns the stock to the warehouse (written off as
damaged if the reason is ``damaged``) and carries the request over with a raised priority.

Batches (:func:`record_events`): a phone on a flaky network buffers its events and sends them
together. They are applied in the order given, in the caller's transaction, each all or nothing
and each answered on its own (applied, replayed, or refused with the error the single endpoint
would raise); a refused event does not stop the ones after it (a later event that needed it is
refused by the parcel's state). A wrong pickup code is kept (the rate limit counts it) while its
event is refused. Deliveries are checked one by one against the parcels' state held in memory,
then written together: a run of deliveries costs a handful of statements, not a handful each.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from relieflink import clock
from relieflink.audit import service as audit
from relieflink.dispatch import codes
from relieflink.dispatch import repository as repo
from relieflink.dispatch.schemas import EventIn
from relieflink.errors import (
    Conflict,
    FieldError,
    Forbidden,
    Invalid,
    NotFound,
    RelieflinkError,
    TooManyRequests,
)
from relieflink.models import (
    AllocationState,
    Community,
    EventKind,
    FailureReason,
    HandoffDiscrepancy,
    InnerMode,
    LoginAttempt,
    Parcel,
    ParcelStatus,
    Role,
    Route,
    RouteStatus,
    RouteStop,
    TrackingEvent,
    User,
)
from relieflink.needs import delivery_hooks
from relieflink.stock import ledger as stock_bulk
from relieflink.stock import service as stock
from relieflink.users import access

# From which parcel states each event may move a parcel, and where to.
_FROM: dict[EventKind, tuple[ParcelStatus, ...]] = {
    EventKind.loaded: (ParcelStatus.planned,),
    EventKind.departed: (ParcelStatus.loaded,),
    EventKind.arrived: (ParcelStatus.departed,),
    EventKind.handed_off: (ParcelStatus.at_gate,),
    EventKind.delivered: (ParcelStatus.departed, ParcelStatus.at_gate, ParcelStatus.handed_off),
    EventKind.failed: (
        ParcelStatus.loaded,
        ParcelStatus.departed,
        ParcelStatus.at_gate,
        ParcelStatus.handed_off,
    ),
}
_TO = {
    EventKind.loaded: ParcelStatus.loaded,
    EventKind.departed: ParcelStatus.departed,
    EventKind.arrived: ParcelStatus.at_gate,
    EventKind.handed_off: ParcelStatus.handed_off,
    EventKind.delivered: ParcelStatus.delivered,
    EventKind.failed: ParcelStatus.failed,
}
MAX_BATCH = 500


class CodeRefused(Forbidden):
    """A wrong pickup code. The failed attempt must be kept: entry points commit, then raise."""

    title = "Pickup code refused"


@dataclass
class EventOutcome:
    event_id: int
    client_event_id: str
    kind: EventKind
    replayed: bool
    parcels: list[int]
    result: dict[str, Any]


@dataclass
class EventAnswer:
    """One event of a batch: its outcome, or the error that refused it (nothing of it moved,
    except a wrong pickup code's attempt, which is kept)."""

    client_event_id: str
    outcome: EventOutcome | None = None
    error: RelieflinkError | None = None


def _fingerprint(data: EventIn, actor: User) -> str:
    body = data.model_dump(mode="json", exclude={"code", "occurred_at"})
    body["actor"] = actor.id
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _refused(kind: EventKind, states: list[str]) -> Conflict:
    allowed = _FROM[kind]
    return Conflict(
        f"{kind} refused: the parcels are {', '.join(sorted(set(states)) or ['none'])}; {kind} "
        f"needs {' or '.join(allowed)} (already applied, out of order or replayed)"
    )


def _replay(known: repo.StoredEvent, fingerprint: str) -> EventOutcome:
    if known.fingerprint != fingerprint:
        raise Conflict(
            f"client event id {known.client_event_id!r} was already used for another event",
            [FieldError(("client_event_id",), "reused with different content")],
        )
    return EventOutcome(
        known.id,
        known.client_event_id,
        EventKind(known.kind),
        True,
        list(known.result.get("parcels", [])),
        known.result,
    )


def _being_applied(client_event_id: str) -> Conflict:
    # The same client event id applied concurrently to another target: the entry point rolls
    # this transaction back, nothing of ours stays.
    return Conflict(f"event {client_event_id!r} is being applied by another request; retry")


# --- who may post what ------------------------------------------------------------------------


def _volunteer_of(session: Session, actor: User, stop: RouteStop) -> bool:
    """A community committee's volunteer carries the last 100 metres at its compounds."""
    if actor.role != Role.committee or actor.organization_id is None:
        return False
    committee = session.scalar(
        select(Community.committee_id).where(Community.id == stop.community_id)
    )
    return committee == actor.organization_id and stop.inner_mode != InnerMode.courier


def _ensure_may(
    session: Session,
    actor: User,
    route: Route,
    stop: RouteStop | None,
    stop_id: int | None,
    kind: EventKind,
) -> RouteStop | None:
    """Raise ``Forbidden`` unless ``actor`` may post ``kind`` here; returns the stop (read only
    when a volunteer's right depends on it)."""
    if access.can_drive(actor, route):
        return stop
    if stop is None and stop_id is not None and actor.role == Role.committee:
        stop = session.get(RouteStop, stop_id)
    if (
        stop is not None
        and kind in (EventKind.handed_off, EventKind.delivered, EventKind.failed)
        and _volunteer_of(session, actor, stop)
    ):
        return stop
    raise Forbidden(f"route {route.id} is not yours: only its courier or carrier may post events")


# --- events -----------------------------------------------------------------------------------


def record_event(session: Session, data: EventIn, *, actor: User) -> EventOutcome:
    """Apply one tracking event (idempotent by ``client_event_id``)."""
    access.ensure_role(actor, access.DELIVERY_ACTORS)
    repo.begin_write(session)
    (answer,) = _Run(session, actor, isolate=False).apply([data])
    assert answer.outcome is not None  # errors were raised
    return answer.outcome


def record_events(session: Session, events: Sequence[EventIn], *, actor: User) -> list[EventAnswer]:
    """Apply a batch of tracking events in order, each all or nothing and answered on its own
    (see the module's docstring). A ``Conflict`` for the whole batch means another request is
    applying one of its client event ids right now: nothing was applied; retry."""
    access.ensure_role(actor, access.DELIVERY_ACTORS)
    if len(events) > MAX_BATCH:
        raise Invalid(f"at most {MAX_BATCH} events a batch", [FieldError(("events",), "too many")])
    repo.begin_write(session)
    return _Run(session, actor, isolate=True).apply(list(events))


@dataclass
class _Parcel:
    """What a delivery or a failure checks about its parcel, kept up to date as a run applies
    events."""

    id: int
    route: Route | None
    stop_id: int | None
    status: str
    last_seq: int
    code_nonce: str
    code_hash: str
    code_attempts: int
    requests: list[int] = field(default_factory=list)


@dataclass
class _Queued:
    """A delivery or failure that passed its checks; written when the run flushes."""

    index: int
    data: EventIn
    fingerprint: str
    parcel: _Parcel
    at: datetime


# Parcel events checked in memory and written set-based; every other kind is applied alone.
_FAST = (EventKind.delivered, EventKind.failed)


@dataclass
class _Run:
    """The events of one request, applied in order in the caller's transaction.

    Deliveries and failures (the bulk of the traffic) are checked against ``parcels`` (locked
    and read once, with the allocations a failure would return) and queued; their writes go
    out together when the run ends or before any other event, which is applied on its own (in
    a savepoint when ``isolate``: its ledger moves may fail half-way). Nothing a queued event
    writes can be refused any more: every rule that may refuse it was checked first."""

    session: Session
    actor: User
    isolate: bool
    parcels: dict[int, _Parcel] = field(default_factory=dict)
    lines: dict[int, list[repo.ReturnLine]] = field(default_factory=dict)
    known: dict[str, repo.StoredEvent | _Queued] = field(default_factory=dict)
    routes: dict[int, Route] = field(default_factory=dict)
    answers: list[EventAnswer] = field(default_factory=list)
    queued: list[_Queued] = field(default_factory=list)
    wrong_codes: list[_Parcel] = field(default_factory=list)
    recent_wrong: int = 0
    stale: bool = False

    def apply(self, events: list[EventIn]) -> list[EventAnswer]:
        self.answers = [EventAnswer(e.client_event_id) for e in events]
        fast = [e for e in events if e.kind in _FAST and e.parcel_id is not None]
        if fast:
            self._lock([e.parcel_id for e in fast if e.parcel_id is not None], first=True)
            # Lock first, then look for the client event ids: a concurrent twin of this
            # request (a retry racing the original) has committed by the time we hold the
            # locks, so it is seen.
            self.known.update(
                repo.events_by_client_id(self.session, [e.client_event_id for e in fast])
            )
            failing = [e.parcel_id for e in fast if e.kind == EventKind.failed and e.parcel_id]
            if failing:
                self.lines = repo.return_lines(self.session, failing)
        for index, data in enumerate(events):
            fingerprint = _fingerprint(data, self.actor)
            try:
                if data.kind in _FAST:
                    self._check(index, data, fingerprint)
                else:
                    self._flush()
                    self._other(index, data, fingerprint)
            except RelieflinkError as error:
                if not self.isolate:
                    if isinstance(error, CodeRefused):
                        self._flush()  # keep the failed attempt: the entry point commits it
                    raise
                self.answers[index].error = error
        self._flush()
        return self.answers

    # --- deliveries and failures, checked in memory and written together --------------------

    def _lock(self, ids: list[int], *, first: bool = False) -> None:
        key = f"pickup:{self.actor.id}"
        rows, recent = repo.lock_parcel_states(
            self.session, ids, attempts_key=key if first else None, since=clock.now() - codes.WINDOW
        )
        if first:
            self.recent_wrong = recent
        seen: set[int] = set()
        for row in rows:
            if row.id in seen:  # another line of the same parcel
                if row.request_id is not None:
                    self.parcels[row.id].requests.append(row.request_id)
                continue
            seen.add(row.id)
            route = None
            if row.route_id is not None:
                # A route as read, not attached to the session: what access.can_drive and the
                # checks below read of it.
                route = self.routes.get(row.route_id)
                if route is None:
                    route = self.routes[row.route_id] = Route(id=row.route_id)
                route.status = row.route_status
                route.carrier_id = row.carrier_id
                route.courier_id = row.courier_id
            self.parcels[row.id] = _Parcel(
                row.id,
                route,
                row.stop_id,
                str(row.status),
                row.last_seq,
                row.code_nonce,
                row.code_hash,
                row.code_attempts,
                [row.request_id] if row.request_id is not None else [],
            )

    def _check(self, index: int, data: EventIn, fingerprint: str) -> None:
        """The rules of a delivery or a failure, in the order the other events check theirs:
        target, replay, who may, the parcel's state, then the proof or the reason."""
        assert data.parcel_id is not None
        if self.stale:  # another kind of event moved parcels since they were read
            self._lock(list(self.parcels))
            self.stale = False
        parcel = self.parcels.get(data.parcel_id)
        if parcel is None:
            raise NotFound(f"no parcel {data.parcel_id}")
        route = parcel.route
        if route is None:
            raise Conflict(f"parcel {data.parcel_id} is not on any route")
        if route.status == RouteStatus.cancelled:
            raise Conflict(f"route {route.id} was replaced by a re-plan; use the new route")
        known = self.known.get(data.client_event_id)
        if isinstance(known, _Queued):  # earlier in this run: write it to learn its id
            self._flush()
            known = self.known[data.client_event_id]
        if isinstance(known, repo.StoredEvent):
            self.answers[index].outcome = _replay(known, fingerprint)
            return
        _ensure_may(self.session, self.actor, route, None, parcel.stop_id, data.kind)
        if parcel.status not in _FROM[data.kind]:
            raise _refused(data.kind, [parcel.status])
        if data.kind == EventKind.delivered:
            self._check_proof(parcel, data)
        else:
            self._check_failure(parcel, data)
        parcel.status = _TO[data.kind]
        parcel.last_seq += 1
        queued = _Queued(index, data, fingerprint, parcel, data.occurred_at or clock.now())
        self.queued.append(queued)
        self.known[data.client_event_id] = queued

    def _check_proof(self, parcel: _Parcel, data: EventIn) -> None:
        """Proof of delivery: the resident's code, or a supervisor's override with a reason."""
        if data.override_reason is not None:
            if self.actor.role not in access.STAFF:
                raise Forbidden("only a supervisor (coordinator) may confirm without the code")
            if not data.photo_ref:
                raise Invalid("an override needs a photo", [FieldError(("photo_ref",), "required")])
            return
        if not data.code:
            raise Invalid("give the resident's pickup code", [FieldError(("code",), "required")])
        if parcel.code_attempts >= codes.MAX_ATTEMPTS:
            raise Conflict(
                f"parcel {parcel.id} is locked after {codes.MAX_ATTEMPTS} wrong codes: ask a "
                "supervisor to confirm with a photo"
            )
        if self.recent_wrong >= codes.MAX_PER_ACTOR:
            raise TooManyRequests("too many wrong pickup codes from this account; wait a while")
        if not codes.matches(parcel.code_nonce, data.code, parcel.code_hash):
            parcel.code_attempts += 1
            self.recent_wrong += 1
            self.wrong_codes.append(parcel)
            left = codes.MAX_ATTEMPTS - parcel.code_attempts
            raise CodeRefused(
                f"wrong pickup code for parcel {parcel.id}; {left} attempts left",
                [FieldError(("code",), "does not match")],
            )

    def _check_failure(self, parcel: _Parcel, data: EventIn) -> None:
        """A failure names its reason, and every allocation it carries can go back (the rule
        ``needs.service.return_allocations`` enforces, checked before anything is written)."""
        if data.reason is None:
            raise Invalid(
                "a failed delivery needs a reason",
                [FieldError(("reason",), ", ".join(r.value for r in FailureReason))],
            )
        for line in self.lines.get(parcel.id, []):
            if line.state not in (AllocationState.reserved, AllocationState.returned):
                raise Conflict(
                    f"allocation {line.allocation_id} is {line.state}; it cannot be returned"
                )

    def _flush(self) -> None:
        """Write the queued events and wrong-code attempts, set-based."""
        session = self.session
        if self.wrong_codes:
            key = f"pickup:{self.actor.id}"
            repo.set_code_attempts(session, {p.id: p.code_attempts for p in self.wrong_codes})
            session.add_all([LoginAttempt(key=key) for _ in self.wrong_codes])
            self._expire([p.id for p in self.wrong_codes])
            self.wrong_codes = []
        if not self.queued:
            return
        queued, self.queued = self.queued, []
        results: dict[int, dict[str, Any]] = {}
        delivered = [q for q in queued if q.data.kind == EventKind.delivered]
        if delivered:
            results |= self._write_deliveries(delivered)
        failed = [q for q in queued if q.data.kind == EventKind.failed]
        if failed:
            results |= self._write_failures(failed)
        repo.complete_routes(session, {q.parcel.route.id for q in queued if q.parcel.route})
        now = clock.now()
        rows: list[dict[str, Any]] = [
            {
                "client_event_id": q.data.client_event_id,
                "kind": q.data.kind.value,
                "parcel_id": q.parcel.id,
                "route_id": q.parcel.route.id if q.parcel.route else None,
                "stop_id": q.parcel.stop_id,
                "seq": q.parcel.last_seq,
                "reason": q.data.reason.value if q.data.reason else None,
                "fingerprint": q.fingerprint,
                "actor_id": self.actor.id,
                "occurred_at": q.data.occurred_at,
                "recorded_at": now,
                "result": {"parcels": [q.parcel.id], **results[q.index]},
            }
            for q in queued
        ]
        try:
            ids_of = repo.insert_events(session, rows)
        except IntegrityError:
            # Another request stored one of these client ids meanwhile, for another target
            # (its twin would have waited for our parcel locks): the whole transaction goes.
            cids = ", ".join(str(r["client_event_id"]) for r in rows)
            raise _being_applied(cids) from None
        for q, row in zip(queued, rows, strict=True):
            event = repo.StoredEvent(
                ids_of[q.data.client_event_id],
                q.data.client_event_id,
                q.data.kind.value,
                q.fingerprint,
                row["result"],
            )
            self.known[q.data.client_event_id] = event
            self.answers[q.index].outcome = EventOutcome(
                event.id, event.client_event_id, q.data.kind, False, [q.parcel.id], event.result
            )
        self._expire([q.parcel.id for q in queued])

    def _write_deliveries(self, queued: list[_Queued]) -> dict[int, dict[str, Any]]:
        session = self.session
        repo.mark_delivered(
            session,
            self.actor.id,
            [{"pid": q.parcel.id, "seq": q.parcel.last_seq, "at": q.at} for q in queued],
        )
        for q in queued:
            if q.data.override_reason is None:
                continue
            repo.set_override(session, q.parcel.id, q.data.override_reason, q.data.photo_ref)
            audit.record(
                session,
                actor=self.actor,
                action="override",
                entity="parcel",
                entity_id=q.parcel.id,
                detail={"reason": q.data.override_reason, "photo": q.data.photo_ref},
            )
        # The stock was issued at loading: close the parcels' allocations and the requests
        # with nothing left reserved (needs.service.deliver_allocation's rules, set-based).
        closed = delivery_hooks.close_delivered_many(
            session, {q.parcel.id: q.parcel.requests for q in queued}
        )
        return {q.index: {"closed_requests": closed[q.parcel.id]} for q in queued}

    def _write_failures(self, queued: list[_Queued]) -> dict[int, dict[str, Any]]:
        """Return the stock (write it off if damaged) and carry the requests over."""
        session = self.session
        reasons = {q.index: FailureReason(q.data.reason or "") for q in queued}
        repo.mark_failed(
            session,
            [
                {"pid": q.parcel.id, "seq": q.parcel.last_seq, "why": reasons[q.index].value}
                for q in queued
            ],
        )
        returns = [
            stock_bulk.Return(
                line.reference,
                line.quantity,
                f"parcel:{q.parcel.id}",
                note=f"delivery failed: {reasons[q.index]}",
                write_off=(
                    f"parcel {q.parcel.id} damaged in delivery"
                    if reasons[q.index] == FailureReason.damaged
                    else None
                ),
            )
            for q in queued
            for line in self.lines.get(q.parcel.id, [])
        ]
        back = stock_bulk.return_many(session, returns, actor=self.actor)
        # Stock is back (above); this closes the allocations as returned, takes their units
        # off the lines and carries each request (once per failure) to the next allocation.
        reopened = delivery_hooks.return_failed(
            session,
            [
                (
                    [line.allocation_id for line in self.lines.get(q.parcel.id, [])],
                    str(reasons[q.index]),
                )
                for q in queued
            ],
            actor=self.actor,
            still_reserved=back.still_reserved,
        )
        written = iter(back.written_off)
        out = {}
        for q, requests in zip(queued, reopened, strict=True):
            lost = sum(next(written) for _ in self.lines.get(q.parcel.id, []))
            for line in self.lines.get(q.parcel.id, []):
                line.state = AllocationState.returned
            out[q.index] = {
                "reason": str(reasons[q.index]),
                "carried_over": requests,
                "written_off": lost,
            }
        return out

    def _expire(self, parcel_ids: list[int]) -> None:
        """Parcel objects of this session written around the ORM are read again when used."""
        for pid in parcel_ids:
            obj = self.session.identity_map.get(identity_key(Parcel, pid))
            if obj is not None:
                self.session.expire(obj)

    # --- every other event, one at a time ------------------------------------------------

    def _other(self, index: int, data: EventIn, fingerprint: str) -> None:
        if self.isolate:
            with self.session.begin_nested():  # all or nothing for this event alone
                outcome = _apply_one(self.session, data, self.actor, fingerprint)
        else:
            outcome = _apply_one(self.session, data, self.actor, fingerprint)
        self.answers[index].outcome = outcome
        if not outcome.replayed:
            self.stale = bool(self.parcels)
            # A later delivery of this run under the same client id replays it.
            self.known[data.client_event_id] = repo.StoredEvent(
                outcome.event_id, data.client_event_id, data.kind.value, fingerprint, outcome.result
            )


def _apply_one(session: Session, data: EventIn, actor: User, fingerprint: str) -> EventOutcome:
    """A route or stop event (loaded, departed, arrived, handed off), with the ORM."""
    # Lock first, then look for the client event id: a concurrent twin of this request (a
    # retry racing the original) has committed by the time we hold the lock, so it is seen.
    route, stop, parcels = _target(session, data)
    known = repo.events_by_client_id(session, [data.client_event_id]).get(data.client_event_id)
    if known is not None:
        return _replay(known, fingerprint)
    stop_id = stop.id if stop is not None else parcels[0].stop_id if parcels else None
    stop = _ensure_may(session, actor, route, stop, stop_id, data.kind)
    moving = [p for p in parcels if p.status in _FROM[data.kind]]
    if not moving:
        raise _refused(data.kind, [str(p.status) for p in parcels])
    result: dict[str, Any] = {}
    now = clock.now()
    if data.kind == EventKind.loaded:
        _load(session, moving, actor)
        if route.status == RouteStatus.planned:
            route.status = RouteStatus.loaded
    elif data.kind == EventKind.departed:
        if route.status not in (RouteStatus.loaded, RouteStatus.departed):
            raise Conflict(f"route {route.id} is {route.status}: load it before it departs")
        route.status = RouteStatus.departed
    elif data.kind == EventKind.arrived:
        assert stop is not None
        stop.arrived_at = data.occurred_at or now
    elif data.kind == EventKind.handed_off:
        assert stop is not None
        result = _hand_off(session, stop, len(moving), data, actor)
    else:  # deliveries and failures go through _Run
        raise AssertionError(data.kind)
    repo.advance_parcels(session, moving, _TO[data.kind])
    event = TrackingEvent(
        client_event_id=data.client_event_id,
        kind=data.kind,
        parcel_id=data.parcel_id,
        route_id=route.id,
        stop_id=stop_id if data.parcel_id is not None or stop is not None else None,
        seq=moving[0].last_seq if data.parcel_id is not None else 0,
        reason=data.reason,
        fingerprint=fingerprint,
        actor_id=actor.id,
        occurred_at=data.occurred_at,
        recorded_at=now,
        result={"parcels": [p.id for p in moving], **result},
    )
    session.add(event)
    try:
        session.flush()
    except IntegrityError:
        raise _being_applied(data.client_event_id) from None
    return EventOutcome(
        event.id, event.client_event_id, data.kind, False, [p.id for p in moving], event.result
    )


def _target(session: Session, data: EventIn) -> tuple[Route, RouteStop | None, list[Parcel]]:
    """The route, stop (for stop events) and locked parcels an event is about. Route and stop
    events lock the route; a parcel event locks only its parcel (many couriers' phones deliver
    on one route at once)."""
    stop: RouteStop | None = None
    route: Route | None
    if data.parcel_id is not None:
        found = repo.lock_parcel_on_route(session, data.parcel_id)
        if found is None:
            raise NotFound(f"no parcel {data.parcel_id}")
        parcel, route = found
        if route is None:
            raise Conflict(f"parcel {data.parcel_id} is not on any route")
        parcels = [parcel]
    else:
        if data.stop_id is not None:
            stop = session.get(RouteStop, data.stop_id)
            if stop is None:
                raise NotFound(f"no stop {data.stop_id}")
            route_id = stop.route_id
        else:
            assert data.route_id is not None
            route_id = data.route_id
        route = repo.lock_route(session, route_id)
        if route is None:
            raise NotFound(f"no route {route_id}")
        if stop is None:
            parcels = repo.lock_parcels(session, route_id=route.id)
        else:
            parcels = repo.lock_parcels(session, stop_id=stop.id)
    if route.status == RouteStatus.cancelled:
        raise Conflict(f"route {route.id} was replaced by a re-plan; use the new route")
    return route, stop, parcels


def _load(session: Session, parcels: list[Parcel], actor: User) -> None:
    """Picked: issue the reserved stock of each parcel from its warehouse (set-based)."""
    lines = repo.lines_of(session, [p.id for p in parcels])
    stock_bulk.issue_many(
        session,
        [
            stock_bulk.Issue(line.reference, line.quantity, f"parcel:{p.id}")
            for p in parcels
            for line in lines[p.id]
        ],
        actor=actor,
    )


def _hand_off(
    session: Session, stop: RouteStop, expected: int, data: EventIn, actor: User
) -> dict[str, Any]:
    if data.counted is None:
        raise Invalid(
            "a hand-off gives the count of parcels handed over",
            [FieldError(("counted",), "required")],
        )
    stop.handed_off = data.counted
    if data.counted == expected:
        return {"expected": expected, "counted": data.counted}
    discrepancy = HandoffDiscrepancy(
        stop_id=stop.id, expected=expected, counted=data.counted, note=data.note, actor_id=actor.id
    )
    session.add(discrepancy)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="discrepancy",
        entity="dispatch_stop",
        entity_id=stop.id,
        detail={"expected": expected, "counted": data.counted},
    )
    return {"expected": expected, "counted": data.counted, "discrepancy_id": discrepancy.id}


# --- reading ----------------------------------------------------------------------------------


def require_route(session: Session, route_id: int, *, actor: User) -> Route:
    route = session.scalars(
        access.scope_routes(select(Route).where(Route.id == route_id), actor)
    ).one_or_none()
    if route is None:
        raise NotFound(f"no route {route_id} that you may see")
    return route


def my_deliveries(session: Session, *, actor: User) -> list[tuple[Parcel, str | None, int | None]]:
    """A resident's own parcels with their pickup codes (shown only here) and ETAs."""
    if actor.role != Role.resident or actor.household_id is None:
        raise Forbidden("only a household's resident sees its deliveries and pickup codes")
    rows = session.execute(
        select(Parcel, RouteStop.eta_s)
        .outerjoin(RouteStop, RouteStop.id == Parcel.stop_id)
        .where(Parcel.household_id == actor.household_id)
        .order_by(Parcel.id)
    ).all()
    out: list[tuple[Parcel, str | None, int | None]] = []
    for parcel, eta in rows:
        live = parcel.status not in (ParcelStatus.delivered, ParcelStatus.failed)
        out.append((parcel, codes.derive(parcel.code_nonce) if live else None, eta))
    audit.record(
        session, actor=actor, action="read", entity="pickup_codes", entity_id=actor.household_id
    )
    return out


def parcel_events(session: Session, parcel_id: int, *, actor: User) -> list[TrackingEvent]:
    """The ordered history of one parcel (its own events, then its stop's and route's)."""
    parcel = session.get(Parcel, parcel_id)
    if parcel is None:
        raise NotFound(f"no parcel {parcel_id}")
    if not (actor.role == Role.resident and actor.household_id == parcel.household_id):
        if parcel.route_id is None:
            access.ensure_role(actor, access.STAFF)
        else:
            require_route(session, parcel.route_id, actor=actor)
    events = session.scalars(
        select(TrackingEvent)
        .where(TrackingEvent.route_id == parcel.route_id)
        .order_by(TrackingEvent.id)
    ).all()
    return [e for e in events if parcel.id in e.result.get("parcels", [])]


@dataclass
class ParcelTrace:
    parcel_id: int
    household_id: int
    status: str
    delivered_at: datetime | None
    route_id: int | None
    carrier_id: int | None
    courier_id: int | None
    vehicle_id: int | None
    kind: str | None
    lines: list[dict[str, Any]]
    donors: dict[int, str]


def trace_parcel(session: Session, parcel_id: int, *, actor: User) -> ParcelTrace:
    """For a household pack: the donors behind it (from the ledger), and the route and
    courier that brought it."""
    parcel = session.get(Parcel, parcel_id)
    if parcel is None:
        raise NotFound(f"no parcel {parcel_id}")
    if not (
        actor.role in access.STAFF
        or (actor.role == Role.resident and actor.household_id == parcel.household_id)
    ):
        raise Forbidden("the trace of a household's pack is for staff and that household")
    route = session.get(Route, parcel.route_id) if parcel.route_id else None
    who = None
    if route is not None:
        who = route.courier_id or session.scalar(
            select(TrackingEvent.actor_id)
            .where(TrackingEvent.route_id == route.id, TrackingEvent.kind == EventKind.loaded)
            .order_by(TrackingEvent.id)
            .limit(1)
        )
    lines = []
    totals: dict[int, Any] = defaultdict(int)
    for line in repo.lines_of(session, [parcel.id])[parcel.id]:
        shares = stock.donor_shares(session, reference=line.reference)
        for donor, units in shares.items():
            totals[donor] += units
        lines.append(
            {
                "reference": line.reference,
                "kit_id": line.kit_id,
                "item_id": line.item_id,
                "quantity": line.quantity,
                "donors": {d: stock.exact(u) for d, u in shares.items()},
            }
        )
    return ParcelTrace(
        parcel.id,
        parcel.household_id,
        str(parcel.status),
        parcel.delivered_at,
        route.id if route else None,
        route.carrier_id if route else None,
        who,
        route.vehicle_id if route else None,
        str(route.kind) if route else None,
        lines,
        {d: stock.exact(u) for d, u in sorted(totals.items())},
    )


def assign_courier(session: Session, route_id: int, courier_id: int, *, actor: User) -> Route:
    """Give a route to one courier of its carrier."""
    access.ensure_role(actor, access.STAFF)
    route = require_route(session, route_id, actor=actor)
    courier = session.get(User, courier_id)
    if (
        courier is None
        or courier.role != Role.courier
        or courier.organization_id != route.carrier_id
    ):
        raise Invalid(
            f"user {courier_id} is not a courier of carrier {route.carrier_id}",
            [FieldError(("courier_id",), "a courier of the route's carrier")],
        )
    route.courier_id = courier_id
    session.flush()
    return route


def list_discrepancies(session: Session, *, actor: User) -> list[HandoffDiscrepancy]:
    access.ensure_role(actor, access.STAFF)
    return list(session.scalars(select(HandoffDiscrepancy).order_by(HandoffDiscrepancy.id)))


def since(minutes: int) -> datetime:
    return clock.now() - timedelta(minutes=minutes)
