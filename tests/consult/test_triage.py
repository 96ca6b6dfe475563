"""Triage rules: table-driven cases for every rule, red flags, the checker and bad answers."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from relieflink.consult import triage
from tests.consult.factories import negatives

RULES = triage.default_rules()
EMERGENCY = "call_emergency_services"

ADULT: dict[str, Any] = {"age_band": "adult", "sex": "female", "pregnant": False}
PREGNANT = ADULT | {"pregnant": True}
INFANT = ADULT | {"age_band": "infant"}
NEWBORN = ADULT | {"age_band": "newborn"}
CHILD = ADULT | {"age_band": "child"}
OLDER = ADULT | {"age_band": "older_adult"}

# (rule id, context, answers, expected urgency, expected outcome). Written by hand from the
# intent of each rule, not read from the YAML: the YAML is what is under test.
CASES: list[tuple[str, dict[str, Any], dict[str, Any], str, str]] = [
    ("RF-unresponsive", ADULT, {"unresponsive_or_seizure": True}, "immediate", EMERGENCY),
    ("RF-breathing", ADULT, {"breathing_difficulty": "severe"}, "immediate", EMERGENCY),
    ("RF-chest-pain", ADULT, {"chest_pain": "severe"}, "immediate", EMERGENCY),
    ("RF-bleeding", ADULT, {"bleeding": "heavy"}, "immediate", EMERGENCY),
    ("RF-stroke", OLDER, {"stroke_signs": True}, "immediate", EMERGENCY),
    ("RF-anaphylaxis", ADULT, {"severe_allergic_reaction": True}, "immediate", EMERGENCY),
    ("RF-self-harm", ADULT, {"self_harm_risk": "plan_or_attempt"}, "immediate", EMERGENCY),
    ("RF-pregnancy-bleeding", PREGNANT, {"pregnancy_bleeding": True}, "immediate", EMERGENCY),
    (
        "RF-pregnancy-headache-vision",
        PREGNANT,
        {"pregnancy_severe_headache_or_vision": True},
        "immediate",
        EMERGENCY,
    ),
    (
        "RF-pregnancy-abdominal-pain",
        PREGNANT,
        {"pregnancy_severe_abdominal_pain": True},
        "immediate",
        EMERGENCY,
    ),
    ("RF-pregnancy-waters", PREGNANT, {"pregnancy_waters_broken": True}, "immediate", EMERGENCY),
    ("RF-child-unable-to-feed", INFANT, {"child_unable_to_feed": True}, "immediate", EMERGENCY),
    (
        "RF-child-vomits-everything",
        CHILD,
        {"child_vomits_everything": True},
        "immediate",
        EMERGENCY,
    ),
    ("RF-child-convulsions", INFANT, {"child_convulsions": True}, "immediate", EMERGENCY),
    ("RF-child-lethargic", NEWBORN, {"child_lethargic": True}, "immediate", EMERGENCY),
    (
        "RF-child-breathing",
        CHILD,
        {"child_chest_indrawing_or_fast_breathing": True},
        "immediate",
        EMERGENCY,
    ),
    ("RF-newborn-fever", NEWBORN, {"fever": "below_38_5"}, "immediate", EMERGENCY),
    ("DN-fever-40", ADULT, {"fever": "from_40"}, "very_urgent", "doctor_now"),
    ("DN-infant-fever", INFANT, {"fever": "from_38_5"}, "very_urgent", "doctor_now"),
    ("DN-self-harm-thoughts", ADULT, {"self_harm_risk": "thoughts"}, "very_urgent", "doctor_now"),
    (
        "DN-critical-medicine-out",
        ADULT,
        {"medicine_running_out": "run_out", "insulin_or_anticoagulant": True},
        "very_urgent",
        "doctor_now",
    ),
    (
        "DN-dehydration",
        ADULT,
        {"vomiting_diarrhoea": "cannot_keep_fluids"},
        "very_urgent",
        "doctor_now",
    ),
    (
        "DN-pregnancy-contractions",
        PREGNANT,
        {"pregnancy_regular_contractions": True},
        "very_urgent",
        "doctor_now",
    ),
    (
        "DN-pregnancy-movement",
        PREGNANT,
        {"pregnancy_reduced_fetal_movement": True},
        "very_urgent",
        "doctor_now",
    ),
    ("DN-older-breathing", OLDER, {"breathing_difficulty": "mild"}, "very_urgent", "doctor_now"),
    ("DT-breathing-mild", ADULT, {"breathing_difficulty": "mild"}, "urgent", "doctor_today"),
    ("DT-chest-pain-mild", ADULT, {"chest_pain": "mild"}, "urgent", "doctor_today"),
    ("DT-severe-pain", ADULT, {"pain": "severe"}, "urgent", "doctor_today"),
    ("DT-severe-distress", ADULT, {"mental_distress": "severe"}, "urgent", "doctor_today"),
    ("DT-fever-38-5", ADULT, {"fever": "from_38_5"}, "urgent", "doctor_today"),
    ("DT-long-fever", ADULT, {"fever_days": "from_3"}, "urgent", "doctor_today"),
    (
        "DT-medicine-run-out",
        ADULT,
        {"medicine_running_out": "run_out"},
        "urgent",
        "medicine_refill",
    ),
    ("DT-pregnancy-any", PREGNANT, {}, "standard", "doctor_today"),
    (
        "ST-medicine-2-days",
        ADULT,
        {"medicine_running_out": "within_2_days"},
        "standard",
        "medicine_refill",
    ),
    ("ST-minor-bleeding", ADULT, {"bleeding": "minor"}, "standard", "doctor_today"),
    ("ST-moderate-pain", ADULT, {"pain": "moderate"}, "standard", "doctor_today"),
    ("ST-moderate-distress", ADULT, {"mental_distress": "moderate"}, "standard", "doctor_today"),
    ("ST-vomiting", ADULT, {"vomiting_diarrhoea": "some"}, "standard", "doctor_today"),
    (
        "NU-medicine-7-days",
        ADULT,
        {"medicine_running_out": "within_7_days"},
        "non_urgent",
        "medicine_refill",
    ),
    ("NU-mild-fever", ADULT, {"fever": "below_38_5"}, "non_urgent", "self_care"),
    ("NU-cough", ADULT, {"cough_or_sore_throat": True}, "non_urgent", "self_care"),
]

# Every answer that is a red flag on its own (independent of the YAML), used to check "red flag
# ⇔ call emergency services" over random questionnaires. A reported danger sign counts whatever
# the stated age band or pregnancy: an inconsistent form must not hide an emergency.
RED_FLAG_ANSWERS: list[tuple[str, Any]] = [
    ("unresponsive_or_seizure", True),
    ("breathing_difficulty", "severe"),
    ("chest_pain", "severe"),
    ("bleeding", "heavy"),
    ("stroke_signs", True),
    ("severe_allergic_reaction", True),
    ("self_harm_risk", "plan_or_attempt"),
    ("pregnancy_bleeding", True),
    ("pregnancy_severe_headache_or_vision", True),
    ("pregnancy_severe_abdominal_pain", True),
    ("pregnancy_waters_broken", True),
    ("child_unable_to_feed", True),
    ("child_vomits_everything", True),
    ("child_convulsions", True),
    ("child_lethargic", True),
    ("child_chest_indrawing_or_fast_breathing", True),
]


def run(context: dict[str, Any], answers: dict[str, Any]) -> triage.TriageResult:
    full = negatives(context["age_band"], pregnant=context["pregnant"]) | answers
    assert triage.check_answers(RULES, full, **context) == []
    return triage.evaluate(RULES, full, **context)


@pytest.mark.parametrize(
    ("rule_id", "context", "answers", "urgency", "outcome"), CASES, ids=[c[0] for c in CASES]
)
def test_each_rule(
    rule_id: str, context: dict[str, Any], answers: dict[str, Any], urgency: str, outcome: str
) -> None:
    result = run(context, answers)
    assert rule_id in result.fired
    assert (result.urgency, result.outcome) == (urgency, outcome)
    assert result.target_minutes == RULES.levels[urgency].target_minutes
    assert result.rules_version == RULES.version
    assert result.is_emergency == (outcome == EMERGENCY)
    assert bool(result.emergency_numbers) == (outcome == EMERGENCY)


def test_the_table_covers_every_rule() -> None:
    assert {r.id for r in RULES.rules} == {c[0] for c in CASES}


@pytest.mark.parametrize("rule", [r for r in RULES.rules if r.red_flag], ids=lambda r: r.id)
def test_every_red_flag_rule_calls_emergency_services_with_numbers(rule: triage.Rule) -> None:
    context = dict(ADULT)
    answers: dict[str, Any] = {}
    for name, values in rule.conditions.items():
        (context if name in triage.CONTEXT_FIELDS else answers)[name] = values[0]
    if any(k.startswith("pregnancy_") for k in answers):
        context["pregnant"] = True
    if any(k.startswith("child_") for k in answers):
        context["age_band"] = "infant"
    # Even mixed with a routine refill, a red flag wins.
    result = run(context, answers | {"medicine_running_out": "within_7_days"})
    assert result.outcome == EMERGENCY
    assert result.urgency == "immediate"
    assert rule.id in result.red_flags
    numbers = {n["number"] for n in result.emergency_numbers}
    assert {"120", "999"} <= numbers


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_emergency_if_and_only_if_a_red_flag_answer(data: st.DataObject) -> None:
    age_band = data.draw(st.sampled_from(RULES.age_bands))
    pregnant = data.draw(st.booleans()) if age_band in ("adolescent", "adult") else False
    context = {"age_band": age_band, "sex": "female", "pregnant": pregnant}
    answers = negatives(age_band, pregnant=pregnant)
    for q in RULES.questions.values():
        if data.draw(st.integers(0, 5)) == 0:  # each question positive now and then
            answers[q.id] = data.draw(st.sampled_from(q.choices))
    result = triage.evaluate(RULES, answers, **context)
    red = any(answers.get(q) == v for q, v in RED_FLAG_ANSWERS)
    red = red or (age_band == "newborn" and answers.get("fever", "none") != "none")
    assert result.is_emergency == red, (answers, context, result.fired)
    # The urgency is the most urgent of the rules that fired, and every fired rule is recorded.
    fired = [r for r in RULES.rules if r.id in result.fired]
    if fired:
        assert result.rank == min(RULES.levels[r.urgency].rank for r in fired)


def test_no_rule_fired_gives_the_default() -> None:
    result = run(ADULT, {})
    assert result.fired == ()
    assert (result.urgency, result.outcome) == (RULES.default_urgency, RULES.default_outcome)
    assert result.specialty == "general"


@pytest.mark.parametrize(
    ("context", "answers", "specialty"),
    [
        (INFANT, {}, "paediatrics"),
        (ADULT | {"age_band": "adolescent"}, {"mental_distress": "severe"}, "paediatrics"),
        (PREGNANT, {}, "obstetrics"),
        (ADULT, {"self_harm_risk": "thoughts"}, "psychiatry"),
        (ADULT, {"mental_distress": "moderate"}, "psychiatry"),
        (ADULT, {"medicine_running_out": "within_2_days"}, "internal_medicine"),
        (ADULT, {"chest_pain": "mild"}, "internal_medicine"),
        (ADULT, {"cough_or_sore_throat": True}, "general"),
    ],
)
def test_routing(context: dict[str, Any], answers: dict[str, Any], specialty: str) -> None:
    assert run(context, answers).specialty == specialty


def test_no_symptoms_is_refused_with_a_clear_error() -> None:
    errors = triage.check_answers(RULES, {}, **ADULT)
    assert len(errors) == 1
    assert errors[0].loc == ("symptoms",)
    assert "without symptoms" in errors[0].msg
    assert "breathing_difficulty" in errors[0].msg  # says what must be answered


def test_unanswered_red_flag_questions_are_refused() -> None:
    errors = triage.check_answers(RULES, {"cough_or_sore_throat": True}, **INFANT)
    missing = {e.loc[1] for e in errors}
    assert "breathing_difficulty" in missing
    assert "child_convulsions" in missing  # under-5 danger signs are required for an infant


@pytest.mark.parametrize(
    ("answers", "where"),
    [
        ({"fever": "hot"}, "fever"),
        ({"stroke_signs": "yes"}, "stroke_signs"),
        ({"fever": True}, "fever"),
        ({"sneezing": True}, "sneezing"),
    ],
)
def test_bad_answers_name_the_question(answers: dict[str, Any], where: str) -> None:
    errors = triage.check_answers(RULES, negatives() | answers, **ADULT)
    assert [e.loc for e in errors] == [("symptoms", where)]


def test_a_man_cannot_be_pregnant() -> None:
    errors = triage.check_answers(RULES, negatives(pregnant=True), **(PREGNANT | {"sex": "male"}))
    assert ("pregnant",) in [e.loc for e in errors]


def _doc() -> dict[str, Any]:
    with open(triage.RULES_PATH, encoding="utf-8") as fh:
        return copy.deepcopy(yaml.safe_load(fh))


def test_the_packaged_rules_load() -> None:
    assert triage.parse_rules(_doc()).version == RULES.version


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda d: d["rules"][0]["then"].update(outcome="doctor_now"), "red flag"),
        (lambda d: d["rules"][-1]["then"].update(outcome=EMERGENCY), "only for rules"),
        (lambda d: d["rules"][0]["if"].update(nonsense=[True]), "unknown field"),
        (lambda d: d["rules"][0]["if"].update(fever=["boiling"]), "cannot be"),
        (lambda d: d["rules"][1]["then"].update(urgency="soonish"), "unknown urgency"),
        (lambda d: d["rules"].append(dict(d["rules"][0])), "duplicate"),
        (lambda d: d.pop("emergency_numbers"), "emergency_numbers"),
        (lambda d: d["routing"][0].update(specialty="surgery"), "unknown specialty"),
    ],
)
def test_the_checker_refuses_bad_rules(change: Any, problem: str) -> None:
    doc = _doc()
    change(doc)
    with pytest.raises(triage.RulesError) as info:
        triage.parse_rules(doc)
    assert any(problem in p for p in info.value.problems), info.value.problems
