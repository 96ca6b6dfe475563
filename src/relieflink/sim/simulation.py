"""A simulated relief operation (SimPy) over the real services and a real database.

Each morning donors' pledges arrive and are received into the ledger, and the carriers' couriers
report for the day (some are locked in: fewer vehicles of a group are available). Households ask
for help through the request service during the day (some twice, some with malformed messages,
and the simulation counts how each was answered). At each wave, allocation runs and the dispatch
service plans the day's parcels onto the carriers' fleet (multi-depot, robots for sealed
compounds). Each route is given to a courier of its carrier, who posts the tracking events a
phone would: loaded (the ledger issues the stock), departed, arrived and handed off at each
gate, then delivered with the resident's pickup code, or failed (not home, refused, access
denied, damaged: the stock comes back and the request is carried over). A vehicle that will not
start at loading time is marked unavailable for the rest of the day and the coordinator re-plans
its parcels mid-day onto whatever is still free. Time is virtual (minutes since the first day's
midnight); everything that happens to stock, requests and parcels happens through the services,
as it would live.
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal

import simpy
from sqlalchemy import select
from sqlalchemy.orm import Session

from relieflink import clock
from relieflink.catalog import service as catalog
from relieflink.consult import service as consult
from relieflink.consult.schemas import (
    ConsultationClose,
    ConsultationCreate,
    DoctorShift,
    PrescriptionCreate,
    PrescriptionLineCreate,
)
from relieflink.dispatch import codes, fleet, planning, tracking
from relieflink.dispatch.schemas import EventIn
from relieflink.donations import service as donations
from relieflink.donations.schemas import PledgeCreate, PledgeLineIn, ProgramCreate
from relieflink.errors import RelieflinkError
from relieflink.models import (
    Community,
    EventKind,
    FailureReason,
    Household,
    InnerMode,
    LockdownStatus,
    Organization,
    OrgKind,
    Parcel,
    ParcelLine,
    ParcelStatus,
    RequestLine,
    Role,
    Route,
    RouteStatus,
    RouteStop,
    User,
    Vehicle,
    Warehouse,
)
from relieflink.needs import allocation
from relieflink.needs import service as needs
from relieflink.needs.policy import HouseholdFacts, default_policy, entitled_packs
from relieflink.needs.schemas import RequestCreate
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
FAILURE_REASONS = tuple(FailureReason)  # not home, refused, damaged, access denied
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
    )  # t, packs, community, robot (the last 100 metres by robot)
    failures: list[tuple[float, int, str]] = field(default_factory=list)  # t, household, reason
    breakdowns: list[tuple[float, str]] = field(default_factory=list)
    stock: list[tuple[float, str, int]] = field(default_factory=list)  # t, warehouse, units
    # The dispatch routes that were driven: depot, then their stops' gates in order.
    routes: list[list[tuple[float, float]]] = field(default_factory=list)
    distance_km: float = 0.0
    cost_fen: int = 0  # the driven routes' cost as the dispatch plan priced them
    routes_driven: int = 0
    routes_by_kind: Counter[str] = field(default_factory=Counter)
    plans: list[int] = field(default_factory=list)  # dispatch plans, re-plans included
    replans: int = 0
    vehicles_off: int = 0  # vehicle-days lost to couriers locked in (roll call)
    unrouted: Counter[str] = field(default_factory=Counter)  # parcels left pending, by reason
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


@dataclass
class OnBoard:
    """A parcel loaded on a route, as its courier's phone knows it."""

    parcel_id: int
    household_id: int
    packs: int
    code: str  # the resident tells it at the door (derived as the resident's view does)
    requests: list[tuple[int, int]]  # (request id, packs of it in this parcel)


