from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from relieflink.audit import service as audit
from relieflink.common import crud
from relieflink.errors import Conflict, FieldError, Forbidden, Invalid
from relieflink.models import Role, TeamAvailability, User, VolunteerTeam
from relieflink.teams import repository
from relieflink.teams.schemas import AvailabilitySet, TeamCreate, TeamFilters, TeamUpdate


@dataclass(frozen=True)
class TeamDay:
    """A team as the planner sees it on one day: members at work, each with one trolley."""

    team_id: int
    code: str
    community_id: int
    available: int
    trolley_capacity_kg: int
    shift_start_s: int
    shift_end_s: int

    @property
    def capacity_kg(self) -> int:
        """What the team can carry in one trip of all its members at work."""
        return self.available * self.trolley_capacity_kg


def get_team(session: Session, team_id: int) -> VolunteerTeam | None:
    """The team with this id, or None."""
    return session.get(VolunteerTeam, team_id)


def require_team(session: Session, team_id: int) -> VolunteerTeam:
    """The team with this id; ``NotFound`` if there is none."""
    return crud.require(session, VolunteerTeam, team_id, label="volunteer team")


def team_of_community(session: Session, community_id: int) -> VolunteerTeam | None:
    """The volunteer team of a compound, or None if it has none."""
    return repository.team_of_community(session, community_id)


def teams_led_by(session: Session, user: User) -> Sequence[VolunteerTeam]:
    """The teams this user leads (none unless the user has the ``volunteer`` role)."""
    if user.role != Role.volunteer:
        return []
    return repository.teams_led_by(session, user.id)


def list_teams(
    session: Session, filters: TeamFilters, *, offset: int = 0, limit: int = 50
) -> tuple[Sequence[VolunteerTeam], int]:
    """One page of volunteer teams."""
    return repository.list_teams(session, filters, offset=offset, limit=limit)


def _leader_problem(leader: User | None, leader_id: int) -> str | None:
    if leader is None:
        return f"no user with id {leader_id}"
    if leader.role != Role.volunteer:
        return (
            f"user {leader.username!r} is a {leader.role}; a team's leader has the volunteer role"
        )
    return None


def _problems(
    session: Session, rows: Sequence[Mapping[str, Any]]
) -> list[tuple[int, str, str, bool]]:
    """Each problem as (row index, field, reason, is a conflict with an existing record)."""
    community_ids = [r["community_id"] for r in rows if r.get("community_id") is not None]
    existing = repository.existing_communities(session, community_ids)
    taken = repository.team_codes_by_community(session, community_ids)
    leaders = repository.users_by_id(
        session, (r["leader_id"] for r in rows if r.get("leader_id") is not None)
    )
    problems: list[tuple[int, str, str, bool]] = []
    seen: set[int] = set()
    for index, row in enumerate(rows):
        community_id = row.get("community_id")
        if community_id is not None:
            if community_id not in existing:
                problems.append(
                    (index, "community_id", f"no community with id {community_id}", False)
                )
            elif community_id in seen:
                reason = "an earlier row gives this compound a team already"
                problems.append((index, "community_id", reason, False))
            elif taken.get(community_id, row.get("code")) != row.get("code"):
                reason = f"the compound has a team already: {taken[community_id]}"
                problems.append((index, "community_id", reason, True))
            seen.add(community_id)
        leader_id = row.get("leader_id")
        if leader_id is not None:
            wrong = _leader_problem(leaders.get(leader_id), leader_id)
            if wrong is not None:
                problems.append((index, "leader_id", wrong, False))
    return problems


def row_problems(session: Session, rows: Sequence[Mapping[str, Any]]) -> list[tuple[int, str, str]]:
    """What is wrong with teams about to be written (one team per compound, in the rows and in
    the database; an existing compound; a leader with the volunteer role), per row index and
    field. The registry's import and :func:`create_team` both check through this."""
    return [(index, field, reason) for index, field, reason, _ in _problems(session, rows)]


