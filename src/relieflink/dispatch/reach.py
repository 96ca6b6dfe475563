"""Who can reach a compound's gate, and who carries the last 100 m: the rule, once.

Pure (no database): the planner (:mod:`relieflink.dispatch.planning`) and the allocation run
(through :func:`relieflink.dispatch.fleet.reach_matrix`) both ask it, so that a household is
only given stock that some vehicle can actually bring to its gate.

* Open compounds: any vehicle. Where the compound's volunteer team works that day, the load is
  handed over at the gate and the team carries it in, within its shift and its day's capacity
  (as deliveries stopped at the compound gate in the 2022 lockdown); without a team at work, or
  beyond what it can carry, the courier goes door to door.
* Controlled compounds: any vehicle to the gate, volunteers carry inside.
* Sealed (or no-vehicle) compounds, two legs: any carrier's vehicle drives to the gate when the
  compound's volunteer team works that day, and the team carries each parcel the last 100 m;
  robots serve the gate directly where their range allows. Without a team at work only robots
  (and couriers on foot) may serve it.

A vehicle group reaches a gate from a warehouse when its kind is allowed there, the round trip
fits its range, and the drive there (after the deadhead from its home depot) fits its shift, and
for a team's gate arrives while the team is at work. A group based elsewhere drives to the
warehouse first (the deadhead), which counts against its shift and, there and back, its range.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from relieflink.models import FleetKind, InnerMode, LockdownStatus
from relieflink.optim.allocation import haversine_matrix
from relieflink.optim.routing import VehicleKind

CIRCUITY = 1.3  # the routing engine's default provider: haversine × 1.3
GATE_SERVICE_S = 120  # parking and handing a load over at a gate
# One volunteer's trip from the gate to a door and back with a trolley, handing out with the
# resident's code (an assumption: 100 m each way on foot, a few minutes at the door).
INNER_TRIP_S = 600
# At a stop, per household: where vehicles may enter, the courier hands the parcel over at the
# building door (residents come down with their code); elsewhere the load is counted over to
# the gate's team or robot (the door trips are then theirs). Assumptions.
COURIER_DOOR_S = 90
HANDOFF_DOOR_S = 10
ROBOT_KINDS = frozenset({VehicleKind.ROBOT, VehicleKind.FOOT})


class GateTeam(Protocol):
    """A compound's volunteer team as the planner sees it on one day."""

    @property
    def code(self) -> str: ...
    @property
    def available(self) -> int: ...
    @property
    def trolley_capacity_kg(self) -> int: ...
    @property
    def shift_start_s(self) -> int: ...
    @property
    def shift_end_s(self) -> int: ...


@dataclass
class FleetGroup:
    """A vehicle group of the day: its vehicles still free to plan, at one warehouse.
    ``depot_id`` is where they wait when the plan is made: the group's home depot, or the
    warehouse their last route of the day ended at (:func:`relieflink.dispatch.fleet.vehicles_at`;
    a group is then split into one entry per warehouse). ``home_id`` is the home depot (None:
    the same as ``depot_id``)."""

    vehicle_id: int
    carrier_id: int
    kind: FleetKind
    depot_id: int
    count: int
    capacity_g: int
    capacity_ml: int
    speed_kmh: int
    range_m: int | None
    shift_start_s: int
    shift_end_s: int
    fixed_cost_fen: int
    cost_per_km_fen: int
    home_id: int | None = None


def two_legs(status: str, vehicles_allowed: bool) -> bool:
    """Vehicles may not enter: someone must carry the last 100 m from the gate."""
    return status == LockdownStatus.sealed or not vehicles_allowed


def team_works(team: GateTeam | None) -> bool:
    return team is not None and team.available > 0 and team.trolley_capacity_kg > 0


def team_takes(status: str, vehicles_allowed: bool, team: GateTeam | None) -> bool:
    """The compound's team takes the loads at the gate and carries them in, within its shift
    and its day's capacity: where vehicles may not enter, and in an open compound (where the
    courier would otherwise walk to the doors), when the team works today."""
    return team_works(team) and (
        two_legs(status, vehicles_allowed) or status != LockdownStatus.controlled
    )


def allowed_kinds(
    status: str, vehicles_allowed: bool, team: GateTeam | None = None
) -> frozenset[VehicleKind] | None:
    """Who may serve a compound's gate (None: any vehicle)."""
    if two_legs(status, vehicles_allowed) and not team_works(team):
        return ROBOT_KINDS
    return None


