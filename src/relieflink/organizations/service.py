from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from relieflink.common import crud
from relieflink.common import repository as common
from relieflink.models import Organization, User
from relieflink.organizations import repository
from relieflink.organizations.schemas import (
    OrganizationCreate,
    OrganizationFilters,
    OrganizationUpdate,
)


def get_organization(session: Session, org_id: int) -> Organization | None:
    """The organization with this id, or None."""
    return common.get_by_id(session, Organization, org_id)


def get_organization_by_code(session: Session, code: str) -> Organization | None:
    """The organization with this code (e.g. a scenario's ``RC-00001``), or None."""
    return common.get_by_code(session, Organization, code)


def require_organization(session: Session, org_id: int) -> Organization:
    """The organization with this id; ``NotFound`` if there is none."""
    return crud.require(session, Organization, org_id, label="organization")


def create_organization(
    session: Session, data: OrganizationCreate, *, actor: User | None
) -> Organization:
    """Register an organization."""
    return crud.create(session, Organization, data, actor=actor, entity="organization")


def update_organization(
    session: Session, org_id: int, data: OrganizationUpdate, *, actor: User | None
) -> Organization:
    """Change an organization's details."""
    org = require_organization(session, org_id)
    return crud.update(session, org, data, actor=actor, entity="organization")


def list_organizations(
    session: Session, filters: OrganizationFilters, *, offset: int = 0, limit: int = 50
) -> tuple[Sequence[Organization], int]:
    """One page of organizations."""
    return repository.list_organizations(session, filters, offset=offset, limit=limit)
