from __future__ import annotations

from datetime import date
from typing import Annotated, Self

from pydantic import Field, model_validator

from relieflink.common.fields import Code, Id, NonNegInt, PositiveInt, Search
from relieflink.common.schemas import ListQuery, ReadModel, StrictModel

DaySeconds = Annotated[int, Field(ge=0, le=24 * 3600, description="seconds after midnight")]


class TeamCreate(StrictModel):
    code: Code
    community_id: int
    leader_id: int | None = None
    headcount: PositiveInt
    trolley_capacity_kg: NonNegInt
    shift_start_s: DaySeconds = 8 * 3600
    shift_end_s: DaySeconds = 20 * 3600
    active: bool = True

    @model_validator(mode="after")
    def _shift_in_order(self) -> Self:
        if self.shift_end_s <= self.shift_start_s:
            raise ValueError("shift_end_s must be after shift_start_s")
        return self


class TeamUpdate(StrictModel):
    leader_id: int | None = None
    headcount: PositiveInt | None = None
    trolley_capacity_kg: NonNegInt | None = None
    shift_start_s: DaySeconds | None = None
    shift_end_s: DaySeconds | None = None
    active: bool | None = None


class TeamRead(ReadModel):
    id: int
    code: str
    community_id: int
    leader_id: int | None
    headcount: int
    trolley_capacity_kg: int
    shift_start_s: int
    shift_end_s: int
    active: bool


class TeamFilters(ListQuery):
    community_id: Id | None = None
    committee_id: Id | None = None
    active: bool | None = None
    q: Search = None


class AvailabilitySet(StrictModel):
    available: NonNegInt
    note: str | None = Field(default=None, max_length=500)


class AvailabilityRead(ReadModel):
    team_id: int
    day: date
    available: int
    note: str | None
