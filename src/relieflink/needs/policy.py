"""The ration policy: entitlements per household and an explained priority score.

Pure functions over plain values, so they serve one request and a million alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from relieflink.config import get_settings
from relieflink.errors import FieldError, Invalid
from relieflink.models import LockdownStatus, PriorityClass

Per = Literal["person", "infant", "pregnant", "chronic"]
DEFAULT_POLICY = "ration-2026-11.yaml"
MAX_WAITING_DAYS = 14


class Entitlement(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kit: str
    per: Per


class Weights(BaseModel):
    model_config = ConfigDict(extra="forbid")
    infant: int = 0
    pregnant: int = 0
    chronic: int = 0
    elderly_80_alone: int = 0
    elderly_80: int = 0
    disabled: int = 0
    sealed: int = 0
    controlled: int = 0
    medical_urgency: int = 0
    carried_over: int = 0
    day_waiting: int = 0
    supply_day_left: int = 0


class Policy(BaseModel):
    """A versioned ration policy, as read from its YAML file."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    version: str = Field(min_length=1, max_length=40)
    period_days: int = Field(gt=0, le=90)
    entitlements: list[Entitlement]
    min_ration: int = Field(default=1, ge=0)
    weights: Weights


def load_policy(path: Path | None = None) -> Policy:
    """The policy in ``path``, or the one shipped with the package; ``Invalid`` names bad keys."""
    if path is None:
        text = (
            resources.files("relieflink.needs")
            .joinpath(f"policies/{DEFAULT_POLICY}")
            .read_text("utf-8")
        )
        source = DEFAULT_POLICY
    else:
        try:
            text = path.read_text("utf-8")
        except OSError as exc:
            raise Invalid(f"cannot read the policy file {path}: {exc.strerror}") from None
        source = str(path)
    try:
        data: Any = yaml.safe_load(text)
        return Policy.model_validate(data)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise Invalid(f"{source}: not valid YAML{where}") from None
    except ValidationError as exc:
        errors = [FieldError(tuple(e["loc"]), e["msg"]) for e in exc.errors(include_url=False)]
        raise Invalid(f"{source}: not a valid ration policy", errors) from None


def default_policy() -> Policy:
    """The configured policy (``RELIEFLINK_RATION_POLICY``), or the packaged one."""
    return _cached_policy(get_settings().ration_policy)


@lru_cache
def _cached_policy(path: Path | None) -> Policy:
    return load_policy(path)


@dataclass(frozen=True)
class HouseholdFacts:
    """What the policy looks at: the household's members and its compound."""

    size: int
    infants: int
    pregnant: int
    chronic: int
    elderly_80: int
    disabled: int
    lockdown: LockdownStatus


def entitled_packs(
    policy: Policy, facts: HouseholdFacts, *, per: Per, persons: int, days: int
) -> int:
    """Packs of a kit sized for ``persons`` × ``days`` that a household gets per period."""
    count = {
        "person": facts.size,
        "infant": facts.infants,
        "pregnant": facts.pregnant,
        "chronic": facts.chronic,
    }[per]
    return math.ceil(count * policy.period_days / (persons * days)) if count else 0


def is_vulnerable(facts: HouseholdFacts) -> bool:
    return bool(
        facts.infants or facts.pregnant or facts.chronic or facts.elderly_80 or facts.disabled
    )


def priority_class(
    *, medical: bool, infant_or_maternity: bool, facts: HouseholdFacts
) -> PriorityClass:
    """The strict class of one request line."""
    if medical:
        return PriorityClass.medical
    if infant_or_maternity:
        return PriorityClass.infant_maternity
    if is_vulnerable(facts):
        return PriorityClass.vulnerable
    return PriorityClass.everyone


