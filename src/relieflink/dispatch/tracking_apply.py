"""A batch of tracking events applied set-based: one pipeline for every kind of event.

A single event is a batch of one. :func:`check` locks and reads, in a few statements, every
route and parcel the batch names, then checks the events in order against that state held in
memory (:mod:`relieflink.dispatch.tracking_rules`), each event seeing what the ones before it
did. It answers each refused event with its error and returns the rest as a :class:`Batch`,
with the ledger and request outcomes they call for (:attr:`Batch.loads`,
:attr:`Batch.deliveries`, :attr:`Batch.failures`; ``relieflink.flows.delivery`` applies
them). :func:`store` then writes the parcels, routes, stops and events together: a batch
costs a handful of statements whatever its size. Nothing here commits.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from relieflink import clock
from relieflink.audit import service as audit
from relieflink.dispatch import codes
from relieflink.dispatch import repository as repo
from relieflink.dispatch import tracking_rules as rules
from relieflink.dispatch.schemas import EventIn
from relieflink.dispatch.tracking_rules import EventAnswer, EventOutcome
from relieflink.errors import Conflict, NotFound, RelieflinkError
from relieflink.models import (
    EventKind,
    FailureReason,
    Parcel,
    ParcelStatus,
    Route,
    RouteStatus,
    User,
)


@dataclass
class ParcelState:
    """A parcel as the batch's events see it, kept up to date as they are checked."""

    id: int
    route: Route | None
    stop_id: int | None
    status: str
    last_seq: int
    code_nonce: str
    code_hash: str
    code_attempts: int
    requests: list[int] = field(default_factory=list)
    allocations: list[int] = field(default_factory=list)
    moved: bool = False
    delivered_at: datetime | None = None
    failure: FailureReason | None = None


@dataclass
class Accepted:
    """An event that passed its checks; stored by :func:`store`."""

    index: int
    data: EventIn
    fingerprint: str
    route_id: int
    stop_id: int | None
    seq: int
    parcels: list[int]
    result: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Load:
    """A loading event: its parcels' reserved stock is issued (picked)."""

    index: int
    lines: list[repo.LineState]


@dataclass(frozen=True)
class Delivery:
    """A parcel delivered: its allocations and the requests they serve close."""

    index: int
    parcel_id: int
    allocations: list[int]
    requests: list[int]


@dataclass(frozen=True)
class Failure:
    """A parcel that failed: its stock goes back, its requests are carried over."""

    index: int
    parcel_id: int
    reason: FailureReason
    lines: list[repo.LineState]


@dataclass
class _Discrepancy:
    accepted: Accepted
    stop_id: int
    expected: int
    counted: int
    note: str | None


@dataclass
class Batch:
    """The events of one request, checked in order; what :func:`store` writes."""

    actor: User
    answers: list[EventAnswer]
    accepted: list[Accepted] = field(default_factory=list)
    loads: list[Load] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    parcels: dict[int, ParcelState] = field(default_factory=dict)
    routes: dict[int, Route] = field(default_factory=dict)
    route_status: dict[int, str] = field(default_factory=dict)
    arrivals: dict[int, datetime] = field(default_factory=dict)
    handoffs: dict[int, int] = field(default_factory=dict)
    discrepancies: list[_Discrepancy] = field(default_factory=list)
    overrides: list[tuple[int, str, str | None]] = field(default_factory=list)
    wrong_codes: list[ParcelState] = field(default_factory=list)
    replays: dict[int, Accepted] = field(default_factory=dict)


def begin(session: Session) -> None:
    """Take SQLite's write lock before the first read."""
    repo.begin_write(session)


def check(
    session: Session,
    events: Sequence[EventIn],
    *,
    actor: User,
    refused: dict[int, RelieflinkError] | None = None,
) -> Batch:
    """Lock and read what ``events`` name, and check them in order (see the module's
    docstring). ``refused``: events already known to be refused (by index), answered so."""
    return _Checker(session, actor, list(events), refused or {}).run()


