"""Households. Every read of one is audited; lists never carry phones; phones are masked."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from relieflink.audit import service as audit
from relieflink.common import crud
from relieflink.common import repository as common
from relieflink.common.schemas import validate_as
from relieflink.errors import FieldError, Forbidden, Invalid, NotFound, RelieflinkError
from relieflink.households import repository
from relieflink.households.schemas import (
    HouseholdCreate,
    HouseholdFilters,
    HouseholdListItem,
    HouseholdRead,
    HouseholdUpdate,
)
from relieflink.households.vulnerability import VULNERABLE
from relieflink.models import Community, Household, User
from relieflink.places import service as places
from relieflink.users import access

_REFS = {"community_id": Community}


def require_visible(session: Session, household_id: int, *, actor: User) -> Household:
    """The household if ``actor`` may see it (``NotFound``/``Forbidden`` otherwise); not audited:
    for checks on behalf of another record, not for showing the household's data."""
    household = crud.require(session, Household, household_id, label="household")
    community = places.require_community(session, household.community_id)
    access.ensure_can_see_household(actor, household, community=community)
    return household


def visibility(
    session: Session, household_ids: Sequence[int], *, actor: User
) -> dict[int, RelieflinkError | None]:
    """Per household, what :func:`require_visible` would raise (``None``: visible), in one read:
    for batches that act on many households."""
    rows = repository.with_communities(session, sorted(set(household_ids)))
    found = {household.id: (household, community) for household, community in rows}
    out: dict[int, RelieflinkError | None] = {}
    for household_id in household_ids:
        if household_id not in found:
            out[household_id] = NotFound(f"no household with id {household_id}")
            continue
        household, community = found[household_id]
        try:
            access.ensure_can_see_household(actor, household, community=community)
            out[household_id] = None
        except Forbidden as exc:
            out[household_id] = exc
    return out


def household_exists(session: Session, household_id: int) -> bool:
    """Whether a household with this id exists (reads nothing of its data: not audited)."""
    return repository.exists(session, household_id)


def ids_by_code(session: Session, codes: set[str]) -> dict[str, int]:
    """Household ids by code, for files that name households by code."""
    return common.ids_by_code(session, Household, codes)


def to_read(household: Household) -> HouseholdRead:
    """The API view of one household, phone masked."""
    fields = {k: getattr(household, k) for k in HouseholdListItem.model_fields}
    return HouseholdRead(**fields, phone_masked=access.mask_phone(household.phone))


def require_household(session: Session, household_id: int, *, actor: User) -> Household:
    """One household the actor may see; the read is audited."""
    household = require_visible(session, household_id, actor=actor)
    audit.record(session, actor=actor, action="read", entity="household", entity_id=household.id)
    return household


def reveal_phone(session: Session, household_id: int, *, actor: User) -> Household:
    """The household with its full phone, for roles that may call it; audited as such."""
    access.ensure_role(actor, access.PHONE_READERS)
    household = require_visible(session, household_id, actor=actor)
    audit.record(
        session, actor=actor, action="read_phone", entity="household", entity_id=household.id
    )
    return household


def list_households(
    session: Session, filters: HouseholdFilters, *, actor: User, offset: int = 0, limit: int = 50
) -> tuple[Sequence[Household], int]:
    """One page of the households ``actor`` may see; the ids read are audited."""
    stmt = access.scope_households(repository.filtered(filters), actor)
    rows, total = repository.page(session, stmt, offset=offset, limit=limit)
    audit.record(
        session,
        actor=actor,
        action="list",
        entity="household",
        detail={"ids": [h.id for h in rows], "filters": filters.model_dump(mode="json")},
    )
    return rows, total


def communities_in_view(session: Session, *, actor: User, limit: int) -> Sequence[Community]:
    """The communities of the households ``actor`` may see, by code, at most ``limit`` (a list
    of places, no personal data: not an audited read)."""
    stmt = access.scope_communities(repository.communities(), actor)
    return repository.first_communities(session, stmt, limit=limit)


def count_households(session: Session, filters: HouseholdFilters, *, actor: User) -> int:
    """How many households the actor may see match ``filters`` (a total, no personal data:
    not an audited read)."""
    stmt = access.scope_households(repository.filtered(filters), actor)
    return repository.count(session, stmt)


def _ensure_may_write_in(session: Session, actor: User, community_id: int) -> None:
    access.ensure_role(actor, access.HOUSEHOLD_WRITERS)
    community = places.get_community(session, community_id)
    if community is None:
        raise Invalid(
            "no such community",
            [FieldError(("community_id",), f"no community with id {community_id}")],
        )
    if actor.role not in access.STAFF and community.committee_id != actor.organization_id:
        raise Forbidden("this community is not managed by your committee")


def create_household(session: Session, data: HouseholdCreate, *, actor: User) -> Household:
    """Register a household in a community the actor manages."""
    _ensure_may_write_in(session, actor, data.community_id)
    return crud.create(session, Household, data, actor=actor, entity="household", refs=_REFS)


def update_household(
    session: Session, household_id: int, data: HouseholdUpdate, *, actor: User
) -> Household:
    """Change a household; the size and member counts are checked together."""
    household = require_visible(session, household_id, actor=actor)
    _ensure_may_write_in(session, actor, household.community_id)
    if data.community_id is not None:
        _ensure_may_write_in(session, actor, data.community_id)
    merged = {k: getattr(household, k) for k in ("size", *VULNERABLE)}
    merged |= data.model_dump(exclude_unset=True, include={"size", *VULNERABLE})
    validate_as(HouseholdUpdate, merged)  # re-check the counts against the resulting size
    return crud.update(session, household, data, actor=actor, entity="household", refs=_REFS)
