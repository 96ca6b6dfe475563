"""Erlang C: against the textbook formula, invariants, and the plan/CLI."""

from __future__ import annotations

import math
import pathlib
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from relieflink.cli.consult import app
from relieflink.consult import staffing, triage


def textbook_erlang_c(c: int, a: Fraction) -> Fraction:
    """The closed form with exact fractions (fine for small c)."""
    top = a**c / math.factorial(c) * Fraction(c) / (c - a)
    return top / (sum(a**k / math.factorial(k) for k in range(c)) + top)


@pytest.mark.parametrize(
    ("c", "a"), [(1, Fraction(1, 2)), (3, Fraction(2)), (5, Fraction(9, 2)), (12, Fraction(10))]
)
def test_matches_the_closed_form(c: int, a: Fraction) -> None:
    assert staffing.erlang_c(c, float(a)) == pytest.approx(float(textbook_erlang_c(c, a)), 1e-12)


def test_known_value() -> None:
    assert staffing.erlang_c(3, 2.0) == pytest.approx(4 / 9)  # 2 erlangs on 3 servers


def test_stable_for_large_systems() -> None:
    # 900 erlangs: factorials and powers overflow floats; the recursion does not.
    p = staffing.erlang_c(1000, 900.0)
    assert 0.0 < p < 1.0 and math.isfinite(p)


@given(load=st.floats(0.05, 200), extra=st.integers(1, 50))
def test_more_doctors_never_make_waiting_likelier(load: float, extra: int) -> None:
    c = math.floor(load) + extra
    assert staffing.erlang_c(c + 1, load) <= staffing.erlang_c(c, load) + 1e-12
    assert 0.0 <= staffing.erlang_c(c, load) <= 1.0


@given(rate=st.floats(0.1, 300), minutes=st.floats(1, 60), target=st.floats(0, 1440))
def test_servers_needed_is_the_fewest_meeting_the_level(
    rate: float, minutes: float, target: float
) -> None:
    c = staffing.servers_needed(rate, minutes, target, 0.8)
    load = rate * minutes / 60
    assert staffing.prob_wait_within(c, load, minutes, target) >= 0.8
    assert c == 1 or staffing.prob_wait_within(c - 1, load, minutes, target) < 0.8


def test_plan_takes_the_strictest_level_and_no_arrivals_need_nobody() -> None:
    rates = [0.0] * 24
    rates[9] = 30.0
    plan = staffing.staffing_plan(
        rates, service_minutes=10, targets={"immediate": 0, "standard": 240}
    )
    assert plan[3].doctors_needed == 0
    assert plan[9].doctors_needed == max(plan[9].needed_by_level.values())
    assert plan[9].needed_by_level["immediate"] >= plan[9].needed_by_level["standard"] >= 6
    with pytest.raises(ValueError, match="24"):
        staffing.staffing_plan([1.0], service_minutes=10, targets={"x": 1})


def test_cli_staffing_and_rules_check() -> None:
    runner = CliRunner()
    result = runner.invoke(
        app, ["staffing", "--arrivals-per-hour", "20", "--service-minutes", "12"]
    )
    assert result.exit_code == 0, result.output
    assert "peak:" in result.output
    bad = runner.invoke(app, ["staffing", "--arrivals-per-hour", "1,2,3"])
    assert bad.exit_code == 2
    ok = runner.invoke(app, ["triage-rules", "--check"])
    assert ok.exit_code == 0 and "OK" in ok.output


def test_cli_rules_check_reports_every_problem(tmp_path: pathlib.Path) -> None:
    text = triage.RULES_PATH.read_text(encoding="utf-8")
    bad = text.replace(
        "if: {bleeding: [heavy]}, then: {urgency: immediate, outcome: call_emergency_services}",
        "if: {bleeding: [heavy]}, then: {urgency: immediate, outcome: self_care}",
    )
    assert bad != text
    path = tmp_path / "rules.yaml"
    path.write_text(bad, encoding="utf-8")
    result = CliRunner().invoke(app, ["triage-rules", "--check", "--file", str(path)])
    assert result.exit_code == 1
    assert "RF-bleeding" in result.output and "red flag" in result.output
