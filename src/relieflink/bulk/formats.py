"""The file formats: which columns each kind has, and how codes in files map to row ids.

Columns (listed once, in :mod:`relieflink.columns`) are the fields of the kind's ``*Create``
schema, with each foreign key id replaced by the referenced row's code (``community_id`` →
``community_code``); a test keeps the two equal. A column whose field has a default may be left
out of a file. Validation reuses the ``*Create`` schemas, so a file row is checked by exactly the
rules the API applies.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from sqlalchemy.orm import Session

from relieflink import columns
from relieflink.catalog.schemas import ItemCreate
from relieflink.db import Base
from relieflink.donations.schemas import ProgramCreate
from relieflink.households.schemas import HouseholdCreate
from relieflink.models import (
    Community,
    District,
    Household,
    Item,
    Organization,
    Program,
    User,
    VolunteerTeam,
    Warehouse,
)
from relieflink.organizations.schemas import OrganizationCreate
from relieflink.places.schemas import CommunityCreate, DistrictCreate, WarehouseCreate
from relieflink.teams import service as teams
from relieflink.teams.schemas import TeamCreate


@dataclass(frozen=True)
class Ref:
    """A foreign key written in files as the referenced row's code."""

    field: str
    model: type[Base]
    key: str = "code"  # the referenced row's column that files write (users: ``username``)

    @property
    def column(self) -> str:
        return f"{self.field.removesuffix('_id')}_{self.key}"


# A kind's own rules across rows and the database (one record per compound, say), beyond what
# its schema checks row by row: the rows (ids resolved) → (row index, field, reason) per problem.
RowCheck = Callable[[Session, Sequence[Mapping[str, Any]]], list[tuple[int, str, str]]]


@dataclass(frozen=True)
class Format:
    kind: str
    model: type[Base]
    schema: type[BaseModel]
    header: tuple[str, ...]  # the columns in file order, from relieflink.columns
    key: str = "code"
    refs: tuple[Ref, ...] = ()
    check_rows: RowCheck | None = None

    @property
    def columns(self) -> list[str]:
        return list(self.header)

    @property
    def fields(self) -> list[str]:
        """The schema's field behind each column, in file order."""
        by_column = {ref.column: ref.field for ref in self.refs}
        return [by_column.get(name, name) for name in self.header]

    @property
    def required_columns(self) -> set[str]:
        by_field = {ref.field: ref.column for ref in self.refs}
        return {
            by_field.get(name, name)
            for name, info in self.schema.model_fields.items()
            if info.is_required()
        }


FORMATS: dict[str, Format] = {
    f.kind: f
    for f in (
        Format("organizations", Organization, OrganizationCreate, columns.ORGANIZATIONS),
        Format("districts", District, DistrictCreate, columns.DISTRICTS),
        Format(
            "communities",
            Community,
            CommunityCreate,
            columns.COMMUNITIES,
            refs=(Ref("district_id", District), Ref("committee_id", Organization)),
        ),
        Format(
            "warehouses",
            Warehouse,
            WarehouseCreate,
            columns.WAREHOUSES,
            refs=(Ref("owner_id", Organization),),
        ),
        Format(
            "households",
            Household,
            HouseholdCreate,
            columns.HOUSEHOLDS,
            refs=(Ref("community_id", Community),),
        ),
        Format("items", Item, ItemCreate, columns.ITEMS, key="sku"),
        Format(
            "programs",
            Program,
            ProgramCreate,
            columns.PROGRAMS,
            refs=(Ref("organization_id", Organization),),
        ),
        Format(
            "teams",
            VolunteerTeam,
            TeamCreate,
            columns.TEAMS,
            refs=(Ref("community_id", Community), Ref("leader_id", User, key="username")),
            check_rows=teams.row_problems,
        ),
    )
}
