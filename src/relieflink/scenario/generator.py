"""Synthetic city generator: writes the CSV import format from public aggregate figures.

Every number that shapes the city comes from :mod:`relieflink.scenario.figures`. Output is
deterministic by ``seed``: every random draw comes from a stream keyed by
``(seed, purpose, block)``, never from global state, and blocks are fixed in size.

Households (≈ 10.7 M at scale 1.0) are generated and written one block of 128 communities at a
time with vectorised numpy draws and a byte-matrix CSV formatter, so memory stays under ~100 MB
whatever the scale. Files are written as ``*.part`` and renamed only when everything succeeded;
on error the parts are removed and earlier outputs in ``out`` are left untouched.

Files (UTF-8, comma, header row, booleans ``true``/``false``, empty cell = null):
``organizations`` (with the residents' committees), ``districts``, ``communities`` (each under
its committee), ``warehouses``, ``households`` and ``teams`` (a volunteer team per compound) in
the import format (headers in :data:`FILE_HEADERS`), ``districts.population`` being the
synthetic population (published × scale, equal to the sum of its communities' residents), plus
two formats defined here for later issues, and ``manifest.json`` (counts, totals, assumptions).

``vehicles.csv`` -- one row per carrier, depot and vehicle kind:

=============  ===============================================================================
code           stable row code ``V0001``
carrier_code   organisation code of the carrier (kind ``carrier``)
kind           ``truck`` | ``van`` | ``ebike`` | ``robot`` | ``foot``
depot_code     warehouse code the vehicles start and end at (owned by the carrier)
count          number of identical vehicles (integer ≥ 1)
capacity_kg    payload per vehicle, integer kg
capacity_m3    cargo volume per vehicle, integer m³
speed_kmh      average road speed, integer km/h
range_km       range per shift or charge, integer km
shift_start    ``HH:MM`` local time
shift_end      ``HH:MM`` local time, after shift_start
=============  ===============================================================================

``programs.csv`` -- the relief programmes pledges are made to, run by the NGO over the pledges'
arrival window (columns as ``relieflink import programs`` reads them).

``pledges.csv`` -- one row per pledge line; rows sharing ``code`` are the lines of one pledge
and agree on donor, recipient, programme and arrival; ``(code, item_sku)`` is unique:

==================  ==========================================================================
code                pledge code ``P00001``
donor_code          organisation code of the donor (kind ``donor``)
recipient_code      organisation code receiving the goods (the NGO)
program_code        ``food`` | ``maternal-infant`` | ``medicine`` | ``protection`` (programs.csv)
declared_value_fen  declared value of this line, integer fen (quantity × unit value)
item_sku            catalog SKU (from the reference catalog)
quantity            pieces of the SKU, integer ≥ 1
expected_arrival    ISO date ``YYYY-MM-DD``
==================  ==========================================================================
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Final

import numpy as np
import numpy.typing as npt

from relieflink import columns
from relieflink.scenario import figures as fg

__all__ = ["FILE_HEADERS", "CityManifest", "ProgressCallback", "apportion", "generate_city"]

log = logging.getLogger(__name__)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

#: ``progress(stage, done, total)``; called with done == total when a stage ends.
ProgressCallback = Callable[[str, int, int], None]

FILE_HEADERS: Final[dict[str, tuple[str, ...]]] = {
    "organizations": columns.ORGANIZATIONS,
    "districts": columns.DISTRICTS,
    "communities": columns.COMMUNITIES,
    "warehouses": columns.WAREHOUSES,
    "households": columns.HOUSEHOLDS,
    "teams": columns.TEAMS,
    "vehicles": columns.VEHICLES,
    "programs": columns.PROGRAMS,
    "pledges": columns.PLEDGES,
}

LOCKDOWN_STATUSES: Final = ("sealed", "controlled", "open")  # "precautionary" → open

# stream ids for the seed sequence: (seed, stream, block...)
_S_COMMUNITIES, _S_HOUSEHOLDS, _S_PLEDGES = 1, 2, 3

_KM_PER_DEG_LAT: Final = 110.574
_KM_PER_DEG_LON_EQUATOR: Final = 111.320


@dataclass(frozen=True)
class CityManifest:
    """What :func:`generate_city` wrote."""

    city: str
    scale: float
    seed: int
    out: Path
    files: dict[str, Path]
    counts: dict[str, int]  # data rows per file (header excluded)
    population: int  # sum of household sizes
    vulnerable: dict[str, int] = field(default_factory=dict)
    lockdown: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def households(self) -> int:
        """Number of households written."""
        return self.counts["households"]

    @property
    def communities(self) -> int:
        """Number of communities written."""
        return self.counts["communities"]


@dataclass(frozen=True)
class _Communities:
    district: IntArray  # index into the district tuple
    lat: FloatArray
    lon: FloatArray
    residents: IntArray
    status: IntArray  # index into LOCKDOWN_STATUSES
    codes: list[str]
    names: list[str]
    names_zh: list[str]


# ---------------------------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------------------------


def generate_city(
    city: str = "shanghai",
    *,
    scale: float,
    seed: int,
    out: Path,
    progress: ProgressCallback | None = None,
) -> CityManifest:
    """Generate a synthetic city and write it as the CSV import format into ``out``.

    ``scale`` in (0, 1.0] is the share of the city's residents simulated: the whole compounds
    nearest to ``figures.CITY_CENTRE`` that hold that share, at the city's real density, with
    their committees, volunteer teams, and their share of the warehouses' capacity and of the
    carriers' fleets (see :func:`_served_shares`); pledges are scaled alike. 1.0 is the full
    city (≈ 24.9 M residents, 17,649 communities, 4,463 committees, ≈ 10.7 M households,
    11,000 couriers' vehicles and 100 robots).
    Raises ``ValueError`` for an unknown city, a scale outside (0, 1], a negative or non-integer
    seed, or an ``out`` that is not a writable directory.
    """
    started = time.perf_counter()
    scale = _check_scale(scale)
    seed = _check_seed(seed)
    districts = fg.load_districts(city)  # raises ValueError for an unknown city
    out = _check_out(out)
    report: ProgressCallback = progress or _no_progress
    rates = fg.derived_rates()

    parts: dict[str, Path] = {name: out / f"{name}.csv.part" for name in FILE_HEADERS}
    finals: dict[str, Path] = {name: out / f"{name}.csv" for name in FILE_HEADERS}
    counts: dict[str, int] = {}
    try:
        city_wide = _plan_communities(districts, seed)
        region = _select_region(city_wide, scale)
        comms = _subset(city_wide, region)
        committees = _plan_committees(city_wide, districts).subset(region)
        served = _served_shares(city_wide, region, districts)
        counts["districts"] = _write_rows(
            parts["districts"], "districts", _district_rows(districts, comms)
        )
        counts["organizations"] = _write_rows(
            parts["organizations"], "organizations", _organization_rows(committees)
        )
        counts["warehouses"] = _write_rows(
            parts["warehouses"], "warehouses", _warehouse_rows(districts, served)
        )
        counts["vehicles"] = _write_rows(parts["vehicles"], "vehicles", _vehicle_rows(served))
        counts["programs"] = _write_rows(parts["programs"], "programs", _program_rows(city))
        counts["pledges"] = _write_rows(parts["pledges"], "pledges", _pledge_rows(scale, seed))
        hh_per_comm, totals = _write_households(parts["households"], comms, seed, rates, report)
        counts["households"] = int(hh_per_comm.sum())
        counts["communities"] = _write_rows(
            parts["communities"],
            "communities",
            _community_rows(comms, districts, hh_per_comm, committees),
        )
        counts["teams"] = _write_rows(parts["teams"], "teams", _team_rows(comms, hh_per_comm))
        for name, part in parts.items():
            os.replace(part, finals[name])
    except BaseException:
        for part in parts.values():
            part.unlink(missing_ok=True)
        raise

    lockdown = {
        status: int((comms.status == i).sum()) for i, status in enumerate(LOCKDOWN_STATUSES)
    }
    manifest = CityManifest(
        city=city,
        scale=scale,
        seed=seed,
        out=out,
        files=finals,
        counts=counts,
        population=totals.pop("residents"),
        vulnerable=totals,
        lockdown=lockdown,
        seconds=time.perf_counter() - started,
    )
    _write_manifest_json(manifest)
    log.info("generated %s at scale %s: %s", city, scale, counts)
    return manifest


# ---------------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------------


def _check_scale(scale: object) -> float:
    if isinstance(scale, bool) or not isinstance(scale, int | float):
        raise ValueError(f"scale: expected a number in (0, 1.0], got {scale!r}")
    value = float(scale)
    if not math.isfinite(value) or not 0.0 < value <= 1.0:
        raise ValueError(f"scale: must be in (0, 1.0] (1.0 = the full city), got {scale!r}")
    return value


def _check_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    if seed < 0:
        raise ValueError(f"seed: must be >= 0, got {seed}")
    return int(seed)


def _check_out(out: object) -> Path:
    if not isinstance(out, str | os.PathLike):
        raise ValueError(f"out: expected a directory path, got {out!r}")
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise ValueError(f"out: {path} exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"out: cannot create directory {path}: {exc.strerror or exc}") from exc
    if not os.access(path, os.W_OK | os.X_OK):
        raise ValueError(f"out: directory {path} is not writable")
    return path


def _no_progress(stage: str, done: int, total: int) -> None:
    return None


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _rng(seed: int, stream: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, stream, *keys]))


def apportion(total: int, weights: Sequence[float] | FloatArray, minimum: int = 0) -> IntArray:
    """Split ``total`` into integers proportional to ``weights`` (largest remainder)."""
    w = np.asarray(weights, dtype=np.float64)
    n = len(w)
    base = np.full(n, minimum, dtype=np.int64)
    rest = total - minimum * n
    if rest < 0:
        raise ValueError(f"cannot give {n} parts at least {minimum} each out of {total}")
    if rest == 0 or n == 0:
        return base
    quota = w / w.sum() * rest
    floor = np.floor(quota).astype(np.int64)
    short = rest - int(floor.sum())
    if short > 0:
        order = np.argsort(-(quota - floor), kind="stable")
        floor[order[:short]] += 1
    result: IntArray = base + floor
    return result


def _scaled(value: float, scale: float, minimum: int = 0) -> int:
    return max(minimum, round(value * scale))


def _fmt_bool(value: bool) -> str:
    return "true" if value else "false"


def _open(path: Path) -> IO[str]:
    return path.open("w", encoding="utf-8", newline="", buffering=1 << 20)


def _write_rows(path: Path, name: str, rows: Iterable[Sequence[object]]) -> int:
    """Write a small table; values must not contain commas, quotes or newlines."""
    n = 0
    with _open(path) as f:
        f.write(",".join(FILE_HEADERS[name]) + "\n")
        for row in rows:
            f.write(",".join(_cell(v) for v in row) + "\n")
            n += 1
    return n


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return _fmt_bool(value)
    text = str(value)
    if any(c in text for c in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


# ---------------------------------------------------------------------------------------------
# districts, communities
# ---------------------------------------------------------------------------------------------


def _district_rows(
    districts: Sequence[fg.DistrictFigure], comms: _Communities
) -> Iterable[Sequence[object]]:
    """The districts the city's compounds are in; population is the synthetic one (the sum of
    their compounds' residents; the published one at scale 1.0)."""
    residents = np.bincount(comms.district, weights=comms.residents, minlength=len(districts))
    present = np.bincount(comms.district, minlength=len(districts)) > 0
    for i, d in enumerate(districts):
        if present[i]:
            pop = int(residents[i])
            yield (d.code, d.name, d.name_zh, pop, f"{d.area_km2:g}", d.lat, d.lon)


def _plan_communities(districts: Sequence[fg.DistrictFigure], seed: int) -> _Communities:
    """The whole city's communities: per district ∝ population; sizes lognormal; gates uniform
    in the district. The same for every scale (a scaled city is a part of this one)."""
    rng = _rng(seed, _S_COMMUNITIES)
    pops = np.array([d.population for d in districts], dtype=np.float64)
    targets = np.rint(pops).astype(np.int64)
    per_district = apportion(fg.COMMUNITIES_TOTAL, pops, minimum=1)

    district_idx: list[IntArray] = []
    residents: list[IntArray] = []
    lats: list[FloatArray] = []
    lons: list[FloatArray] = []
    codes: list[str] = []
    names: list[str] = []
    names_zh: list[str] = []
    sigma = fg.COMMUNITY_SIZE_LOGNORMAL_SIGMA
    for i, d in enumerate(districts):
        n = int(per_district[i])
        weights = rng.lognormal(mean=0.0, sigma=sigma, size=n)
        residents.append(apportion(int(targets[i]), weights, minimum=1))
        radius_km = math.sqrt(d.area_km2 / math.pi)
        r = radius_km * np.sqrt(rng.random(n))
        theta = rng.random(n) * 2.0 * math.pi
        lats.append(d.lat + r * np.sin(theta) / _KM_PER_DEG_LAT)
        lons.append(
            d.lon + r * np.cos(theta) / (_KM_PER_DEG_LON_EQUATOR * math.cos(math.radians(d.lat)))
        )
        district_idx.append(np.full(n, i, dtype=np.int64))
        for j in range(1, n + 1):
            codes.append(f"C{len(codes) + 1:05d}")
            names.append(f"{d.name} Compound {j:03d}")
            names_zh.append(f"{d.name_zh}第{j}小区")

    total = len(codes)
    status_counts = apportion(
        total,
        [fg.COMMUNITIES_SEALED, fg.COMMUNITIES_CONTROLLED, fg.COMMUNITIES_PRECAUTIONARY],
    )
    status = rng.permutation(np.repeat(np.arange(3, dtype=np.int64), status_counts))
    return _Communities(
        district=np.concatenate(district_idx),
        lat=np.concatenate(lats),
        lon=np.concatenate(lons),
        residents=np.concatenate(residents),
        status=status,
        codes=codes,
        names=names,
        names_zh=names_zh,
    )


def _km_from(lat: FloatArray, lon: FloatArray, at_lat: float, at_lon: float) -> FloatArray:
    """Distance in km from (at_lat, at_lon), planar (fine within a city)."""
    dy = (lat - at_lat) * _KM_PER_DEG_LAT
    dx = (lon - at_lon) * _KM_PER_DEG_LON_EQUATOR * math.cos(math.radians(at_lat))
    km: FloatArray = np.hypot(dx, dy)
    return km


def _select_region(comms: _Communities, scale: float) -> IntArray:
    """The compounds nearest to the city centre whose residents come closest to ``scale`` of the
    city's (at least one compound), as indices in code order: a contiguous disc of whole
    compounds at the city's own density."""
    if scale >= 1.0:
        return np.arange(len(comms.codes), dtype=np.int64)
    order = np.argsort(_km_from(comms.lat, comms.lon, *fg.CITY_CENTRE), kind="stable")
    cumulative = np.cumsum(comms.residents[order])
    target = scale * float(cumulative[-1])
    k = int(np.searchsorted(cumulative, target))  # cumulative[k] >= target
    if k > 0 and target - cumulative[k - 1] < cumulative[k] - target:
        k -= 1
    return np.sort(order[: k + 1])


def _subset(comms: _Communities, keep: IntArray) -> _Communities:
    return _Communities(
        district=comms.district[keep],
        lat=comms.lat[keep],
        lon=comms.lon[keep],
        residents=comms.residents[keep],
        status=comms.status[keep],
        codes=[comms.codes[i] for i in keep],
        names=[comms.names[i] for i in keep],
        names_zh=[comms.names_zh[i] for i in keep],
    )


@dataclass(frozen=True)
class _Committees:
    """Residents' committees: each manages neighbouring compounds of one district."""

    of_community: IntArray  # committee index per community
    codes: list[str]
    names: list[str]
    names_zh: list[str]

    def subset(self, keep: IntArray) -> _Committees:
        """The committees of the compounds ``keep`` (their codes as in the whole city)."""
        of = self.of_community[keep]
        used, of_kept = np.unique(of, return_inverse=True)
        return _Committees(
            of_kept.astype(np.int64),
            [self.codes[i] for i in used],
            [self.names[i] for i in used],
            [self.names_zh[i] for i in used],
        )


def _plan_committees(comms: _Communities, districts: Sequence[fg.DistrictFigure]) -> _Committees:
    """The whole city's published committees, split over districts ∝ their compounds (at least
    one per district, at most one per compound); in a district, compounds go to committees in
    runs of a snake order (:func:`_snake`), so that a committee's compounds are neighbours. No
    draws: the split follows from the compounds."""
    per_district = np.bincount(comms.district, minlength=len(districts))
    present = int((per_district > 0).sum())
    wanted = min(len(comms.codes), max(present, fg.RESIDENTS_COMMITTEES_2019))
    weights = per_district.astype(np.float64)
    split = np.minimum(apportion(wanted - present, weights) + (per_district > 0), per_district)
    of_community = np.zeros(len(comms.codes), dtype=np.int64)
    codes: list[str] = []
    names: list[str] = []
    names_zh: list[str] = []
    for i, d in enumerate(districts):
        members = np.flatnonzero(comms.district == i)
        if len(members) == 0:
            continue
        for j, band in enumerate(np.array_split(_snake(comms, members), int(split[i])), start=1):
            of_community[band] = len(codes)
            codes.append(f"RC-{len(codes) + 1:05d}")
            names.append(f"{d.name} Residents' Committee {j:03d} (synthetic)")
            names_zh.append(f"{d.name_zh}第{j}居委会（虚构）")
    return _Committees(of_community, codes, names, names_zh)


def _snake(comms: _Communities, members: IntArray) -> IntArray:
    """``members`` in a snake order: about √n bands of latitude, each by longitude, one way
    then the other; consecutive runs of it are compact patches of neighbours."""
    by_latitude = members[np.argsort(comms.lat[members], kind="stable")]
    bands = np.array_split(by_latitude, max(1, math.isqrt(len(members))))
    ordered = []
    for k, band in enumerate(bands):
        by_longitude = band[np.argsort(comms.lon[band], kind="stable")]
        ordered.append(by_longitude[::-1] if k % 2 else by_longitude)
    return np.concatenate(ordered)


def _community_rows(
    comms: _Communities,
    districts: Sequence[fg.DistrictFigure],
    households: IntArray,
    committees: _Committees,
) -> Iterable[Sequence[object]]:
    for i, code in enumerate(comms.codes):
        status = LOCKDOWN_STATUSES[int(comms.status[i])]
        yield (
            code,
            comms.names[i],
            comms.names_zh[i],
            districts[int(comms.district[i])].code,
            f"{comms.lat[i]:.6f}",
            f"{comms.lon[i]:.6f}",
            int(households[i]),
            int(comms.residents[i]),
            status,
            status not in fg.VEHICLES_BARRED_STATUSES,
            committees.codes[int(committees.of_community[i])],
        )


def _seconds(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 3600 + int(minutes) * 60


def _team_rows(comms: _Communities, households: IntArray) -> Iterable[Sequence[object]]:
    """A volunteer team per compound, sized by the named assumption (one volunteer per
    ``VOLUNTEER_HOUSEHOLDS_PER_MEMBER`` households); no leader yet (a user to register)."""
    per_member = fg.VOLUNTEER_HOUSEHOLDS_PER_MEMBER
    headcount = np.maximum(fg.VOLUNTEER_TEAM_MIN, -(-households // per_member))
    start, end = (_seconds(t) for t in fg.VOLUNTEER_SHIFT)
    for i, code in enumerate(comms.codes):
        yield (
            f"T-{code}",
            code,
            None,
            int(headcount[i]),
            fg.VOLUNTEER_TROLLEY_KG,
            start,
            end,
            True,
        )


# ---------------------------------------------------------------------------------------------
# households (the big table, streamed)
# ---------------------------------------------------------------------------------------------

_HOUSEHOLD_ROW: Final = "H{:08d},{},{},{},{},{},{},{},{},{}," + fg.PHONE_PREFIX + "{:08d}\n"
_HOUSEHOLD_CODE_DIGITS: Final = 8
_MEMBER_COLUMNS: Final = ("size", "infants", "pregnant", "chronic", "elderly_80", "disabled")
U8Array = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class _HouseholdBlock:
    """One block of households as columns (all int64 arrays of the same length)."""

    number: IntArray  # 1-based household number: code H{number:08d}
    community: U8Array  # (n, k) ASCII bytes of the community code
    building: IntArray
    unit: IntArray
    members: dict[str, IntArray]  # _MEMBER_COLUMNS; every value is a single digit


def _format_rows_text(block: _HouseholdBlock) -> str:
    """Reference formatter (str.format per row); the writer uses :func:`_format_rows_bytes`."""
    number = block.number.tolist()
    community = [bytes(row).decode("ascii") for row in block.community]
    members = [block.members[c].tolist() for c in _MEMBER_COLUMNS]
    return "".join(
        map(
            _HOUSEHOLD_ROW.format,
            number,
            community,
            block.building.tolist(),
            block.unit.tolist(),
            *members,
            number,
        )
    )


#: ASCII digits of 0..9999, zero-padded to 4 columns (a gather beats integer division).
_DIGITS4: Final[U8Array] = (
    (np.arange(10_000)[:, None] // np.array([1000, 100, 10, 1])) % 10 + ord("0")
).astype(np.uint8)


def _digits(x: IntArray, width: int) -> U8Array:
    """ASCII digits of ``0 <= x < 10**width``, zero-padded to ``width`` (at most 8) columns."""
    if width <= 4:
        return _DIGITS4[x][:, 4 - width :]
    return np.concatenate((_DIGITS4[x // 10_000][:, 8 - width :], _DIGITS4[x % 10_000]), axis=1)


def _format_rows_bytes(block: _HouseholdBlock) -> bytes:
    """The rows of ``block`` as UTF-8 CSV, built column-wise in a byte matrix.

    Each row is laid out in a fixed-width uint8 matrix (codes and single-digit counts are
    fixed width; building and unit numbers are zero-padded), with a mask that drops the
    padding; ``matrix[mask]`` is the text in row-major order. Byte-identical to
    :func:`_format_rows_text` (a test checks).
    """
    n = len(block.number)
    if n == 0:
        return b""
    if int(block.number.max()) >= 10**_HOUSEHOLD_CODE_DIGITS:
        raise ValueError("household numbers exceed the 8-digit code width")
    for column in _MEMBER_COLUMNS:
        values = block.members[column]
        if int(values.min()) < 0 or int(values.max()) > 9:
            raise ValueError(f"{column}: single-digit counts expected")
    code = _digits(block.number, _HOUSEHOLD_CODE_DIGITS)
    variable = [block.building, block.unit]
    widths = [len(str(int(x.max()))) for x in variable]
    if max(widths) > 8 or int(min(x.min() for x in variable)) < 0:
        raise ValueError("building and unit numbers must be in 0..99,999,999")
    phone = "," + fg.PHONE_PREFIX
    k = block.community.shape[1]
    width = 1 + 8 + 1 + k + 1 + widths[0] + 1 + widths[1] + 2 * len(_MEMBER_COLUMNS)
    width += len(phone) + 8 + 1
    matrix = np.empty((n, width), dtype=np.uint8)
    keep = np.ones((n, width), dtype=np.bool_)
    pos = 0

    def put(chunk: U8Array | str) -> None:
        nonlocal pos
        if isinstance(chunk, str):
            raw = np.frombuffer(chunk.encode("ascii"), dtype=np.uint8)
            matrix[:, pos : pos + len(raw)] = raw
            pos += len(raw)
        else:
            matrix[:, pos : pos + chunk.shape[1]] = chunk
            pos += chunk.shape[1]

    put("H")
    put(code)
    put(",")
    put(block.community)
    for x, w in zip(variable, widths, strict=True):
        put(",")
        put(_digits(x, w))
        ndigits = np.ones(n, dtype=np.int64)
        for power in range(1, w):
            ndigits += x >= 10**power
        keep[:, pos - w : pos] = np.arange(w)[None, :] >= (w - ndigits)[:, None]
    for column in _MEMBER_COLUMNS:
        put(",")
        matrix[:, pos] = block.members[column] + ord("0")
        pos += 1
    put(phone)
    put(code)
    put("\n")
    assert pos == width
    text: bytes = matrix[keep].tobytes()
    return text


def _draw_sizes(
    rng: np.random.Generator, residents: IntArray
) -> tuple[npt.NDArray[np.int64], IntArray]:
    """Household sizes per community whose sum is exactly each community's residents.

    Returns (sizes of all households in community order, households per community).
    """
    shares = np.asarray(fg.HOUSEHOLD_SIZE_SHARES)
    cum = np.cumsum(shares)
    cum[-1] = 1.0
    mean = float((np.arange(1, len(shares) + 1) * shares).sum())
    expected = residents / mean
    margin = 2.0
    while True:
        n_draw = np.ceil(expected + margin * 5.0 * np.sqrt(expected) + 10).astype(np.int64)
        sizes = np.searchsorted(cum, rng.random(int(n_draw.sum())), side="right").astype(np.int64)
        sizes += 1
        owner = np.repeat(np.arange(len(residents)), n_draw)
        csum = np.cumsum(sizes)
        starts = np.concatenate(([0], np.cumsum(n_draw)[:-1]))
        base = (csum[starts] - sizes[starts])[owner]
        before = csum - sizes - base  # residents already housed before this household
        cap = residents[owner]
        if np.all(csum[starts + n_draw - 1] - csum[starts] + sizes[starts] >= residents):
            break
        margin *= 2.0  # practically never: needs a ~10-sigma shortfall
    keep = before < cap
    sizes = np.minimum(sizes, cap - before)[keep]  # the last one in a community is trimmed
    per_comm = np.bincount(owner[keep], minlength=len(residents)).astype(np.int64)
    return sizes, per_comm


def _write_households(
    path: Path,
    comms: _Communities,
    seed: int,
    rates: fg.DerivedRates,
    progress: ProgressCallback,
) -> tuple[IntArray, dict[str, int]]:
    n_comm = len(comms.codes)
    block = fg.COMMUNITIES_PER_BLOCK
    per_comm = np.zeros(n_comm, dtype=np.int64)
    totals = dict.fromkeys(
        ("residents", "infants", "pregnant", "chronic", "elderly_80", "elderly_80_alone",
         "disabled"),
        0,
    )  # fmt: skip
    target = int(comms.residents.sum())
    code_bytes = np.array(comms.codes, dtype="S").view(np.uint8).reshape(n_comm, -1)
    next_code = 1
    progress("households", 0, target)
    with path.open("wb", buffering=1 << 20) as f:
        f.write((",".join(FILE_HEADERS["households"]) + "\n").encode("utf-8"))
        for b, lo in enumerate(range(0, n_comm, block)):
            hi = min(lo + block, n_comm)
            rng = _rng(seed, _S_HOUSEHOLDS, b)
            size, counts = _draw_sizes(rng, comms.residents[lo:hi])
            per_comm[lo:hi] = counts
            cols = _draw_members(rng, size, rates)
            h = len(size)
            first = np.concatenate(([0], np.cumsum(counts)[:-1]))
            local = np.arange(h, dtype=np.int64) - np.repeat(first, counts)
            within = local % fg.HOUSEHOLDS_PER_BUILDING
            rows = _HouseholdBlock(
                number=np.arange(next_code, next_code + h, dtype=np.int64),
                community=np.repeat(code_bytes[lo:hi], counts, axis=0),
                building=local // fg.HOUSEHOLDS_PER_BUILDING + 1,
                unit=(within // fg.DOORS_PER_FLOOR + 1) * 100 + within % fg.DOORS_PER_FLOOR + 1,
                members={"size": size, **cols},
            )
            next_code += h
            f.write(_format_rows_bytes(rows))
            totals["residents"] += int(size.sum())
            for key in ("infants", "pregnant", "chronic", "elderly_80", "disabled"):
                totals[key] += int(cols[key].sum())
            totals["elderly_80_alone"] += int(((size == 1) & (cols["elderly_80"] == 1)).sum())
            progress("households", totals["residents"], target)
    return per_comm, totals


def _draw_members(
    rng: np.random.Generator, size: IntArray, rates: fg.DerivedRates
) -> dict[str, IntArray]:
    """Vulnerable members per household, vectorised (see figures.derived_rates)."""
    shared = size >= 2
    infants = np.where(shared, rng.binomial(np.maximum(size - 1, 0), rates.p_infant), 0)
    alone_80 = (size == 1) & (rng.random(len(size)) < rates.p_alone_80)
    slots = np.minimum(size - infants, fg.MAX_80_PLUS_PER_SHARED_HOUSEHOLD)
    elderly = np.where(shared, rng.binomial(slots, rates.p_shared_80), 0) + alone_80
    free = size - infants - elderly
    pregnant = shared & (free >= 1) & (rng.random(len(size)) < rates.p_pregnant)
    non_infants = size - infants
    return {
        "infants": infants.astype(np.int64),
        "pregnant": pregnant.astype(np.int64),
        "chronic": rng.binomial(non_infants, rates.p_chronic).astype(np.int64),
        "elderly_80": elderly.astype(np.int64),
        "disabled": rng.binomial(non_infants, rates.p_disabled).astype(np.int64),
    }


# ---------------------------------------------------------------------------------------------
# organisations, warehouses, vehicles, pledges (small tables)
# ---------------------------------------------------------------------------------------------


def _contact(code: str) -> str:
    return f"relief@{code.lower()}.example"


def _organization_rows(committees: _Committees) -> Iterable[Sequence[object]]:
    code, name, name_zh, country = fg.NGO
    yield (code, "ngo", name, name_zh, country, _contact(code), "")
    for code, name, name_zh in zip(
        committees.codes, committees.names, committees.names_zh, strict=True
    ):
        yield (code, "committee", name, name_zh, "CN", _contact(code), "")
    for code, name, name_zh, _share, _robots in fg.CARRIERS:
        yield (code, "carrier", name, name_zh, "CN", _contact(code), "")
    for code, name, name_zh, country, _gives in fg.DONORS:
        yield (code, "donor", name, name_zh, country, _contact(code), "")
    for code, kind, name, name_zh, country in fg.OTHER_ORGS:
        yield (code, kind, name, name_zh, country, _contact(code), "")


def _warehouse_places(districts: Sequence[fg.DistrictFigure]) -> tuple[FloatArray, FloatArray]:
    """Latitude and longitude of each warehouse of the plan."""
    by_code = {d.code: d for d in districts}
    lats, lons = [], []
    for _code, _owner, adcode, east_km, north_km, _share, _temporary in fg.WAREHOUSE_PLAN:
        d = by_code[adcode]
        lats.append(d.lat + north_km / _KM_PER_DEG_LAT)
        lons.append(d.lon + east_km / (_KM_PER_DEG_LON_EQUATOR * math.cos(math.radians(d.lat))))
    return np.array(lats), np.array(lons)


def _served_shares(
    comms: _Communities, region: IntArray, districts: Sequence[fg.DistrictFigure]
) -> FloatArray:
    """Per warehouse of the plan, the share of the residents it serves that live in ``region``.

    A warehouse serves the compounds to which it is the nearest of its owner's warehouses (each
    carrier, and the NGO, covers the whole city from its own sites). The simulated city gets
    this share of each warehouse's capacity and of the vehicles based there, so the shares of
    the parts of a city add up to the whole city's warehouses and fleet.
    """
    lat, lon = _warehouse_places(districts)
    owners = [w[1] for w in fg.WAREHOUSE_PLAN]
    km = np.stack([_km_from(comms.lat, comms.lon, a, b) for a, b in zip(lat, lon, strict=True)])
    in_region = np.zeros(len(comms.codes), dtype=np.bool_)
    in_region[region] = True
    shares = np.zeros(len(owners))
    for owner in dict.fromkeys(owners):
        own = np.array([o == owner for o in owners])
        nearest = np.flatnonzero(own)[np.argmin(km[own], axis=0)]
        served = np.bincount(nearest, weights=comms.residents, minlength=len(owners))
        local = np.bincount(
            nearest[in_region], weights=comms.residents[in_region], minlength=len(owners)
        )
        shares[own] = local[own] / np.maximum(served[own], 1)
    return shares


def _warehouse_rows(
    districts: Sequence[fg.DistrictFigure], served: FloatArray
) -> Iterable[Sequence[object]]:
    """The warehouses serving the city, with its share of their capacity."""
    by_code = {d.code: d for d in districts}
    lats, lons = _warehouse_places(districts)
    for i, (code, owner, adcode, _e, _n, share, temporary) in enumerate(fg.WAREHOUSE_PLAN):
        if served[i] <= 0:
            continue
        d = by_code[adcode]
        outbound = _scaled(fg.TOTAL_DAILY_OUTBOUND_KG * share, float(served[i]), minimum=100)
        capacity = outbound * fg.STOCK_DAYS
        kind_en, kind_zh = (
            ("temporary warehouse", "临时仓库") if temporary else ("warehouse", "仓库")
        )
        yield (
            code,
            f"{d.name} {kind_en} {code}",
            f"{d.name_zh}{kind_zh}{code}",
            owner,
            f"{lats[i]:.6f}",
            f"{lons[i]:.6f}",
            capacity,
            max(1, capacity // fg.GOODS_DENSITY_KG_PER_M3),
            outbound,
            temporary,
        )


def _vehicle_rows(served: FloatArray) -> Iterable[Sequence[object]]:
    """The carriers' fleets: the published couriers and robots of the whole city (no factor),
    each depot's vehicles × the share of its residents in the simulated city (see
    :func:`_served_shares`), apportioned per kind. At least one vehicle of each courier kind;
    robots strictly proportional (a small city may have none: its volunteers carry in)."""
    depot_share = {w[0]: float(served[i]) for i, w in enumerate(fg.WAREHOUSE_PLAN)}
    depots: dict[str, list[tuple[str, float]]] = {}
    for code, owner, _ad, _e, _n, share, _t in fg.WAREHOUSE_PLAN:
        depots.setdefault(owner, []).append((code, share))
    n = 0
    for kind, full in fg.FLEET_AT_FULL_SCALE.items():
        carriers = [c for c in fg.CARRIERS if kind != "robot" or c[4]]
        groups: list[tuple[str, str]] = []  # (carrier, depot)
        weights: list[float] = []  # the group's whole-city vehicles × its share here
        for carrier, k in zip(carriers, apportion(full, [c[3] for c in carriers]), strict=True):
            own = depots.get(carrier[0], [])
            for (depot, _s), count in zip(
                own, apportion(int(k), [s for _c, s in own]), strict=True
            ):
                groups.append((carrier[0], depot))
                weights.append(count * depot_share[depot])
        total = round(sum(weights))
        if kind != "robot":
            total = max(1, total)
        cap_kg, cap_m3, speed, range_km, start, end = fg.VEHICLE_SPECS[kind]
        for (carrier_code, depot), count in zip(
            groups, apportion(total, weights).tolist(), strict=True
        ):
            if count == 0:
                continue
            n += 1
            yield (
                f"V{n:04d}", carrier_code, kind, depot, count,
                cap_kg, cap_m3, speed, range_km, start, end,
            )  # fmt: skip


def _program_rows(city: str) -> Iterable[Sequence[object]]:
    """The relief programmes, run by the NGO over the pledges' arrival window."""
    start, end = fg.PLEDGE_ARRIVAL_WINDOW
    for code, name, name_zh in fg.PROGRAMS:
        yield (code, name, name_zh, city.title(), "CN", fg.NGO[0], start, end)


def _pledge_rows(scale: float, seed: int) -> Iterable[Sequence[object]]:
    """Each donor pledges to the programmes of what it gives (1-4 pledges each, arrival dates
    drawn); each SKU's scaled total goes to its donors by their shares (``figures.DONORS``)
    and, within a donor, over its pledges by a Dirichlet draw."""
    rng = _rng(seed, _S_PLEDGES)
    first = dt.date.fromisoformat(fg.PLEDGE_ARRIVAL_WINDOW[0])
    days = (dt.date.fromisoformat(fg.PLEDGE_ARRIVAL_WINDOW[1]) - first).days
    lo, hi = fg.PLEDGES_PER_DONOR_PROGRAM
    recipient = fg.NGO[0]
    n = 0
    for program, skus in fg.PLEDGE_PLAN.items():
        pledges: dict[str, list[tuple[str, str]]] = {}  # donor → [(code, arrival)]
        for donor, *_rest in fg.DONORS:
            if program not in fg.donor_programs(donor):
                continue
            for _ in range(int(rng.integers(lo, hi + 1))):
                n += 1
                day = first + dt.timedelta(days=int(rng.integers(0, days + 1)))
                pledges.setdefault(donor, []).append((f"P{n:05d}", day.isoformat()))
        lines: dict[str, list[tuple[str, int]]] = {}  # pledge code → [(sku, quantity)]
        for sku, full in skus.items():
            shares = fg.donor_shares(sku)
            per_donor = apportion(_scaled(full, scale), list(shares.values()))
            for donor, quantity in zip(shares, per_donor.tolist(), strict=True):
                own = pledges[donor]
                split = apportion(quantity, rng.dirichlet(np.ones(len(own))))
                for (code, _day), q in zip(own, split.tolist(), strict=True):
                    if q > 0:
                        lines.setdefault(code, []).append((sku, q))
        for donor, own in pledges.items():
            for code, arrival in own:
                for sku, q in lines.get(code, []):
                    value = q * fg.SKU_VALUE_FEN[sku]
                    yield (code, donor, recipient, program, value, sku, q, arrival)


# ---------------------------------------------------------------------------------------------
# manifest
# ---------------------------------------------------------------------------------------------


def _write_manifest_json(m: CityManifest) -> None:
    doc = {
        "city": m.city,
        "scale": m.scale,
        "seed": m.seed,
        "files": {k: p.name for k, p in m.files.items()},
        "counts": m.counts,
        "population": m.population,
        "vulnerable": m.vulnerable,
        "lockdown": m.lockdown,
        "assumptions": {a.name: a.value for a in fg.ASSUMPTIONS},
    }
    part = m.out / "manifest.json.part"
    part.write_text(json.dumps(doc, ensure_ascii=False, indent=2, default=list), "utf-8")
    os.replace(part, m.out / "manifest.json")
