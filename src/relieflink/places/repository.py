from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from relieflink.common import repository as common
from relieflink.models import Community, District, Warehouse
from relieflink.places.schemas import CommunityFilters, NameFilters

Place = TypeVar("Place", District, Community, Warehouse)


def _search(
    stmt: Select[Place], model: type[District | Community | Warehouse], q: str | None
) -> Select[Place]:
    if not q:
        return stmt
    like = f"%{q}%"
    return stmt.where(or_(model.code.ilike(like), model.name.ilike(like), model.name_zh.like(like)))


def list_districts(
    session: Session, filters: NameFilters, *, offset: int, limit: int
) -> tuple[Sequence[District], int]:
    stmt = _search(select(District), District, filters.q)
    return common.page(session, stmt, offset=offset, limit=limit, order_by=District.id)


def list_communities(
    session: Session, filters: CommunityFilters, *, offset: int, limit: int
) -> tuple[Sequence[Community], int]:
    stmt = _search(select(Community), Community, filters.q)
    if filters.district_id is not None:
        stmt = stmt.where(Community.district_id == filters.district_id)
    if filters.lockdown_status is not None:
        stmt = stmt.where(Community.lockdown_status == filters.lockdown_status)
    return common.page(session, stmt, offset=offset, limit=limit, order_by=Community.id)


def list_warehouses(
    session: Session, filters: NameFilters, *, offset: int, limit: int
) -> tuple[Sequence[Warehouse], int]:
    stmt = _search(select(Warehouse), Warehouse, filters.q)
    return common.page(session, stmt, offset=offset, limit=limit, order_by=Warehouse.id)