@dataclass
class _Checker:
    session: Session
    actor: User
    events: list[EventIn]
    refused: dict[int, RelieflinkError]
    batch: Batch = field(init=False)
    stops: dict[int, repo.StopRow] = field(default_factory=dict)
    of_route: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    lines: dict[int, list[repo.LineState]] = field(default_factory=dict)
    known: dict[str, repo.StoredEvent | Accepted] = field(default_factory=dict)
    recent_wrong: int = 0

    def run(self) -> Batch:
        self.batch = Batch(self.actor, [EventAnswer(e.client_event_id) for e in self.events])
        self._read()
        for index, data in enumerate(self.events):
            if index in self.refused:
                self.batch.answers[index].error = self.refused[index]
                continue
            try:
                self._check(index, data, rules.fingerprint(data, self.actor))
            except RelieflinkError as error:
                self.batch.answers[index].error = error
        return self.batch

    def _read(self) -> None:
        """Lock the routes that route and stop events move (in id order), then every parcel
        named or on those routes (in id order, one statement); then the client ids seen
        before, and the lines that loading issues and failures return."""
        events = self.events
        parcel_ids = {e.parcel_id for e in events if e.parcel_id is not None}
        self.stops = repo.stops_by_id(
            self.session, {e.stop_id for e in events if e.parcel_id is None and e.stop_id}
        )
        route_ids = {
            e.route_id
            for e in events
            if e.parcel_id is None and e.stop_id is None and e.route_id is not None
        } | {s.route_id for s in self.stops.values()}
        for row in repo.lock_routes(self.session, route_ids):
            self._route(row.id, row.status, row.carrier_id, row.courier_id)
        delivering = any(e.kind == EventKind.delivered for e in events)
        rows, self.recent_wrong = repo.lock_parcel_states(
            self.session,
            parcel_ids,
            route_ids=self.batch.routes,
            attempts_key=f"pickup:{self.actor.id}" if delivering else None,
            since=clock.now() - codes.WINDOW,
        )
        parcels = self.batch.parcels
        for row in rows:
            parcel = parcels.get(row.id)
            if parcel is None:
                route = None
                if row.route_id is not None:
                    route = self._route(
                        row.route_id, row.route_status, row.carrier_id, row.courier_id
                    )
                    self.of_route[row.route_id].append(row.id)
                parcel = parcels[row.id] = ParcelState(
                    row.id,
                    route,
                    row.stop_id,
                    str(row.status),
                    row.last_seq,
                    row.code_nonce,
                    row.code_hash,
                    row.code_attempts,
                )
            if row.request_id is not None:
                parcel.requests.append(row.request_id)
            if row.allocation_id is not None:
                parcel.allocations.append(row.allocation_id)
        self.known.update(
            repo.events_by_client_id(self.session, [e.client_event_id for e in events])
        )
        moving_stock = {e.parcel_id for e in events if e.kind == EventKind.failed} | {
            p for e in events if e.kind == EventKind.loaded for p in self._targets(e)[2]
        }
        moving_stock.discard(None)
        if moving_stock:
            self.lines = repo.parcel_lines(self.session, [p for p in moving_stock if p])

    def _route(self, route_id: int, status: Any, carrier_id: Any, courier_id: Any) -> Route:
        """A route as read, not attached to the session: what ``access.can_drive`` and the
        checks read of it, shared by every parcel on it."""
        route = self.batch.routes.get(route_id)
        if route is None:
            route = self.batch.routes[route_id] = Route(id=route_id)
            route.status = status
            route.carrier_id = carrier_id
            route.courier_id = courier_id
        return route

    def _targets(self, data: EventIn) -> tuple[Route | None, repo.StopRow | None, list[int]]:
        """The route, stop and parcels an event names (None where not found)."""
        if data.parcel_id is not None:
            parcel = self.batch.parcels.get(data.parcel_id)
            return (parcel.route if parcel else None), None, [data.parcel_id]
        stop = self.stops.get(data.stop_id) if data.stop_id is not None else None
        route_id = stop.route_id if stop is not None else data.route_id
        route = self.batch.routes.get(route_id) if route_id is not None else None
        on_route = self.of_route.get(route.id, []) if route is not None else []
        if stop is not None:
            on_route = [p for p in on_route if self.batch.parcels[p].stop_id == stop.id]
        return route, stop, on_route

    def _check(self, index: int, data: EventIn, fingerprint: str) -> None:
        """The rules in the order every event checks them: target, replay, who may, the
        parcels' state, then what the kind needs."""
        batch = self.batch
        route, stop, targets = self._targets(data)
        if data.parcel_id is not None:
            if data.parcel_id not in batch.parcels:
                raise NotFound(f"no parcel {data.parcel_id}")
            if route is None:
                raise Conflict(f"parcel {data.parcel_id} is not on any route")
        elif data.stop_id is not None and stop is None:
            raise NotFound(f"no stop {data.stop_id}")
        elif route is None:
            raise NotFound(f"no route {data.route_id}")
        assert route is not None
        rules.ensure_route_live(route)
        known = self.known.get(data.client_event_id)
        if isinstance(known, repo.StoredEvent):
            batch.answers[index].outcome = rules.replay(known, fingerprint)
            return
        if known is not None:  # earlier in this batch: answered once it is stored
            rules.ensure_same(data.client_event_id, known.fingerprint, fingerprint)
            batch.replays[index] = known
            return
        parcels = [batch.parcels[p] for p in targets]
        stop_id = stop.id if stop is not None else parcels[0].stop_id if data.parcel_id else None
        rules.ensure_may(self.session, self.actor, route, stop, stop_id, data.kind)
        moving = [p for p in parcels if p.status in rules.FROM[data.kind]]
        if not moving:
            raise rules.refused(data.kind, [p.status for p in parcels])
        accepted = self._kind(index, data, route, stop, moving)
        for parcel in moving:
            parcel.status = rules.TO[data.kind]
            parcel.last_seq += 1
            parcel.moved = True
        accepted.fingerprint = fingerprint
        accepted.stop_id = stop_id
        accepted.seq = moving[0].last_seq if data.parcel_id is not None else 0
        batch.accepted.append(accepted)
        self.known[data.client_event_id] = accepted

    def _kind(
        self,
        index: int,
        data: EventIn,
        route: Route,
        stop: repo.StopRow | None,
        moving: list[ParcelState],
    ) -> Accepted:
        """What each kind checks, then what it will write (nothing is written yet)."""
        batch = self.batch
        accepted = Accepted(index, data, "", route.id, None, 0, [p.id for p in moving])
        kind = data.kind
        if kind == EventKind.loaded:
            lines = [line for p in moving for line in self.lines.get(p.id, [])]
            batch.loads.append(Load(index, lines))
            if route.status == RouteStatus.planned:
                route.status = batch.route_status[route.id] = RouteStatus.loaded
        elif kind == EventKind.departed:
            rules.check_departure(route)
            route.status = batch.route_status[route.id] = RouteStatus.departed
        elif kind == EventKind.arrived:
            assert stop is not None
            batch.arrivals[stop.id] = data.occurred_at or clock.now()
        elif kind == EventKind.handed_off:
            assert stop is not None
            counted = rules.check_hand_off(data)
            batch.handoffs[stop.id] = counted
            accepted.result = {"expected": len(moving), "counted": counted}
            if counted != len(moving):
                batch.discrepancies.append(
                    _Discrepancy(accepted, stop.id, len(moving), counted, data.note)
                )
        elif kind == EventKind.delivered:
            (parcel,) = moving
            self._check_proof(parcel, data)
            parcel.delivered_at = data.occurred_at or clock.now()
            if data.override_reason is not None:
                batch.overrides.append((parcel.id, data.override_reason, data.photo_ref))
            batch.deliveries.append(
                Delivery(index, parcel.id, list(parcel.allocations), list(parcel.requests))
            )
        else:
            (parcel,) = moving
            lines = self.lines.get(parcel.id, [])
            parcel.failure = rules.check_failure(data, lines)
            batch.failures.append(Failure(index, parcel.id, parcel.failure, lines))
        return accepted

    def _check_proof(self, parcel: ParcelState, data: EventIn) -> None:
        try:
            rules.check_proof(parcel, data, actor=self.actor, recent_wrong=self.recent_wrong)
        except rules.CodeRefused:
            parcel.code_attempts += 1
            self.recent_wrong += 1
            self.batch.wrong_codes.append(parcel)
            raise


