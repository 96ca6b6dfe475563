"""Every number the simulated relief day rests on that no published figure backs, in one place.

The city itself comes from :mod:`relieflink.scenario` (published figures, its own assumptions).
These shape the *operation*: how much arrives, who asks when, how deliveries go.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class SimAssumptions:
    # Donated kits arriving each morning, as a share of the packs households are entitled to
    # per day. Below 1 on purpose: stock is scarce, so the allocation policy matters.
    supply_ratio: float = 0.7
    # The kits only one group is entitled to (infant formula, the maternity kit, the chronic
    # patients' medicine kit), donated at this share of that group's expected need; None: at
    # the supply ratio, like every kit. A what-if: a coordinator who asks these kits' donors
    # for the whole need of their group (``relieflink demo --assume group_kit_supply_ratio=1``).
    group_kit_supply_ratio: float | None = None
    # Warehouses' daily outbound capacity: what arrives in a day can leave in a day (see
    # ``World.staff_the_docks``: the coordinator staffs the loading, no multiplying factor).
    # Share of households that ask for help on a given day, and the hours they ask in.
    request_share: float = 0.35
    first_request_hour: int = 7
    last_request_hour: int = 20
    # Requests sent twice (a worried second message 1-3 h later) and malformed ones (an unknown
    # kit code or a zero quantity, as hand-typed messages would have).
    duplicate_share: float = 0.06
    malformed_share: float = 0.03
    # The allocation and dispatch waves are a setting, not an assumption: RELIEFLINK_DISPATCH_WAVES.
    # Between the waves, a vehicle back from its route (its last doors posted) takes another
    # trip: the coordinator allocates and plans again for the free vehicles, within their
    # shift (:meth:`relieflink.sim.dispatching.Dispatch.trips`). Shanghai's couriers of April
    # 2022 made several runs a day from the warehouse; a coordinator does not leave a truck
    # idle until the next scheduled wave. False: vehicles leave only at the waves.
    trip_waves: bool = True
    # Loading at the warehouse after a plan (or a re-plan) before the routes leave, minutes.
    loading_minutes: int = 60
    # The last 100 metres by robot in sealed compounds, minutes per household (Shanghai's 2022
    # robots: 200 kg payload, 100 km range), one door after another. On foot, a stop takes what
    # the dispatch plan gives it (:mod:`relieflink.dispatch.reach`): the courier hands each
    # parcel over at the building door (COURIER_DOOR_S), or the compound's volunteer team
    # carries the load in, each member one door per trip (INNER_TRIP_S), all in parallel.
    last_metre_minutes_robot: int = 25
    # A courier's phone posts the doors done since its last sync in one batch, every this many
    # minutes (the API's batch path): a failed parcel's stock comes back at the next sync.
    phone_sync_minutes: int = 30
    # Share of household deliveries that fail (not home, refused, access denied, damaged); the
    # stock comes back (written off if damaged) and the request is carried over.
    failure_share: float = 0.05
    # Chance that a route's vehicle will not start at loading time: it is out for the rest of
    # the day and the route's parcels are re-planned onto what is still free.
    breakdown_share: float = 0.1
    # Hours until the carrier brings a vehicle from its reserve to replace one that would not
    # start (its city hub's spare, as JD's and SF's hubs kept); None: no reserve, the group is
    # a vehicle short for the rest of the day. A what-if (``--assume replacement_hours=2``).
    replacement_hours: float | None = None
    # More trucks in each carrier's truck group at a depot, each with its driver: a carrier's
    # standby or a requisitioned truck. The scenario's fleet is the published couriers' share
    # of the city (no factor); this is the coordinator's lever, a what-if
    # (``--assume extra_trucks=1``), 0 by default.
    extra_trucks: int = 0
    # Each morning each vehicle's courier is locked in or ill with this chance (the published
    # bottleneck of April 2022: couriers locked in); the group's availability for the day drops.
    courier_absence_share: float = 0.1
    # PyVRP iterations per routing sub-problem in a dispatch plan: a fixed amount of search, so
    # that a seed gives the same plans on any machine.
    routing_iterations: int = 300
    # Online consultations: each day this share of households with a member on chronic
    # medication asks a doctor for a refill (JD Health served 37,000 such requests in Shanghai by
    # 9 April 2022); doctors on duty and minutes per consultation.
    consult_share: float = 0.03
    doctors_on_duty: int = 2
    consult_minutes: int = 12
    # Measurement, not the operation: requests (and donations) stop after the simulated days,
    # and the waves and deliveries go on this many days more, so that every request had 24
    # hours to be served (the 24-hour share is over requests asked ≥ 24 h before the end).
    delivery_days_after_last_request: int = 1
    # Tariffs for the cost per delivered pack, in yuan. Assumptions unless a source is named.
    # Running cost per vehicle-km (fuel or power, wear, insurance): a diesel light truck
    # ~3 yuan/km, a light van ~1.2 yuan/km (8 l/100 km at ~8 yuan/l, plus wear), an e-bike
    # 0.1 yuan/km, a delivery robot 0.3 yuan/km (power and wear).
    yuan_per_km: tuple[tuple[str, float], ...] = (
        ("truck", 3.0),
        ("van", 1.2),
        ("ebike", 0.1),
        ("robot", 0.3),
    )
    # A courier's or driver's hour (drives the route, loads, walks door to door where vehicles
    # may enter): 40 yuan, about a Shanghai courier's 2022 lockdown pay of ~10,000 yuan/month.
    driver_yuan_per_hour: float = 40.0
    # A volunteer's hour, valued at Shanghai's hourly minimum wage for part-time work
    # (23 yuan/h from 1 July 2021, Shanghai Municipal Human Resources and Social Security
    # Bureau): volunteers were unpaid, but their time is not free.
    volunteer_yuan_per_hour: float = 23.0
    # A delivery robot's hour: lease, depreciation and its share of a remote safety operator.
    robot_yuan_per_hour: float = 30.0


ASSUMPTIONS = SimAssumptions()

_TYPES = {"float": float, "int": int, "bool": bool, "float | None": float}


def with_changes(base: SimAssumptions, changes: Mapping[str, str]) -> SimAssumptions:
    """``base`` with some numbers changed, each given as text (``--assume name=value``): a
    what-if. Raises ValueError naming the assumption and what it takes."""
    known = {f.name: str(f.type) for f in fields(SimAssumptions)}
    values: dict[str, Any] = {}
    for name, text in changes.items():
        kind = known.get(name)
        if kind not in _TYPES:
            settable = ", ".join(n for n, k in known.items() if k in _TYPES)
            why = "is a table, not a number" if kind else "is not an assumption"
            raise ValueError(f"{name} {why}; one of: {settable}")
        if kind == "float | None" and text.strip().lower() == "none":
            values[name] = None
            continue
        try:
            if kind == "bool":
                if text.strip().lower() not in ("true", "false", "1", "0"):
                    raise ValueError(text)
                value: Any = text.strip().lower() in ("true", "1")
            else:
                value = _TYPES[kind](text)
        except ValueError:
            raise ValueError(f"{name}={text!r}: expected {kind}") from None
        if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
            raise ValueError(f"{name}={text!r}: must not be negative")
        if name.endswith("_share") and isinstance(value, float) and value > 1:
            raise ValueError(f"{name}={text!r}: a share, from 0 to 1")
        values[name] = value
    return replace(base, **values)
