"""Couriers: each route is given to a courier of its carrier, whose phone posts the tracking
events through the batch path the API's ``POST /api/v1/dispatch/events:batch`` calls: loaded
(the ledger issues the stock) and departed, arrived and handed off at each gate, then at each
door delivered with the resident's pickup code, or failed (not home, refused, access denied,
damaged: the stock comes back and the request is carried over). The doors' outcomes are posted
in batches, as the phone syncs every few minutes."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Generator
from dataclasses import dataclass
from datetime import date
from typing import Any

import simpy

from relieflink import clock
from relieflink.dispatch import codes, fleet, reach, tracking
from relieflink.dispatch.schemas import EventIn
from relieflink.dispatch.tracking_rules import MAX_BATCH, EventOutcome
from relieflink.flows import delivery
from relieflink.models import EventKind, FailureReason, InnerMode, ParcelStatus, Role, User
from relieflink.reports import service as reads
from relieflink.sim.world import World
from relieflink.users import service as users
from relieflink.users.schemas import UserCreate

FAILURE_REASONS = tuple(FailureReason)  # not home, refused, damaged, access denied


@dataclass
class OnBoard:
    """A parcel loaded on a route, as its courier's phone knows it."""

    parcel_id: int
    household_id: int
    packs: int
    code: str  # the resident tells it at the door (derived as the resident's view does)
    requests: list[tuple[int, int]]  # (request id, packs of it in this parcel)


@dataclass
class Door:
    """A door's outcome, waiting in the courier's phone for its next sync."""

    event: EventIn
    parcel: OnBoard
    community_id: int
    robot: bool  # the last 100 metres by robot
    t: float  # the minute it happened


def event(kind: EventKind, **target: Any) -> EventIn:
    """A tracking event as a phone stamps it: now, with an id unique to its kind and target."""
    name, value = next((k, v) for k, v in target.items() if k.endswith("_id"))
    return EventIn(
        client_event_id=f"sim-{kind}-{name[0]}{value}",
        kind=kind,
        occurred_at=clock.now(),
        **target,
    )


