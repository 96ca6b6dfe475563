"""The scenario's committees (the published 4,463 of the whole city) and a volunteer team per
compound (sized by the named assumption), deterministic by seed."""

from __future__ import annotations

import csv
import math
from collections import Counter
from pathlib import Path

import pytest

from relieflink.scenario import CityManifest, generate_city
from relieflink.scenario import figures as fg

SCALE = 0.01


def read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> CityManifest:
    return generate_city(scale=SCALE, seed=11, out=tmp_path_factory.mktemp("city"))


def test_committees_manage_the_compounds_of_one_district(city: CityManifest) -> None:
    orgs = read(city.files["organizations"])
    committees = {r["code"] for r in orgs if r["kind"] == "committee"}
    # the whole city's committees of these compounds (45 × scale; more at the city's edge)
    assert round(fg.RESIDENTS_COMMITTEES_2019 * SCALE) <= len(committees) <= 2 * 45
    compounds = read(city.files["communities"])
    assert {c["committee_code"] for c in compounds} == committees  # each manages some
    districts: dict[str, set[str]] = {}
    for c in compounds:
        districts.setdefault(c["committee_code"], set()).add(c["district_code"])
    assert all(len(d) == 1 for d in districts.values())
    per_committee = Counter(c["committee_code"] for c in compounds)
    assert max(per_committee.values()) <= 2 * math.ceil(len(compounds) / len(committees))


def test_a_team_per_compound_sized_by_the_named_assumption(city: CityManifest) -> None:
    compounds = {c["code"]: c for c in read(city.files["communities"])}
    teams = read(city.files["teams"])
    assert [t["community_code"] for t in teams] == list(compounds)
    assert len({t["code"] for t in teams}) == len(teams)
    for team in teams:
        households = int(compounds[team["community_code"]]["households"])
        expected = max(
            fg.VOLUNTEER_TEAM_MIN, math.ceil(households / fg.VOLUNTEER_HOUSEHOLDS_PER_MEMBER)
        )
        assert int(team["headcount"]) == expected
        assert int(team["trolley_capacity_kg"]) == fg.VOLUNTEER_TROLLEY_KG
        assert int(team["shift_start_s"]) < int(team["shift_end_s"])
        assert team["leader_username"] == ""
    names = {a.name for a in fg.ASSUMPTIONS}
    assert "volunteer_households_per_member" in names
    assert "volunteer_households_per_member" not in {f.name for f in fg.PUBLISHED}


def test_committees_and_teams_are_deterministic(city: CityManifest, tmp_path: Path) -> None:
    again = generate_city(scale=SCALE, seed=11, out=tmp_path)
    for name in ("organizations", "communities", "teams"):
        assert again.files[name].read_bytes() == city.files[name].read_bytes(), name


def test_a_tiny_city_still_has_a_committee_per_district(tmp_path: Path) -> None:
    m = generate_city(scale=0.0005, seed=1, out=tmp_path)
    compounds = read(m.files["communities"])
    assert all(c["committee_code"] for c in compounds)
    assert m.counts["teams"] == len(compounds)