def load_fleet(session: Session, vehicles_csv: Path) -> int:
    """Import the carriers' fleets (the scenario's ``vehicles.csv``) through the fleet
    service. Returns the number of vehicles."""
    fleet.import_fleet(session, vehicles_csv, actor=None)
    return sum(v.count for v in fleet.list_vehicles(session))


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
        self.households = [
            Home(*row)
            for row in session.execute(
                select(
                    Household.id,
                    Household.community_id,
                    Household.size,
                    Household.infants,
                    Household.pregnant,
                    Household.chronic,
                    Household.elderly_80,
                    Household.disabled,
                ).order_by(Household.id)
            )
        ]
        self.communities = {
            cid: (lat, lon, LockdownStatus(status))
            for cid, lat, lon, status in session.execute(
                select(Community.id, Community.lat, Community.lon, Community.lockdown_status)
            )
        }
        self.warehouses = list(session.scalars(select(Warehouse).order_by(Warehouse.id)))
        orgs = list(session.scalars(select(Organization).order_by(Organization.id)))
        self.donors = [o for o in orgs if o.kind == OrgKind.donor]
        self.ngo = next(o for o in orgs if o.kind == OrgKind.ngo)
        self.log.donor_names = {d.id: d.name for d in self.donors}
        self.log.communities = {
            cid: (name, lat, lon, str(status))
            for cid, name, lat, lon, status in session.execute(
                select(
                    Community.id,
                    Community.name,
                    Community.lat,
                    Community.lon,
                    Community.lockdown_status,
                )
            )
        }
        self.log.warehouses = {w.code: (w.lat, w.lon) for w in self.warehouses}
        # Pledges are received where robots are based: only robots enter sealed compounds in
        # the dispatch rules, and a robot serves its own depot's stock (as JD's network, which
        # ran the robots and the two temporary warehouses, received most donations in 2022).
        # Each takes pledges in proportion to its outbound capacity (what it can send out).
        robot_depots = {v.depot_id for v in fleet.list_vehicles(session) if v.kind == "robot"}
        docks = [w for w in self.warehouses if w.id in robot_depots] or self.warehouses
        smallest = min(max(w.daily_outbound_kg, 1) for w in docks)
        self.receiving = [
            w for w in docks for _ in range(max(1, round(w.daily_outbound_kg / smallest)))
        ]
        self.depots = {w.id: (w.lat, w.lon) for w in self.warehouses}
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
        # Who turns up for work is the same under both policies: its own stream.
        self.rng_fleet = random.Random(seed + 2)
        self.seed = seed
        self.couriers: dict[int, User] = {}  # by vehicle group (a vehicles.csv row)
        self.on_board: dict[int, int] = {}  # parcel id → packs, loaded and not yet at the door
        self.carriers = {
            o.id: o.code for o in orgs if o.kind == OrgKind.carrier
        }  # for the couriers' user names
        self.vehicle_codes: dict[int, str] = dict(
            session.execute(select(Vehicle.id, Vehicle.code)).all()
        )
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

    def _facts(self, h: Home) -> HouseholdFacts:
        lockdown = self.communities[h.community_id][2]
        return HouseholdFacts(
            h.size, h.infants, h.pregnant, h.chronic, h.elderly_80, h.disabled, lockdown
        )

    def _entitled(self, h: Home) -> dict[str, int]:
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
                        expiry=self._shelf_date() + timedelta(days=365),
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
                warehouse = self.receiving[(day + d_index) % len(self.receiving)]
                stock.receive(
                    self.session,
                    ReceiveIn(
                        warehouse_id=warehouse.id,
                        donor_org_id=donor.id,
                        pledge_id=pledge.id,
                        lots=lots
                        + [
                            LotIn(
                                kit_id=k,
                                quantity=q,
                                expiry=self._shelf_date() + timedelta(days=180),
                            )
                            for k, q in lines
                        ],
                    ),
                    actor=None,
                )
            self._record_stock()
            self._commit()

    def _shelf_date(self) -> date:
        """The date lots' shelf lives run from. Tracking events issue stock on the services'
        own clock (the real date, as they would live) while the simulated days are in April
        2022: lots dated from the later of the two are good on both calendars."""
        return max(self.today(), clock.today())

    def _record_stock(self) -> None:
        matrix = stock.stock_matrix(self.session, kind="kit", as_of=self.today())
        for w in self.warehouses:
            units = sum(n for (wid, _), n in matrix.items() if wid == w.id)
            self.log.stock.append((self.env.now, w.code, units))

    def requests(self) -> Generator[simpy.Event, Any, None]:
        """Households ask during the day; some twice, some with a malformed message."""
        events: list[tuple[float, Home, str]] = []
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

    def _ask(self, h: Home, kind: str) -> None:
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
        plan: list[tuple[float, Home]] = []
        for day in range(self.days):
            for h in chronic:
                if self.rng_requests.random() < self.a.consult_share:
                    hour = self.rng_requests.uniform(8, 18)
                    plan.append((day * MINUTES_PER_DAY + hour * 60, h))
        plan.sort(key=lambda e: (e[0], e[1].id))
        for t, h in plan:
            yield self.env.timeout(t - self.env.now)
            self.env.process(self._consult(h))

    def _consult(self, h: Home) -> Generator[simpy.Event, Any, None]:
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
        """Allocation and dispatch planning at the wave hours of every day."""
        for day in range(self.days):
            for k, hour in enumerate(self.a.wave_hours):
                yield self.env.timeout(day * MINUTES_PER_DAY + hour * 60 - self.env.now)
                if k == 0:
                    self._roll_call()
                allocation.run_allocation(
                    self.session,
                    actor=None,
                    today=self.today(),
                    method="priority" if self.policy == "priority" else "fcfs",
                )
                self._commit()
                # Parcels left pending by an earlier plan (no vehicle was free) join this one.
                self._plan()

    def _roll_call(self) -> None:
        """Each morning some couriers are locked in or ill: fewer vehicles of a group work."""
        day = self.today()
        for vehicle_id, count in sorted(fleet.available_counts(self.session, day).items()):
            off = sum(self.rng_fleet.random() < self.a.courier_absence_share for _ in range(count))
            if off:
                fleet.set_availability(
                    self.session,
                    vehicle_id=vehicle_id,
                    day=day,
                    available=count - off,
                    note="couriers locked in (simulated)",
                    actor=self.coordinator,
                )
                self.log.vehicles_off += off
        self._commit()

    def _plan(self, *, replan_of: int | None = None, broken: Sequence[int] = ()) -> None:
        """The dispatch service plans (or re-plans) the day; loading starts after it."""
        plan = planning.plan_dispatch(
            self.session,
            day=self.today(),
            actor=self.coordinator,
            iterations=self.a.routing_iterations,
            seed=self.seed + len(self.log.plans),
            replan_of_id=replan_of,
            failed_route_ids=broken,
        )
        self.log.plans.append(plan.id)
        self.log.replans += replan_of is not None
        for reason, n in plan.summary.get("unassigned", {}).items():
            self.log.unrouted[reason] += n
        self._commit()
        self.env.process(self._load(plan.id, self.env.now + self.a.loading_minutes))

    def _load(self, plan_id: int, at: float) -> Generator[simpy.Event, Any, None]:
        """At the depots: each route of the plan is loaded and leaves, unless its vehicle will
        not start; those are out for the day and their parcels are re-planned at once."""
        yield self.env.timeout(max(0.0, at - self.env.now))
        routes = self.session.execute(
            select(
                Route.id,
                Route.vehicle_id,
                Route.vehicle_index,
                Route.carrier_id,
                Route.kind,
                Route.depot_id,
                Route.start_s,
                Route.distance_m,
                Route.cost_fen,
            )
            .where(Route.plan_id == plan_id, Route.status == RouteStatus.planned)
            .order_by(Route.id)
        ).all()
        broken = []
        for r in routes:
            if self.rng.random() < self.a.breakdown_share:
                broken.append(r)
                continue
            courier = self._courier(r.id, r.vehicle_id, r.carrier_id)
            self._event(courier, EventKind.loaded, route_id=r.id)  # the ledger issues the stock
            self._event(courier, EventKind.departed, route_id=r.id)
            self.log.routes_driven += 1
            self.log.routes_by_kind[str(r.kind)] += 1
            self.log.distance_km += r.distance_m / 1000
            self.log.cost_fen += r.cost_fen
            self.env.process(self._drive(r.id, r.depot_id, r.start_s, courier))
        self._commit()
        if not broken:
            return
        for r in broken:
            code = self.vehicle_codes.get(r.vehicle_id, str(r.vehicle_id))
            self.log.breakdowns.append((self.env.now, f"{r.kind} {code} #{r.vehicle_index}"))
        # The re-plan counts each broken vehicle out; then the day's availability records it,
        # so that later plans today do not count on it either.
        self._plan(replan_of=plan_id, broken=[r.id for r in broken])
        counts = fleet.available_counts(self.session, self.today())
        for vehicle_id, n in sorted(Counter(r.vehicle_id for r in broken).items()):
            fleet.set_availability(
                self.session,
                vehicle_id=vehicle_id,
                day=self.today(),
                available=max(counts.get(vehicle_id, 0) - n, 0),
                note="broke down (simulated)",
                actor=self.coordinator,
            )
        self._commit()

    def _courier(self, route_id: int, vehicle_id: int, carrier_id: int) -> User:
        """The courier of a vehicle group (created the first time it drives); the route is
        given to them, so that only they (and staff) may post its events."""
        courier = self.couriers.get(vehicle_id)
        if courier is None:
            code = self.vehicle_codes.get(vehicle_id, str(vehicle_id))
            courier = users.create_user(
                self.session,
                UserCreate(
                    username=f"sim-courier-{code}",
                    full_name=f"Simulated courier of {self.carriers.get(carrier_id, carrier_id)}",
                    role=Role.courier,
                    organization_id=carrier_id,
                    password="simulation-only-" + str(self.seed),
                ),
                actor=self.coordinator,
            )
            self.couriers[vehicle_id] = courier
        tracking.assign_courier(self.session, route_id, courier.id, actor=self.coordinator)
        return courier

    def _event(self, actor: User, kind: EventKind, **target: Any) -> tracking.EventOutcome:
        """One tracking event from the courier's phone, stamped with the simulated clock."""
        name, value = next((k, v) for k, v in target.items() if k.endswith("_id"))
        data = EventIn(
            client_event_id=f"sim-{kind}-{name[0]}{value}",
            kind=kind,
            occurred_at=self._clock(),
            **target,
        )
        return tracking.record_event(self.session, data, actor=actor)

    def _drive(
        self, route_id: int, depot_id: int, start_s: int, courier: User
    ) -> Generator[simpy.Event, Any, None]:
        """The vehicle makes its stops at the plan's pace; at each gate the parcels go the
        last 100 metres (by robot in sealed compounds, on foot elsewhere) while it drives on."""
        depart = self.env.now
        stops = self.session.execute(
            select(RouteStop.id, RouteStop.community_id, RouteStop.inner_mode, RouteStop.eta_s)
            .where(RouteStop.route_id == route_id)
            .order_by(RouteStop.seq)
        ).all()
        on_board = self._on_board(route_id)
        self.log.routes.append(
            [self.depots[depot_id]] + [self.communities[s.community_id][:2] for s in stops]
        )
        for stop in stops:
            yield self.env.timeout(max(0.0, depart + (stop.eta_s - start_s) / 60 - self.env.now))
            parcels = on_board.get(stop.id, [])
            self._event(courier, EventKind.arrived, stop_id=stop.id)
            if stop.inner_mode != InnerMode.courier:
                # Handed over at the gate to the robot or the volunteers, counted.
                self._event(courier, EventKind.handed_off, stop_id=stop.id, counted=len(parcels))
            self._commit()
            robot = stop.inner_mode == InnerMode.robot
            self.env.process(self._last_metre(courier, stop.community_id, robot, parcels))

    def _on_board(self, route_id: int) -> dict[int, list[OnBoard]]:
        """The route's parcels by stop, with each household's pickup code and requests."""
        requests: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for parcel_id, request_id, quantity in self.session.execute(
            select(ParcelLine.parcel_id, RequestLine.request_id, ParcelLine.quantity)
            .join(RequestLine, RequestLine.id == ParcelLine.request_line_id)
            .join(Parcel, Parcel.id == ParcelLine.parcel_id)
            .where(Parcel.route_id == route_id)
            .order_by(ParcelLine.id)
        ):
            requests[parcel_id].append((request_id, quantity))
        out: dict[int, list[OnBoard]] = defaultdict(list)
        for parcel_id, stop_id, household_id, packs, nonce in self.session.execute(
            select(Parcel.id, Parcel.stop_id, Parcel.household_id, Parcel.packs, Parcel.code_nonce)
            .where(Parcel.route_id == route_id, Parcel.status == ParcelStatus.departed)
            .order_by(Parcel.id)
        ):
            assert stop_id is not None  # a loaded parcel is on a stop of its route
            out[stop_id].append(
                OnBoard(parcel_id, household_id, packs, codes.derive(nonce), requests[parcel_id])
            )
            self.on_board[parcel_id] = packs
        return out

    def _last_metre(
        self, courier: User, community_id: int, robot: bool, parcels: list[OnBoard]
    ) -> Generator[simpy.Event, Any, None]:
        """From the gate to each door; the resident gives the pickup code, or is not there."""
        step = self.a.last_metre_minutes_robot if robot else self.a.last_metre_minutes_foot
        for p in parcels:
            yield self.env.timeout(step)
            del self.on_board[p.parcel_id]
            if self.rng.random() < self.a.failure_share:
                reason = self.rng.choice(FAILURE_REASONS)
                self._event(courier, EventKind.failed, parcel_id=p.parcel_id, reason=reason)
                self.log.failures.append((self.env.now, p.household_id, str(reason)))
                self.log.failed_parcels.append(p.parcel_id)
                continue
            outcome = self._event(courier, EventKind.delivered, parcel_id=p.parcel_id, code=p.code)
            self.log.deliveries.append((self.env.now, p.packs, community_id, robot))
            self.log.delivered_parcels.append(p.parcel_id)
            closed = set(outcome.result.get("closed_requests", []))
            for request_id, quantity in p.requests:
                record = self.log.requests.get(request_id)
                if record is not None:
                    record.delivered += quantity
                    if request_id in closed:
                        record.t_delivered = self.env.now
        self._commit()

    def run(self) -> SimLog:
        self.env.process(self.supply())
        self.env.process(self.requests())
        self.env.process(self.waves())
        self.env.process(self.consultations())
        self.env.run(until=self.days * MINUTES_PER_DAY)
        self.log.on_board_packs = sum(self.on_board.values())
        self._record_stock()
        self._commit()
        return self.log
