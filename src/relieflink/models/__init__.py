"""All ORM classes, one module per aggregate. Importing this package registers every table."""

from relieflink.models.audit import AuditEvent
from relieflink.models.catalog import Item, Kit, KitLine
from relieflink.models.donation import (
    Discrepancy,
    Message,
    MessageKind,
    MessageRead,
    OrgWebhook,
    Pledge,
    PledgeLine,
    PledgeStatus,
    PledgeStatusChange,
    Program,
    Receipt,
    WebhookDelivery,
)
from relieflink.models.consult import (
    ChronicPatient,
    Consultation,
    ConsultMessage,
    DoctorProfile,
    Prescription,
    PrescriptionLine,
)
from relieflink.models.enums import (
    ItemCategory,
    KitPurpose,
    LockdownStatus,
    OrgKind,
    Role,
)
from relieflink.models.household import Household
from relieflink.models.idempotency import IdempotencyRecord
from relieflink.models.needs import (
    Allocation,
    AllocationRun,
    NeedRequest,
    PriorityClass,
    RequestLine,
    RequestSource,
    RequestStatus,
)
from relieflink.models.organization import Organization
from relieflink.models.place import Community, District, Warehouse
from relieflink.models.stock import (
    AdjustmentReason,
    LotSource,
    MovementKind,
    StockBalance,
    StockLot,
    StockMovement,
    StockTransfer,
    TransferStatus,
)
from relieflink.models.user import AuthSession, LoginAttempt, User

__all__ = [
    "Allocation",
    "AllocationRun",
    "NeedRequest",
    "PriorityClass",
    "RequestLine",
    "RequestSource",
    "RequestStatus",
    "Discrepancy",
    "Message",
    "MessageKind",
    "MessageRead",
    "OrgWebhook",
    "Pledge",
    "PledgeLine",
    "PledgeStatus",
    "PledgeStatusChange",
    "Program",
    "Receipt",
    "WebhookDelivery",
    "AdjustmentReason",
    "LotSource",
    "MovementKind",
    "StockBalance",
    "StockLot",
    "StockMovement",
    "StockTransfer",
    "TransferStatus",
    "AuditEvent",
    "AuthSession",
    "ChronicPatient",
    "ConsultMessage",
    "Consultation",
    "Community",
    "District",
    "DoctorProfile",
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
    "Prescription",
    "PrescriptionLine",
    "Role",
    "User",
    "Warehouse",
]
