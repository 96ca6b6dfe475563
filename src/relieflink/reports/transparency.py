"""The public transparency figures (no sign-in): per programme and per donor, what was pledged,
received, is in stock, in transit between warehouses, on the way to a door, delivered at the door
and written off; and the households reached by district and week.

No personal data: organisations, items and districts only. The stock figures are the donor
trace's own (``stock.donor_report``, the rule the signed-in trace uses), merged per item or kit;
household counts go through :mod:`relieflink.reports.suppression` (no value from 1 to 9 shown,
none recoverable from the totals). The figures are computed once per ledger state, at most every
``CACHE_SECONDS``.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from fractions import Fraction

from sqlalchemy.orm import Session

from relieflink import clock
from relieflink.catalog import service as catalog
from relieflink.donations import service as donations
from relieflink.models import Item, Kit, Organization, Program
from relieflink.organizations import service as organizations
from relieflink.places import service as places
from relieflink.reports import repository as repo
from relieflink.reports.suppression import THRESHOLD, Suppressed, suppress
from relieflink.stock import service as stock

CACHE_SECONDS = 60


@dataclass
class Line:
    """One item or kit: units, exact (a kit's share of a donor's components may be a fraction)."""

    sku: str
    name: str
    name_zh: str
    unit: str
    pledged: int = 0
    received: int = 0
    in_stock: Fraction = Fraction(0)
    in_transit: Fraction = Fraction(0)
    on_the_way: Fraction = Fraction(0)
    delivered: Fraction = Fraction(0)
    written_off: Fraction = Fraction(0)


FIGURES = (
    "pledged",
    "received",
    "in_stock",
    "in_transit",
    "on_the_way",
    "delivered",
    "written_off",
)


@dataclass(frozen=True)
class Party:
    """A programme or a donor, with its lines and the declared values (fen)."""

    id: int
    code: str
    name: str
    name_zh: str
    lines: list[Line]
    pledged_value_fen: int
    received_value_fen: int


@dataclass(frozen=True)
class Reach:
    """Households reached per district (rows) and week (columns, their Mondays), suppressed."""

    weeks: list[date]
    districts: list[tuple[str, str, str]]  # code, name, name_zh
    table: Suppressed
    threshold: int = THRESHOLD


@dataclass(frozen=True)
class Transparency:
    generated_at: datetime
    programs: list[Party]
    donors: list[Party]
    reach: Reach
    files: list[tuple[str, str]] = field(default_factory=list)  # (programme code, IATI path)


# (item id, kit id) → (sku, name, name_zh, unit), looked up once per computation.
Names = dict[tuple[int | None, int | None], tuple[str, str, str, str]]


def _lines(session: Session, figures: list[stock.DonorFigures], names: Names) -> list[Line]:
    """The trace's rows merged per item or kit (over donors), in SKU order."""
    merged: dict[tuple[int | None, int | None], Line] = {}
    for f in figures:
        key = (f.item_id, f.kit_id)
        if key not in names:
            row: Item | Kit
            if f.item_id is not None:
                row = catalog.require_item(session, f.item_id)
            else:
                assert f.kit_id is not None
                row = catalog.require_kit(session, f.kit_id)
            unit = str(row.unit) if isinstance(row, Item) else ""
            names[key] = (row.sku, row.name, row.name_zh or row.name, unit)
        if key not in merged:
            merged[key] = Line(*names[key])
        line = merged[key]
        for attr in FIGURES:
            setattr(line, attr, getattr(line, attr) + getattr(f, attr))
    return sorted(merged.values(), key=lambda line: line.sku)


def _party(
    session: Session,
    row: Program | Organization,
    figures: list[stock.DonorFigures],
    names: Names,
) -> Party:
    return Party(
        id=row.id,
        code=row.code,
        name=row.name,
        name_zh=row.name_zh or row.name,
        lines=_lines(session, figures, names),
        pledged_value_fen=sum(f.pledged_value_fen for f in figures),
        received_value_fen=sum(f.received_value_fen for f in figures),
    )


def week_of(moment: datetime) -> date:
    """The Monday of the local week of ``moment``."""
    day = clock.local(moment).date()
    return day - timedelta(days=day.weekday())


def reach(session: Session) -> Reach:
    """Households reached (a delivery at the door) per district and week, suppressed. A
    household reached in two weeks counts in both; totals add up the weeks."""
    seen: set[tuple[int, date, int]] = set()
    for district_id, household_id, at in repo.delivered_households(session):
        seen.add((district_id, week_of(at), household_id))
    counts: dict[tuple[int, date], int] = defaultdict(int)
    for district_id, week, _ in seen:
        counts[(district_id, week)] += 1
    district_ids = sorted({d for d, _ in counts})
    weeks = sorted({w for _, w in counts})
    districts = [places.require_district(session, d) for d in district_ids]
    table = suppress([[counts.get((d, w), 0) for w in weeks] for d in district_ids])
    return Reach(
        weeks=weeks,
        districts=[(d.code, d.name, d.name_zh or d.name) for d in districts],
        table=table,
    )


def compute(session: Session) -> Transparency:
    """Every public figure, from the database (see :func:`public_figures` for the cached one)."""
    names: Names = {}
    programs = [
        _party(session, p, stock.donor_report(session, program_id=p.id), names)
        for p in donations.list_programs(session)
    ]
    by_donor: dict[int, list[stock.DonorFigures]] = defaultdict(list)
    for f in stock.donor_report(session):
        by_donor[f.donor_org_id].append(f)
    donors = [
        _party(session, organizations.require_organization(session, d), by_donor[d], names)
        for d in sorted(by_donor)
    ]
    files = [(p.code, f"/transparency/iati/{p.id}.xml") for p in programs]
    return Transparency(clock.now(), programs, donors, reach(session), files)


_lock = threading.Lock()
_cached: dict[str, tuple[object, float, Transparency]] = {}


def public_figures(session: Session) -> Transparency:
    """:func:`compute`, again only when the ledger, the pledges or the deliveries changed, or
    after ``CACHE_SECONDS`` (names of programmes and places may change without them)."""
    key = (str(session.get_bind().engine.url), repo.ledger_state(session))
    with _lock:
        hit = _cached.get("figures")
        if hit is not None and hit[0] == key and time.monotonic() - hit[1] < CACHE_SECONDS:
            return hit[2]
    figures = compute(session)
    with _lock:
        _cached["figures"] = (key, time.monotonic(), figures)
    return figures
