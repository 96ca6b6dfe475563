from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from relieflink.common import crud
from relieflink.models import Community, District, Organization, User, Warehouse
from relieflink.places import repository
from relieflink.places.schemas import (
    CommunityCreate,
    CommunityFilters,
    CommunityUpdate,
    DistrictCreate,
    DistrictUpdate,
    NameFilters,
    WarehouseCreate,
    WarehouseUpdate,
)

_COMMUNITY_REFS = {"district_id": District, "committee_id": Organization}
_WAREHOUSE_REFS = {"owner_id": Organization}


def require_district(session: Session, district_id: int) -> District:
    """The district with this id; ``NotFound`` if there is none."""
    return crud.require(session, District, district_id, label="district")


def create_district(session: Session, data: DistrictCreate, *, actor: User | None) -> District:
    """Register a district."""
    return crud.create(session, District, data, actor=actor, entity="district")


def update_district(
    session: Session, district_id: int, data: DistrictUpdate, *, actor: User | None
) -> District:
    """Change a district."""
    return crud.update(
        session, require_district(session, district_id), data, actor=actor, entity="district"
    )


def list_districts(
    session: Session, filters: NameFilters, *, offset: int = 0, limit: int = 50
) -> tuple[Sequence[District], int]:
    """One page of districts."""
    return repository.list_districts(session, filters, offset=offset, limit=limit)


def get_community(session: Session, community_id: int) -> Community | None:
    """The community with this id, or None."""
    return session.get(Community, community_id)


def require_community(session: Session, community_id: int) -> Community:
    """The community with this id; ``NotFound`` if there is none."""
    return crud.require(session, Community, community_id, label="community")


def create_community(session: Session, data: CommunityCreate, *, actor: User | None) -> Community:
    """Register a residential community (compound) and its gate."""
    return crud.create(
        session, Community, data, actor=actor, entity="community", refs=_COMMUNITY_REFS
    )


def update_community(
    session: Session, community_id: int, data: CommunityUpdate, *, actor: User | None
) -> Community:
    """Change a community, e.g. its lockdown status."""
    community = require_community(session, community_id)
    return crud.update(
        session, community, data, actor=actor, entity="community", refs=_COMMUNITY_REFS
    )


def list_communities(
    session: Session, filters: CommunityFilters, *, offset: int = 0, limit: int = 50
) -> tuple[Sequence[Community], int]:
    """One page of communities."""
    return repository.list_communities(session, filters, offset=offset, limit=limit)


def require_warehouse(session: Session, warehouse_id: int) -> Warehouse:
    """The warehouse with this id; ``NotFound`` if there is none."""
    return crud.require(session, Warehouse, warehouse_id, label="warehouse")


def create_warehouse(session: Session, data: WarehouseCreate, *, actor: User | None) -> Warehouse:
    """Register a warehouse or hub."""
    return crud.create(
        session, Warehouse, data, actor=actor, entity="warehouse", refs=_WAREHOUSE_REFS
    )


def update_warehouse(
    session: Session, warehouse_id: int, data: WarehouseUpdate, *, actor: User | None
) -> Warehouse:
    """Change a warehouse."""
    warehouse = require_warehouse(session, warehouse_id)
    return crud.update(
        session, warehouse, data, actor=actor, entity="warehouse", refs=_WAREHOUSE_REFS
    )


def list_warehouses(
    session: Session, filters: NameFilters, *, offset: int = 0, limit: int = 50
) -> tuple[Sequence[Warehouse], int]:
    """One page of warehouses."""
    return repository.list_warehouses(session, filters, offset=offset, limit=limit)
