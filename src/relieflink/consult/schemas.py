from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import Field, field_validator

from relieflink.common.fields import PositiveInt
from relieflink.common.schemas import ListQuery, ReadModel, StrictModel

Specialty = Literal["general", "paediatrics", "obstetrics", "internal_medicine", "psychiatry"]
Language = Literal["zh", "en"]
AgeBand = Literal["newborn", "infant", "child", "adolescent", "adult", "older_adult"]
Sex = Literal["female", "male", "other", "unknown"]
Status = Literal["waiting", "in_progress", "closed", "cancelled"]
# How a doctor ends a consultation (besides the triage outcome it started with).
CloseOutcome = Literal[
    "advice_given", "prescription", "referred_emergency", "referred_in_person", "no_answer"
]
MemberLabel = Field(min_length=1, max_length=40, description='e.g. "self", "infant", "mother"')


class DoctorShift(StrictModel):
    """A doctor signs in to the queue with what they can take."""

    specialties: list[Specialty] = Field(min_length=1)
    languages: list[Language] = Field(min_length=1)

    @field_validator("specialties", "languages")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


class DoctorProfileRead(ReadModel):
    user_id: int
    specialties: list[str]
    languages: list[str]
    on_duty: bool


class ConsultationCreate(StrictModel):
    household_id: int | None = Field(
        default=None, description="defaults to the resident's own household"
    )
    member_label: str = MemberLabel
    age_band: AgeBand
    sex: Sex
    pregnant: bool = False
    reason: str = Field(min_length=1, max_length=500)
    symptoms: dict[str, bool | str] = Field(
        default_factory=dict,
        description="answers to the questionnaire (GET /consultations/questionnaire)",
    )
    free_text: str | None = Field(default=None, max_length=4000)
    language: Language = "zh"
    specialty: Specialty | None = Field(
        default=None, description="leave empty to let triage route the request"
    )


class EmergencyNumber(ReadModel):
    region: str
    label: str
    label_zh: str = ""
    number: str


class PrescriptionLineCreate(StrictModel):
    item_id: int
    quantity: PositiveInt
    instructions: str | None = Field(default=None, max_length=300)


class PrescriptionCreate(StrictModel):
    lines: list[PrescriptionLineCreate] = Field(min_length=1, max_length=50)
    reason: str | None = Field(default=None, max_length=500)


class PrescriptionLineRead(ReadModel):
    item_id: int
    quantity: int
    instructions: str | None


class PrescriptionDelivery(ReadModel):
    """The medicine's journey: the medical request's status, units delivered, when."""

    request_status: str
    units_delivered: int
    delivered_at: datetime | None


class PrescriptionRead(ReadModel):
    id: int
    consultation_id: int
    household_id: int
    doctor_id: int
    member_label: str
    priority: str
    reason: str
    request_id: int | None
    lines: list[PrescriptionLineRead]
    delivery: PrescriptionDelivery | None = None


class ConsultationClose(StrictModel):
    notes: str = Field(min_length=1, max_length=8000)
    outcome: CloseOutcome
    prescription: PrescriptionCreate | None = None


class ConsultationListItem(ReadModel):
    """A consultation as the queue shows it (no notes, no free text)."""

    id: int
    household_id: int
    member_label: str
    age_band: str
    sex: str
    language: str
    specialty: str
    urgency: str
    urgency_rank: int
    triage_outcome: str
    target_minutes: int
    due_at: datetime
    status: str
    doctor_id: int | None
    created_at: datetime


class ConsultationRead(ConsultationListItem):
    requested_by_id: int
    pregnant: bool
    reason: str
    free_text: str | None
    symptoms: dict[str, bool | str]
    rules_version: str
    fired_rules: list[str]
    emergency_numbers: list[EmergencyNumber] | None
    taken_at: datetime | None
    closed_at: datetime | None
    notes: str | None
    outcome: str | None
    prescription: PrescriptionRead | None = None


class ConsultationFilters(ListQuery):
    status: Status | None = None
    specialty: Specialty | None = None
    mine: bool = Field(default=False, description="only those assigned to me (doctors)")


class MessageCreate(StrictModel):
    body: str = Field(min_length=1, max_length=4000)
    client_ref: str | None = Field(default=None, max_length=64)


class MessageRead(ReadModel):
    id: int
    consultation_id: int
    sender_id: int
    sender_role: str
    body: str
    client_ref: str | None
    sent_at: datetime


class QueueLevel(ReadModel):
    urgency: str
    rank: int
    target_minutes: int
    waiting: int
    overdue: int
    oldest_wait_minutes: float | None


class QueueSummary(ReadModel):
    at: datetime
    rules_version: str
    levels: list[QueueLevel]
    waiting_by_specialty: dict[str, int]
    in_progress: int
    doctors_on_duty: int
    doctors_on_duty_by_specialty: dict[str, int]


class ChronicPatientCreate(StrictModel):
    household_id: int
    member_label: str = MemberLabel
    item_id: int
    daily_dose_units: PositiveInt
    units_per_pack: PositiveInt = 1
    supply_until: date


class ChronicPatientRead(ReadModel):
    id: int
    household_id: int
    member_label: str
    item_id: int
    daily_dose_units: int
    units_per_pack: int
    supply_until: date
    refill_requested_for: date | None
    refill_request_id: int | None
    active: bool


class RefillDueRead(ReadModel):
    patient_id: int
    household_id: int
    member_label: str
    item_id: int
    quantity: int
    supply_until: date
    days_left: int


class StaffingQuery(StrictModel):
    service_minutes: float | None = Field(
        default=None, gt=0, le=240, description="default: the mean of recent consultations"
    )
    days: int = Field(default=7, ge=1, le=90, description="history used for the arrival rates")
    service_level: float = Field(default=0.8, gt=0, lt=1)