def store(session: Session, batch: Batch, results: dict[int, dict[str, Any]]) -> list[EventAnswer]:
    """Write what ``batch`` checked (``results``: what the flow's outcomes add to each event's
    answer, by index), set-based, and answer every event."""
    actor = batch.actor
    if batch.wrong_codes:
        repo.set_code_attempts(session, {p.id: p.code_attempts for p in batch.wrong_codes})
        repo.add_login_attempts(session, f"pickup:{actor.id}", len(batch.wrong_codes))
        repo.expire(session, Parcel, [p.id for p in batch.wrong_codes])
    if not batch.accepted:
        return batch.answers
    moved = [p for p in batch.parcels.values() if p.moved]
    delivered = [p for p in moved if p.status == ParcelStatus.delivered]
    failed = [p for p in moved if p.status == ParcelStatus.failed]
    others = [p for p in moved if p.status not in (ParcelStatus.delivered, ParcelStatus.failed)]
    if delivered:
        repo.mark_delivered(
            session,
            actor.id,
            [{"pid": p.id, "seq": p.last_seq, "at": p.delivered_at} for p in delivered],
        )
    if failed:
        repo.mark_failed(
            session,
            [
                {"pid": p.id, "seq": p.last_seq, "why": p.failure.value if p.failure else None}
                for p in failed
            ],
        )
    if others:
        repo.advance_parcels(
            session, [{"pid": p.id, "status": p.status, "seq": p.last_seq} for p in others]
        )
    for parcel_id, reason, photo in batch.overrides:
        repo.set_override(session, parcel_id, reason, photo)
        audit.record(
            session,
            actor=actor,
            action="override",
            entity="parcel",
            entity_id=parcel_id,
            detail={"reason": reason, "photo": photo},
        )
    if batch.route_status:
        repo.set_route_statuses(session, batch.route_status)
    if delivered or failed:
        repo.complete_routes(session, {p.route.id for p in delivered + failed if p.route})
    if batch.arrivals:
        repo.set_stop_arrivals(session, batch.arrivals)
    if batch.handoffs:
        repo.set_stop_handoffs(session, batch.handoffs)
    for d in batch.discrepancies:
        found = repo.add_discrepancy(
            session,
            stop_id=d.stop_id,
            expected=d.expected,
            counted=d.counted,
            note=d.note,
            actor_id=actor.id,
        )
        d.accepted.result["discrepancy_id"] = found
        audit.record(
            session,
            actor=actor,
            action="discrepancy",
            entity="dispatch_stop",
            entity_id=d.stop_id,
            detail={"expected": d.expected, "counted": d.counted},
        )
    _store_events(session, batch, results)
    repo.expire(session, Parcel, [p.id for p in moved])
    return batch.answers


