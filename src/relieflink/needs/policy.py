"""The ration policy: entitlements per household and an explained priority score.

Pure functions over plain values, so they serve one request and a million alike.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TypedDict, Unpack

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
    return packs_per_period(policy, count, persons=persons, days=days)


def packs_per_period(policy: Policy, count: int, *, persons: int, days: int) -> int:
    """Packs of a kit sized for ``persons`` × ``days`` for ``count`` people of one household
    per period: whole packs, rounded up per household."""
    return math.ceil(count * policy.period_days / (persons * days)) if count else 0


def priority_classes(
    *,
    medical: NDArray[np.bool_],
    infant_or_maternity: NDArray[np.bool_],
    vulnerable: NDArray[np.bool_],
) -> NDArray[np.int8]:
    """The strict class of each request line (see :func:`any_vulnerable` for ``vulnerable``)."""
    return np.where(
        medical,
        PriorityClass.medical,
        np.where(
            infant_or_maternity,
            PriorityClass.infant_maternity,
            np.where(vulnerable, PriorityClass.vulnerable, PriorityClass.everyone),
        ),
    ).astype(np.int8)


class ScoreColumns(TypedDict):
    """What the score looks at, one array entry per request line."""

    size: NDArray[np.int64]
    infants: NDArray[np.int64]
    pregnant: NDArray[np.int64]
    chronic: NDArray[np.int64]
    elderly_80: NDArray[np.int64]
    disabled: NDArray[np.int64]
    sealed: NDArray[np.bool_]
    controlled: NDArray[np.bool_]
    medical_urgency: NDArray[np.int64]
    carried_over: NDArray[np.int64]
    days_waiting: NDArray[np.int64]
    days_since_delivery: NDArray[np.int64]  # -1: the household has had no delivery
    supply_days_left: NDArray[np.int64]


def priority_scores(policy: Policy, **columns: Unpack[ScoreColumns]) -> NDArray[np.int64]:
    """The priority score of many lines at once: the sum of the policy's weighted terms."""
    total = np.zeros(len(columns["size"]), dtype=np.int64)
    for points, _ in _terms(policy, columns):
        total += points
    return total


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
    """The score and its reasons, in words a coordinator reads (``"pregnant member"``): the
    terms of :func:`priority_scores` over one line (plain numbers: the allocation explains
    thousands of lines, and one-element arrays cost ten times more)."""
    one = {
        "size": facts.size,
        "infants": facts.infants,
        "pregnant": facts.pregnant,
        "chronic": facts.chronic,
        "elderly_80": facts.elderly_80,
        "disabled": facts.disabled,
        "sealed": facts.lockdown == LockdownStatus.sealed,
        "controlled": facts.lockdown == LockdownStatus.controlled,
        "medical_urgency": medical_urgency,
        "carried_over": carried_over,
        "days_waiting": days_waiting,
        "days_since_delivery": -1 if days_since_delivery is None else days_since_delivery,
        "supply_days_left": supply_days_left,
    }
    points = [(int(p), say) for p, say in _terms(policy, one)]
    return sum(p for p, _ in points), [say() for p, say in points if p]


def _terms(policy: Policy, c: Mapping[str, Any]) -> list[tuple[Any, Callable[[], str]]]:
    """Each term of the score: its points, and its reason in words (asked only of one line, and
    only where the term has points). Written with operations that mean the same on numpy
    columns and on one line's plain numbers, so both are this one function."""
    w = policy.weights
    infants, urgency, carried = c["infants"], c["medical_urgency"], c["carried_over"]
    elderly = c["elderly_80"] > 0
    never = c["days_since_delivery"] < 0
    waited = c["days_since_delivery"] + never * (c["days_waiting"] - c["days_since_delivery"])
    days = _clip(waited, 0, MAX_WAITING_DAYS)
    supply = _clip(c["supply_days_left"], 0, None)
    return [
        (
            w.infant * (infants > 0),
            lambda: "infant under 2" if infants == 1 else f"{infants} infants under 2",
        ),
        (w.pregnant * (c["pregnant"] > 0), lambda: "pregnant member"),
        (w.chronic * (c["chronic"] > 0), lambda: "member on chronic medication"),
        (w.elderly_80_alone * (elderly & (c["size"] == 1)), lambda: "aged 80+ and living alone"),
        (w.elderly_80 * (elderly & (c["size"] != 1)), lambda: "member aged 80+"),
        (w.disabled * (c["disabled"] > 0), lambda: "member with a disability"),
        (w.sealed * c["sealed"], lambda: "sealed compound"),
        (w.controlled * c["controlled"], lambda: "controlled compound"),
        (w.medical_urgency * urgency, lambda: f"medical urgency {urgency} set by a doctor"),
        (
            w.carried_over * carried,
            lambda: f"{carried} failed deliver{'y' if carried == 1 else 'ies'} carried over",
        ),
        (
            w.day_waiting * days,
            lambda: (
                f"{_days(days)} "
                + ("waiting, no delivery yet" if never else "since the last delivery")
            ),
        ),
        (w.supply_day_left * supply, lambda: f"food for {_days(supply)} left"),
    ]


def _clip(x: Any, low: int, high: int | None) -> Any:
    # numpy's clip costs microseconds on a plain number, which one line's score should not pay
    if isinstance(x, np.ndarray):
        return np.clip(x, low, high)
    return max(x, low) if high is None else min(max(x, low), high)


def _days(n: int) -> str:
    return f"{n} day{'s' if n != 1 else ''}"
