"""Enumerations shared by models, schemas and services. Stored as strings (portable)."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    admin = "admin"
    coordinator = "coordinator"
    warehouse = "warehouse"
    courier = "courier"
    doctor = "doctor"
    donor = "donor"
    committee = "committee"
    resident = "resident"
    volunteer = "volunteer"  # a compound volunteer team's leader


class OrgKind(StrEnum):
    donor = "donor"
    ngo = "ngo"
    carrier = "carrier"
    health_provider = "health_provider"
    government = "government"
    committee = "committee"


class ItemCategory(StrEnum):
    food = "food"
    infant = "infant"
    maternity = "maternity"
    medicine = "medicine"
    hygiene = "hygiene"
    protection = "protection"


class KitPurpose(StrEnum):
    family_food = "family_food"
    infant = "infant"
    maternity = "maternity"
    chronic_medication = "chronic_medication"
    protection = "protection"


class LockdownStatus(StrEnum):
    open = "open"
    controlled = "controlled"
    sealed = "sealed"
