from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from relieflink.common.fields import Code, Id, NonNegInt, PositiveInt, Search
from relieflink.common.schemas import ListQuery, ReadModel, StrictModel
from relieflink.households.vulnerability import VULNERABLE

Phone = Field(default=None, max_length=40, pattern=r"^\+?[0-9 ()-]{5,40}$")


class HouseholdMembers(StrictModel):
    size: PositiveInt | None = None
    infants: NonNegInt | None = None
    pregnant: NonNegInt | None = None
    chronic: NonNegInt | None = None
    elderly_80: NonNegInt | None = None
    disabled: NonNegInt | None = None

    @model_validator(mode="after")
    def _counts_fit_size(self) -> Self:
        if self.size is None:
            return self
        for name in VULNERABLE:
            value = getattr(self, name)
            if value is not None and value > self.size:
                raise ValueError(f"{name} ({value}) is more than the household size ({self.size})")
        if self.infants is not None and self.infants >= self.size:
            raise ValueError(
                "a household of infants only needs at least one carer (size > infants)"
            )
        return self


class HouseholdCreate(HouseholdMembers):
    code: Code
    community_id: int
    building: str | None = Field(default=None, max_length=40)
    unit: str | None = Field(default=None, max_length=40)
    size: PositiveInt
    infants: NonNegInt = 0
    pregnant: NonNegInt = 0
    chronic: NonNegInt = 0
    elderly_80: NonNegInt = 0
    disabled: NonNegInt = 0
    phone: str | None = Phone


class HouseholdUpdate(HouseholdMembers):
    community_id: int | None = None
    building: str | None = Field(default=None, max_length=40)
    unit: str | None = Field(default=None, max_length=40)
    phone: str | None = Phone


class HouseholdListItem(ReadModel):
    """A household as lists show it: no phone at all."""

    id: int
    code: str
    community_id: int
    building: str | None
    unit: str | None
    size: int
    infants: int
    pregnant: int
    chronic: int
    elderly_80: int
    disabled: int


class HouseholdRead(HouseholdListItem):
    """One household: the phone masked to its last four digits."""

    phone_masked: str | None


class HouseholdContact(ReadModel):
    id: int
    phone: str | None


class HouseholdFilters(ListQuery):
    community_id: Id | None = None
    community: Search = Field(
        default=None, description="a community's code or name (either language)"
    )
    vulnerable: bool | None = Field(
        default=None, description="any infant, pregnancy, chronic, 80+ or disabled member"
    )
    q: Search = None
