"""Traceability: the donors behind a lot or a reference (exact shares), and the per-donor report
(pledged, received, in stock, in transit between warehouses, on the way to the door, delivered
at the door, written off)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction

from sqlalchemy.orm import Session

from relieflink.errors import NotFound
from relieflink.models import LotSource, MovementKind, StockLot
from relieflink.organizations import service as organizations
from relieflink.stock import repository


def exact(value: Fraction | int) -> str:
    """An exact quantity as text: ``"12"`` or ``"7/3"``."""
    f = Fraction(value)
    return str(f.numerator) if f.denominator == 1 else f"{f.numerator}/{f.denominator}"


def whole_units(value: Fraction | int) -> tuple[int, bool]:
    """How a person reads a quantity: ``(n, False)`` for ``n`` whole units, ``(n, True)`` for a
    share of pooled units, part of ``n`` whole ones. Pages and the CLI never show a fractional bag;
    the exact fraction stays in the ledger and the JSON (``exact``)."""
    f = Fraction(value)
    if f.denominator == 1:
        return f.numerator, False
    return math.ceil(abs(f)), True


def named_shares(session: Session, shares: Mapping[int, Fraction | int]) -> list[dict[str, object]]:
    """Donors' shares named for a reader: the organization's names, the exact quantity
    (``"155/393"``, as the ledger holds it) and the same as a decimal (``0.394``)."""
    out: list[dict[str, object]] = []
    for donor_id, units in shares.items():
        org = organizations.get_organization(session, donor_id)
        out.append(
            {
                "donor_org_id": donor_id,
                "name": org.name if org else None,
                "name_zh": org.name_zh if org else None,
                "quantity": exact(units),
                "quantity_decimal": round(float(units), 3),
            }
        )
    return out


def lot_shares(session: Session, lot_ids: Iterable[int]) -> dict[int, dict[int, Fraction]]:
    """Each lot's donor shares (fractions summing to 1): by value, or by units if valueless."""
    out: dict[int, dict[int, Fraction]] = {}
    for lot_id, sources in repository.sources_of(session, lot_ids).items():
        total_value = sum(s.value_fen for s in sources)
        weights: dict[int, int] = defaultdict(int)
        for s in sources:
            weights[s.donor_org_id] += s.value_fen if total_value > 0 else s.quantity
        total = sum(weights.values())
        out[lot_id] = {d: Fraction(w, total) for d, w in weights.items()} if total else {}
    return out


def _reference_units(session: Session, reference: str) -> dict[int, int]:
    """Per lot: units ``reference`` holds or delivered (reserved − released − returned)."""
    per_lot: dict[int, int] = defaultdict(int)
    for m in repository.movements_by_reference(session, reference):
        if m.kind == MovementKind.reservation or m.kind == MovementKind.release:
            per_lot[m.lot_id] += m.d_reserved
        elif m.kind == MovementKind.return_:
            per_lot[m.lot_id] -= m.d_on_hand
    return {k: v for k, v in per_lot.items() if v}


def donor_shares(session: Session, *, reference: str) -> dict[int, Fraction | int]:
    """The donors behind what ``reference`` reserved or issued (net of releases and returns):
    donor organization id → units of the reserved item or kit (exact; ints when whole)."""
    units = _reference_units(session, reference)
    shares = lot_shares(session, units)
    out: dict[int, Fraction] = defaultdict(Fraction)
    for lot_id, q in units.items():
        for donor, fraction in shares[lot_id].items():
            out[donor] += fraction * q
    return {d: (int(v) if v.denominator == 1 else v) for d, v in sorted(out.items())}


@dataclass(frozen=True)
class Trace:
    subject: str
    units: int
    donors: dict[int, Fraction]
    # (donor, item, kit, source lot, component quantity, value in fen), exact.
    sources: list[tuple[int, int | None, int | None, int | None, Fraction, Fraction]]


def _trace(session: Session, subject: str, units: dict[int, int]) -> Trace:
    lots = repository.lots_by_id(session, units)
    sources = repository.sources_of(session, units)
    shares = lot_shares(session, units)
    donors: dict[int, Fraction] = defaultdict(Fraction)
    rows = []
    for lot_id, q in sorted(units.items()):
        lot = lots[lot_id]
        for donor, fraction in shares[lot_id].items():
            donors[donor] += fraction * q
        for s in sources[lot_id]:
            scale = Fraction(q, lot.quantity)
            rows.append(
                (
                    s.donor_org_id,
                    s.item_id,
                    s.kit_id,
                    s.source_lot_id,
                    s.quantity * scale,
                    s.value_fen * scale,
                )
            )
    return Trace(subject, sum(units.values()), dict(sorted(donors.items())), rows)


