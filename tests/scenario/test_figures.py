"""The figures module: package data, derived rates and the assumptions register."""

from __future__ import annotations

import subprocess
import sys
from importlib import resources

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from relieflink.scenario import ASSUMPTIONS, PUBLISHED, derived_rates, load_districts
from relieflink.scenario import figures as fg
from relieflink.scenario.generator import apportion


def test_district_table_is_package_data() -> None:
    path = resources.files("relieflink.scenario").joinpath("data", "shanghai_districts.csv")
    assert path.is_file()
    districts = load_districts("shanghai")
    assert len(districts) == 16
    assert sum(d.population for d in districts) == fg.POPULATION_2020
    assert len({d.code for d in districts}) == 16
    assert all(30.6 < d.lat < 31.9 and 120.8 < d.lon < 122.0 for d in districts)
    assert {d.name for d in districts} >= {"Pudong", "Huangpu", "Chongming"}


def test_household_shares_have_the_census_mean() -> None:
    shares = np.array(fg.HOUSEHOLD_SIZE_SHARES)
    assert shares.sum() == pytest.approx(1.0)
    assert (np.arange(1, len(shares) + 1) * shares).sum() == pytest.approx(2.32)


def test_derived_rates_follow_the_figures() -> None:
    r = derived_rates()
    assert r.infant_rate == pytest.approx(0.00981, abs=1e-5)  # 244,000 / 24.87 M
    assert r.pregnant_rate == pytest.approx(0.00358, abs=1e-5)  # 89,000 / 24.87 M
    assert r.elderly_80_rate == pytest.approx(0.036, abs=5e-4)  # 15.5 % of 23.4 %
    # hypertension 23.4 % x 40.7 % on medication, diabetes 11.3 % x 33 % (assumed), adults only
    assert r.chronic_rate == pytest.approx(0.877 * (1 - (1 - 0.0952) * (1 - 0.0373)), rel=1e-3)
    for p in (r.p_infant, r.p_pregnant, r.p_alone_80, r.p_shared_80, r.p_chronic, r.p_disabled):
        assert 0.0 < p < 1.0


def test_assumptions_are_named_once() -> None:
    names = [a.name for a in ASSUMPTIONS]
    assert len(names) == len(set(names))
    assert all(a.rationale for a in ASSUMPTIONS)
    assert {"household_size_shares", "disability_rate", "diabetes_on_medication"} <= set(names)
    assert all(f.source for f in PUBLISHED)


def test_scenario_imports_no_database_or_web_stack() -> None:
    code = (
        "import sys, relieflink.scenario, relieflink.scenario.generator\n"
        "bad = [m for m in ('sqlalchemy', 'fastapi', 'pydantic', 'relieflink.db', "
        "'relieflink.models', 'relieflink.api') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@given(
    total=st.integers(min_value=0, max_value=10**7),
    weights=st.lists(st.floats(min_value=0.01, max_value=100.0), min_size=1, max_size=50),
    minimum=st.integers(min_value=0, max_value=3),
)
def test_apportion_sums_and_respects_minimum(
    total: int, weights: list[float], minimum: int
) -> None:
    if total < minimum * len(weights):
        with pytest.raises(ValueError, match="cannot give"):
            apportion(total, weights, minimum)
        return
    parts = apportion(total, weights, minimum)
    assert int(parts.sum()) == total
    assert (parts >= minimum).all()
    quota = np.array(weights) / sum(weights) * (total - minimum * len(weights))
    assert (np.abs(parts - minimum - quota) < 1.0 + 1e-6).all()
