from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from relieflink.common import repository as common
from relieflink.models import Community, TeamAvailability, User, VolunteerTeam
from relieflink.teams.schemas import TeamFilters


def list_teams(
    session: Session, filters: TeamFilters, *, offset: int, limit: int
) -> tuple[Sequence[VolunteerTeam], int]:
    stmt = select(VolunteerTeam)
    if filters.community_id is not None:
        stmt = stmt.where(VolunteerTeam.community_id == filters.community_id)
    if filters.committee_id is not None:
        stmt = stmt.join(Community, Community.id == VolunteerTeam.community_id).where(
            Community.committee_id == filters.committee_id
        )
    if filters.active is not None:
        stmt = stmt.where(VolunteerTeam.active == filters.active)
    if filters.q:
        stmt = stmt.where(VolunteerTeam.code.ilike(f"%{filters.q}%"))
    return common.page(session, stmt, offset=offset, limit=limit, order_by=VolunteerTeam.id)


def team_of_community(session: Session, community_id: int) -> VolunteerTeam | None:
    stmt = select(VolunteerTeam).where(VolunteerTeam.community_id == community_id)
    return session.scalars(stmt).one_or_none()


def teams_led_by(session: Session, user_id: int) -> Sequence[VolunteerTeam]:
    stmt = select(VolunteerTeam).where(VolunteerTeam.leader_id == user_id)
    return session.scalars(stmt.order_by(VolunteerTeam.id)).all()


def active_teams(session: Session, community_ids: Iterable[int] | None) -> Sequence[VolunteerTeam]:
    stmt = select(VolunteerTeam).where(VolunteerTeam.active.is_(True))
    if community_ids is not None:
        stmt = stmt.where(VolunteerTeam.community_id.in_(list(community_ids)))
    return session.scalars(stmt.order_by(VolunteerTeam.id)).all()


def availability(session: Session, team_id: int, day: date) -> TeamAvailability | None:
    stmt = select(TeamAvailability).where(
        TeamAvailability.team_id == team_id, TeamAvailability.day == day
    )
    return session.scalars(stmt).one_or_none()


def availability_by_team(session: Session, team_ids: Iterable[int], day: date) -> dict[int, int]:
    ids = list(team_ids)
    if not ids:
        return {}
    stmt = select(TeamAvailability.team_id, TeamAvailability.available).where(
        TeamAvailability.team_id.in_(ids), TeamAvailability.day == day
    )
    return {row.team_id: row.available for row in session.execute(stmt)}


def all_teams(session: Session) -> Sequence[VolunteerTeam]:
    return session.scalars(select(VolunteerTeam).order_by(VolunteerTeam.id)).all()


def existing_communities(session: Session, ids: Iterable[int]) -> set[int]:
    wanted = list(set(ids))
    if not wanted:
        return set()
    return set(session.scalars(select(Community.id).where(Community.id.in_(wanted))))


def team_codes_by_community(session: Session, community_ids: Iterable[int]) -> dict[int, str]:
    wanted = list(set(community_ids))
    if not wanted:
        return {}
    stmt = select(VolunteerTeam.community_id, VolunteerTeam.code).where(
        VolunteerTeam.community_id.in_(wanted)
    )
    return {row.community_id: row.code for row in session.execute(stmt)}


def users_by_id(session: Session, ids: Iterable[int]) -> dict[int, User]:
    wanted = list(set(ids))
    if not wanted:
        return {}
    return {u.id: u for u in session.scalars(select(User).where(User.id.in_(wanted)))}
