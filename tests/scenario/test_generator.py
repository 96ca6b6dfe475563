"""The synthetic city against the published figures it is generated from.

Most tests share one city at scale 0.01 (≈ 249,000 residents, ≈ 176 communities around People's
Square, ≈ 107,000 households; generated in about a second). The city's contiguity, density,
fleet and donors are tested in test_region.py. Tolerances are stated per test; they are set
at about 4-5 standard deviations of the sampling noise at that size, so a failure means a bias,
not bad luck.
"""

from __future__ import annotations

import csv
import math
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from relieflink.scenario import FILE_HEADERS, CityManifest, derived_rates, generate_city
from relieflink.scenario import figures as fg
from relieflink.scenario import generator as gen

SCALE = 0.01
SEED = 7

CATALOG_SKUS = {
    "RICE-5KG", "FLOUR-5KG", "OIL-5L", "PULSES-1KG", "SALT-500G", "FORMULA-800G",
    "DIAPERS-50", "MASK-50", "TEST-KIT-20", "MED-AMLODIPINE-30", "MED-METFORMIN-60",
    "KIT-FAMILY-FOOD", "KIT-INFANT", "KIT-MATERNITY", "KIT-CHRONIC-MED", "KIT-PROTECTION",
}  # fmt: skip


def read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> CityManifest:
    return generate_city("shanghai", scale=SCALE, seed=SEED, out=tmp_path_factory.mktemp("city"))


@pytest.fixture(scope="module")
def tables(city: CityManifest) -> dict[str, list[dict[str, str]]]:
    return {name: read(path) for name, path in city.files.items()}


@pytest.fixture(scope="module")
def households(tables: dict[str, list[dict[str, str]]]) -> dict[str, np.ndarray]:
    rows = tables["households"]
    cols = ("size", "infants", "pregnant", "chronic", "elderly_80", "disabled")
    return {c: np.array([int(r[c]) for r in rows]) for c in cols}


# ---------------------------------------------------------------------------------------------
# format
# ---------------------------------------------------------------------------------------------


def test_every_file_has_exactly_the_import_headers(city: CityManifest) -> None:
    assert set(city.files) == set(FILE_HEADERS)
    for name, path in city.files.items():
        assert path.name == f"{name}.csv"
        with path.open(encoding="utf-8", newline="") as f:
            header = next(csv.reader(f))
        assert tuple(header) == FILE_HEADERS[name]
    assert FILE_HEADERS["households"] == (
        "code", "community_code", "building", "unit", "size", "infants", "pregnant", "chronic",
        "elderly_80", "disabled", "phone",
    )  # fmt: skip
    assert not list(city.out.glob("*.part"))


def test_row_counts_match_manifest(
    city: CityManifest, tables: dict[str, list[dict[str, str]]]
) -> None:
    for name, rows in tables.items():
        assert len(rows) == city.counts[name], name


def test_codes_booleans_and_phones_are_well_formed(tables: dict[str, list[dict[str, str]]]) -> None:
    comms = tables["communities"]
    assert all(re.fullmatch(r"C\d{5}", r["code"]) for r in comms)
    assert len({r["code"] for r in comms}) == len(comms)
    assert {r["vehicles_allowed"] for r in comms} <= {"true", "false"}
    assert {r["temporary"] for r in tables["warehouses"]} <= {"true", "false"}
    hh = tables["households"]
    assert all(re.fullmatch(r"H\d{8}", r["code"]) for r in hh)
    assert len({r["code"] for r in hh}) == len(hh)
    assert all(re.fullmatch(r"\+86 170\d{8}", r["phone"]) for r in hh)
    codes = {r["code"] for r in comms}
    assert all(r["community_code"] in codes for r in hh)
    assert all(int(r["building"]) >= 1 and int(r["unit"]) >= 101 for r in hh)
    # (community, building, unit) is a unique address
    assert len({(r["community_code"], r["building"], r["unit"]) for r in hh}) == len(hh)
    # full-scale widths: 17,649 communities and ~10.7 M households fit the code widths
    assert fg.COMMUNITIES_TOTAL < 10**5
    assert fg.POPULATION_2020 / fg.PERSONS_PER_HOUSEHOLD * 1.1 < 10**8


