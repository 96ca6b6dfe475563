"""The simulated world: SimPy's environment and its clock, the city as the actors know it, their
random streams, the people the operation itself brings (a coordinator, a relief programme) and
the log the outcome metrics are computed from.

Time is virtual: minutes since the first simulated day's local midnight. :meth:`World.moment`
maps it to a date and time, and :meth:`World.clock` moves :mod:`relieflink.clock` there for the
run, so that every service reads the simulated time as it reads the real one in production.
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

import simpy

from relieflink import clock
from relieflink.catalog import service as catalog
from relieflink.db import Session
from relieflink.dispatch import fleet
from relieflink.donations import service as donations
from relieflink.donations.schemas import ProgramCreate
from relieflink.models import LockdownStatus, OrgKind, Role
from relieflink.needs.policy import HouseholdFacts, default_policy, entitled_packs
from relieflink.places import service as places
from relieflink.places.schemas import WarehouseUpdate
from relieflink.reports import service as reads
from relieflink.sim.assumptions import ASSUMPTIONS, SimAssumptions
from relieflink.stock import service as stock
from relieflink.users import service as users
from relieflink.users.schemas import UserCreate

Policy = Literal["priority", "fifo"]
MINUTES_PER_DAY = 24 * 60
START = date(2022, 4, 11)  # the day Xinhua counted 17,649 zoned communities
KITS = {  # household member count → kit it is entitled to
    "size": "KIT-FAMILY-FOOD",
    "infants": "KIT-INFANT",
    "pregnant": "KIT-MATERNITY",
    "chronic": "KIT-CHRONIC-MED",
}
# The kits only one group is entitled to (not the family food kit every household gets).
GROUP_KITS = frozenset(sku for attr, sku in KITS.items() if attr != "size")
REFILL_SKU = "MED-AMLODIPINE-30"
_PER = {"size": "person", "infants": "infant", "pregnant": "pregnant", "chronic": "chronic"}


@dataclass
class RequestRecord:
    """One request as the simulation saw it: when it was asked, who asked, when it arrived."""

    request_id: int
    household_id: int
    community_id: int
    t_request: float
    groups: tuple[str, ...]
    packs: int
    source: str = "household"  # or "prescription" (written by a doctor)
    delivered: int = 0
    t_delivered: float | None = None


@dataclass
class SimLog:
    policy: Policy
    end: float = 0.0  # the minute the simulation stopped
    requests: dict[int, RequestRecord] = field(default_factory=dict)
    answers: Counter[str] = field(default_factory=Counter)
    deliveries: list[tuple[float, int, int, bool]] = field(
        default_factory=list
    )  # t, packs, community, robot (the last 100 metres by robot)
    failures: list[tuple[float, int, str]] = field(default_factory=list)  # t, household, reason
    # Every attempt at a door: household, its attempt number, "delivered" or the failure reason.
    doors: list[tuple[int, int, str]] = field(default_factory=list)
    breakdowns: list[tuple[float, str, str]] = field(default_factory=list)  # t, kind, vehicle
    replacements: int = 0  # broken vehicles the carriers' reserve replaced the same day
    absences: list[tuple[int, str]] = field(default_factory=list)  # day, vehicle off (roll call)
    # Per stop, minutes from the vehicle at the gate to the last door (one parcel after another).
    gate_minutes: list[float] = field(default_factory=list)
    stock: list[tuple[float, str, int]] = field(default_factory=list)  # t, warehouse, units
    # The dispatch routes that were driven: depot, then their stops' gates in order.
    routes: list[list[tuple[float, float]]] = field(default_factory=list)
    distance_km: float = 0.0
    cost_fen: int = 0  # the driven routes' cost as the dispatch plan priced them
    # Vehicle km, and labour by whom.
    cost_yuan: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    routes_driven: int = 0
    routes_by_kind: Counter[str] = field(default_factory=Counter)
    hours_by_kind: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    plans: list[int] = field(default_factory=list)  # dispatch plans, re-plans included
    replans: int = 0
    waves: int = 0  # allocation and plan runs: the scheduled waves and the trips between
    # Parcel-plans no route took, summed over plans (a parcel left out of 9 plans counts 9).
    unrouted: Counter[str] = field(default_factory=Counter)
    # Units the last allocation run held back though in stock, by warehouse and reason.
    held_back: Counter[str] = field(default_factory=Counter)
    # Distinct parcels neither delivered nor on board at the end, by reason.
    pending_at_end: Counter[str] = field(default_factory=Counter)
    # Requests every line of which had its stock allocated by the end, and per kit the units
    # asked, allocated and received (read from the database when the simulation stops).
    allocated_in_full: set[int] = field(default_factory=set)
    kits: dict[str, dict[str, int]] = field(default_factory=dict)
    delivered_parcels: list[int] = field(default_factory=list)
    failed_parcels: list[int] = field(default_factory=list)
    on_board_packs: int = 0  # loaded and not yet delivered when the simulation stopped
    donor_names: dict[int, str] = field(default_factory=dict)
    communities: dict[int, tuple[str, float, float, str]] = field(default_factory=dict)
    warehouses: dict[str, tuple[float, float]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Home:
    """A household's facts, read once (the dispatch service expires the session's objects)."""

    id: int
    community_id: int
    size: int
    infants: int
    pregnant: int
    chronic: int
    elderly_80: int
    disabled: int


@dataclass(frozen=True, slots=True)
class Depot:
    """A warehouse as the simulation knows it (its capacity as the city was loaded)."""

    id: int
    code: str
    lat: float
    lon: float
    daily_outbound_kg: int


class World:
    """One simulated operation's shared state: the environment, the city, the random streams."""

    def __init__(
        self,
        session: Session,
        *,
        policy: Policy,
        days: int,
        seed: int,
        assumptions: SimAssumptions = ASSUMPTIONS,
    ) -> None:
        self.session = session
        self.policy: Policy = policy
        self.days = days
        self.seed = seed
        self.a = assumptions
        self.env = simpy.Environment()
        self.log = SimLog(policy=policy)
        # Requests and donations over ``days``; waves and deliveries a little longer.
        self.end = (days + assumptions.delivery_days_after_last_request) * MINUTES_PER_DAY
        self.log.end = self.end
        self.kits = {k.sku: k for k in catalog.get_kits_by_sku(session, list(KITS.values()))}
        self.medicine = catalog.get_items_by_sku(session, [REFILL_SKU])[REFILL_SKU]
        self.households = [Home(*row) for row in reads.household_facts(session)]
        self.communities_of = {h.id: h.community_id for h in self.households}
        self._vulnerable = {
            h.id for h in self.households if h.infants or h.pregnant or h.chronic or h.elderly_80
        }
        places_ = reads.community_places(session)
        self.communities = {
            cid: (lat, lon, LockdownStatus(status)) for cid, _, lat, lon, status in places_
        }
        self.log.communities = {
            cid: (name, lat, lon, str(status)) for cid, name, lat, lon, status in places_
        }
        self.warehouses = [Depot(*row) for row in reads.warehouse_rows(session)]
        self.log.warehouses = {w.code: (w.lat, w.lon) for w in self.warehouses}
        self.depots = {w.id: (w.lat, w.lon) for w in self.warehouses}
        orgs = reads.organization_rows(session)
        self.donors = [(o.id, o.name) for o in orgs if o.kind == OrgKind.donor]
        self.ngo_id = next(o.id for o in orgs if o.kind == OrgKind.ngo)
        self.carriers = {o.id: o.code for o in orgs if o.kind == OrgKind.carrier}
        self.log.donor_names = dict(self.donors)
        vehicles = fleet.list_vehicles(session)
        self.vehicle_codes = {v.id: v.code for v in vehicles}
        with self.clock():  # what the operation's setup writes is stamped with its first day
            self.coordinator = users.create_user(
                session,
                UserCreate(
                    username="sim-coordinator",
                    full_name="Simulated coordinator",
                    role=Role.coordinator,
                    organization_id=self.ngo_id,
                    password=self.password,
                ),
                actor=None,
            )
            self.program = donations.create_program(
                session,
                ProgramCreate(
                    code="SIM",
                    name="Simulated relief operation",
                    region="Shanghai",
                    country="CN",
                    organization_id=self.ngo_id,
                ),
                actor=None,
            )

    @property
    def password(self) -> str:
        return "simulation-only-" + str(self.seed)

    def stream(self, kind: str, *key: int) -> random.Random:
        """The random stream of one entity for one purpose (a household's requests on a day,
        a vehicle's breakdown on a day, a household's n-th door), keyed by the seed and the
        entity's stable ids, never by the order of draws: under both policies the same entity
        sees the same events, whatever else happened."""
        return random.Random(f"{self.seed}:{kind}:{':'.join(map(str, key))}")

    # --- time ---------------------------------------------------------------------------------

    def moment(self) -> datetime:
        """The simulated moment: the environment's minutes since the first day's local
        midnight, in UTC."""
        midnight = datetime.combine(START, time(), clock.zone())
        return (midnight + timedelta(minutes=self.env.now)).astimezone(UTC)

    @contextmanager
    def clock(self) -> Iterator[None]:
        """Within the block, :mod:`relieflink.clock` reads the simulated moment; the previous
        source comes back afterwards, even on error."""
        previous = clock.use(self.moment)
        try:
            yield
        finally:
            clock.use(previous)

    def at(self, minute: float) -> simpy.Timeout:
        """Wait until ``minute`` (at once if it has passed)."""
        return self.env.timeout(max(0.0, minute - self.env.now))

    # --- the city -----------------------------------------------------------------------------

    def facts(self, h: Home) -> HouseholdFacts:
        lockdown = self.communities[h.community_id][2]
        return HouseholdFacts(
            h.size, h.infants, h.pregnant, h.chronic, h.elderly_80, h.disabled, lockdown
        )

    def vulnerable(self, household_id: int) -> bool:
        """The household has an infant, a pregnant woman, a chronic patient or someone 80+."""
        return household_id in self._vulnerable

    def entitled(self, h: Home) -> dict[str, int]:
        """Packs of each kit the household is entitled to per request."""
        policy = default_policy()
        facts = self.facts(h)
        out = {}
        for attr, sku in KITS.items():
            kit = self.kits[sku]
            n = entitled_packs(policy, facts, per=_PER[attr], persons=kit.persons, days=kit.days)  # type: ignore[arg-type]
            if n:
                out[sku] = n
        return out

    # --- transactions and the stock curve ------------------------------------------------------

    def commit(self) -> None:
        self.session.commit()

    def record_stock(self) -> None:
        """The kits on hand in each warehouse now (for the report's stock curve)."""
        matrix = stock.stock_matrix(self.session, kind="kit")
        for w in self.warehouses:
            units = sum(n for (wid, _), n in matrix.items() if wid == w.id)
            self.log.stock.append((self.env.now, w.code, units))

    def staff_the_docks(self, inbound_kg: dict[int, float]) -> None:
        """The coordinator staffs each warehouse's loading so that what arrives in a day can
        leave in a day: its outbound capacity becomes the weight of its daily arrivals
        (``inbound_kg``, by warehouse id) where the city's figure is lower. In 2022 stock was
        sufficient and the last 100 metres failed (Xinhua, Global Times, April 2022): the
        warehouses' docks were not the bottleneck, the gates were. No published figure gives a
        warehouse's dock throughput; the city's figure (``TOTAL_DAILY_OUTBOUND_KG``) is JD's
        achieved flow, a floor."""
        for w in self.warehouses:
            capacity = max(w.daily_outbound_kg, math.ceil(inbound_kg.get(w.id, 0.0)))
            if capacity == w.daily_outbound_kg:
                continue
            places.update_warehouse(
                self.session,
                w.id,
                WarehouseUpdate(daily_outbound_kg=capacity),
                actor=self.coordinator,
            )
