from __future__ import annotations

from typing import Annotated

from pydantic import Field

from relieflink.common.fields import Code, Name, Search
from relieflink.common.schemas import ListQuery, ReadModel, StrictModel
from relieflink.models import OrgKind

Country = Annotated[
    str, Field(min_length=2, max_length=2, pattern=r"^[A-Z]{2}$", description="ISO 3166 alpha-2")
]


class OrganizationCreate(StrictModel):
    code: Code
    kind: OrgKind
    name: Name
    name_zh: str | None = Field(default=None, max_length=200)
    country: Country
    contact: str | None = Field(default=None, max_length=200)
    address: str | None = Field(default=None, max_length=300)


class OrganizationUpdate(StrictModel):
    kind: OrgKind | None = None
    name: Name | None = None
    name_zh: str | None = Field(default=None, max_length=200)
    country: Country | None = None
    contact: str | None = Field(default=None, max_length=200)
    address: str | None = Field(default=None, max_length=300)


class OrganizationRead(ReadModel):
    id: int
    code: str
    kind: OrgKind
    name: str
    name_zh: str | None
    country: str
    contact: str | None
    address: str | None


class OrganizationFilters(ListQuery):
    kind: OrgKind | None = None
    q: Search = None