def test_organizations_kinds_and_references(tables: dict[str, list[dict[str, str]]]) -> None:
    orgs = {r["code"]: r for r in tables["organizations"]}
    kinds = Counter(r["kind"] for r in orgs.values())
    assert set(kinds) <= {"donor", "ngo", "carrier", "health_provider", "government", "committee"}
    assert kinds["ngo"] == 1
    assert kinds["carrier"] >= 2
    assert kinds["donor"] >= 5
    assert all(re.fullmatch(r"[A-Z]{2}", r["country"]) for r in orgs.values())
    assert "HK" in {r["country"] for r in orgs.values() if r["kind"] == "donor"}
    assert all(r["name"] and r["name_zh"] for r in orgs.values())

    warehouses = {r["code"]: r for r in tables["warehouses"]}
    assert all(r["owner_code"] in orgs for r in warehouses.values())
    temporary = {r["code"] for r in warehouses.values() if r["temporary"] == "true"}
    assert temporary <= {w[0] for w in fg.WAREHOUSE_PLAN if w[6]}
    for r in warehouses.values():
        assert int(r["capacity_kg"]) > 0
        assert int(r["capacity_m3"]) > 0
        assert int(r["daily_outbound_kg"]) > 0

    vehicles = tables["vehicles"]
    assert {r["kind"] for r in vehicles} >= {"truck", "van", "robot"}
    assert {r["kind"] for r in vehicles} <= {"truck", "van", "ebike", "robot", "foot"}
    for r in vehicles:
        assert orgs[r["carrier_code"]]["kind"] == "carrier"
        assert warehouses[r["depot_code"]]["owner_code"] == r["carrier_code"]
        assert int(r["count"]) >= 1
        assert re.fullmatch(r"\d\d:\d\d", r["shift_start"])
        assert r["shift_start"] < r["shift_end"]
    robots = [r for r in vehicles if r["kind"] == "robot"]
    assert all(r["capacity_kg"] == "200" and r["range_km"] == "100" for r in robots)


def test_pledges_reference_donors_ngo_and_catalog(tables: dict[str, list[dict[str, str]]]) -> None:
    orgs = {r["code"]: r["kind"] for r in tables["organizations"]}
    pledges = tables["pledges"]
    assert pledges
    lines = set()
    for r in pledges:
        assert re.fullmatch(r"P\d{5}", r["code"])
        assert orgs[r["donor_code"]] == "donor"
        assert orgs[r["recipient_code"]] == "ngo"
        assert r["item_sku"] in CATALOG_SKUS
        assert int(r["quantity"]) > 0
        assert int(r["declared_value_fen"]) == int(r["quantity"]) * fg.SKU_VALUE_FEN[r["item_sku"]]
        assert "2022-04-01" <= r["expected_arrival"] <= "2022-05-31"
        lines.add((r["code"], r["item_sku"]))
    assert len(lines) == len(pledges)
    # one pledge has one donor, programme and arrival
    heads = {
        (r["code"], r["donor_code"], r["program_code"], r["expected_arrival"]) for r in pledges
    }
    assert {r["program_code"] for r in pledges} <= {r["code"] for r in tables["programs"]}
    assert len(heads) == len({r["code"] for r in pledges})
    # kit totals follow JD's published pack counts x scale (apportioned exactly)
    food = sum(int(r["quantity"]) for r in pledges if r["item_sku"] == "KIT-FAMILY-FOOD")
    assert food == round(fg.JD_FOOD_PACKS * SCALE)


# ---------------------------------------------------------------------------------------------
# aggregates vs published figures
# ---------------------------------------------------------------------------------------------


def test_population_is_the_scaled_share_in_whole_compounds(
    city: CityManifest, tables: dict[str, list[dict[str, str]]], households: dict[str, np.ndarray]
) -> None:
    districts = {d.code: d for d in fg.load_districts("shanghai")}
    comms = tables["communities"]
    # whole compounds: off the target by at most half the largest compound
    largest = max(int(r["residents"]) for r in comms)
    assert abs(city.population - fg.POPULATION_2020 * SCALE) <= largest / 2
    assert int(households["size"].sum()) == city.population
    by_district = Counter[str]()
    for r in comms:
        by_district[r["district_code"]] += int(r["residents"])
    # districts.csv: the districts the compounds are in, with their residents in the city, and
    # the real area and centroid
    rows = tables["districts"]
    assert [r["code"] for r in rows] == [c for c in districts if c in by_district]
    for r in rows:
        d = districts[r["code"]]
        assert int(r["population"]) == by_district[d.code]
        assert float(r["area_km2"]) == d.area_km2
        assert (float(r["lat"]), float(r["lon"])) == (d.lat, d.lon)


def test_community_totals_agree_with_household_file(
    tables: dict[str, list[dict[str, str]]],
) -> None:
    hh = Counter[str]()
    res = Counter[str]()
    for r in tables["households"]:
        hh[r["community_code"]] += 1
        res[r["community_code"]] += int(r["size"])
    for r in tables["communities"]:
        assert int(r["households"]) == hh[r["code"]] > 0
        assert int(r["residents"]) == res[r["code"]]


def test_household_size_mean_is_census_2_32(households: dict[str, np.ndarray]) -> None:
    size = households["size"]
    # tolerance ±0.02: sampling sd of the mean is ~0.004 at this size; trimming the last
    # household of each community lowers the mean by ~0.003
    assert abs(size.mean() - fg.PERSONS_PER_HOUSEHOLD) < 0.02
    assert size.min() >= 1
    assert size.max() <= len(fg.HOUSEHOLD_SIZE_SHARES)


