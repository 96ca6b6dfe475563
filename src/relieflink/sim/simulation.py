"""A simulated relief operation (SimPy) over the real services and a real database.

Each morning donors' pledges arrive and are received into the ledger (:mod:`.supply`), and the
carriers' couriers report for the day (some are locked in). Households ask for help through the
request service during the day, and the chronically ill consult a doctor online
(:mod:`.residents`). At each wave, allocation runs and the dispatch service plans the day's
parcels onto the carriers' fleet; a vehicle that will not start is re-planned around
(:mod:`.dispatching`). Each route's courier posts the tracking events a phone would
(:mod:`.couriers`). The world (:mod:`.world`) holds the environment, the city and the random
streams, and moves :mod:`relieflink.clock` to the simulated time for the run: everything that
happens to stock, requests and parcels happens through the services, on the clock they read
live.
"""

from __future__ import annotations

import csv
from pathlib import Path

from relieflink.db import Session
from relieflink.dispatch import fleet
from relieflink.scenario import figures as fg
from relieflink.sim.assumptions import ASSUMPTIONS, SimAssumptions
from relieflink.sim.couriers import Couriers
from relieflink.sim.dispatching import Dispatch
from relieflink.sim.residents import Residents
from relieflink.sim.supply import Supply
from relieflink.sim.world import MINUTES_PER_DAY, START, Policy, RequestRecord, SimLog, World

__all__ = [
    "MINUTES_PER_DAY",
    "START",
    "Policy",
    "RequestRecord",
    "SimLog",
    "Simulation",
    "load_fleet",
]


def load_fleet(
    session: Session,
    vehicles_csv: Path,
    *,
    scale: float,
    assumptions: SimAssumptions = ASSUMPTIONS,
) -> int:
    """Import the carriers' fleets (the scenario's ``vehicles.csv``, sized from the published
    figures, which the generator multiplies by nothing) through the fleet service, grown by the
    simulation's own ``fleet_factor``: each kind gets its published fleet at full scale × factor
    × ``scale`` vehicles, shared over the file's groups of that kind in proportion to their
    counts. Returns the number of vehicles."""
    factor = dict(assumptions.fleet_factor)
    with vehicles_csv.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = list(reader.fieldnames or [])
        rows = list(reader)
    for kind, full in fg.FLEET_AT_FULL_SCALE.items():
        group = [r for r in rows if r["kind"] == kind]
        total = max(1, round(full * factor.get(kind, 1.0) * scale))
        weights = [int(r["count"]) for r in group]
        for row, count in zip(group, _shares(total, weights), strict=True):
            row["count"] = str(count)
    kept = [r for r in rows if int(r["count"]) > 0]
    grown = vehicles_csv.with_name(f"{vehicles_csv.stem}.sim.csv")
    with grown.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(kept)
    fleet.import_fleet(session, grown, actor=None)
    return sum(v.count for v in fleet.list_vehicles(session))


def _shares(total: int, weights: list[int]) -> list[int]:
    """``total`` split in proportion to ``weights`` (largest remainder)."""
    if not weights:
        return []
    whole = sum(weights) or 1
    quotas = [total * w / whole for w in weights]
    counts = [int(q) for q in quotas]
    by_remainder = sorted(range(len(weights)), key=lambda i: counts[i] - quotas[i])
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


class Simulation:
    """The operation on one database, under one allocation policy."""

    def __init__(
        self,
        session: Session,
        *,
        policy: Policy,
        days: int,
        seed: int,
        assumptions: SimAssumptions = ASSUMPTIONS,
    ) -> None:
        self.world = World(session, policy=policy, days=days, seed=seed, assumptions=assumptions)
        with self.world.clock():  # what the setup writes is stamped with the first day
            self.supply = Supply(self.world)
            self.residents = Residents(self.world)
            self.couriers = Couriers(self.world)
            self.dispatch = Dispatch(self.world, self.couriers)
            self.world.reduce_outbound_capacity()

    @property
    def log(self) -> SimLog:
        return self.world.log

    def run(self) -> SimLog:
        """Simulate the days; the clock reads the simulated time until the end, even on error."""
        w = self.world
        with w.clock():
            w.env.process(self.supply.run())
            w.env.process(self.residents.requests())
            w.env.process(self.dispatch.waves())
            w.env.process(self.residents.consultations())
            w.env.process(self.couriers.sync())
            w.env.run(until=w.end)
            w.log.on_board_packs = sum(self.couriers.on_board.values())
            w.log.pending_at_end = self.dispatch.pending_at_end()
            w.record_stock()
            w.commit()
        return w.log