def _refuse(session: Session, row: Mapping[str, Any]) -> None:
    problems = _problems(session, [row])
    if not problems:
        return
    errors = [FieldError((field,), reason) for _, field, reason, _ in problems]
    if any(conflict for *_, conflict in problems):
        raise Conflict("this compound has a volunteer team already", errors)
    raise Invalid("the volunteer team is not valid", errors)


def create_team(session: Session, data: TeamCreate, *, actor: User | None) -> VolunteerTeam:
    """Register a compound's volunteer team (one per compound)."""
    _refuse(session, data.model_dump())
    return crud.create(session, VolunteerTeam, data, actor=actor, entity="volunteer_team")


def update_team(
    session: Session, team_id: int, data: TeamUpdate, *, actor: User | None
) -> VolunteerTeam:
    """Change a team: its leader, headcount, trolley capacity or shift."""
    team = require_team(session, team_id)
    changes = data.model_dump(exclude_unset=True)
    if changes.get("leader_id") is not None:
        _refuse(session, {"leader_id": changes["leader_id"]})
    start = changes.get("shift_start_s", team.shift_start_s)
    end = changes.get("shift_end_s", team.shift_end_s)
    if end <= start:
        raise Invalid(
            "the shift must end after it starts",
            [FieldError(("shift_end_s",), "must be after shift_start_s")],
        )
    for field in ("headcount", "trolley_capacity_kg"):
        if field in changes and changes[field] is None:
            raise Invalid("a required value is missing", [FieldError((field,), "may not be null")])
    return crud.update(session, team, data, actor=actor, entity="volunteer_team")


def available_members(session: Session, team: VolunteerTeam, day: date) -> int:
    """Members able to work on ``day``: the day's record, else the whole headcount."""
    row = repository.availability(session, team.id, day)
    return team.headcount if row is None else min(row.available, team.headcount)


def set_availability(
    session: Session, team_id: int, day: date, data: AvailabilitySet, *, actor: User | None
) -> TeamAvailability:
    """Record how many of a team's members can work on ``day`` (others in quarantine)."""
    team = require_team(session, team_id)
    if actor is not None and actor.role == Role.volunteer and team.leader_id != actor.id:
        raise Forbidden(f"you do not lead volunteer team {team.code}")
    if data.available > team.headcount:
        raise Invalid(
            "more members available than the team has",
            [FieldError(("available",), f"at most the headcount, {team.headcount}")],
        )
    row = repository.availability(session, team.id, day)
    if row is None:
        row = TeamAvailability(team_id=team.id, day=day, available=data.available)
        session.add(row)
    row.available = data.available
    row.note = data.note
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="availability",
        entity="volunteer_team",
        entity_id=team.id,
        detail={"day": day.isoformat(), "available": data.available},
    )
    return row


def availability_on(session: Session, team_id: int, day: date) -> TeamAvailability:
    """The team's availability on ``day`` (unsaved, full headcount, if none was recorded)."""
    team = require_team(session, team_id)
    row = repository.availability(session, team.id, day)
    if row is not None:
        return row
    return TeamAvailability(team_id=team.id, day=day, available=team.headcount, note=None)


def team_days(
    session: Session, *, day: date, community_ids: Iterable[int] | None = None
) -> dict[int, TeamDay]:
    """Each active team's capacity on ``day``, by community id (all compounds if none given)."""
    teams = repository.active_teams(session, community_ids)
    recorded = repository.availability_by_team(session, (t.id for t in teams), day)
    return {
        t.community_id: TeamDay(
            team_id=t.id,
            code=t.code,
            community_id=t.community_id,
            available=min(recorded.get(t.id, t.headcount), t.headcount),
            trolley_capacity_kg=t.trolley_capacity_kg,
            shift_start_s=t.shift_start_s,
            shift_end_s=t.shift_end_s,
        )
        for t in teams
    }
