"""Households: scoped to what the role may see, phones never listed and masked, reads audited."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from relieflink.api.deps import SessionDep, require_role
from relieflink.common.fields import Id
from relieflink.common.schemas import Page
from relieflink.households import service as households
from relieflink.households.schemas import (
    HouseholdContact,
    HouseholdCreate,
    HouseholdFilters,
    HouseholdListItem,
    HouseholdRead,
    HouseholdUpdate,
)
from relieflink.models import User
from relieflink.users import access

router = APIRouter(prefix="/households", tags=["households"])


@router.get("", response_model=Page[HouseholdListItem])
def list_households(
    session: SessionDep,
    user: Annotated[User, require_role(access.HOUSEHOLD_READERS)],
    query: Annotated[HouseholdFilters, Query()],
) -> Page[HouseholdListItem]:
    """Households the caller may see (no phone numbers in lists)."""
    rows, total = households.list_households(
        session, query, actor=user, offset=query.offset, limit=query.limit
    )
    return Page(
        items=[HouseholdListItem.model_validate(h) for h in rows],
        total=total,
        offset=query.offset,
        limit=query.limit,
    )


@router.get("/{household_id}", response_model=HouseholdRead)
def read_household(
    household_id: Id,
    session: SessionDep,
    user: Annotated[User, require_role(access.HOUSEHOLD_READERS)],
) -> HouseholdRead:
    """One household, its phone masked to the last four digits."""
    return households.to_read(households.require_household(session, household_id, actor=user))


@router.get("/{household_id}/contact", response_model=HouseholdContact)
def read_household_contact(
    household_id: Id,
    session: SessionDep,
    user: Annotated[User, require_role(access.PHONE_READERS)],
) -> HouseholdContact:
    """The full phone number, for staff and the household's committee; every read is audited."""
    household = households.reveal_phone(session, household_id, actor=user)
    return HouseholdContact(id=household.id, phone=household.phone)


@router.post("", response_model=HouseholdRead, status_code=status.HTTP_201_CREATED)
def create_household(
    data: HouseholdCreate,
    session: SessionDep,
    user: Annotated[User, require_role(access.HOUSEHOLD_WRITERS)],
) -> HouseholdRead:
    """Register a household."""
    return households.to_read(households.create_household(session, data, actor=user))


@router.patch("/{household_id}", response_model=HouseholdRead)
def update_household(
    household_id: Id,
    data: HouseholdUpdate,
    session: SessionDep,
    user: Annotated[User, require_role(access.HOUSEHOLD_WRITERS)],
) -> HouseholdRead:
    """Change a household."""
    return households.to_read(households.update_household(session, household_id, data, actor=user))