def priority_score(
    policy: Policy,
    facts: HouseholdFacts,
    *,
    medical_urgency: int = 0,
    carried_over: int = 0,
    days_waiting: int = 0,
    days_since_delivery: int | None = None,
    supply_days_left: int = 0,
) -> tuple[int, list[str]]:
    """The score and its reasons, in words a coordinator reads (``"pregnant member"``)."""
    w = policy.weights
    terms: list[tuple[int, str]] = []
    if facts.infants:
        terms.append(
            (
                w.infant,
                "infant under 2" if facts.infants == 1 else f"{facts.infants} infants under 2",
            )
        )
    if facts.pregnant:
        terms.append((w.pregnant, "pregnant member"))
    if facts.chronic:
        terms.append((w.chronic, "member on chronic medication"))
    if facts.elderly_80 and facts.size == 1:
        terms.append((w.elderly_80_alone, "aged 80+ and living alone"))
    elif facts.elderly_80:
        terms.append((w.elderly_80, "member aged 80+"))
    if facts.disabled:
        terms.append((w.disabled, "member with a disability"))
    if facts.lockdown == LockdownStatus.sealed:
        terms.append((w.sealed, "sealed compound"))
    elif facts.lockdown == LockdownStatus.controlled:
        terms.append((w.controlled, "controlled compound"))
    if medical_urgency:
        terms.append(
            (
                w.medical_urgency * medical_urgency,
                f"medical urgency {medical_urgency} set by a doctor",
            )
        )
    if carried_over:
        terms.append(
            (
                w.carried_over * carried_over,
                f"{carried_over} failed deliver{'y' if carried_over == 1 else 'ies'} carried over",
            )
        )
    if days_since_delivery is None:
        days = max(0, min(days_waiting, MAX_WAITING_DAYS))
        if days:
            terms.append((w.day_waiting * days, f"{_days(days)} waiting, no delivery yet"))
    else:
        days = max(0, min(days_since_delivery, MAX_WAITING_DAYS))
        if days:
            terms.append((w.day_waiting * days, f"{_days(days)} since the last delivery"))
    if supply_days_left > 0:
        terms.append(
            (w.supply_day_left * supply_days_left, f"food for {_days(supply_days_left)} left")
        )
    return sum(points for points, _ in terms), [reason for points, reason in terms if points]


def _days(n: int) -> str:
    return f"{n} day{'s' if n != 1 else ''}"


def priority_scores(
    policy: Policy,
    *,
    size: NDArray[np.int64],
    infants: NDArray[np.int64],
    pregnant: NDArray[np.int64],
    chronic: NDArray[np.int64],
    elderly_80: NDArray[np.int64],
    disabled: NDArray[np.int64],
    sealed: NDArray[np.bool_],
    controlled: NDArray[np.bool_],
    medical_urgency: NDArray[np.int64],
    carried_over: NDArray[np.int64],
    days_waiting: NDArray[np.int64],
    days_since_delivery: NDArray[np.int64],
    supply_days_left: NDArray[np.int64],
) -> NDArray[np.int64]:
    """:func:`priority_score` for many lines at once (the same terms; a test keeps them equal).
    ``days_since_delivery`` is -1 where the household has had no delivery."""
    w = policy.weights
    alone = (elderly_80 > 0) & (size == 1)
    total: NDArray[np.int64] = (
        w.infant * (infants > 0)
        + w.pregnant * (pregnant > 0)
        + w.chronic * (chronic > 0)
        + w.elderly_80_alone * alone
        + w.elderly_80 * ((elderly_80 > 0) & ~alone)
        + w.disabled * (disabled > 0)
        + w.sealed * sealed
        + w.controlled * controlled
        + w.medical_urgency * medical_urgency
        + w.carried_over * carried_over
        + w.day_waiting
        * np.clip(
            np.where(days_since_delivery < 0, days_waiting, days_since_delivery),
            0,
            MAX_WAITING_DAYS,
        )
        + w.supply_day_left * np.maximum(supply_days_left, 0)
    ).astype(np.int64)
    return total