def trace_lot(session: Session, *, lot_id: int) -> Trace:
    """The donors and component quantities behind a whole lot (a kit lot lists every donor)."""
    lot = session.get(StockLot, lot_id)
    if lot is None:
        raise NotFound(f"no lot with id {lot_id}")
    return _trace(session, f"lot:{lot_id}", {lot_id: lot.quantity})


def trace_reference(session: Session, *, reference: str) -> Trace:
    """The donors and component quantities behind what a reference reserved or delivered."""
    return _trace(session, reference, _reference_units(session, reference))


@dataclass
class DonorFigures:
    donor_org_id: int
    item_id: int | None
    kit_id: int | None
    pledged: int = 0
    pledged_value_fen: int = 0
    received: int = 0
    received_value_fen: int = 0
    in_stock: Fraction = Fraction(0)
    in_transit: Fraction = Fraction(0)  # between warehouses (a transfer)
    on_the_way: Fraction = Fraction(0)  # issued: on a vehicle, not yet at the door
    delivered: Fraction = Fraction(0)  # handed over at the household's door
    written_off: Fraction = Fraction(0)
    in_stock_value_fen: Fraction = Fraction(0)
    delivered_value_fen: Fraction = Fraction(0)

    @property
    def balanced(self) -> bool:
        return self.received == (
            self.in_stock + self.in_transit + self.on_the_way + self.delivered + self.written_off
        )


def donor_report(
    session: Session, *, donor_org_id: int | None = None, program_id: int | None = None
) -> list[DonorFigures]:
    """Per donor and item (or kit as received): pledged, received, in stock, in transit
    (between warehouses), on the way (issued, not yet at the door), delivered (at the door),
    written off — exact, so that received = in stock + in transit + on the way + delivered +
    written off. Kits assembled from a donor's items count that donor's component units.
    With ``program_id``: only what was pledged and received for that program's pledges."""
    figures: dict[tuple[int, int | None, int | None], DonorFigures] = {}

    def row(d: int, item: int | None, kit: int | None) -> DonorFigures:
        key = (d, item, kit)
        if key not in figures:
            figures[key] = DonorFigures(d, item, kit)
        return figures[key]

    for d, item, kit, q, v in repository.pledged_lines(session, donor_org_id, program_id):
        r = row(d, item, kit)
        r.pledged += q
        r.pledged_value_fen += v
    pairs = repository.all_sources(session, donor_org_id)
    if program_id is not None:
        pairs = _of_program(session, pairs, program_id)
    lot_ids = {lot.id for _, lot in pairs}
    states = repository.lot_state_totals(session, lot_ids)
    at_door = repository.delivered_by_lot(session, lot_ids)
    for source, lot in pairs:
        r = row(source.donor_org_id, source.item_id, source.kit_id)
        if lot.origin == "receipt":
            r.received += source.quantity
            r.received_value_fen += source.value_fen
        st = states.get(lot.id, {})
        scale = Fraction(source.quantity, lot.quantity)
        vscale = Fraction(source.value_fen, lot.quantity)
        issued = -st.get(MovementKind.issue, 0) - st.get(MovementKind.return_, 0)
        delivered = at_door.get(lot.id, 0)
        r.in_stock += scale * st.get("on_hand", 0)
        r.in_transit += scale * st.get("in_transit", 0)
        r.on_the_way += scale * (issued - delivered)
        r.delivered += scale * delivered
        r.written_off += scale * -st.get(MovementKind.adjustment, 0)
        r.in_stock_value_fen += vscale * st.get("on_hand", 0)
        r.delivered_value_fen += vscale * delivered
    return [figures[k] for k in sorted(figures, key=lambda k: (k[0], k[1] or 0, k[2] or 0))]


def _of_program(
    session: Session, pairs: list[tuple[LotSource, StockLot]], program_id: int
) -> list[tuple[LotSource, StockLot]]:
    """The (source, lot) pairs given for ``program_id``: a receipt lot belongs to its pledge's
    program; a kit's component units to the program of the lot they were drawn from (so a
    program's received units and where they went stay in the same subset and still add up)."""

    def origin(source: LotSource, lot: StockLot) -> int | None:
        return lot.id if lot.origin == "receipt" else source.source_lot_id

    programs = repository.lot_programs(
        session, {o for s, lot in pairs if (o := origin(s, lot)) is not None}
    )
    return [
        (s, lot)
        for s, lot in pairs
        if (o := origin(s, lot)) is not None and programs.get(o) == program_id
    ]
