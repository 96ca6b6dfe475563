"""All ORM classes, one module per aggregate. Importing this package registers every table."""

from relieflink.models.audit import AuditEvent
from relieflink.models.catalog import Item, Kit, KitLine
from relieflink.models.enums import (
    ItemCategory,
    KitPurpose,
    LockdownStatus,
    OrgKind,
    Role,
)
from relieflink.models.household import Household
from relieflink.models.idempotency import IdempotencyRecord
from relieflink.models.organization import Organization
from relieflink.models.place import Community, District, Warehouse
from relieflink.models.user import AuthSession, LoginAttempt, User

__all__ = [
    "AuditEvent",
    "AuthSession",
    "Community",
    "District",
    "Household",
    "IdempotencyRecord",
    "Item",
    "ItemCategory",
    "Kit",
    "KitLine",
    "KitPurpose",
    "LockdownStatus",
    "LoginAttempt",
    "OrgKind",
    "Organization",
    "Role",
    "User",
    "Warehouse",
]