def test_gates_lie_in_their_districts(tables: dict[str, list[dict[str, str]]]) -> None:
    by_code = {d.code: d for d in fg.load_districts("shanghai")}
    for r in tables["communities"]:
        d = by_code[r["district_code"]]
        dy = (float(r["lat"]) - d.lat) * 110.574
        dx = (float(r["lon"]) - d.lon) * 111.320 * math.cos(math.radians(d.lat))
        assert math.hypot(dx, dy) <= math.sqrt(d.area_km2 / math.pi) + 1e-3


def test_lockdown_proportions_are_the_2022_ones(tables: dict[str, list[dict[str, str]]]) -> None:
    comms = tables["communities"]
    n = len(comms)
    got = Counter(r["lockdown_status"] for r in comms)
    assert set(got) <= {"open", "controlled", "sealed"}
    published = {
        "sealed": fg.COMMUNITIES_SEALED / fg.COMMUNITIES_TOTAL,  # 43.2 %
        "controlled": fg.COMMUNITIES_CONTROLLED / fg.COMMUNITIES_TOTAL,  # 13.9 %
        "open": fg.COMMUNITIES_PRECAUTIONARY / fg.COMMUNITIES_TOTAL,  # 42.9 % precautionary
    }
    for status, share in published.items():
        # apportioned exactly over the whole city; the city's compounds are a sample of it:
        # within 4.5 binomial standard deviations
        assert abs(got[status] - share * n) <= 4.5 * math.sqrt(n * share * (1 - share)), status
    for r in comms:
        assert (r["vehicles_allowed"] == "false") == (r["lockdown_status"] == "sealed")


@pytest.mark.parametrize(
    ("column", "published_rate", "rel_tol"),
    [
        # infants under 2: 244,000 / 24.87 M (expected ~2,440 at this scale; sd ~2 %)
        ("infants", fg.INFANTS_UNDER_2 / fg.POPULATION_2020, 0.10),
        # pregnant at any one time: 89,000 / 24.87 M (~890; sd ~3.4 %)
        ("pregnant", fg.PREGNANT_AT_ONCE / fg.POPULATION_2020, 0.15),
        # 80+: 15.5 % of the 23.4 % aged 60+ ≈ 3.6 % (~9,000; sd ~1 %)
        ("elderly_80", fg.SHARE_80_PLUS_OF_60_PLUS * fg.SHARE_60_PLUS, 0.05),
        # chronic illness on medication: derived with assumptions (see figures.py)
        ("chronic", derived_rates().chronic_rate, 0.05),
        # disabled: assumed 6.34 % (2006 national survey)
        ("disabled", fg.DISABILITY_RATE, 0.05),
    ],
)
def test_vulnerable_rates_match_figures(
    households: dict[str, np.ndarray], column: str, published_rate: float, rel_tol: float
) -> None:
    population = int(households["size"].sum())
    got = int(households[column].sum())
    assert got == pytest.approx(published_rate * population, rel=rel_tol)


def test_elderly_living_alone(households: dict[str, np.ndarray], city: CityManifest) -> None:
    alone = int(((households["size"] == 1) & (households["elderly_80"] == 1)).sum())
    # published 318,300 seniors living alone x scale (~3,180; sd ~1.8 %): within 8 %
    assert alone == pytest.approx(fg.SENIORS_LIVING_ALONE * SCALE, rel=0.08)
    assert alone == city.vulnerable["elderly_80_alone"]


def test_households_are_plausible(households: dict[str, np.ndarray]) -> None:
    size = households["size"]
    infants, pregnant, elderly = (
        households["infants"],
        households["pregnant"],
        households["elderly_80"],
    )
    for column in ("infants", "pregnant", "chronic", "elderly_80", "disabled"):
        assert (households[column] >= 0).all()
        assert (households[column] <= size).all()
    assert (infants[size == 1] == 0).all()  # no infant lives alone
    assert (pregnant <= 1).all()
    assert (pregnant[size == 1] == 0).all()
    assert (infants + elderly + pregnant <= size).all()
    assert (households["chronic"] + infants <= size).all()


def test_manifest_totals_match_files(city: CityManifest, households: dict[str, np.ndarray]) -> None:
    for column in ("infants", "pregnant", "chronic", "elderly_80", "disabled"):
        assert city.vulnerable[column] == int(households[column].sum())
    assert city.households == len(households["size"])
    assert (city.out / "manifest.json").is_file()


# ---------------------------------------------------------------------------------------------
# determinism
# ---------------------------------------------------------------------------------------------


