"""``make_*`` helpers for consultation tests (built through the real services)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from relieflink.consult import service as consult
from relieflink.consult import triage
from relieflink.consult.schemas import ConsultationCreate, DoctorShift
from relieflink.models import Consultation, Household, Role, User
from tests.factories import make_community, make_household, make_user


def negatives(age_band: str = "adult", *, pregnant: bool = False) -> dict[str, Any]:
    """A questionnaire answering every required question with its "nothing wrong" answer."""
    rules = triage.default_rules()
    return {
        qid: rules.questions[qid].negative
        for qid in triage.required_questions(rules, age_band=age_band, pregnant=pregnant)
    }


def make_household_with_resident(db: Session) -> tuple[Household, User]:
    admin = make_user(db, Role.admin)
    household = make_household(db, make_community(db), actor=admin)
    resident = make_user(db, Role.resident, household_id=household.id)
    return household, resident


def make_doctor(
    db: Session,
    specialties: tuple[str, ...] = ("general",),
    languages: tuple[str, ...] = ("zh", "en"),
) -> User:
    doctor = make_user(db, Role.doctor)
    consult.start_shift(
        db,
        DoctorShift.model_validate(
            {"specialties": list(specialties), "languages": list(languages)}
        ),
        actor=doctor,
    )
    return doctor


def make_consultation(
    db: Session,
    resident: User,
    *,
    answers: Mapping[str, Any] | None = None,
    age_band: str = "adult",
    sex: str = "female",
    pregnant: bool = False,
    now: datetime | None = None,
    **overrides: Any,
) -> Consultation:
    data = {
        "member_label": "self",
        "age_band": age_band,
        "sex": sex,
        "pregnant": pregnant,
        "reason": "feeling unwell",
        "symptoms": negatives(age_band, pregnant=pregnant) | dict(answers or {}),
    } | overrides
    consultation, _ = consult.request_consultation(
        db, ConsultationCreate.model_validate(data), actor=resident, now=now
    )
    return consultation
