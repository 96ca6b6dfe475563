from __future__ import annotations

from typing import Annotated, Self

from pydantic import Field, model_validator

from relieflink.common.fields import Code, Name, NonNegInt, PositiveInt, Search
from relieflink.common.schemas import ListQuery, ReadModel, StrictModel
from relieflink.models import ItemCategory, KitPurpose

# A Harmonized System code: 6 digits (international), optionally 8-10 (national), as 1006.30.
HsCode = Annotated[str, Field(pattern=r"^\d{4}\.\d{2}(\d{2}){0,2}$", max_length=12)]


class ItemCreate(StrictModel):
    sku: Code
    name: Name
    name_zh: Name
    category: ItemCategory
    unit: str = Field(min_length=1, max_length=20)
    grams_per_unit: NonNegInt = 0
    ml_per_unit: NonNegInt = 0
    kcal_per_unit: NonNegInt = 0
    protein_g_per_unit: NonNegInt = 0
    fat_g_per_unit: NonNegInt = 0
    shelf_life_days: PositiveInt | None = None
    cold_chain: bool = False
    prescription_only: bool = False
    hs_code: HsCode | None = None
    gross_grams_per_unit: NonNegInt | None = None

    @model_validator(mode="after")
    def _gross_at_least_net(self) -> Self:
        if (
            self.gross_grams_per_unit is not None
            and self.gross_grams_per_unit < self.grams_per_unit
        ):
            raise ValueError("gross_grams_per_unit is less than grams_per_unit (net)")
        return self


class ItemUpdate(StrictModel):
    name: Name | None = None
    name_zh: Name | None = None
    category: ItemCategory | None = None
    unit: str | None = Field(default=None, min_length=1, max_length=20)
    grams_per_unit: NonNegInt | None = None
    ml_per_unit: NonNegInt | None = None
    kcal_per_unit: NonNegInt | None = None
    protein_g_per_unit: NonNegInt | None = None
    fat_g_per_unit: NonNegInt | None = None
    shelf_life_days: PositiveInt | None = None
    cold_chain: bool | None = None
    prescription_only: bool | None = None
    hs_code: HsCode | None = None
    gross_grams_per_unit: NonNegInt | None = None


class ItemRead(ReadModel):
    id: int
    sku: str
    name: str
    name_zh: str
    category: ItemCategory
    unit: str
    grams_per_unit: int
    ml_per_unit: int
    kcal_per_unit: int
    protein_g_per_unit: int
    fat_g_per_unit: int
    shelf_life_days: int | None
    cold_chain: bool
    prescription_only: bool
    hs_code: str | None
    gross_grams_per_unit: int | None


class ItemFilters(ListQuery):
    category: ItemCategory | None = None
    q: Search = None


class KitLineIn(StrictModel):
    item_sku: Code
    quantity: PositiveInt


class KitCreate(StrictModel):
    sku: Code
    name: Name
    name_zh: Name
    purpose: KitPurpose
    persons: PositiveInt = 1
    days: PositiveInt = 7
    hs_code: HsCode | None = None
    lines: list[KitLineIn] = Field(min_length=1)


class KitUpdate(StrictModel):
    name: Name | None = None
    name_zh: Name | None = None
    purpose: KitPurpose | None = None
    persons: PositiveInt | None = None
    days: PositiveInt | None = None
    hs_code: HsCode | None = None
    lines: list[KitLineIn] | None = Field(default=None, min_length=1)


class KitLineRead(ReadModel):
    item_id: int
    item_sku: str
    item_name: str
    item_name_zh: str
    quantity: int


class KitRead(ReadModel):
    id: int
    sku: str
    name: str
    name_zh: str
    purpose: KitPurpose
    persons: int
    days: int
    hs_code: str | None
    lines: list[KitLineRead]
    grams: int


class KitFilters(ListQuery):
    purpose: KitPurpose | None = None
    q: Search = None


class Nutrition(ReadModel):
    """A kit's nutrition per person per day, and the share of the Sphere minimum it meets."""

    kit_sku: str
    persons: int
    days: int
    kcal_per_person_day: float
    protein_g_per_person_day: float
    fat_g_per_person_day: float
    kcal_share_of_sphere: float
    protein_share_of_sphere: float
    fat_share_of_sphere: float
    meets_sphere_energy: bool
