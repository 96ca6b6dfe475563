"""The registry kinds — organizations, places and the catalog — with their schemas, services and
the roles that may read and write them: one table that the JSON API and the CLI both serve."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from relieflink.catalog import service as catalog
from relieflink.catalog.schemas import (
    ItemCreate,
    ItemFilters,
    ItemRead,
    ItemUpdate,
    KitCreate,
    KitFilters,
    KitRead,
    KitUpdate,
)
from relieflink.models import Role
from relieflink.organizations import service as organizations
from relieflink.organizations.schemas import (
    OrganizationCreate,
    OrganizationFilters,
    OrganizationRead,
    OrganizationUpdate,
)
from relieflink.places import service as places
from relieflink.places.schemas import (
    CommunityCreate,
    CommunityFilters,
    CommunityRead,
    CommunityUpdate,
    DistrictCreate,
    DistrictRead,
    DistrictUpdate,
    NameFilters,
    WarehouseCreate,
    WarehouseRead,
    WarehouseUpdate,
)
from relieflink.teams import service as teams
from relieflink.teams.schemas import TeamCreate, TeamFilters, TeamRead, TeamUpdate
from relieflink.users import access


@dataclass(frozen=True)
class RegistryKind:
    label: str
    read: type[BaseModel]
    create: type[BaseModel]
    update: type[BaseModel]
    filters: type[BaseModel]
    list_fn: Callable[..., tuple[Sequence[Any], int]]
    require_fn: Callable[..., Any]
    create_fn: Callable[..., Any]
    update_fn: Callable[..., Any]
    readers: frozenset[Role] = access.EVERYONE
    writers: frozenset[Role] = access.STAFF
    to_read: Callable[[Any], BaseModel] | None = None

    def show(self, record: Any) -> BaseModel:
        """The record as the API and the CLI show it."""
        return self.to_read(record) if self.to_read else self.read.model_validate(record)


REGISTRY: dict[str, RegistryKind] = {
    "organizations": RegistryKind(
        "organization",
        OrganizationRead,
        OrganizationCreate,
        OrganizationUpdate,
        OrganizationFilters,
        organizations.list_organizations,
        organizations.require_organization,
        organizations.create_organization,
        organizations.update_organization,
    ),
    "districts": RegistryKind(
        "district",
        DistrictRead,
        DistrictCreate,
        DistrictUpdate,
        NameFilters,
        places.list_districts,
        places.require_district,
        places.create_district,
        places.update_district,
    ),
    "communities": RegistryKind(
        "community",
        CommunityRead,
        CommunityCreate,
        CommunityUpdate,
        CommunityFilters,
        places.list_communities,
        places.require_community,
        places.create_community,
        places.update_community,
    ),
    "warehouses": RegistryKind(
        "warehouse",
        WarehouseRead,
        WarehouseCreate,
        WarehouseUpdate,
        NameFilters,
        places.list_warehouses,
        places.require_warehouse,
        places.create_warehouse,
        places.update_warehouse,
        readers=access.LOGISTICS,
    ),
    "items": RegistryKind(
        "item",
        ItemRead,
        ItemCreate,
        ItemUpdate,
        ItemFilters,
        catalog.list_items,
        catalog.require_item,
        catalog.create_item,
        catalog.update_item,
    ),
    "kits": RegistryKind(
        "kit",
        KitRead,
        KitCreate,
        KitUpdate,
        KitFilters,
        catalog.list_kits,
        catalog.require_kit,
        catalog.create_kit,
        catalog.update_kit,
        to_read=catalog.kit_to_read,
    ),
    "teams": RegistryKind(
        "volunteer team",
        TeamRead,
        TeamCreate,
        TeamUpdate,
        TeamFilters,
        teams.list_teams,
        teams.require_team,
        teams.create_team,
        teams.update_team,
        readers=access.TEAM_READERS,
        writers=access.TEAM_WRITERS,
    ),
}