def _store_events(session: Session, batch: Batch, results: dict[int, dict[str, Any]]) -> None:
    now = clock.now()
    rows: list[dict[str, Any]] = []
    for a in batch.accepted:
        data = a.data
        rows.append(
            {
                "client_event_id": data.client_event_id,
                "kind": data.kind.value,
                "parcel_id": data.parcel_id,
                "route_id": a.route_id,
                "stop_id": a.stop_id,
                "seq": a.seq,
                "reason": data.reason.value if data.reason else None,
                "fingerprint": a.fingerprint,
                "actor_id": batch.actor.id,
                "occurred_at": data.occurred_at,
                "recorded_at": now,
                "result": {"parcels": a.parcels, **a.result, **results.get(a.index, {})},
            }
        )
    try:
        ids_of = repo.insert_events(session, rows)
    except IntegrityError:
        # Another request stored one of these client ids meanwhile, for another target (its
        # twin would have waited for our locks): the whole transaction goes.
        raise rules.being_applied(", ".join(str(r["client_event_id"]) for r in rows)) from None
    outcomes: dict[int, EventOutcome] = {}
    for a, row in zip(batch.accepted, rows, strict=True):
        outcome = EventOutcome(
            ids_of[a.data.client_event_id],
            a.data.client_event_id,
            a.data.kind,
            False,
            a.parcels,
            row["result"],
        )
        outcomes[id(a)] = batch.answers[a.index].outcome = outcome
    for index, first in batch.replays.items():
        o = outcomes[id(first)]
        batch.answers[index].outcome = EventOutcome(
            o.event_id, o.client_event_id, o.kind, True, list(o.parcels), o.result
        )
