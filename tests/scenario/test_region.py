"""A scaled city is a contiguous part of Shanghai at its real density: the whole compounds
nearest to the centre, with their committees, teams, their share of the warehouses and of the
carriers' fleets (no factor), and donors who give what they gave. On more than one seed."""

from __future__ import annotations

import csv
import math
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest

from relieflink.scenario import CityManifest, generate_city
from relieflink.scenario import figures as fg
from relieflink.scenario import generator as gen

SEEDS = (7, 8)
SCALES = (0.001, 0.01)


def read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def cities(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[int, float], CityManifest]:
    return {
        (seed, scale): generate_city(
            scale=scale, seed=seed, out=tmp_path_factory.mktemp(f"city-{seed}-{scale}")
        )
        for seed in SEEDS
        for scale in SCALES
    }


def _km_from_centre(rows: list[dict[str, str]]) -> np.ndarray:
    lat = np.array([float(r["lat"]) for r in rows])
    lon = np.array([float(r["lon"]) for r in rows])
    return gen._km_from(lat, lon, *fg.CITY_CENTRE)


@pytest.mark.parametrize("seed", SEEDS)
def test_the_city_is_the_compounds_nearest_the_centre(
    cities: dict[tuple[int, float], CityManifest], seed: int
) -> None:
    whole = gen._plan_communities(fg.load_districts(), seed)
    distance = gen._km_from(whole.lat, whole.lon, *fg.CITY_CENTRE)
    for scale in SCALES:
        comms = read(cities[seed, scale].files["communities"])
        chosen = np.isin(whole.codes, [r["code"] for r in comms])
        assert chosen.sum() == len(comms)
        # contiguous: a disc, every compound of the city nearer than every one left out
        assert distance[chosen].max() <= distance[~chosen].min()
        # whole compounds, as in the whole city
        residents = dict(zip(whole.codes, whole.residents.tolist(), strict=True))
        assert all(int(r["residents"]) == residents[r["code"]] for r in comms)
    small, large = ({r["code"] for r in read(cities[seed, s].files["communities"])} for s in SCALES)
    assert small < large  # a larger scale grows the same city outward


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("scale", SCALES)
def test_residents_live_at_the_real_density(
    cities: dict[tuple[int, float], CityManifest], seed: int, scale: float
) -> None:
    comms = read(cities[seed, scale].files["communities"])
    residents = np.array([int(r["residents"]) for r in comms])
    radius = _km_from_centre(comms).max()
    density = residents.sum() / (math.pi * radius**2)
    districts = {d.code: d for d in fg.load_districts()}
    published = sum(
        int(r["residents"]) * districts[r["district_code"]].population
        / districts[r["district_code"]].area_km2
        for r in comms
    ) / residents.sum()  # fmt: skip
    # the published density of its districts (a disc cut out of disc-shaped districts leaves
    # some gaps), not a sample of the whole city (that would be `scale` times as sparse)
    assert 0.5 * published <= density <= 2.0 * published
    assert abs(residents.sum() - scale * fg.POPULATION_2020) <= residents.max() / 2


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("scale", SCALES)
def test_committees_and_teams_are_those_of_its_compounds(
    cities: dict[tuple[int, float], CityManifest], seed: int, scale: float
) -> None:
    m = cities[seed, scale]
    comms = read(m.files["communities"])
    committees = {r["code"] for r in read(m.files["organizations"]) if r["kind"] == "committee"}
    assert {r["committee_code"] for r in comms} == committees
    assert [t["community_code"] for t in read(m.files["teams"])] == [r["code"] for r in comms]
    # compact committees: the disc cuts few of them (at most twice the whole-city ratio)
    per_committee = len(comms) / len(committees)
    assert len(committees) <= 2 * len(comms) * fg.RESIDENTS_COMMITTEES_2019 / fg.COMMUNITIES_TOTAL
    assert per_committee >= 1


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("scale", SCALES)
def test_the_fleet_is_its_share_of_the_published_one(
    cities: dict[tuple[int, float], CityManifest], seed: int, scale: float
) -> None:
    m = cities[seed, scale]
    warehouses = {r["code"]: r for r in read(m.files["warehouses"])}
    vehicles = read(m.files["vehicles"])
    by_kind: Counter[str] = Counter()
    for r in vehicles:
        assert r["depot_code"] in warehouses
        by_kind[r["kind"]] += int(r["count"])
    # couriers per resident as in the whole city (11,000 for 24.9 M), within a factor 2: the
    # city takes each depot's vehicles in proportion to the residents it serves there
    couriers = by_kind["truck"] + by_kind["van"] + by_kind["ebike"]
    per_resident = fg.COURIERS_MID_APRIL / fg.POPULATION_2020
    assert 0.5 <= couriers / (m.population * per_resident) <= 2.0
    # robots in proportion too (100 for the city): none for 25,000 residents, one for 250,000
    expected_robots = fg.ROBOTS_TOTAL * m.population / fg.POPULATION_2020
    assert abs(by_kind["robot"] - expected_robots) <= 1
    # warehouses: those whose catchment the city is in, with a share of their capacity
    plan = {w[0]: w for w in fg.WAREHOUSE_PLAN}
    for code, r in warehouses.items():
        full = fg.TOTAL_DAILY_OUTBOUND_KG * plan[code][5]
        assert 100 <= int(r["daily_outbound_kg"]) <= max(100, full * scale * 10)


def test_the_whole_city_has_the_published_fleet_and_warehouses() -> None:
    everywhere = np.ones(len(fg.WAREHOUSE_PLAN))
    total: Counter[str] = Counter()
    for row in gen._vehicle_rows(everywhere):
        total[str(row[2])] += int(row[4])  # type: ignore[call-overload]
    assert dict(total) == fg.FLEET_AT_FULL_SCALE
    outbound = sum(int(row[8]) for row in gen._warehouse_rows(fg.load_districts(), everywhere))  # type: ignore[call-overload]
    assert outbound == fg.TOTAL_DAILY_OUTBOUND_KG


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("scale", SCALES)
def test_donors_give_what_they_gave(
    cities: dict[tuple[int, float], CityManifest], seed: int, scale: float
) -> None:
    given: dict[str, Counter[str]] = defaultdict(Counter)  # sku → donor → quantity
    for r in read(cities[seed, scale].files["pledges"]):
        given[r["item_sku"]][r["donor_code"]] += int(r["quantity"])
    for sku in ("RICE-5KG", "FLOUR-5KG", "OIL-5L", "KIT-FAMILY-FOOD"):
        assert set(given[sku]) <= set(fg.GRAIN_COMPANIES), sku  # grain companies only
    for sku in ("FORMULA-800G", "KIT-INFANT", "KIT-CHRONIC-MED", "MASK-50"):
        assert given[sku] and not set(given[sku]) & set(fg.GRAIN_COMPANIES), sku
    for sku, donors in given.items():
        total = sum(donors.values())
        shares = fg.donor_shares(sku)
        assert set(donors) <= set(shares)
        for donor, share in shares.items():
            assert abs(donors[donor] - share * total) <= 1, (sku, donor)  # largest remainder
    # not every donor an equal share of every kit
    assert len({frozenset(d) for d in given.values()}) > 3
