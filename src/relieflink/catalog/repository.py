from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from relieflink.catalog.schemas import ItemFilters, KitFilters
from relieflink.common import repository as common
from relieflink.models import Item, Kit


def get_item(session: Session, item_id: int) -> Item | None:
    return common.get_by_id(session, Item, item_id)


def items_by_sku(session: Session, skus: Iterable[str]) -> dict[str, Item]:
    wanted = list(set(skus))
    if not wanted:
        return {}
    return {i.sku: i for i in session.scalars(select(Item).where(Item.sku.in_(wanted)))}


def kits_by_sku(session: Session, skus: Iterable[str]) -> dict[str, Kit]:
    wanted = list(set(skus))
    if not wanted:
        return {}
    return {k.sku: k for k in session.scalars(select(Kit).where(Kit.sku.in_(wanted)))}


def ids_by_sku(
    session: Session, model: type[Item] | type[Kit], skus: Iterable[str]
) -> dict[str, int]:
    wanted = list(set(skus))
    if not wanted:
        return {}
    return dict(session.execute(select(model.sku, model.id).where(model.sku.in_(wanted))).all())


def list_items(
    session: Session, filters: ItemFilters, *, offset: int, limit: int
) -> tuple[Sequence[Item], int]:
    stmt = select(Item)
    if filters.category is not None:
        stmt = stmt.where(Item.category == filters.category)
    if filters.q:
        like = f"%{filters.q}%"
        stmt = stmt.where(or_(Item.sku.ilike(like), Item.name.ilike(like), Item.name_zh.like(like)))
    return common.page(session, stmt, offset=offset, limit=limit, order_by=Item.id)


def list_kits(
    session: Session, filters: KitFilters, *, offset: int, limit: int
) -> tuple[Sequence[Kit], int]:
    stmt = select(Kit)
    if filters.purpose is not None:
        stmt = stmt.where(Kit.purpose == filters.purpose)
    if filters.q:
        like = f"%{filters.q}%"
        stmt = stmt.where(or_(Kit.sku.ilike(like), Kit.name.ilike(like), Kit.name_zh.like(like)))
    return common.page(session, stmt, offset=offset, limit=limit, order_by=Kit.id)
