from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from relieflink.common import repository as common
from relieflink.models import Organization
from relieflink.organizations.schemas import OrganizationFilters


def list_organizations(
    session: Session, filters: OrganizationFilters, *, offset: int, limit: int
) -> tuple[Sequence[Organization], int]:
    stmt = select(Organization)
    if filters.kind is not None:
        stmt = stmt.where(Organization.kind == filters.kind)
    if filters.q:
        like = f"%{filters.q}%"
        stmt = stmt.where(or_(Organization.code.ilike(like), Organization.name.ilike(like)))
    return common.page(session, stmt, offset=offset, limit=limit, order_by=Organization.id)
