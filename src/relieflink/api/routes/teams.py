"""Volunteer teams' daily availability (the teams themselves are registry records: see
``api/routes/registry.py``, path ``/teams``)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter

from relieflink.api.deps import SessionDep, require_role
from relieflink.common.fields import Id
from relieflink.models import User
from relieflink.teams import service as teams
from relieflink.teams.schemas import AvailabilityRead, AvailabilitySet
from relieflink.users import access

router = APIRouter(prefix="/teams", tags=["registry"])


@router.get("/{team_id}/availability/{day}", response_model=AvailabilityRead)
def read_availability(
    team_id: Id,
    day: date,
    session: SessionDep,
    user: Annotated[User, require_role(access.TEAM_READERS)],
) -> AvailabilityRead:
    """How many of the team's members can work that day (the headcount if none was recorded)."""
    return AvailabilityRead.model_validate(teams.availability_on(session, team_id, day))


@router.put("/{team_id}/availability/{day}", response_model=AvailabilityRead)
def set_availability(
    team_id: Id,
    day: date,
    body: AvailabilitySet,
    session: SessionDep,
    user: Annotated[User, require_role(access.TEAM_AVAILABILITY_WRITERS)],
) -> AvailabilityRead:
    """Record how many members can work that day (a leader, for its own team only)."""
    return AvailabilityRead.model_validate(
        teams.set_availability(session, team_id, day, body, actor=user)
    )
