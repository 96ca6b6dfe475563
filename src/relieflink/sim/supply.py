"""Supply: each morning every donor's pledge arrives and is received into a warehouse's ledger."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Generator
from datetime import timedelta
from typing import Any

import simpy

from relieflink import clock
from relieflink.donations import service as donations
from relieflink.donations.schemas import PledgeCreate, PledgeLineIn
from relieflink.flows import receipts
from relieflink.sim.world import MINUTES_PER_DAY, Depot, World
from relieflink.stock.schemas import LotIn, ReceiveIn

KIT_SHELF_DAYS = 180
MEDICINE_SHELF_DAYS = 365


class Supply:
    """Donors pledge what the households asking on a day are entitled to (times the supply
    ratio), and a refill's worth of medicine; the NGO receives each pledge at once."""

    def __init__(self, world: World) -> None:
        self.w = world
        self.daily_packs = self._entitled_packs_per_day()
        chronic = sum(1 for h in world.households if h.chronic)
        self.daily_refills = math.ceil(chronic * world.a.consult_share)  # prescriptions a day
        # Pledges are received where robots are based: only robots enter sealed compounds in
        # the dispatch rules, and a robot serves its own depot's stock (as JD's network, which
        # ran the robots and the two temporary warehouses, received most donations in 2022).
        # Each takes pledges in proportion to its outbound capacity (what it can send out).
        docks = [w for w in world.warehouses if w.id in world.robot_depots] or world.warehouses
        smallest = min(max(w.daily_outbound_kg, 1) for w in docks)
        self.receiving: list[Depot] = [
            w for w in docks for _ in range(max(1, round(w.daily_outbound_kg / smallest)))
        ]

    def _entitled_packs_per_day(self) -> Counter[str]:
        """Packs per kit that the households asking on one day are entitled to (expected)."""
        total: Counter[str] = Counter()
        for h in self.w.households:
            total.update(self.w.entitled(h))
        return Counter({sku: n * self.w.a.request_share for sku, n in total.items()})

    def run(self) -> Generator[simpy.Event, Any, None]:
        """Each morning at 06:00, every donor's pledge arrives and is received."""
        w = self.w
        for day in range(w.days):
            yield w.env.timeout(day * MINUTES_PER_DAY + 6 * 60 - w.env.now)
            for d_index, (donor_id, _) in enumerate(w.donors):
                self._pledge(day, d_index, donor_id)
            w.record_stock()
            w.commit()

    def _pledge(self, day: int, d_index: int, donor_id: int) -> None:
        w = self.w
        donors = len(w.donors)
        lines = []
        # Shelf lives run from the day the lots arrive, on the clock the ledger checks expiry
        # against (the simulated date during a simulation).
        arrived = clock.today()
        medicine = math.ceil(self.daily_refills / donors)
        lots = [
            LotIn(
                item_id=w.medicine.id,
                quantity=medicine,
                expiry=arrived + timedelta(days=MEDICINE_SHELF_DAYS),
            )
        ]
        for sku, expected in sorted(self.daily_packs.items()):
            share = math.floor(expected * w.a.supply_ratio / donors)
            share += d_index < round(expected * w.a.supply_ratio) % donors
            if share > 0:
                lines.append((w.kits[sku].id, share))
        if not lines:
            return
        pledge_lines = [PledgeLineIn(kit_id=k, quantity=q) for k, q in lines]
        pledge_lines.append(PledgeLineIn(item_id=w.medicine.id, quantity=medicine))
        pledge = donations.create_pledge(
            w.session,
            PledgeCreate(
                donor_org_id=donor_id,
                recipient_org_id=w.ngo_id,
                program_id=w.program.id,
                declared_value_fen=0,
                expected_arrival=clock.today(),
                lines=pledge_lines,
            ),
            actor=None,
        )
        warehouse = self.receiving[(day + d_index) % len(self.receiving)]
        receipts.receive_against_pledge(
            w.session,
            ReceiveIn(
                warehouse_id=warehouse.id,
                pledge_id=pledge.id,
                lots=lots
                + [
                    LotIn(
                        kit_id=k,
                        quantity=q,
                        expiry=arrived + timedelta(days=KIT_SHELF_DAYS),
                    )
                    for k, q in lines
                ],
            ),
            actor=None,
        )
