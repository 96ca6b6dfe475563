from __future__ import annotations

import itertools

from sqlalchemy.orm import Session

from relieflink.models import Community, User, VolunteerTeam
from relieflink.teams import service as teams
from relieflink.teams.schemas import TeamCreate

_seq = itertools.count(1)


def make_team(
    db: Session, community: Community, *, leader: User | None = None, **overrides: object
) -> VolunteerTeam:
    data = {
        "code": f"T{next(_seq)}",
        "community_id": community.id,
        "leader_id": leader.id if leader else None,
        "headcount": 12,
        "trolley_capacity_kg": 40,
    } | overrides
    return teams.create_team(db, TeamCreate.model_validate(data), actor=None)
