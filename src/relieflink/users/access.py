"""The one place where access is decided: which roles may do what, and which rows they see.

Endpoints declare their roles with ``require_role`` (api/deps.py), which calls
:func:`ensure_role`; services call the ``scope_*`` helpers so that no query forgets row scoping.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Select, false, select

from relieflink.errors import Forbidden
from relieflink.models import Community, Household, Role

if TYPE_CHECKING:
    from relieflink.models import User

EVERYONE = frozenset(Role)
STAFF = frozenset({Role.admin, Role.coordinator})
# Who may read household records (sizes and vulnerabilities are personal and health data).
HOUSEHOLD_READERS = STAFF | {Role.committee, Role.resident}
HOUSEHOLD_WRITERS = STAFF | {Role.committee}
# Who may see a household's full phone number (each read is audited).
PHONE_READERS = STAFF | {Role.committee}
LOGISTICS = STAFF | {Role.warehouse, Role.courier}


def ensure_role(actor: User, roles: frozenset[Role] | set[Role]) -> None:
    """Raise ``Forbidden`` unless ``actor`` holds one of ``roles``."""
    if actor.role not in roles:
        raise Forbidden(f"the {actor.role} role may not do this")


def scope_households(stmt: Select[Household], actor: User) -> Select[Household]:
    """Restrict a household query to the rows ``actor`` may see."""
    if actor.role in STAFF:
        return stmt
    if actor.role == Role.committee and actor.organization_id is not None:
        managed = select(Community.id).where(Community.committee_id == actor.organization_id)
        return stmt.where(Household.community_id.in_(managed))
    if actor.role == Role.resident and actor.household_id is not None:
        return stmt.where(Household.id == actor.household_id)
    return stmt.where(false())


def ensure_can_see_household(actor: User, household: Household, *, community: Community) -> None:
    """Raise ``Forbidden`` unless ``actor`` may see this one household."""
    if actor.role in STAFF:
        return
    if actor.role == Role.committee and community.committee_id == actor.organization_id:
        return
    if actor.role == Role.resident and actor.household_id == household.id:
        return
    raise Forbidden("this household is outside what your role may see")


def mask_phone(phone: str | None) -> str | None:
    """Only the last four digits, behind a fixed-width mask: ``*******1234``."""
    if not phone:
        return phone
    digits = "".join(c for c in phone if c.isdigit())
    return "*******" + digits[-4:]
