"""What a tracking event may do: from which parcel states each kind moves a parcel and where
to, who may post it, what a replay answers, and the proof a delivery needs (the resident's
pickup code, within its attempt limits, or a supervisor's override with a photo).

Every event carries a ``client_event_id``: a retry with the same id and the same content gets
the first answer back (``replayed``) and moves nothing; the same id with other content is
refused. An event that the parcel has already passed (a stale or replayed event under a new
id) is refused and moves nothing. :mod:`relieflink.dispatch.tracking_apply` applies the rules
to a batch; nothing here writes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.orm import Session

from relieflink.dispatch import codes
from relieflink.dispatch import repository as repo
from relieflink.dispatch.schemas import EventIn
from relieflink.errors import (
    Conflict,
    FieldError,
    Forbidden,
    Invalid,
    RelieflinkError,
    TooManyRequests,
)
from relieflink.models import (
    AllocationState,
    EventKind,
    FailureReason,
    InnerMode,
    ParcelStatus,
    Role,
    Route,
    RouteStatus,
    User,
)
from relieflink.teams import service as teams
from relieflink.users import access

# From which parcel states each event may move a parcel, and where to.
FROM: dict[EventKind, tuple[ParcelStatus, ...]] = {
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
TO = {
    EventKind.loaded: ParcelStatus.loaded,
    EventKind.departed: ParcelStatus.departed,
    EventKind.arrived: ParcelStatus.at_gate,
    EventKind.handed_off: ParcelStatus.handed_off,
    EventKind.delivered: ParcelStatus.delivered,
    EventKind.failed: ParcelStatus.failed,
}
# Events a community's volunteer may post at its compounds (the last 100 metres).
_VOLUNTEER_KINDS = (EventKind.handed_off, EventKind.delivered, EventKind.failed)
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


class CodeHolder(Protocol):
    """A parcel's pickup code as a delivery checks it."""

    id: int
    code_nonce: str
    code_hash: str
    code_attempts: int


def fingerprint(data: EventIn, actor: User) -> str:
    """What a replay must match: the event's content (not its code or time) and its sender."""
    body = data.model_dump(mode="json", exclude={"code", "occurred_at"})
    body["actor"] = actor.id
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def refused(kind: EventKind, states: list[str]) -> Conflict:
    allowed = FROM[kind]
    return Conflict(
        f"{kind} refused: the parcels are {', '.join(sorted(set(states)) or ['none'])}; {kind} "
        f"needs {' or '.join(allowed)} (already applied, out of order or replayed)"
    )


def ensure_same(client_event_id: str, known: str, fingerprint: str) -> None:
    """A client event id seen before must come back with the same content."""
    if known != fingerprint:
        raise Conflict(
            f"client event id {client_event_id!r} was already used for another event",
            [FieldError(("client_event_id",), "reused with different content")],
        )


def replay(known: repo.StoredEvent, fingerprint: str) -> EventOutcome:
    ensure_same(known.client_event_id, known.fingerprint, fingerprint)
    return EventOutcome(
        known.id,
        known.client_event_id,
        EventKind(known.kind),
        True,
        list(known.result.get("parcels", [])),
        known.result,
    )


def being_applied(client_event_id: str) -> Conflict:
    # The same client event id applied concurrently to another target: the entry point rolls
    # this transaction back, nothing of ours stays.
    return Conflict(f"event {client_event_id!r} is being applied by another request; retry")


def ensure_route_live(route: Route) -> None:
    if route.status == RouteStatus.cancelled:
        raise Conflict(f"route {route.id} was replaced by a re-plan; use the new route")


def _volunteer_of(session: Session, actor: User, stop: repo.StopRow) -> bool:
    """A community committee's volunteer carries the last 100 metres at its compounds."""
    if actor.role != Role.committee or actor.organization_id is None:
        return False
    committee = repo.committee_of_community(session, stop.community_id)
    return committee == actor.organization_id and stop.inner_mode != InnerMode.courier


def _team_leader_at(session: Session, actor: User, stop: repo.StopRow) -> bool:
    """A volunteer team's leader carries the last 100 metres at the team's own compound."""
    if actor.role != Role.volunteer or stop.inner_mode == InnerMode.courier:
        return False
    return any(t.community_id == stop.community_id for t in teams.teams_led_by(session, actor))


def ensure_may(
    session: Session,
    actor: User,
    route: Route,
    stop: repo.StopRow | None,
    stop_id: int | None,
    kind: EventKind,
) -> None:
    """Raise ``Forbidden`` unless ``actor`` may post ``kind`` here (the stop is read only when
    a volunteer's right depends on it)."""
    if access.can_drive(actor, route):
        return
    if kind in _VOLUNTEER_KINDS and actor.role in (Role.committee, Role.volunteer):
        if stop is None and stop_id is not None:
            stop = repo.stops_by_id(session, [stop_id]).get(stop_id)
        if stop is not None and (
            _volunteer_of(session, actor, stop) or _team_leader_at(session, actor, stop)
        ):
            return
    raise Forbidden(f"route {route.id} is not yours: only its courier or carrier may post events")


def check_departure(route: Route) -> None:
    if route.status not in (RouteStatus.loaded, RouteStatus.departed):
        raise Conflict(f"route {route.id} is {route.status}: load it before it departs")


def check_hand_off(data: EventIn) -> int:
    """The count of parcels a hand-off gives."""
    if data.counted is None:
        raise Invalid(
            "a hand-off gives the count of parcels handed over",
            [FieldError(("counted",), "required")],
        )
    return data.counted


def check_proof(parcel: CodeHolder, data: EventIn, *, actor: User, recent_wrong: int) -> None:
    """Proof of delivery: the resident's code, or a supervisor's override with a reason. A wrong
    code raises :class:`CodeRefused` (the caller counts the attempt)."""
    if data.override_reason is not None:
        if actor.role not in access.STAFF:
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
    if recent_wrong >= codes.MAX_PER_ACTOR:
        raise TooManyRequests("too many wrong pickup codes from this account; wait a while")
    if not codes.matches(parcel.code_nonce, data.code, parcel.code_hash):
        left = codes.MAX_ATTEMPTS - parcel.code_attempts - 1
        raise CodeRefused(
            f"wrong pickup code for parcel {parcel.id}; {left} attempts left",
            [FieldError(("code",), "does not match")],
        )


def check_failure(data: EventIn, lines: list[repo.LineState]) -> FailureReason:
    """A failure names its reason, and every allocation its parcel carries can go back
    (reserved, or already returned)."""
    if data.reason is None:
        raise Invalid(
            "a failed delivery needs a reason",
            [FieldError(("reason",), ", ".join(r.value for r in FailureReason))],
        )
    for line in lines:
        if line.state not in (AllocationState.reserved, AllocationState.returned):
            raise Conflict(
                f"allocation {line.allocation_id} is {line.state}; it cannot be returned"
            )
    return FailureReason(data.reason)
