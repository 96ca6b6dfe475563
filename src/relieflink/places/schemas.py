from __future__ import annotations

from pydantic import Field

from relieflink.common.fields import Code, Id, Latitude, Longitude, Name, NonNegInt, Search
from relieflink.common.schemas import ListQuery, ReadModel, StrictModel
from relieflink.models import LockdownStatus


class DistrictCreate(StrictModel):
    code: Code
    name: Name
    name_zh: Name
    population: NonNegInt = 0
    area_km2: float = Field(default=0.0, ge=0)
    lat: Latitude
    lon: Longitude


class DistrictUpdate(StrictModel):
    name: Name | None = None
    name_zh: Name | None = None
    population: NonNegInt | None = None
    area_km2: float | None = Field(default=None, ge=0)
    lat: Latitude | None = None
    lon: Longitude | None = None


class DistrictRead(ReadModel):
    id: int
    code: str
    name: str
    name_zh: str
    population: int
    area_km2: float
    lat: float
    lon: float


class CommunityCreate(StrictModel):
    code: Code
    name: Name
    name_zh: Name
    district_id: int
    lat: Latitude
    lon: Longitude
    households: NonNegInt = 0
    residents: NonNegInt = 0
    lockdown_status: LockdownStatus = LockdownStatus.open
    vehicles_allowed: bool = True
    committee_id: int | None = None


class CommunityUpdate(StrictModel):
    name: Name | None = None
    name_zh: Name | None = None
    district_id: int | None = None
    lat: Latitude | None = None
    lon: Longitude | None = None
    households: NonNegInt | None = None
    residents: NonNegInt | None = None
    lockdown_status: LockdownStatus | None = None
    vehicles_allowed: bool | None = None
    committee_id: int | None = None


class CommunityRead(ReadModel):
    id: int
    code: str
    name: str
    name_zh: str
    district_id: int
    lat: float
    lon: float
    households: int
    residents: int
    lockdown_status: LockdownStatus
    vehicles_allowed: bool
    committee_id: int | None


class CommunityFilters(ListQuery):
    district_id: Id | None = None
    lockdown_status: LockdownStatus | None = None
    q: Search = None


class WarehouseCreate(StrictModel):
    code: Code
    name: Name
    name_zh: Name
    owner_id: int
    lat: Latitude
    lon: Longitude
    capacity_kg: NonNegInt = 0
    capacity_m3: NonNegInt = 0
    daily_outbound_kg: NonNegInt = 0
    temporary: bool = False


class WarehouseUpdate(StrictModel):
    name: Name | None = None
    name_zh: Name | None = None
    owner_id: int | None = None
    lat: Latitude | None = None
    lon: Longitude | None = None
    capacity_kg: NonNegInt | None = None
    capacity_m3: NonNegInt | None = None
    daily_outbound_kg: NonNegInt | None = None
    temporary: bool | None = None


class WarehouseRead(ReadModel):
    id: int
    code: str
    name: str
    name_zh: str
    owner_id: int
    lat: float
    lon: float
    capacity_kg: int
    capacity_m3: int
    daily_outbound_kg: int
    temporary: bool


class NameFilters(ListQuery):
    q: Search = None
