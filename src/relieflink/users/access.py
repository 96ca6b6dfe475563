"""The one place where access is decided: which roles may do what, and which rows they see.

Endpoints declare their roles with ``require_role`` (api/deps.py), which calls
:func:`ensure_role`; services call the ``scope_*`` helpers so that no query forgets row scoping.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import ColumnElement, Select, and_, false, or_
from sqlalchemy.orm import QueryableAttribute

from relieflink.errors import Forbidden
from relieflink.models import Community, Consultation, Household, Role, Route
from relieflink.users import repository

if TYPE_CHECKING:
    from relieflink.models import User

S = TypeVar("S", bound=Select[Any])

EVERYONE = frozenset(Role)
STAFF = frozenset({Role.admin, Role.coordinator})
# Who may read household records (sizes and vulnerabilities are personal and health data).
HOUSEHOLD_READERS = STAFF | {Role.committee, Role.resident}
HOUSEHOLD_WRITERS = STAFF | {Role.committee}
# Who may see a household's full phone number (each read is audited).
PHONE_READERS = STAFF | {Role.committee}
LOGISTICS = STAFF | {Role.warehouse, Role.courier}
# Stock and donations: warehouse staff post receipts and movements; donors and recipient NGO
# members see their own organization's pledges, threads and trace (scoped in the services).
STOCK_WRITERS = STAFF | {Role.warehouse}
STOCK_READERS = STAFF | {Role.warehouse}
PLEDGE_READERS = STAFF | {Role.donor, Role.warehouse}
PLEDGE_WRITERS = STAFF | {Role.donor}
DONOR_TRACE_READERS = STAFF | {Role.donor, Role.warehouse}

# Dispatch: coordinators plan; couriers (and robot operators) post tracking events on their own
# routes; committee volunteers post hand-offs and deliveries at their compounds' gates, and a
# volunteer team's leader at its own compound's gate (tracking_rules decides which parcels).
DISPATCH_PLANNERS = STAFF
DELIVERY_ACTORS = STAFF | {Role.courier, Role.committee, Role.volunteer}
ROUTE_READERS = STAFF | {Role.courier}
# The offline field app: a courier's own routes, a volunteer leader's own team's gate.
FIELD_WORKERS = frozenset({Role.courier, Role.volunteer})
# Volunteer teams: staff register them; carriers, committees and team leaders read them; a
# leader records its own team's daily availability (checked in teams.service).
TEAM_READERS = LOGISTICS | {Role.committee, Role.volunteer}
TEAM_WRITERS = STAFF
TEAM_AVAILABILITY_WRITERS = STAFF | {Role.volunteer}


def sees_org(actor: User, *organization_ids: int | None) -> bool:
    """Staff see every organization's records; anyone else only their own organization's."""
    if actor.role in STAFF:
        return True
    return actor.organization_id is not None and actor.organization_id in organization_ids


# Consultations are health data: only doctors (scoped below) and the household's residents read
# them; coordinators see the queue's counts and the staffing plan, never the content.
CONSULT_REQUESTERS = frozenset({Role.resident})
CONSULT_READERS = frozenset({Role.doctor, Role.resident})
CONSULT_QUEUE_VIEWERS = STAFF | {Role.doctor}
CHRONIC_MANAGERS = STAFF | {Role.doctor}


def ensure_role(actor: User, roles: frozenset[Role] | set[Role]) -> None:
    """Raise ``Forbidden`` unless ``actor`` holds one of ``roles``."""
    if actor.role not in roles:
        raise Forbidden(f"the {actor.role} role may not do this")


def scope_by_household(
    stmt: S, household_id: ColumnElement[int] | QueryableAttribute[int], actor: User
) -> S:
    """Restrict ``stmt`` to rows whose ``household_id`` column names a household ``actor`` may
    see: staff all, a committee those in the communities it manages, a resident their own."""
    if actor.role in STAFF:
        return stmt
    if actor.role == Role.committee and actor.organization_id is not None:
        managed = repository.managed_households(actor.organization_id)
        return stmt.where(household_id.in_(managed))
    if actor.role == Role.resident and actor.household_id is not None:
        return stmt.where(household_id == actor.household_id)
    return stmt.where(false())


def scope_households(stmt: Select[Household], actor: User) -> Select[Household]:
    """Restrict a household query to the rows ``actor`` may see."""
    return scope_by_household(stmt, Household.id, actor)


def scope_communities(stmt: Select[Community], actor: User) -> Select[Community]:
    """Restrict a community query to those whose households ``actor`` may see (the same rule as
    ``scope_by_household``, over communities): staff all, a committee those it manages, a
    resident their own."""
    if actor.role in STAFF:
        return stmt
    if actor.role == Role.committee and actor.organization_id is not None:
        return stmt.where(Community.committee_id == actor.organization_id)
    if actor.role == Role.resident and actor.household_id is not None:
        return stmt.where(Community.id.in_(repository.home_community(actor.household_id)))
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


def scope_consultations(
    stmt: Select[Consultation], actor: User, *, specialties: Collection[str] = ()
) -> Select[Consultation]:
    """Restrict a consultation query: a doctor sees those assigned to them and those waiting in
    their ``specialties``; a resident those of their household; every other role none."""
    if actor.role == Role.doctor:
        waiting_mine = and_(
            Consultation.status == "waiting", Consultation.specialty.in_(list(specialties))
        )
        return stmt.where(or_(Consultation.doctor_id == actor.id, waiting_mine))
    if actor.role == Role.resident and actor.household_id is not None:
        return stmt.where(Consultation.household_id == actor.household_id)
    return stmt.where(false())


def can_read_consultation(
    actor: User, consultation: Consultation, *, specialties: Collection[str] = ()
) -> bool:
    """The one-row form of :func:`scope_consultations`."""
    if actor.role == Role.doctor:
        return consultation.doctor_id == actor.id or (
            consultation.status == "waiting" and consultation.specialty in specialties
        )
    if actor.role == Role.resident:
        return actor.household_id is not None and consultation.household_id == actor.household_id
    return False


def mask_phone(phone: str | None) -> str | None:
    """Only the last four digits, behind a fixed-width mask: ``*******1234``."""
    if not phone:
        return phone
    digits = "".join(c for c in phone if c.isdigit())
    return "*******" + digits[-4:]


def can_drive(actor: User, route: Route) -> bool:
    """A courier (or robot operator) drives its own routes: those assigned to it, or, when none
    is assigned, those of its carrier. Staff may act on any route."""
    if actor.role in STAFF:
        return True
    if actor.role != Role.courier:
        return False
    if route.courier_id is not None:
        return route.courier_id == actor.id
    return actor.organization_id is not None and actor.organization_id == route.carrier_id


def scope_routes(stmt: S, actor: User) -> S:
    """Restrict a route query to what ``actor`` may see: staff all, a courier its own."""
    if actor.role in STAFF:
        return stmt
    if actor.role == Role.courier:
        mine = Route.courier_id == actor.id
        carrier = Route.courier_id.is_(None) & (Route.carrier_id == (actor.organization_id or -1))
        return stmt.where(or_(mine, carrier))
    return stmt.where(false())