def _digest(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def test_same_seed_gives_identical_files(tmp_path: Path, city: CityManifest) -> None:
    again = generate_city("shanghai", scale=SCALE, seed=SEED, out=tmp_path / "again")
    assert _digest(again.out) == _digest(city.out)


def test_different_seed_gives_different_city(tmp_path: Path, city: CityManifest) -> None:
    other = generate_city("shanghai", scale=SCALE, seed=SEED + 1, out=tmp_path / "other")
    a, b = _digest(city.out), _digest(other.out)
    assert a["households.csv"] != b["households.csv"]
    assert a["communities.csv"] != b["communities.csv"]
    assert a["pledges.csv"] != b["pledges.csv"]


@pytest.mark.parametrize("scale", [1e-6, 0.001])
def test_small_scales_give_whole_compounds_and_couriers(tmp_path: Path, scale: float) -> None:
    m = generate_city("shanghai", scale=scale, seed=1, out=tmp_path)
    comms = read(m.files["communities"])
    assert len(comms) >= 1
    assert all(int(r["residents"]) >= 1 and int(r["households"]) >= 1 for r in comms)
    kinds = {r["kind"] for r in read(m.files["vehicles"])}
    assert kinds >= {"truck", "van", "ebike"}


# ---------------------------------------------------------------------------------------------
# invalid arguments, and nothing half-written
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [0, -0.1, 1.01, 2, float("nan"), float("inf"), True, "0.1"])
def test_invalid_scale_is_refused(tmp_path: Path, scale: object) -> None:
    with pytest.raises(ValueError, match="scale"):
        generate_city(scale=scale, seed=1, out=tmp_path)  # type: ignore[arg-type]
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("seed", [-1, 1.5, None, False])
def test_invalid_seed_is_refused(tmp_path: Path, seed: object) -> None:
    with pytest.raises(ValueError, match="seed"):
        generate_city(scale=0.001, seed=seed, out=tmp_path)  # type: ignore[arg-type]


def test_unknown_city_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown city 'atlantis'"):
        generate_city("atlantis", scale=0.001, seed=1, out=tmp_path)


def test_out_that_is_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "file.txt"
    target.write_text("x")
    with pytest.raises(ValueError, match="not a directory"):
        generate_city(scale=0.001, seed=1, out=target)
    with pytest.raises(ValueError, match="cannot create"):
        generate_city(scale=0.001, seed=1, out=target / "sub")


def test_failure_leaves_nothing_half_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(gen, "_write_households", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        generate_city(scale=0.001, seed=1, out=tmp_path)
    assert not list(tmp_path.iterdir())


def test_progress_is_reported(tmp_path: Path) -> None:
    seen: list[tuple[str, int, int]] = []
    m = generate_city(
        scale=0.001, seed=1, out=tmp_path, progress=lambda s, d, t: seen.append((s, d, t))
    )
    assert seen[0] == ("households", 0, m.population)
    assert seen[-1] == ("households", m.population, m.population)


# ---------------------------------------------------------------------------------------------
# the fast byte writer equals the obvious str.format writer
# ---------------------------------------------------------------------------------------------


@given(
    numbers=st.lists(st.integers(min_value=1, max_value=10**8 - 1), min_size=1, max_size=40),
    data=st.data(),
)
def test_byte_formatter_equals_reference(numbers: list[int], data: st.DataObject) -> None:
    n = len(numbers)
    ints = st.integers(min_value=0, max_value=9)
    big = st.integers(min_value=0, max_value=99_999)
    members = {
        c: np.array(data.draw(st.lists(ints, min_size=n, max_size=n)), dtype=np.int64)
        for c in gen._MEMBER_COLUMNS
    }
    codes = data.draw(st.lists(st.integers(1, 99_999), min_size=n, max_size=n))
    block = gen._HouseholdBlock(
        number=np.array(numbers, dtype=np.int64),
        community=np.array([f"C{c:05d}" for c in codes], dtype="S").view(np.uint8).reshape(n, -1),
        building=np.array(data.draw(st.lists(big, min_size=n, max_size=n)), dtype=np.int64),
        unit=np.array(data.draw(st.lists(big, min_size=n, max_size=n)), dtype=np.int64),
        members=members,
    )
    assert gen._format_rows_bytes(block) == gen._format_rows_text(block).encode("utf-8")


def test_byte_formatter_refuses_what_it_cannot_write() -> None:
    block = gen._HouseholdBlock(
        number=np.array([10**8], dtype=np.int64),
        community=np.array([b"C00001"], dtype="S").view(np.uint8).reshape(1, -1),
        building=np.array([1], dtype=np.int64),
        unit=np.array([101], dtype=np.int64),
        members={c: np.array([1], dtype=np.int64) for c in gen._MEMBER_COLUMNS},
    )
    with pytest.raises(ValueError, match="8-digit"):
        gen._format_rows_bytes(block)
