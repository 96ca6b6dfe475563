"""A simulated relief operation (SimPy) over the real services and a real database.

Each morning donors' pledges arrive and are received into the ledger; households ask for help
through the request service during the day (some twice, some with malformed messages, and the
simulation counts how each was answered); allocation and dispatch run in waves; vans drive the
routes the routing engine plans, at their speed; robots and volunteers carry parcels the last
100 metres; some deliveries fail and are carried over to the next plan, and some vans break down
and their parcels are re-planned. Time is virtual (minutes since the first day's midnight);
everything that happens to stock or requests happens through the services, as it would live.
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

import simpy
from sqlalchemy import select
from sqlalchemy.orm import Session

from relieflink.catalog import service as catalog
from relieflink.consult import service as consult
from relieflink.consult.schemas import (
    ConsultationClose,
    ConsultationCreate,
    DoctorShift,
    PrescriptionCreate,
    PrescriptionLineCreate,
)
from relieflink.donations import service as donations
from relieflink.donations.schemas import PledgeCreate, PledgeLineIn, ProgramCreate
from relieflink.errors import RelieflinkError
from relieflink.models import (
    Allocation,
    Community,
    Household,
    LockdownStatus,
    Organization,
    OrgKind,
    RequestLine,
    Role,
    User,
    Warehouse,
)
from relieflink.needs import allocation
from relieflink.needs import service as needs
from relieflink.needs.policy import HouseholdFacts, default_policy, entitled_packs
from relieflink.needs.schemas import RequestCreate
from relieflink.optim.routing import (
    Depot,
    RoutingProblem,
    SerialExecutor,
    Stop,
    VehicleKind,
    VehicleType,
    solve_routing,
)
from relieflink.places import service as places
from relieflink.places.schemas import WarehouseUpdate
from relieflink.sim.assumptions import ASSUMPTIONS, SimAssumptions
from relieflink.stock import service as stock
from relieflink.stock.schemas import LotIn, ReceiveIn
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
REFILL_SKU = "MED-AMLODIPINE-30"
# The questionnaire of a stable patient whose blood-pressure medicine runs out in two days.
REFILL_ANSWERS: dict[str, bool | str] = {
    "unresponsive_or_seizure": False,
    "breathing_difficulty": "none",
    "chest_pain": "none",
    "bleeding": "none",
    "stroke_signs": False,
    "severe_allergic_reaction": False,
    "self_harm_risk": "none",
    "medicine_running_out": "within_2_days",
    "insulin_or_anticoagulant": False,
}
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
    delivered: int = 0
    t_delivered: float | None = None


@dataclass
class SimLog:
    policy: Policy
    requests: dict[int, RequestRecord] = field(default_factory=dict)
    answers: Counter[str] = field(default_factory=Counter)
    deliveries: list[tuple[float, int, int, bool]] = field(
        default_factory=list
    )  # t, packs, community, robot
    failures: list[tuple[float, int, str]] = field(default_factory=list)  # t, household, reason
    breakdowns: list[tuple[float, str]] = field(default_factory=list)
    stock: list[tuple[float, str, int]] = field(default_factory=list)  # t, warehouse, units
    routes: list[list[tuple[float, float]]] = field(default_factory=list)
    distance_km: float = 0.0
    vans_used: int = 0
    donor_names: dict[int, str] = field(default_factory=dict)
    communities: dict[int, tuple[str, float, float, str]] = field(default_factory=dict)
    warehouses: dict[str, tuple[float, float]] = field(default_factory=dict)


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
        self.session = session
        self.policy: Policy = policy
        self.days = days
        # Same seed, same requests for both policies: households draw from their own stream, so
        # what happens to deliveries (which differs by policy) never shifts who asks when.
        self.rng_requests = random.Random(seed)
        self.rng = random.Random(seed + 1)
        self.a = assumptions
        self.env = simpy.Environment()
        self.log = SimLog(policy=policy)
        self.kits = {k.sku: k for k in catalog.get_kits_by_sku(session, list(KITS.values()))}
        self.households = list(session.scalars(select(Household).order_by(Household.id)))
        self.communities = {c.id: c for c in session.scalars(select(Community))}
        self.warehouses = list(session.scalars(select(Warehouse).order_by(Warehouse.id)))
        orgs = list(session.scalars(select(Organization).order_by(Organization.id)))
        self.donors = [o for o in orgs if o.kind == OrgKind.donor]
        self.ngo = next(o for o in orgs if o.kind == OrgKind.ngo)
        self.log.donor_names = {d.id: d.name for d in self.donors}
        self.log.communities = {
            c.id: (c.name, c.lat, c.lon, c.lockdown_status) for c in self.communities.values()
        }
        self.log.warehouses = {w.code: (w.lat, w.lon) for w in self.warehouses}
        self.communities_of = {h.id: h.community_id for h in self.households}
        self.coordinator = users.create_user(
            session,
            UserCreate(
                username="sim-coordinator",
                full_name="Simulated coordinator",
                role=Role.coordinator,
                organization_id=self.ngo.id,
                password="simulation-only-" + str(seed),
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
                organization_id=self.ngo.id,
            ),
            actor=None,
        )
        self.daily_packs = self._entitled_packs_per_day()
        self.medicine = catalog.get_items_by_sku(session, [REFILL_SKU])[REFILL_SKU]
        chronic = sum(1 for h in self.households if h.chronic)
        self.daily_refills = math.ceil(chronic * self.a.consult_share)
        self.doctor = users.create_user(
            session,
            UserCreate(
                username="sim-doctor",
                full_name="Simulated doctor",
                role=Role.doctor,
                password="simulation-only-" + str(seed),
            ),
            actor=None,
        )
        consult.start_shift(
            session,
            DoctorShift(specialties=["general", "internal_medicine"], languages=["zh", "en"]),
            actor=self.doctor,
        )
        self.doctors = simpy.Resource(self.env, capacity=self.a.doctors_on_duty)
        self.residents: dict[int, User] = {}
        self.consult_asked: dict[int, float] = {}
        for w in self.warehouses:  # see SimAssumptions.outbound_capacity_factor
            capacity = int(w.daily_outbound_kg * self.a.outbound_capacity_factor)
            places.update_warehouse(
                session, w.id, WarehouseUpdate(daily_outbound_kg=capacity), actor=self.coordinator
            )

    # --- helpers ------------------------------------------------------------------------------

    def today(self) -> date:
        return START + timedelta(days=int(self.env.now // MINUTES_PER_DAY))

    def _facts(self, h: Household) -> HouseholdFacts:
        lockdown = self.communities[h.community_id].lockdown_status
        return HouseholdFacts(
            h.size, h.infants, h.pregnant, h.chronic, h.elderly_80, h.disabled, lockdown
        )

    def _entitled(self, h: Household) -> dict[str, int]:
        policy = default_policy()
        facts = self._facts(h)
        out = {}
        for attr, sku in KITS.items():
            kit = self.kits[sku]
            n = entitled_packs(policy, facts, per=_PER[attr], persons=kit.persons, days=kit.days)  # type: ignore[arg-type]
            if n:
                out[sku] = n
        return out

    def _entitled_packs_per_day(self) -> Counter[str]:
        """Packs per kit that the households asking on one day are entitled to (expected)."""
        total: Counter[str] = Counter()
        for h in self.households:
            total.update(self._entitled(h))
        return Counter({sku: n * self.a.request_share for sku, n in total.items()})

    def _commit(self) -> None:
        self.session.commit()

    # --- processes ----------------------------------------------------------------------------

    def supply(self) -> Generator[simpy.Event, Any, None]:
        """Each morning at 06:00, every donor's pledge arrives and is received."""
        for day in range(self.days):
            yield self.env.timeout(day * MINUTES_PER_DAY + 6 * 60 - self.env.now)
            for d_index, donor in enumerate(self.donors):
                lines = []
                medicine = math.ceil(self.daily_refills / len(self.donors))
                lots = [
                    LotIn(
                        item_id=self.medicine.id,
                        quantity=medicine,
                        expiry=self.today() + timedelta(days=365),
                    )
                ]
                for sku, expected in sorted(self.daily_packs.items()):
                    share = math.floor(expected * self.a.supply_ratio / len(self.donors))
                    share += d_index < round(expected * self.a.supply_ratio) % len(self.donors)
                    if share > 0:
                        lines.append((self.kits[sku].id, share))
                if not lines:
                    continue
                pledge_lines = [PledgeLineIn(kit_id=k, quantity=q) for k, q in lines]
                pledge_lines.append(PledgeLineIn(item_id=self.medicine.id, quantity=medicine))
                pledge = donations.create_pledge(
                    self.session,
                    PledgeCreate(
                        donor_org_id=donor.id,
                        recipient_org_id=self.ngo.id,
                        program_id=self.program.id,
                        declared_value_fen=0,
                        expected_arrival=self.today(),
                        lines=pledge_lines,
                    ),
                    actor=None,
                )
                warehouse = self.warehouses[(day + d_index) % len(self.warehouses)]
                stock.receive(
                    self.session,
                    ReceiveIn(
                        warehouse_id=warehouse.id,
                        pledge_id=pledge.id,
                        lots=lots
                        + [
                            LotIn(kit_id=k, quantity=q, expiry=self.today() + timedelta(days=180))
                            for k, q in lines
                        ],
                    ),
                    actor=None,
                )
            self._record_stock()
            self._commit()

    def _record_stock(self) -> None:
        matrix = stock.stock_matrix(self.session, kind="kit", as_of=self.today())
        for w in self.warehouses:
            units = sum(n for (wid, _), n in matrix.items() if wid == w.id)
            self.log.stock.append((self.env.now, w.code, units))

    def requests(self) -> Generator[simpy.Event, Any, None]:
        """Households ask during the day; some twice, some with a malformed message."""
        events: list[tuple[float, Household, str]] = []
        for day in range(self.days):
            start = day * MINUTES_PER_DAY
            for h in self.households:
                rng = self.rng_requests
                if rng.random() >= self.a.request_share:
                    continue
                t = start + rng.uniform(self.a.first_request_hour, self.a.last_request_hour) * 60
                kind = "ok"
                roll = rng.random()
                if roll < self.a.malformed_share / 2:
                    kind = "malformed-quantity"
                elif roll < self.a.malformed_share:
                    kind = "malformed-sku"
                elif roll < self.a.malformed_share + self.a.duplicate_share:
                    events.append((t + rng.uniform(60, 180), h, "ok"))
                events.append((t, h, kind))
        events.sort(key=lambda e: (e[0], e[1].id))
        for t, h, kind in events:
            yield self.env.timeout(t - self.env.now)
            self._ask(h, kind)

    def _ask(self, h: Household, kind: str) -> None:
        entitled = self._entitled(h)
        lines = [{"kit_sku": sku, "quantity": n} for sku, n in entitled.items()]
        if kind == "malformed-quantity":
            lines = [{"kit_sku": "KIT-FAMILY-FOOD", "quantity": 0}]
        elif kind == "malformed-sku":
            lines = [{"kit_sku": "KIT-RICE-TYPO", "quantity": 1}]
        try:
            data = RequestCreate.model_validate({"household_id": h.id, "lines": lines})
            # A savepoint per request, as its own transaction would be live; committed in batches
            # at the next wave (the simulation's only reader) to keep the demo fast.
            with self.session.begin_nested():
                outcome = needs.create_request(
                    self.session, data, actor=self.coordinator, today=self.today()
                )
        except (RelieflinkError, ValueError):
            self.log.answers["refused as invalid"] += 1
            return
        if outcome.merged:
            self.log.answers["merged with an open request"] += 1
            return
        self.log.answers["accepted"] += 1
        groups = tuple(
            g
            for g, n in (
                ("infant", h.infants),
                ("pregnant", h.pregnant),
                ("chronic", h.chronic),
                ("elderly", h.elderly_80),
            )
            if n
        ) or ("other",)
        self.log.requests[outcome.request.id] = RequestRecord(
            request_id=outcome.request.id,
            household_id=h.id,
            community_id=h.community_id,
            t_request=self.env.now,
            groups=groups,
            packs=sum(entitled.values()),
        )

    def consultations(self) -> Generator[simpy.Event, Any, None]:
        """Residents with chronic illness ask a doctor online for a refill; the prescription
        becomes a medical request that allocation serves first."""
        chronic = [h for h in self.households if h.chronic]
        plan: list[tuple[float, Household]] = []
        for day in range(self.days):
            for h in chronic:
                if self.rng_requests.random() < self.a.consult_share:
                    hour = self.rng_requests.uniform(8, 18)
                    plan.append((day * MINUTES_PER_DAY + hour * 60, h))
        plan.sort(key=lambda e: (e[0], e[1].id))
        for t, h in plan:
            yield self.env.timeout(t - self.env.now)
            self.env.process(self._consult(h))

    def _consult(self, h: Household) -> Generator[simpy.Event, Any, None]:
        resident = self.residents.get(h.id)
        if resident is None:
            resident = users.create_user(
                self.session,
                UserCreate(
                    username=f"sim-resident-{h.id}",
                    full_name="Simulated resident",
                    role=Role.resident,
                    household_id=h.id,
                    password="simulation-only-pw",
                ),
                actor=None,
            )
            self.residents[h.id] = resident
        consultation, _ = consult.request_consultation(
            self.session,
            ConsultationCreate(
                member_label="self",
                age_band="older_adult",
                sex="unknown",
                reason="my blood pressure medicine is running out",
                symptoms=REFILL_ANSWERS,
            ),
            actor=resident,
            now=self._clock(),
        )
        self.consult_asked[consultation.id] = self.env.now
        self._commit()
        with self.doctors.request() as turn:
            yield turn
            yield self.env.timeout(self.a.consult_minutes)
            # The doctor takes the most urgent waiting request, not necessarily this one.
            taken = consult.take_next(self.session, actor=self.doctor, now=self._clock())
            if taken is None:
                return
            prescription = PrescriptionCreate(
                lines=[PrescriptionLineCreate(item_id=self.medicine.id, quantity=1)]
            )
            consult.close_consultation(
                self.session,
                taken.id,
                ConsultationClose(
                    notes="stable; 30-day refill", outcome="prescription", prescription=prescription
                ),
                actor=self.doctor,
                now=self._clock(),
            )
            written = consult.get_prescription(self.session, taken.id)
            self._commit()
        self.log.answers["consultations closed with a prescription"] += 1
        if written is not None and written.request_id is not None:
            self.log.requests[written.request_id] = RequestRecord(
                request_id=written.request_id,
                household_id=taken.household_id,
                community_id=self.communities_of[taken.household_id],
                t_request=self.consult_asked[taken.id],
                groups=("chronic",),
                packs=1,
            )

    def _clock(self) -> datetime:
        return datetime.combine(START, time(), UTC) + timedelta(minutes=self.env.now)

    def waves(self) -> Generator[simpy.Event, Any, None]:
        """Allocation and dispatch at the wave hours of every day."""
        for day in range(self.days):
            for hour in self.a.wave_hours:
                yield self.env.timeout(day * MINUTES_PER_DAY + hour * 60 - self.env.now)
                report = allocation.run_allocation(
                    self.session,
                    actor=None,
                    today=self.today(),
                    method="priority" if self.policy == "priority" else "fcfs",
                )
                self._commit()
                if report.run_id is not None:
                    self._dispatch(report.run_id)

    def _dispatch(self, run_id: int) -> None:
        """Plan van routes to the community gates from each warehouse; schedule the deliveries."""
        rows = self.session.execute(
            select(
                Allocation.id,
                Allocation.warehouse_id,
                Allocation.quantity,
                Allocation.kit_id,
                Household.community_id,
                RequestLine.request_id,
            )
            .join(Household, Household.id == Allocation.household_id)
            .join(RequestLine, RequestLine.id == Allocation.line_id)
            .where(Allocation.run_id == run_id)
        ).all()
        grams = {
            k.id: sum(line.item.grams_per_unit * line.quantity for line in k.lines)
            for k in self.kits.values()
        }
        by_warehouse: dict[int, dict[int, list[tuple[int, int, int]]]] = defaultdict(
            lambda: defaultdict(list)
        )
        for alloc_id, warehouse_id, quantity, kit_id, community_id, request_id in rows:
            by_warehouse[warehouse_id][community_id].append(
                (alloc_id, quantity * grams.get(kit_id or 0, 0), request_id)
            )
        depart = self.env.now + self.a.loading_minutes
        for w in self.warehouses:
            stops_by_community = by_warehouse.get(w.id)
            if not stops_by_community:
                continue
            problem = self._routing_problem(w, stops_by_community)
            result = solve_routing(
                problem, iterations=300, seed=int(run_id), executor=SerialExecutor()
            )
            for route in result.routes:
                self.log.vans_used += 1
                self.log.distance_km += route.distance_m / 1000
                path = [(w.lat, w.lon)]
                broken = self.rng.random() < self.a.breakdown_share
                delay = self.a.breakdown_delay_minutes if broken else 0
                if broken:
                    self.log.breakdowns.append((depart, f"van from {w.code}"))
                for visit in route.visits:
                    community = self.communities[int(visit.stop_id)]
                    path.append((community.lat, community.lon))
                    arrive = depart + visit.arrival_s / 60 + delay
                    self.env.process(
                        self._last_metre(arrive, community, stops_by_community[community.id])
                    )
                self.log.routes.append(path)
            for miss in result.unassigned:  # never silently dropped: retried on the next wave
                for alloc_id, _, _ in stops_by_community[int(miss.stop_id)]:
                    needs.return_allocation(
                        self.session, alloc_id, reason=f"unassigned: {miss.reason}", actor=None
                    )
        self._commit()

    def _routing_problem(
        self, w: Warehouse, stops: dict[int, list[tuple[int, int, int]]]
    ) -> RoutingProblem:
        depot = Depot(id=w.code, lat=w.lat, lon=w.lon)
        route_stops = tuple(
            Stop(
                id=str(cid),
                lat=self.communities[cid].lat,
                lon=self.communities[cid].lon,
                weight_g=min(sum(g for _, g, _ in parcels), 900_000),
                service_s=600,
            )
            for cid, parcels in sorted(stops.items())
        )
        vans = VehicleType(
            id=f"van-{w.code}",
            kind=VehicleKind.VAN,
            count=max(2, len(route_stops)),
            start_depot=w.code,
            capacity_g=1_000_000,
            capacity_ml=10_000_000,
            speed_kmh=self.a.van_speed_kmh,
            fixed_cost=self.a.van_fixed_cost_fen * 1000,
            cost_per_km=self.a.van_cost_per_km_fen * 1000,
        )
        return RoutingProblem(
            depots=(depot,), stops=route_stops, vehicle_types=(vans,), name=f"wave-{w.code}"
        )

    def _last_metre(
        self, arrive: float, community: Community, parcels: list[tuple[int, int, int]]
    ) -> Generator[simpy.Event, Any, None]:
        """From the gate to each door: robots in sealed compounds, volunteers on foot elsewhere."""
        yield self.env.timeout(max(0.0, arrive - self.env.now))
        robot = community.lockdown_status == LockdownStatus.sealed
        step = self.a.last_metre_minutes_robot if robot else self.a.last_metre_minutes_foot
        for alloc_id, _, request_id in parcels:
            yield self.env.timeout(step)
            alloc = self.session.get(Allocation, alloc_id)  # each door: the next event's batch
            assert alloc is not None
            if self.rng.random() < self.a.failure_share:
                reason = self.rng.choice(["not home", "refused", "damaged"])
                needs.return_allocation(self.session, alloc_id, reason=reason, actor=None)
                self.log.failures.append((self.env.now, alloc.household_id, reason))
            else:
                request = needs.deliver_allocation(
                    self.session,
                    alloc_id,
                    delivery_ref=f"sim:{alloc_id}",
                    actor=None,
                    as_of=self.today(),
                )
                self.log.deliveries.append((self.env.now, alloc.quantity, community.id, robot))
                record = self.log.requests.get(request_id)
                if record is not None:
                    record.delivered += alloc.quantity
                    if request.status == "delivered":
                        record.t_delivered = self.env.now
        self._commit()

    def run(self) -> SimLog:
        self.env.process(self.supply())
        self.env.process(self.requests())
        self.env.process(self.waves())
        self.env.process(self.consultations())
        self.env.run(until=self.days * MINUTES_PER_DAY)
        self._record_stock()
        self._commit()
        return self.log