def inner_mode(
    status: str,
    vehicles_allowed: bool,
    kind: FleetKind | None = None,
    team: GateTeam | None = None,
) -> InnerMode:
    """Who carries the last 100 metres inside the compound, for a vehicle of ``kind``; ``team``
    is the compound's volunteer team if it takes this load at the gate (None: no team at work
    then, or its day's capacity is taken)."""
    if two_legs(status, vehicles_allowed):
        if kind is None or kind in (FleetKind.robot, FleetKind.foot):
            return InnerMode.robot
        return InnerMode.volunteer
    if status == LockdownStatus.controlled or team_works(team):
        # Counted over at the gate (:data:`HANDOFF_DOOR_S` a household), the team carries it
        # in; in an open compound only where its team works today.
        return InnerMode.volunteer
    return InnerMode.courier


def door_s(mode: InnerMode) -> int:
    """Seconds a vehicle's stop takes per household, after parking (:data:`COURIER_DOOR_S`)."""
    return COURIER_DOOR_S if mode == InnerMode.courier else HANDOFF_DOOR_S


def trip_g(team: GateTeam) -> int:
    """What the team at work carries in one trip of all its members."""
    return team.available * team.trolley_capacity_kg * 1000


def inner_leg_s(weight_g: int, team: GateTeam) -> int:
    """The second leg of a load handed over at the gate: the team's trips, in parallel."""
    per_trip = trip_g(team)
    return INNER_TRIP_S * max(1, math.ceil(weight_g / per_trip)) if per_trip > 0 else 0


def team_day_g(team: GateTeam) -> int:
    """What the team can carry in from the gate over its whole shift."""
    trips = max(0, team.shift_end_s - team.shift_start_s) // INNER_TRIP_S
    return trip_g(team) * trips


def drive_s(metres: NDArray[np.float64] | float, speed_kmh: float) -> NDArray[np.float64]:
    return np.asarray(metres, dtype=np.float64) / (max(speed_kmh, 1) / 3.6)


def reachable(
    gates: Sequence[tuple[float, float, str, bool]],
    teams: Sequence[GateTeam | None],
    warehouses: Sequence[tuple[float, float]],
    depots: Mapping[int, tuple[float, float]],
    fleet: Sequence[FleetGroup],
) -> NDArray[np.bool_]:
    """``out[g, w]``: some group of ``fleet`` (from its depot, whose place is in ``depots``)
    can bring a load from warehouse ``w`` to gate ``g`` (lat, lon, lockdown status, vehicles
    allowed), and ``teams[g]`` (or a robot) carry it in where vehicles may not enter."""
    n, m = len(gates), len(warehouses)
    out = np.zeros((n, m), dtype=np.bool_)
    if not n or not m or not fleet:
        return out
    glat = np.array([g[0] for g in gates])
    glon = np.array([g[1] for g in gates])
    wlat = np.array([w[0] for w in warehouses])
    wlon = np.array([w[1] for w in warehouses])
    there = haversine_matrix(glat, glon, wlat, wlon) * CIRCUITY  # gate × warehouse, one way
    robots_only = np.array(
        [allowed_kinds(s, v, t) is not None for (_, _, s, v), t in zip(gates, teams, strict=True)]
    )
    team_gate = np.array(
        [two_legs(s, v) and team_works(t) for (_, _, s, v), t in zip(gates, teams, strict=True)]
    )
    open_s = np.array([t.shift_start_s if t else 0 for t in teams], dtype=np.float64)
    close_s = np.array([t.shift_end_s if t else 10**9 for t in teams], dtype=np.float64)
    for depot_id in sorted({g.depot_id for g in fleet}):
        home = depots[depot_id]
        deadhead = (
            haversine_matrix(np.array([home[0]]), np.array([home[1]]), wlat, wlon)[0] * CIRCUITY
        )
        for g in fleet:
            if g.depot_id != depot_id or g.count <= 0 or g.capacity_g <= 0:
                continue
            robot = g.kind in (FleetKind.robot, FleetKind.foot)
            ok = np.ones((n, m), dtype=np.bool_)
            if not robot:
                ok &= ~robots_only[:, None]
            if g.range_m is not None:
                # The deadhead from its depot and back counts against the range too.
                ok &= 2 * (there + deadhead[None, :]) <= g.range_m
            leave = g.shift_start_s + drive_s(deadhead, g.speed_kmh)[None, :]
            arrive = leave + drive_s(there, g.speed_kmh)
            if not robot:
                # The team must be at work when the load comes (robots carry it in themselves):
                # a vehicle early at a team's gate waits for the team.
                arrive = np.where(team_gate[:, None], np.maximum(arrive, open_s[:, None]), arrive)
                ok &= ~team_gate[:, None] | (arrive + GATE_SERVICE_S <= close_s[:, None])
            ok &= arrive + GATE_SERVICE_S + drive_s(there, g.speed_kmh) <= g.shift_end_s
            out |= ok
    return out
