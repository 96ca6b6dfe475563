from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from relieflink.common import repository as common
from relieflink.households.schemas import HouseholdFilters
from relieflink.households.vulnerability import any_vulnerable
from relieflink.models import Community, Household


def filtered(filters: HouseholdFilters) -> Select[Household]:
    stmt = select(Household)
    if filters.community_id is not None:
        stmt = stmt.where(Household.community_id == filters.community_id)
    if filters.community:
        pattern = f"%{filters.community}%"
        named = select(Community.id).where(
            or_(
                Community.code.ilike(pattern),
                Community.name.ilike(pattern),
                Community.name_zh.ilike(pattern),
            )
        )
        stmt = stmt.where(Household.community_id.in_(named))
    if filters.vulnerable is not None:
        vulnerable = any_vulnerable(Household)
        stmt = stmt.where(vulnerable if filters.vulnerable else ~vulnerable)
    if filters.q:
        stmt = stmt.where(Household.code.ilike(f"%{filters.q}%"))
    return stmt


def with_communities(session: Session, household_ids: Sequence[int]) -> Sequence[Any]:
    """``(household, community)`` rows of these households."""
    stmt = (
        select(Household, Community)
        .join(Community, Community.id == Household.community_id)
        .where(Household.id.in_(household_ids))
    )
    return session.execute(stmt).all()


def communities() -> Select[Community]:
    return select(Community)


def first_communities(
    session: Session, stmt: Select[Community], *, limit: int
) -> Sequence[Community]:
    """The first ``limit`` communities of ``stmt``, by code."""
    return session.scalars(stmt.order_by(Community.code).limit(limit)).all()


def exists(session: Session, household_id: int) -> bool:
    stmt = select(Household.id).where(Household.id == household_id)
    return session.scalar(stmt) is not None


def count(session: Session, stmt: Select[Household]) -> int:
    return session.scalar(select(func.count()).select_from(stmt.subquery())) or 0


def page(
    session: Session, stmt: Select[Household], *, offset: int, limit: int
) -> tuple[Sequence[Household], int]:
    return common.page(session, stmt, offset=offset, limit=limit, order_by=Household.id)
