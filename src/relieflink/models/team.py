"""Volunteer teams: a compound's residents who carry parcels the last 100 m from its gate.

A team is the compound's last-leg capacity, based at the gate: it has no carrier and no depot
warehouse, so it is not a fleet row. Its committee is the compound's committee
(``Community.committee_id``); it is not stored twice.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from relieflink.db import Base, TimestampMixin


class VolunteerTeam(TimestampMixin, Base):
    """One compound's volunteer team and its leader (a user with the ``volunteer`` role)."""

    __tablename__ = "volunteer_teams"
    __table_args__ = (
        CheckConstraint("headcount > 0", name="headcount_pos"),
        CheckConstraint("trolley_capacity_kg >= 0", name="trolley_nonneg"),
        CheckConstraint("shift_end_s > shift_start_s", name="shift_order"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"), unique=True)
    leader_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    headcount: Mapped[int]
    # What one volunteer moves per trip (a trolley or a hand cart), in kg.
    trolley_capacity_kg: Mapped[int]
    shift_start_s: Mapped[int] = mapped_column(default=8 * 3600)
    shift_end_s: Mapped[int] = mapped_column(default=20 * 3600)
    active: Mapped[bool] = mapped_column(default=True)


class TeamAvailability(Base):
    """How many of a team's members can work on one day (others in quarantine or ill)."""

    __tablename__ = "volunteer_team_availability"
    __table_args__ = (
        UniqueConstraint("team_id", "day"),
        CheckConstraint("available >= 0", name="available_nonneg"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("volunteer_teams.id", ondelete="CASCADE"))
    day: Mapped[date]
    available: Mapped[int]
    note: Mapped[str | None] = mapped_column(Text)
