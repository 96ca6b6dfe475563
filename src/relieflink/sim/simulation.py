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

from relieflink.db import Session
from relieflink.reports import service as reads
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
]


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
            self.dispatch = Dispatch(self.world, self.couriers, self.residents)
            self.world.staff_the_docks(self.supply.daily_kg())

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
            w.env.process(self.dispatch.trips())
            w.env.process(self.residents.consultations())
            w.env.process(self.couriers.sync())
            w.env.run(until=w.end)
            w.log.on_board_packs = sum(self.couriers.on_board.values())
            w.log.pending_at_end = self.dispatch.pending_at_end()
            w.log.allocated_in_full = reads.requests_allocated_in_full(w.session) & set(
                w.log.requests
            )
            w.log.kits = reads.kit_totals(w.session)
            w.record_stock()
            w.commit()
        return w.log
