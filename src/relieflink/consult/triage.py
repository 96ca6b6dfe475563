"""Triage of consultation requests by versioned rules kept as data (``rules/triage.yaml``).

The rules are ours, not a licensed protocol. Every matching rule fires and is recorded; the
urgency is the most urgent among them and the outcome the most severe. A red-flag rule always
means "call emergency services now", and the result then carries the numbers to call.

This module is pure (no database): :func:`load_rules` reads and checks a file,
:func:`evaluate` triages one set of answers, :func:`check_answers` says what is wrong with them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from relieflink.errors import FieldError

RULES_PATH = Path(__file__).resolve().parent / "rules" / "triage.yaml"
EMERGENCY = "call_emergency_services"
CONTEXT_FIELDS = ("age_band", "sex", "pregnant")
SEXES = ("female", "male", "other", "unknown")
Answer = bool | str


@dataclass(frozen=True)
class Level:
    name: str
    rank: int
    target_minutes: int


@dataclass(frozen=True)
class Question:
    id: str
    kind: str  # "bool" or "choice"
    choices: tuple[Answer, ...]
    required: str | None  # None, "always", "under_5", "pregnant"
    text: str = ""
    text_zh: str = ""

    @property
    def negative(self) -> Answer:
        """The "nothing wrong" answer an unanswered optional question counts as."""
        return self.choices[0]


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    conditions: Mapping[str, tuple[Answer, ...]]
    urgency: str
    outcome: str
    red_flag: bool = False

    def matches(self, facts: Mapping[str, Answer]) -> bool:
        return all(facts.get(name) in values for name, values in self.conditions.items())


@dataclass(frozen=True)
class Route:
    conditions: Mapping[str, tuple[Answer, ...]]
    specialty: str


@dataclass(frozen=True)
class TriageRules:
    version: str
    levels: Mapping[str, Level]
    outcomes: tuple[str, ...]
    emergency_numbers: tuple[Mapping[str, str], ...]
    age_bands: tuple[str, ...]
    under_5: frozenset[str]
    questions: Mapping[str, Question]
    rules: tuple[Rule, ...]
    default_urgency: str
    default_outcome: str
    routing: tuple[Route, ...]
    specialties: tuple[str, ...]
    languages: tuple[str, ...]

    def level(self, name: str) -> Level:
        return self.levels[name]


@dataclass(frozen=True)
class TriageResult:
    urgency: str
    rank: int
    target_minutes: int
    outcome: str
    specialty: str
    fired: tuple[str, ...]
    red_flags: tuple[str, ...]
    rules_version: str
    emergency_numbers: tuple[Mapping[str, str], ...] = field(default=())

    @property
    def is_emergency(self) -> bool:
        return self.outcome == EMERGENCY


class RulesError(ValueError):
    """The rules file is not valid; ``problems`` lists every problem found."""

    def __init__(self, path: Path | str, problems: list[str]) -> None:
        super().__init__(f"{path}: " + "; ".join(problems))
        self.problems = problems


def _values(raw: Any) -> tuple[Answer, ...]:
    return tuple(raw) if isinstance(raw, list) else (raw,)


def _conditions(raw: Any, where: str, problems: list[str]) -> dict[str, tuple[Answer, ...]]:
    if not isinstance(raw, dict) or not raw:
        problems.append(f"{where}: `if` must be a non-empty mapping")
        return {}
    return {str(k): _values(v) for k, v in raw.items()}


def parse_rules(doc: Mapping[str, Any], *, source: str = "<rules>") -> TriageRules:
    """Build and check the rules from a parsed YAML document; ``RulesError`` lists every problem."""
    problems: list[str] = []

    def need(key: str) -> Any:
        if key not in doc:
            problems.append(f"missing top-level key `{key}`")
            return None
        return doc[key]

    version = str(need("version") or "")
    levels = {
        name: Level(name, int(spec["rank"]), int(spec["target_minutes"]))
        for name, spec in (need("levels") or {}).items()
    }
    if sorted(lv.rank for lv in levels.values()) != list(range(1, len(levels) + 1)):
        problems.append("level ranks must be 1..n without gaps")
    outcomes = tuple(need("outcomes") or ())
    if EMERGENCY not in outcomes:
        problems.append(f"outcomes must include {EMERGENCY}")
    numbers = tuple(dict(n) for n in (need("emergency_numbers") or ()))
    if not numbers or any(not n.get("number") for n in numbers):
        problems.append("emergency_numbers must list at least one number, each with `number`")
    age_bands = tuple(need("age_bands") or ())
    under_5 = frozenset(need("under_5") or ())
    if not under_5 <= set(age_bands):
        problems.append("under_5 lists an unknown age band")
    specialties = tuple(need("specialties") or ())
    languages = tuple(need("languages") or ())

    questions: dict[str, Question] = {}
    for i, q in enumerate(need("questions") or ()):
        qid = str(q.get("id", ""))
        kind = q.get("kind")
        if not qid or qid in questions or qid in CONTEXT_FIELDS:
            problems.append(f"questions[{i}]: missing, duplicate or reserved id {qid!r}")
            continue
        if kind == "bool":
            choices: tuple[Answer, ...] = (False, True)
        elif kind == "choice" and q.get("choices"):
            choices = tuple(str(c) for c in q["choices"])
        else:
            problems.append(f"question {qid}: kind must be bool, or choice with choices")
            continue
        required = q.get("required")
        if required not in (None, "always", "under_5", "pregnant"):
            problems.append(f"question {qid}: unknown `required` {required!r}")
        questions[qid] = Question(
            qid, kind, choices, required, str(q.get("text", "")), str(q.get("text_zh", ""))
        )

    context_values: dict[str, tuple[Answer, ...]] = {
        "age_band": age_bands,
        "sex": SEXES,
        "pregnant": (False, True),
    }

    def check_condition(where: str, conds: Mapping[str, tuple[Answer, ...]]) -> None:
        for name, values in conds.items():
            allowed = questions[name].choices if name in questions else context_values.get(name)
            if allowed is None:
                problems.append(f"{where}: unknown field {name!r}")
            elif bad := [v for v in values if v not in allowed]:
                problems.append(f"{where}: {name} cannot be {bad}")

    rules: list[Rule] = []
    seen: set[str] = set()
    for i, r in enumerate(need("rules") or ()):
        rid = str(r.get("id", ""))
        where = f"rule {rid or i}"
        if not rid or rid in seen:
            problems.append(f"{where}: missing or duplicate id")
        seen.add(rid)
        conds = _conditions(r.get("if"), where, problems)
        check_condition(where, conds)
        then = r.get("then") or {}
        urgency, outcome = then.get("urgency"), then.get("outcome")
        if urgency not in levels:
            problems.append(f"{where}: unknown urgency {urgency!r}")
        if outcome not in outcomes:
            problems.append(f"{where}: unknown outcome {outcome!r}")
        red = bool(r.get("red_flag", False))
        if red and outcome != EMERGENCY:
            problems.append(f"{where}: a red flag must have outcome {EMERGENCY}")
        if outcome == EMERGENCY and not red:
            problems.append(f"{where}: outcome {EMERGENCY} is only for rules marked red_flag")
        rules.append(Rule(rid, str(r.get("title", rid)), conds, str(urgency), str(outcome), red))

    default = need("default") or {}
    if default.get("urgency") not in levels or default.get("outcome") not in outcomes:
        problems.append("default must name a known urgency and outcome")
    if default.get("outcome") == EMERGENCY:
        problems.append(f"default cannot be {EMERGENCY}")

    routing: list[Route] = []
    for i, route in enumerate(need("routing") or ()):
        conds = _conditions(route.get("if"), f"routing[{i}]", problems)
        check_condition(f"routing[{i}]", conds)
        if route.get("specialty") not in specialties:
            problems.append(f"routing[{i}]: unknown specialty {route.get('specialty')!r}")
        routing.append(Route(conds, str(route.get("specialty"))))
    if "general" not in specialties:
        problems.append("specialties must include general (the default)")

    if problems:
        raise RulesError(source, problems)
    return TriageRules(
        version=version,
        levels=levels,
        outcomes=outcomes,
        emergency_numbers=numbers,
        age_bands=age_bands,
        under_5=under_5,
        questions=questions,
        rules=tuple(rules),
        default_urgency=str(default["urgency"]),
        default_outcome=str(default["outcome"]),
        routing=tuple(routing),
        specialties=specialties,
        languages=languages,
    )


def load_rules(path: Path | str = RULES_PATH) -> TriageRules:
    """Read and check a rules file."""
    with open(path, encoding="utf-8") as fh:
        doc = yaml.safe_load(fh)
    if not isinstance(doc, dict):
        raise RulesError(path, ["the file is not a YAML mapping"])
    return parse_rules(doc, source=str(path))


@lru_cache
def default_rules() -> TriageRules:
    """The packaged rules, read once per process."""
    return load_rules(RULES_PATH)


def required_questions(rules: TriageRules, *, age_band: str, pregnant: bool) -> list[str]:
    """The questions that must be answered explicitly for this member."""
    applies = {"always": True, "under_5": age_band in rules.under_5, "pregnant": pregnant}
    return [q.id for q in rules.questions.values() if q.required and applies[q.required]]


def check_answers(
    rules: TriageRules,
    answers: Mapping[str, Answer],
    *,
    age_band: str,
    sex: str,
    pregnant: bool,
) -> list[FieldError]:
    """Every problem with a questionnaire, as field errors under ``symptoms``."""
    errors: list[FieldError] = []
    if age_band not in rules.age_bands:
        errors.append(FieldError(("age_band",), f"must be one of {', '.join(rules.age_bands)}"))
    if sex not in SEXES:
        errors.append(FieldError(("sex",), f"must be one of {', '.join(SEXES)}"))
    if pregnant and sex == "male":
        errors.append(FieldError(("pregnant",), "cannot be true when sex is male"))
    if not answers:
        errors.append(
            FieldError(
                ("symptoms",),
                "answer the symptom questionnaire: a consultation without symptoms cannot be "
                "triaged (required: "
                + ", ".join(required_questions(rules, age_band=age_band, pregnant=pregnant))
                + ")",
                "missing",
            )
        )
        return errors
    for name, value in answers.items():
        question = rules.questions.get(name)
        if question is None:
            errors.append(FieldError(("symptoms", name), "not a question of the questionnaire"))
        elif type(value) is not type(question.choices[0]) or value not in question.choices:
            shown = ", ".join(str(c).lower() for c in question.choices)
            errors.append(FieldError(("symptoms", name), f"must be one of: {shown}"))
    errors.extend(
        FieldError(("symptoms", qid), "this question must be answered", "missing")
        for qid in required_questions(rules, age_band=age_band, pregnant=pregnant)
        if qid not in answers
    )
    return errors


def evaluate(
    rules: TriageRules,
    answers: Mapping[str, Answer],
    *,
    age_band: str,
    sex: str,
    pregnant: bool,
    requested_specialty: str | None = None,
) -> TriageResult:
    """Triage checked answers: the fired rules, the urgency, outcome, target and specialty."""
    facts: dict[str, Answer] = {q.id: q.negative for q in rules.questions.values()}
    facts.update(answers)
    facts.update({"age_band": age_band, "sex": sex, "pregnant": pregnant})
    fired = [rule for rule in rules.rules if rule.matches(facts)]
    if fired:
        urgency = min((r.urgency for r in fired), key=lambda u: rules.levels[u].rank)
        outcome = min((r.outcome for r in fired), key=rules.outcomes.index)
    else:
        urgency, outcome = rules.default_urgency, rules.default_outcome
    specialty = requested_specialty or next(
        (
            route.specialty
            for route in rules.routing
            if all(facts.get(k) in v for k, v in route.conditions.items())
        ),
        "general",
    )
    red = tuple(r.id for r in fired if r.red_flag)
    level = rules.levels[urgency]
    return TriageResult(
        urgency=urgency,
        rank=level.rank,
        target_minutes=level.target_minutes,
        outcome=outcome,
        specialty=specialty,
        fired=tuple(r.id for r in fired),
        red_flags=red,
        rules_version=rules.version,
        emergency_numbers=rules.emergency_numbers if outcome == EMERGENCY else (),
    )
