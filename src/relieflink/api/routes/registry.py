"""Organizations, places and the catalog: the registry every other domain refers to."""

from __future__ import annotations

from fastapi import APIRouter

from relieflink.api.crud import registry_routes
from relieflink.api.deps import CurrentUser, SessionDep
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
    Nutrition,
)
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
from relieflink.users import access

router = APIRouter(tags=["registry"])

registry_routes(
    router,
    path="/organizations",
    label="organization",
    read_schema=OrganizationRead,
    create_schema=OrganizationCreate,
    update_schema=OrganizationUpdate,
    filters_schema=OrganizationFilters,
    list_fn=organizations.list_organizations,
    require_fn=organizations.require_organization,
    create_fn=organizations.create_organization,
    update_fn=organizations.update_organization,
    readers=access.EVERYONE,
    writers=access.STAFF,
)
registry_routes(
    router,
    path="/districts",
    label="district",
    read_schema=DistrictRead,
    create_schema=DistrictCreate,
    update_schema=DistrictUpdate,
    filters_schema=NameFilters,
    list_fn=places.list_districts,
    require_fn=places.require_district,
    create_fn=places.create_district,
    update_fn=places.update_district,
    readers=access.EVERYONE,
    writers=access.STAFF,
)
registry_routes(
    router,
    path="/communities",
    label="community",
    read_schema=CommunityRead,
    create_schema=CommunityCreate,
    update_schema=CommunityUpdate,
    filters_schema=CommunityFilters,
    list_fn=places.list_communities,
    require_fn=places.require_community,
    create_fn=places.create_community,
    update_fn=places.update_community,
    readers=access.EVERYONE,
    writers=access.STAFF,
)
registry_routes(
    router,
    path="/warehouses",
    label="warehouse",
    read_schema=WarehouseRead,
    create_schema=WarehouseCreate,
    update_schema=WarehouseUpdate,
    filters_schema=NameFilters,
    list_fn=places.list_warehouses,
    require_fn=places.require_warehouse,
    create_fn=places.create_warehouse,
    update_fn=places.update_warehouse,
    readers=access.LOGISTICS,
    writers=access.STAFF,
)
registry_routes(
    router,
    path="/items",
    label="item",
    read_schema=ItemRead,
    create_schema=ItemCreate,
    update_schema=ItemUpdate,
    filters_schema=ItemFilters,
    list_fn=catalog.list_items,
    require_fn=catalog.require_item,
    create_fn=catalog.create_item,
    update_fn=catalog.update_item,
    readers=access.EVERYONE,
    writers=access.STAFF,
)
registry_routes(
    router,
    path="/kits",
    label="kit",
    read_schema=KitRead,
    create_schema=KitCreate,
    update_schema=KitUpdate,
    filters_schema=KitFilters,
    list_fn=catalog.list_kits,
    require_fn=catalog.require_kit,
    create_fn=catalog.create_kit,
    update_fn=catalog.update_kit,
    readers=access.EVERYONE,
    writers=access.STAFF,
    to_read=catalog.kit_to_read,
)


@router.get("/kits/{kit_id}/nutrition", response_model=Nutrition)
def kit_nutrition(kit_id: int, session: SessionDep, user: CurrentUser) -> Nutrition:
    """Energy, protein and fat per person-day of a kit, against the Sphere minimum."""
    return catalog.kit_nutrition(catalog.require_kit(session, kit_id))
