"""Supply: each morning the donors' pledges arrive and are received into the warehouses' ledger.

Donors give what they gave (``figures.DONORS``: each kit from its donors, by their shares), and
each donor's goods go to the warehouses by the need they serve: every compound is served by its
nearest depot (a warehouse with vehicles), and a depot receives each kit in proportion to the
packs its compounds' households are entitled to."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Generator, Mapping
from datetime import timedelta
from typing import Any, TypeVar

import simpy

from relieflink import clock
from relieflink.catalog import service as catalog
from relieflink.dispatch import fleet
from relieflink.donations import service as donations
from relieflink.donations.schemas import PledgeCreate, PledgeLineIn
from relieflink.flows import receipts
from relieflink.reports import service as reads
from relieflink.scenario import figures as fg
from relieflink.scenario.generator import apportion
from relieflink.sim.world import GROUP_KITS, MINUTES_PER_DAY, REFILL_SKU, Depot, World
from relieflink.stock.schemas import LotIn, ReceiveIn

D = TypeVar("D")  # a depot, as the caller knows it
KIT_SHELF_DAYS = 180
MEDICINE_SHELF_DAYS = 365


def place_by_need(
    need: dict[D, dict[str, float]],
    donors: dict[str, dict[int, float]],
    supply_ratio: float,
    ratio_of: Mapping[str, float] | None = None,
) -> dict[tuple[int, D], list[tuple[str, int]]]:
    """A day's supply by donor and depot: each kit's need × ``supply_ratio`` (or its own ratio
    in ``ratio_of``; medicine refills in full) split over its donors by their shares
    (``donors[sku]``: donor id → share), and each donor's part over the depots in proportion to
    their need of that kit."""
    ratio_of = ratio_of or {}
    depots = list(need)
    total_need: defaultdict[str, float] = defaultdict(float)
    for packs in need.values():
        for sku, n in packs.items():
            total_need[sku] += n
    lines: dict[tuple[int, D], list[tuple[str, int]]] = {}
    for sku, expected in sorted(total_need.items()):
        ratio = ratio_of.get(sku, supply_ratio)
        total = math.ceil(expected) if sku == REFILL_SKU else round(expected * ratio)
        shares = donors[sku]
        for donor_id, part in zip(shares, apportion(total, list(shares.values())), strict=True):
            weights = [need[d].get(sku, 0.0) for d in depots]
            for depot, q in zip(depots, apportion(int(part), weights), strict=True):
                if q > 0:
                    lines.setdefault((donor_id, depot), []).append((sku, int(q)))
    return lines


class Supply:
    """Donors pledge what the households asking on a day are entitled to (times the supply
    ratio), and a refill's worth of medicine, placed by need; the NGO receives them at once."""

    def __init__(self, world: World) -> None:
        self.w = world
        self.need = self._need_per_depot()
        codes = {o.code: o.id for o in reads.organization_rows(world.session)}
        skus = {sku for packs in self.need.values() for sku in packs}
        self.donors = {
            sku: {codes[c]: share for c, share in fg.donor_shares(sku).items() if c in codes}
            for sku in skus
        }

    def _need_per_depot(self) -> dict[Depot, dict[str, float]]:
        """Per depot, the packs of each kit (and refills) that the households of the compounds
        it is the nearest depot of are expected to ask for on a day."""
        w = self.w
        based = {v.depot_id for v in fleet.list_vehicles(w.session)}
        depots = [d for d in w.warehouses if d.id in based] or w.warehouses
        nearest: dict[int, Depot] = {}
        for cid, (lat, lon, _status) in w.communities.items():
            nearest[cid] = min(depots, key=lambda d: (d.lat - lat) ** 2 + (d.lon - lon) ** 2)
        need: dict[Depot, defaultdict[str, float]] = {d: defaultdict(float) for d in depots}
        for h in w.households:
            packs = need[nearest[h.community_id]]
            for sku, n in w.entitled(h).items():
                packs[sku] += n * w.a.request_share
            if h.chronic:
                packs[REFILL_SKU] += w.a.consult_share
        return {d: dict(packs) for d, packs in need.items()}

    def daily_kg(self) -> dict[int, float]:
        """Per warehouse id, the weight of what arrives there each morning."""
        w = self.w
        grams = {sku: catalog.kit_size(kit)[0] for sku, kit in w.kits.items()}
        grams[REFILL_SKU] = w.medicine.grams_per_unit
        out: defaultdict[int, float] = defaultdict(float)
        for (_, depot), items in self._lines().items():
            out[depot.id] += sum(q * grams[sku] for sku, q in items) / 1000
        return dict(out)

    def _lines(self) -> dict[tuple[int, Depot], list[tuple[str, int]]]:
        """The day's pledges' lines, by donor and depot."""
        a = self.w.a
        group = a.group_kit_supply_ratio
        ratio_of = {} if group is None else dict.fromkeys(GROUP_KITS, group)
        return place_by_need(self.need, self.donors, a.supply_ratio, ratio_of)

    def run(self) -> Generator[simpy.Event, Any, None]:
        """Each morning at 06:00, the donors' pledges arrive and are received."""
        w = self.w
        for day in range(w.days):
            yield w.env.timeout(day * MINUTES_PER_DAY + 6 * 60 - w.env.now)
            self._receive_the_day()
            w.record_stock()
            w.commit()

    def _receive_the_day(self) -> None:
        """The day's pledges, one per donor and depot, each received at its depot."""
        for (donor_id, depot), items in self._lines().items():
            self._pledge(donor_id, depot, items)

    def _pledge(self, donor_id: int, depot: Depot, items: list[tuple[str, int]]) -> None:
        w = self.w
        # Shelf lives run from the day the lots arrive, on the clock the ledger checks expiry
        # against (the simulated date during a simulation).
        arrived = clock.today()
        pledge_lines, lots = [], []
        for sku, q in items:
            if sku == REFILL_SKU:
                pledge_lines.append(PledgeLineIn(item_id=w.medicine.id, quantity=q))
                expiry = arrived + timedelta(days=MEDICINE_SHELF_DAYS)
                lots.append(LotIn(item_id=w.medicine.id, quantity=q, expiry=expiry))
            else:
                kit_id = w.kits[sku].id
                pledge_lines.append(PledgeLineIn(kit_id=kit_id, quantity=q))
                expiry = arrived + timedelta(days=KIT_SHELF_DAYS)
                lots.append(LotIn(kit_id=kit_id, quantity=q, expiry=expiry))
        pledge = donations.create_pledge(
            w.session,
            PledgeCreate(
                donor_org_id=donor_id,
                recipient_org_id=w.ngo_id,
                program_id=w.program.id,
                declared_value_fen=0,
                expected_arrival=arrived,
                lines=pledge_lines,
            ),
            actor=None,
        )
        receipts.receive_against_pledge(
            w.session,
            ReceiveIn(warehouse_id=depot.id, pledge_id=pledge.id, lots=lots),
            actor=None,
        )
