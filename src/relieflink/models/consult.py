"""Online consultations: doctors' profiles, consultations and their messages, prescriptions, and
the chronic-medication patients whose refills are tracked.

A household has counts of members, not persons: a consultation names the household and a free-text
member label ("self", "infant", "mother") with an age band and sex. Lists (specialties, languages,
fired triage rules, symptom answers) are portable JSON, never PostgreSQL arrays.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from relieflink import clock
from relieflink.db import Base, TimestampMixin


class DoctorProfile(TimestampMixin, Base):
    """What a doctor (a user with role ``doctor``) can take: specialties and languages."""

    __tablename__ = "doctor_profiles"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), unique=True)
    specialties: Mapped[list[str]] = mapped_column(JSON)
    languages: Mapped[list[str]] = mapped_column(JSON)
    on_duty: Mapped[bool] = mapped_column(default=False)


class Consultation(TimestampMixin, Base):
    """A request for a remote consultation, its triage, its place in the queue and its outcome."""

    __tablename__ = "consultations"
    __table_args__ = (
        CheckConstraint("urgency_rank BETWEEN 1 AND 5", name="urgency_rank_range"),
        CheckConstraint("target_minutes >= 0", name="target_nonneg"),
        # The doctors' queue: waiting rows in a specialty, most urgent then most overdue first.
        Index("ix_consultations_queue", "status", "specialty", "urgency_rank", "due_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"), index=True)
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    member_label: Mapped[str] = mapped_column(String(40))
    age_band: Mapped[str] = mapped_column(String(20))
    sex: Mapped[str] = mapped_column(String(10))
    pregnant: Mapped[bool] = mapped_column(default=False)
    reason: Mapped[str] = mapped_column(String(500))
    free_text: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(5))
    symptoms: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Triage: the result and exactly which rules (of which version) produced it.
    urgency: Mapped[str] = mapped_column(String(20))
    urgency_rank: Mapped[int]
    triage_outcome: Mapped[str] = mapped_column(String(30))
    target_minutes: Mapped[int]
    due_at: Mapped[datetime]
    rules_version: Mapped[str] = mapped_column(String(40))
    fired_rules: Mapped[list[str]] = mapped_column(JSON)
    emergency_numbers: Mapped[list[dict[str, str]] | None] = mapped_column(JSON)
    specialty: Mapped[str] = mapped_column(String(30))
    # The queue and the doctor.
    status: Mapped[str] = mapped_column(String(20), default="waiting", index=True)
    doctor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    taken_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    notes: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str | None] = mapped_column(String(30))


class ConsultMessage(Base):
    """One chat message in a consultation (the stored history of the WebSocket exchange)."""

    __tablename__ = "consult_messages"
    __table_args__ = (Index("ix_consult_messages_thread", "consultation_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultations.id", ondelete="CASCADE"))
    sender_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    sender_role: Mapped[str] = mapped_column(String(20))
    body: Mapped[str] = mapped_column(Text)
    client_ref: Mapped[str | None] = mapped_column(String(64))
    sent_at: Mapped[datetime] = mapped_column(default=clock.now)


class Prescription(TimestampMixin, Base):
    """What a doctor prescribed in a consultation: everything a medical request needs.

    ``request_id`` is the needs request it became (set when the needs domain creates it); it is a
    plain integer until the needs tables exist, so the link is checked by the service, not an FK.
    """

    __tablename__ = "prescriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultations.id"), unique=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"), index=True)
    doctor_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    member_label: Mapped[str] = mapped_column(String(40))
    priority: Mapped[str] = mapped_column(String(20), default="medical")
    reason: Mapped[str] = mapped_column(String(500))
    request_id: Mapped[int | None] = mapped_column(index=True)
    # A prescription is always shown with its few lines: load them with it.
    lines: Mapped[list[PrescriptionLine]] = relationship(
        back_populates="prescription",
        cascade="all, delete-orphan",
        lazy="selectin",
        order_by="PrescriptionLine.id",
    )


class PrescriptionLine(Base):
    __tablename__ = "prescription_lines"
    __table_args__ = (
        UniqueConstraint("prescription_id", "item_id"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    prescription_id: Mapped[int] = mapped_column(ForeignKey("prescriptions.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    quantity: Mapped[int]
    instructions: Mapped[str | None] = mapped_column(String(300))
    prescription: Mapped[Prescription] = relationship(back_populates="lines", lazy="raise")


class ChronicPatient(TimestampMixin, Base):
    """A household member on a long-term medicine whose days of supply are tracked for refills.

    ``daily_dose_units`` is in the medicine's own units (tablets, pens); ``units_per_pack`` is how
    many of those a catalog item (a box) holds. ``refill_requested_for`` is the ``supply_until``
    a refill was already requested for, so one shortfall never yields two requests.
    """

    __tablename__ = "chronic_patients"
    __table_args__ = (
        UniqueConstraint("household_id", "member_label", "item_id"),
        CheckConstraint("daily_dose_units > 0", name="dose_positive"),
        CheckConstraint("units_per_pack > 0", name="pack_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"), index=True)
    member_label: Mapped[str] = mapped_column(String(40))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    daily_dose_units: Mapped[int]
    units_per_pack: Mapped[int] = mapped_column(default=1)
    supply_until: Mapped[date] = mapped_column(index=True)
    refill_requested_for: Mapped[date | None]
    refill_request_id: Mapped[int | None]
    active: Mapped[bool] = mapped_column(default=True)
