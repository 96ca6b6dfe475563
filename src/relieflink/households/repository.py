from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from relieflink.common import repository as common
from relieflink.households.schemas import HouseholdFilters
from relieflink.households.vulnerability import any_vulnerable
from relieflink.models import Community, Household


def filtered(filters: HouseholdFilters) -> Select[Household]:
    stmt = select(Household)
    if filters.community_id is not None:
        stmt = stmt.where(Household.community_id == filters.community_id)
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


def exists(session: Session, household_id: int) -> bool:
    stmt = select(Household.id).where(Household.id == household_id)
    return session.scalar(stmt) is not None


def count(session: Session, stmt: Select[Household]) -> int:
    return session.scalar(select(func.count()).select_from(stmt.subquery())) or 0


def page(
    session: Session, stmt: Select[Household], *, offset: int, limit: int
) -> tuple[Sequence[Household], int]:
    return common.page(session, stmt, offset=offset, limit=limit, order_by=Household.id)