class Couriers:
    """The carriers' couriers (one per vehicle group, created the first time it drives)."""

    def __init__(self, world: World) -> None:
        self.w = world
        self.by_vehicle: dict[int, User] = {}  # by vehicle group (a vehicles.csv row)
        self.on_board: dict[int, int] = {}  # parcel id → packs, loaded and not yet at the door
        self.attempts: Counter[int] = Counter()  # doors knocked at, by household
        # Per courier: the doors done and not posted yet (their phone syncs every few minutes).
        self.outbox: dict[int, tuple[User, list[Door]]] = {}
        self.km_yuan = dict(world.a.yuan_per_km)
        self.teams: dict[tuple[int, date], simpy.Resource] = {}  # by compound and day

    def post(self, courier: User, events: list[EventIn]) -> list[EventOutcome]:
        """Post a batch from ``courier``'s phone; the simulation expects every event applied."""
        answers = delivery.record_events(self.w.session, events, actor=courier)
        outcomes = []
        for answer in answers:
            if answer.error is not None:
                raise answer.error
            assert answer.outcome is not None  # applied when not refused
            outcomes.append(answer.outcome)
        return outcomes

    def courier(self, route_id: int, vehicle_id: int, carrier_id: int) -> User:
        """The courier of a vehicle group; the route is given to them, so that only they (and
        staff) may post its events."""
        w = self.w
        courier = self.by_vehicle.get(vehicle_id)
        if courier is None:
            code = w.vehicle_codes.get(vehicle_id, str(vehicle_id))
            courier = users.create_user(
                w.session,
                UserCreate(
                    username=f"sim-courier-{code}",
                    full_name=f"Simulated courier of {w.carriers.get(carrier_id, carrier_id)}",
                    role=Role.courier,
                    organization_id=carrier_id,
                    password=w.password,
                ),
                actor=w.coordinator,
            )
            self.by_vehicle[vehicle_id] = courier
        tracking.assign_courier(w.session, route_id, courier.id, actor=w.coordinator)
        return courier

    def depart(self, route: Any) -> None:
        """A planned route (a ``planned_routes`` row) is loaded (the ledger issues its stock)
        and leaves the depot."""
        w = self.w
        courier = self.courier(route.id, route.vehicle_id, route.carrier_id)
        self.post(
            courier,
            [
                event(EventKind.loaded, route_id=route.id),
                event(EventKind.departed, route_id=route.id),
            ],
        )
        w.log.routes_driven += 1
        w.log.routes_by_kind[str(route.kind)] += 1
        w.log.distance_km += route.distance_m / 1000
        w.log.cost_fen += route.cost_fen
        self._cost(route)
        w.env.process(self._drive(route.id, route.depot_id, route.start_s, courier))

    def _cost(self, route: Any) -> None:
        """A driven route's cost in yuan: its kilometres at its kind's tariff, and the hours
        of loading and driving, a robot's at the robot's rate, any other's at a driver's."""
        a = self.w.a
        self.w.log.cost_yuan["vehicle km"] += route.distance_m / 1000 * self.km_yuan[route.kind]
        hours = (route.duration_s / 60 + a.loading_minutes) / 60
        self.w.log.hours_by_kind[str(route.kind)] += hours
        if route.kind == "robot":
            self.w.log.cost_yuan["robot hours"] += hours * a.robot_yuan_per_hour
        else:
            self.w.log.cost_yuan["driver hours"] += hours * a.driver_yuan_per_hour

    def _drive(
        self, route_id: int, depot_id: int, start_s: int, courier: User
    ) -> Generator[simpy.Event, Any, None]:
        """The vehicle makes its stops at the plan's pace; at each gate the parcels go the
        last 100 metres (by robot in sealed compounds, on foot elsewhere) while it drives on."""
        w = self.w
        depart = w.env.now
        stops = reads.route_stops(w.session, route_id)
        on_board = self._on_board(route_id)
        w.log.routes.append(
            [w.depots[depot_id]] + [w.communities[s.community_id][:2] for s in stops]
        )
        for stop in stops:
            yield w.at(depart + (stop.eta_s - start_s) / 60)
            parcels = on_board.get(stop.id, [])
            events = [event(EventKind.arrived, stop_id=stop.id)]
            if stop.inner_mode != InnerMode.courier:
                # Handed over at the gate to the robot or the volunteers, counted.
                events.append(event(EventKind.handed_off, stop_id=stop.id, counted=len(parcels)))
            self.post(courier, events)
            w.commit()
            w.env.process(self._last_metre(courier, stop.community_id, stop.inner_mode, parcels))

    def _on_board(self, route_id: int) -> dict[int, list[OnBoard]]:
        """The route's parcels by stop, with each household's pickup code and requests."""
        session = self.w.session
        requests: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for parcel_id, request_id, quantity in reads.parcel_request_lines(session, route_id):
            requests[parcel_id].append((request_id, quantity))
        out: dict[int, list[OnBoard]] = defaultdict(list)
        for parcel_id, stop_id, household_id, packs, nonce in reads.parcels_in_status(
            session, route_id, ParcelStatus.departed
        ):
            assert stop_id is not None  # a loaded parcel is on a stop of its route
            out[stop_id].append(
                OnBoard(parcel_id, household_id, packs, codes.derive(nonce), requests[parcel_id])
            )
            self.on_board[parcel_id] = packs
        return out

    def _last_metre(
        self, courier: User, community_id: int, mode: InnerMode, parcels: list[OnBoard]
    ) -> Generator[simpy.Event, Any, None]:
        """From the gate to each door, as the dispatch plan times a stop (:mod:`.reach`): where
        vehicles may enter, the courier hands each parcel over at its building door, one after
        another; at a volunteer gate, the load is counted over and the compound's team carries
        it in, each member a door at a time, all in parallel (a team serves all the day's loads
        at its gate); a robot goes door to door. Under the priority policy the households with a
        vulnerable member come first. The resident gives the pickup code, or is not there (each
        household's n-th door draws from its own stream); the outcome goes into the phone's
        outbox, posted at its next sync (:meth:`sync`)."""
        w = self.w
        arrived = w.env.now
        if w.policy == "priority":
            parcels = sorted(parcels, key=lambda p: not w.vulnerable(p.household_id))
        outbox = self.outbox.setdefault(courier.id, (courier, []))[1]
        if mode == InnerMode.volunteer:
            yield w.env.timeout(reach.GATE_SERVICE_S / 60)
            team = self._team(community_id)
            yield w.env.all_of(
                [w.env.process(self._carry(team, p, community_id, outbox)) for p in parcels]
            )
        else:
            robot = mode == InnerMode.robot
            step: float
            if robot:
                step, rate = w.a.last_metre_minutes_robot, ("robot hours", w.a.robot_yuan_per_hour)
            else:
                yield w.env.timeout(reach.GATE_SERVICE_S / 60)
                step = reach.COURIER_DOOR_S / 60
                rate = ("driver hours", w.a.driver_yuan_per_hour)
            for p in parcels:
                yield w.env.timeout(step)
                w.log.cost_yuan[rate[0]] += step / 60 * rate[1]
                self._door(p, community_id, robot, outbox)
        w.log.gate_minutes.append(w.env.now - arrived)

    def _team(self, community_id: int) -> simpy.Resource:
        """The compound's volunteers at work today, as a resource of that many people."""
        w = self.w
        day = clock.today()
        team = self.teams.get((community_id, day))
        if team is None:
            found = fleet.gate_teams(w.session, day, [community_id]).get(community_id)
            team = simpy.Resource(w.env, capacity=max(1, found.available if found else 0))
            self.teams[(community_id, day)] = team
        return team

    def _carry(
        self, team: simpy.Resource, p: OnBoard, community_id: int, outbox: list[Door]
    ) -> Generator[simpy.Event, Any, None]:
        """A volunteer's trip with one household's parcel, door and back."""
        w = self.w
        with team.request() as turn:
            yield turn
            yield w.env.timeout(reach.INNER_TRIP_S / 60)
            w.log.cost_yuan["volunteer hours"] += (
                reach.INNER_TRIP_S / 3600 * (w.a.volunteer_yuan_per_hour)
            )
            self._door(p, community_id, False, outbox)

    def _door(self, p: OnBoard, community_id: int, robot: bool, outbox: list[Door]) -> None:
        w = self.w
        self.attempts[p.household_id] += 1
        attempt = self.attempts[p.household_id]
        door = w.stream("door", p.household_id, attempt)
        if door.random() < w.a.failure_share:
            reason = door.choice(FAILURE_REASONS)
            w.log.doors.append((p.household_id, attempt, str(reason)))
            ev = event(EventKind.failed, parcel_id=p.parcel_id, reason=reason)
        else:
            w.log.doors.append((p.household_id, attempt, "delivered"))
            ev = event(EventKind.delivered, parcel_id=p.parcel_id, code=p.code)
        outbox.append(Door(ev, p, community_id, robot, w.env.now))

    def sync(self) -> Generator[simpy.Event, Any, None]:
        """Every few minutes each courier's phone posts the doors done since its last sync in
        one batch (the API's batch path, each event stamped when it happened): a parcel is on
        board until its outcome is posted, and a failed one's stock comes back then."""
        w = self.w
        while True:
            yield w.env.timeout(w.a.phone_sync_minutes)
            for courier, doors in self.outbox.values():
                for start in range(0, len(doors), MAX_BATCH):
                    self._posted(doors[start : start + MAX_BATCH], courier)
                doors.clear()
            w.commit()

    def _posted(self, doors: list[Door], courier: User) -> None:
        w = self.w
        outcomes = self.post(courier, [d.event for d in doors])
        for d, outcome in zip(doors, outcomes, strict=True):
            p = d.parcel
            del self.on_board[p.parcel_id]
            if d.event.kind == EventKind.failed:
                w.log.failures.append((d.t, p.household_id, str(d.event.reason)))
                w.log.failed_parcels.append(p.parcel_id)
                continue
            w.log.deliveries.append((d.t, p.packs, d.community_id, d.robot))
            w.log.delivered_parcels.append(p.parcel_id)
            closed = set(outcome.result.get("closed_requests", []))
            for request_id, quantity in p.requests:
                record = w.log.requests.get(request_id)
                if record is not None:
                    record.delivered += quantity
                    if request_id in closed:
                        record.t_delivered = d.t
