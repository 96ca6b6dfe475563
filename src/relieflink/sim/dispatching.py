"""Dispatch: at each wave the coordinator runs allocation and the dispatch service plans the
day's parcels onto the carriers' fleet (multi-depot, robots for sealed compounds). Each morning
some couriers are locked in (those who came drive the biggest vehicles they may); a vehicle
that will not start at loading time is out for the rest of the day and its parcels are
re-planned at once onto whatever is still free."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import simpy

from relieflink import clock
from relieflink.catalog import service as catalog
from relieflink.config import get_settings
from relieflink.dispatch import fleet
from relieflink.flows import allocation
from relieflink.flows import dispatch as dispatch_flow
from relieflink.models import ParcelStatus
from relieflink.places import service as places
from relieflink.places.schemas import WarehouseUpdate
from relieflink.reports import service as reads
from relieflink.sim.couriers import Couriers
from relieflink.sim.residents import Residents
from relieflink.sim.world import MINUTES_PER_DAY, World
from relieflink.stock import service as stock

# Who may drive what (assumed, no published figure): a depot's drivers drive its trucks and
# vans alike, riders ride the e-bikes, operators run the robots.
LICENCE = {"truck": "driver", "van": "driver"}


@dataclass(frozen=True)
class Unit:
    """One vehicle of a group: its payload (grams), the group, and its number in the group."""

    capacity_g: int
    vehicle_id: int
    unit: int


def drivers_take_the_biggest(units: Sequence[Unit], came: int) -> list[Unit]:
    """The vehicles driven when ``came`` couriers of a pool came: the biggest payloads first
    (ties: the group, then the unit, in order)."""
    ranked = sorted(units, key=lambda u: (-u.capacity_g, u.vehicle_id, u.unit))
    return ranked[:came]


class Dispatch:
    """The coordinator's allocation runs, dispatch plans and re-plans, and the depots' loading."""

    def __init__(self, world: World, couriers: Couriers, residents: Residents) -> None:
        self.w = world
        self.couriers = couriers
        self.residents = residents
        self.wave_hours = get_settings().dispatch_waves  # RELIEFLINK_DISPATCH_WAVES
        # Per vehicle group, the units that will not start today (drawn at roll call).
        self.breaking: dict[int, list[int]] = {}
        self.released: dict[str, str] = {}  # the last plan's parcels no route took, and why
        self.last_plan_at = 0.0
        self.back = 0  # routes completed at the last look (see :meth:`trips`)

    def waves(self) -> Generator[simpy.Event, Any, None]:
        """Allocation and dispatch planning at the wave hours of every day (the setting, as
        the operation runs them): a request made before a wave goes out in it, the evening
        wave included, so a medical or infant request made in the afternoon leaves that day."""
        w = self.w
        for day in range(w.end // MINUTES_PER_DAY):
            for k, hour in enumerate(self.wave_hours):
                yield w.env.timeout(day * MINUTES_PER_DAY + hour * 60 - w.env.now)
                if k == 0:
                    self._roll_call()
                self._wave()

    def trips(self) -> Generator[simpy.Event, Any, None]:
        """Between the waves, a vehicle back from its route takes another trip: a few minutes
        after each phone sync (when the last doors of a route are posted, the route is
        completed and its vehicle free), if a vehicle came back since the last plan, the
        coordinator allocates and plans again for the free vehicles, within their shift (as
        the couriers of April 2022 made several runs a day). Off with ``trip_waves``."""
        w = self.w
        if not w.a.trip_waves:
            return
        first = min(self.wave_hours) * 60
        while True:
            yield w.env.timeout(w.a.phone_sync_minutes)
            minute = w.env.now % MINUTES_PER_DAY
            if minute < first or w.env.now - self.last_plan_at < w.a.loading_minutes:
                # Before the day's first wave (the roll call), or a plan is being loaded: its
                # vehicles are not out yet, so would look free.
                continue
            today = clock.today()
            out = sum(
                fleet.vehicles_out(w.session, day) for day in (today - timedelta(days=1), today)
            )
            back = w.log.routes_driven - out  # routes completed so far (vehicles back)
            if back <= self.back:
                continue
            self.back = back
            self._wave_if_shift_left()

    def _wave(self) -> None:
        """Allocate what the free vehicles can carry, then plan it with what waits."""
        w = self.w
        self.residents.flush()  # the requests asked since the last wave go in this one
        self._load_to_fleet()
        run = allocation.run_allocation(
            w.session,
            actor=None,
            today=clock.today(),
            method="priority" if w.policy == "priority" else "fcfs",
        )
        # Stock the last run held back. The outbound capacity it reached is the warehouse's
        # share of the free vehicles' payload (``_load_to_fleet``), so that is the reason given;
        # without the day's kilograms, the same reason in both policies and every seed.
        w.log.held_back = Counter()
        for cap in run.caps:
            reason = f"{cap['warehouse_code']}: no room left on the wave's free vehicles"
            w.log.held_back[reason] += cap["held_back_units"]
        w.commit()
        # Parcels left pending by an earlier plan (no vehicle was free) join this one.
        self._plan()
        w.log.waves += 1

    def _load_to_fleet(self) -> None:
        """Before allocating, the coordinator sets each stock warehouse's outbound capacity
        to what the wave's free vehicles can carry away (their payloads, less the parcels
        already waiting for a route), shared by the warehouses in proportion to the kits they
        hold: stock is reserved only for what can leave now, so the allocation policy (not the
        routing) decides who goes on the vehicles. A vehicle back from its route is free again:
        each wave is a trip."""
        w = self.w
        day = clock.today()
        carriage = sum(g.count * g.capacity_g for g in fleet.groups_of_day(w.session, day))
        waiting = fleet.waiting_weight_g(w.session)
        grams = {kit.id: catalog.kit_size(kit)[0] for kit in w.kits.values()}
        held: Counter[int] = Counter()
        for (warehouse_id, kit_id), units in stock.stock_matrix(w.session, kind="kit").items():
            held[warehouse_id] += units * grams.get(kit_id, 0)
        total = sum(held.values())
        free = max(0, carriage - waiting)
        for depot in w.warehouses:
            kg = math.ceil(free * held[depot.id] / total / 1000) if total else 0
            places.update_warehouse(
                w.session, depot.id, WarehouseUpdate(daily_outbound_kg=kg), actor=w.coordinator
            )
        w.commit()

    def _roll_call(self) -> None:
        """Each morning some couriers are locked in or ill, and some vehicles will not start
        today (at their first loading). Each vehicle unit draws both from its own stream for
        the day (its courier's absence, its own breakdown), so both policies lose the same
        couriers and vehicles. The couriers who came drive the biggest vehicles of their
        carrier at their depot that their licence allows (:func:`drivers_take_the_biggest`):
        a coordinator does not leave the depot's one 3 t truck idle because its driver is
        locked in while the van's driver came (the van stays instead)."""
        w = self.w
        day = clock.today()
        n = int(w.env.now // MINUTES_PER_DAY)
        vehicles = {v.id: v for v in fleet.list_vehicles(w.session)}
        counts = dict(sorted(fleet.available_counts(w.session, day).items()))
        pools: dict[tuple[int, int, str], list[Unit]] = {}
        came: Counter[tuple[int, int, str]] = Counter()
        broken: set[tuple[int, int]] = set()
        for vehicle_id, count in counts.items():
            v = vehicles[vehicle_id]
            pool = (v.carrier_id, v.depot_id, LICENCE.get(str(v.kind), str(v.kind)))
            code = w.vehicle_codes.get(vehicle_id, str(vehicle_id))
            for unit in range(count):
                pools.setdefault(pool, []).append(Unit(v.capacity_g, vehicle_id, unit))
                if w.stream("absence", vehicle_id, unit, n).random() < w.a.courier_absence_share:
                    w.log.absences.append((n, f"{code} #{unit}"))
                else:
                    came[pool] += 1
                if w.stream("breakdown", vehicle_id, unit, n).random() < w.a.breakdown_share:
                    broken.add((vehicle_id, unit))
        driven: Counter[int] = Counter()
        self.breaking = {}
        for pool, units in pools.items():
            for u in drivers_take_the_biggest(units, came[pool]):
                driven[u.vehicle_id] += 1
                if (u.vehicle_id, u.unit) in broken:
                    self.breaking.setdefault(u.vehicle_id, []).append(u.unit)
        for vehicle_id, count in counts.items():
            if driven[vehicle_id] < count:
                fleet.set_availability(
                    w.session,
                    vehicle_id=vehicle_id,
                    day=day,
                    available=driven[vehicle_id],
                    note="couriers locked in (simulated)",
                    actor=w.coordinator,
                )
        w.commit()

    def _plan(self, *, replan_of: int | None = None, broken: Sequence[int] = ()) -> None:
        """The dispatch service plans (or re-plans) the day; loading starts after it."""
        w = self.w
        plan = dispatch_flow.plan_dispatch(
            w.session,
            day=clock.today(),
            actor=w.coordinator,
            iterations=w.a.routing_iterations,
            seed=w.seed + len(w.log.plans),
            replan_of_id=replan_of,
            failed_route_ids=broken,
        )
        w.log.plans.append(plan.id)
        w.log.replans += replan_of is not None
        for reason, n in plan.summary.get("unassigned", {}).items():
            w.log.unrouted[reason] += n
        # Each plan takes every parcel still pending: the last one's left-outs are the day's.
        self.released = dict(plan.summary.get("released", {}))
        self.last_plan_at = w.env.now
        w.commit()
        w.env.process(self._load(plan.id, w.env.now + w.a.loading_minutes))

    def _load(self, plan_id: int, at: float) -> Generator[simpy.Event, Any, None]:
        """At the depots: each route of the plan is loaded and leaves, unless its vehicle will
        not start; those are out for the day and their parcels are re-planned at once."""
        w = self.w
        yield w.at(at)
        broken = []
        for route in reads.planned_routes(w.session, plan_id):
            # The group's vehicles that will not start today fail at their first loading.
            breaking = self.breaking.get(route.vehicle_id)
            if breaking:
                unit = breaking.pop(0)
                code = w.vehicle_codes.get(route.vehicle_id, str(route.vehicle_id))
                w.log.breakdowns.append((w.env.now, str(route.kind), f"{code} #{unit}"))
                broken.append(route)
                continue
            self.couriers.depart(route)
        w.commit()
        if not broken:
            return
        # The re-plan records each broken vehicle in the day's availability (the dispatch
        # flow does, as for a breakdown reported through the API): out for the rest of the day,
        # unless the carrier's reserve replaces it.
        self._plan(replan_of=plan_id, broken=[r.id for r in broken])
        if w.a.replacement_hours is not None:
            at = w.env.now + w.a.replacement_hours * 60
            w.env.process(self._replace([r.vehicle_id for r in broken], at))

    def _replace(self, vehicle_ids: list[int], at: float) -> Generator[simpy.Event, Any, None]:
        """The carrier's reserve vehicles arrive at ``at`` (the same day only): each gives its
        group back one vehicle for the day, and the coordinator plans for them once no plan
        is being loaded (as for a vehicle back from its route)."""
        w = self.w
        if at // MINUTES_PER_DAY != w.env.now // MINUTES_PER_DAY:
            return
        yield w.at(at)
        day = clock.today()
        counts = fleet.available_counts(w.session, day)
        for vehicle_id, n in sorted(Counter(vehicle_ids).items()):
            fleet.set_availability(
                w.session,
                vehicle_id=vehicle_id,
                day=day,
                available=min(
                    counts.get(vehicle_id, 0) + n,
                    fleet.require_vehicle(w.session, vehicle_id).count,
                ),
                note=f"{n} replaced from the carrier's reserve (simulated)",
                actor=w.coordinator,
            )
            w.log.replacements += n
        w.commit()
        while w.env.now - self.last_plan_at < w.a.loading_minutes:
            yield w.env.timeout(w.a.phone_sync_minutes)
        self._wave_if_shift_left()

    def _wave_if_shift_left(self) -> None:
        """A wave for the free vehicles, if some group's shift outlasts the loading."""
        w = self.w
        ready = (w.env.now % MINUTES_PER_DAY + w.a.loading_minutes) * 60
        if any(g.shift_end_s > ready for g in fleet.groups_of_day(w.session, clock.today())):
            self._wave()

    def pending_at_end(self) -> Counter[str]:
        """Distinct parcels neither delivered nor on board at the end, by reason: those the last
        plan could not route (its reason), those planned whose route was not loaded yet, and
        those that failed at the door after the last plan (carried over to a plan that never
        came). Earlier plans' left-outs went into the later plans, so are not counted again."""
        w = self.w
        out: Counter[str] = Counter(self.released.values())
        for status in (ParcelStatus.pending, ParcelStatus.planned):
            if n := len(reads.parcel_ids_in_status(w.session, [status])):
                out[f"{status}: not loaded by the end"] += n
        late = sum(1 for t, _, _ in w.log.failures if t >= self.last_plan_at)
        if late:
            out["failed at the door after the last plan"] += late
        return out
