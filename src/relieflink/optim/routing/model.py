"""Problem and result model of the routing engine (frozen dataclasses, integer base units).

Units: metres, seconds (since the start of the planning day), grams, millilitres. Money is an
integer in the smallest currency unit (fen); costs are reported as floats in that unit because
per-kilometre and per-hour rates do not divide metres and seconds evenly.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

__all__ = [
    "DAY_END",
    "DEFAULT_SPEED_KMH",
    "Depot",
    "RoutingProblem",
    "Stop",
    "VehicleKind",
    "VehicleType",
]

DAY_END = 7 * 24 * 3600
"""Default end of any time window: one week after the planning epoch."""


class VehicleKind(enum.StrEnum):
    """What kind of vehicle (or person) drives a route; used for access rules and speeds."""

    TRUCK = "truck"
    VAN = "van"
    EBIKE = "ebike"
    ROBOT = "robot"
    FOOT = "foot"


DEFAULT_SPEED_KMH: dict[VehicleKind, float] = {
    VehicleKind.TRUCK: 30.0,
    VehicleKind.VAN: 35.0,
    VehicleKind.EBIKE: 18.0,
    VehicleKind.ROBOT: 6.0,
    VehicleKind.FOOT: 4.5,
}
"""Average door-to-door speeds in cities, used when a vehicle type gives none."""


def _check_window(where: str, start: int, end: int) -> None:
    if start < 0:
        raise ValueError(f"{where}: window start must be >= 0, got {start}")
    if end < start:
        raise ValueError(f"{where}: window end {end} is before start {start}")


def _check_coords(where: str, lat: float, lon: float) -> None:
    # Planar (VRPLIB) coordinates are allowed anywhere; only reject non-finite values.
    if not (math.isfinite(lat) and math.isfinite(lon)):
        raise ValueError(f"{where}: coordinates must be finite, got ({lat}, {lon})")


@dataclass(frozen=True, slots=True)
class Depot:
    """A warehouse that routes start from and return to.

    Parameters
    ----------
    id
        Unique name.
    lat, lon
        Decimal degrees (or planar y, x with a planar matrix provider).
    open_s, close_s
        Opening hours in seconds since the planning epoch.
    """

    id: str
    lat: float
    lon: float
    open_s: int = 0
    close_s: int = DAY_END

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("depot id must not be empty")
        _check_coords(f"depot {self.id!r}", self.lat, self.lon)
        _check_window(f"depot {self.id!r} opening hours", self.open_s, self.close_s)


@dataclass(frozen=True, slots=True)
class Stop:
    """A delivery point: a community gate or a household.

    Parameters
    ----------
    id
        Unique name.
    lat, lon
        Decimal degrees (or planar y, x).
    weight_g, volume_ml
        Demand. A demand larger than every allowed vehicle is split into full loads plus a
        remainder (split delivery).
    service_s
        Time spent at the stop per visit.
    tw_start, tw_end
        Service must *start* within this window (seconds since the epoch).
    allowed_kinds
        Vehicle kinds that may serve this stop; ``None`` means any. A sealed compound is
        ``frozenset({VehicleKind.ROBOT, VehicleKind.FOOT})``.
    allowed_types
        Ids of the vehicle types that may serve this stop; ``None`` means any. Finer than
        ``allowed_kinds`` (site-dependent rules such as "only the two small vans fit this
        gate"); a vehicle must satisfy both.
    """

    id: str
    lat: float
    lon: float
    weight_g: int = 0
    volume_ml: int = 0
    service_s: int = 0
    tw_start: int = 0
    tw_end: int = DAY_END
    allowed_kinds: frozenset[VehicleKind] | None = None
    allowed_types: frozenset[str] | None = None

    def __post_init__(self) -> None:
        where = f"stop {self.id!r}"
        if not self.id:
            raise ValueError("stop id must not be empty")
        _check_coords(where, self.lat, self.lon)
        if self.weight_g < 0 or self.volume_ml < 0:
            raise ValueError(f"{where}: demand must be >= 0")
        if self.service_s < 0:
            raise ValueError(f"{where}: service_s must be >= 0")
        _check_window(f"{where} time window", self.tw_start, self.tw_end)
        if self.allowed_kinds is not None:
            if not self.allowed_kinds:
                raise ValueError(f"{where}: allowed_kinds is empty (use None for any)")
            for k in self.allowed_kinds:
                if not isinstance(k, VehicleKind):
                    raise ValueError(f"{where}: allowed_kinds has non-VehicleKind {k!r}")
        if self.allowed_types is not None:
            if not isinstance(self.allowed_types, frozenset):
                object.__setattr__(self, "allowed_types", frozenset(self.allowed_types))
            if not self.allowed_types:
                raise ValueError(f"{where}: allowed_types is empty (use None for any)")

    def allows(self, kind: VehicleKind) -> bool:
        """Whether a vehicle of ``kind`` may serve this stop (kind rule only)."""
        return self.allowed_kinds is None or kind in self.allowed_kinds

    def allows_vehicle(self, vehicle_type: VehicleType) -> bool:
        """Whether vehicles of ``vehicle_type`` may serve this stop (kind and type rules)."""
        return self.allows(vehicle_type.kind) and (
            self.allowed_types is None or vehicle_type.id in self.allowed_types
        )


@dataclass(frozen=True, slots=True)
class VehicleType:
    """A group of identical vehicles.

    Parameters
    ----------
    id
        Unique name.
    kind
        Truck, van, e-bike, robot or on-foot volunteer.
    count
        Number of vehicles available.
    start_depot, end_depot
        Depot ids; ``end_depot`` defaults to ``start_depot``.
    capacity_g, capacity_ml
        Payload limits.
    speed_kmh
        Average speed; defaults to :data:`DEFAULT_SPEED_KMH` for the kind. Ignored when the
        matrix provider supplies durations for the kind.
    max_duration_s, max_distance_m
        Route limits (``None`` = unlimited); ``max_distance_m`` models a robot's range.
    shift_start, shift_end
        The vehicle leaves no earlier than ``shift_start`` and is back by ``shift_end``.
    fixed_cost, cost_per_km, cost_per_hour
        Cost per route used, per kilometre and per hour of route duration, in fen.
    carrier
        Owner (partner carrier or volunteer group).
    """

    id: str
    kind: VehicleKind
    count: int
    start_depot: str
    capacity_g: int
    capacity_ml: int
    end_depot: str | None = None
    speed_kmh: float | None = None
    max_duration_s: int | None = None
    max_distance_m: int | None = None
    shift_start: int = 0
    shift_end: int = DAY_END
    fixed_cost: int = 0
    cost_per_km: int = 1000
    cost_per_hour: int = 0
    carrier: str = ""

    def __post_init__(self) -> None:
        where = f"vehicle type {self.id!r}"
        if not self.id:
            raise ValueError("vehicle type id must not be empty")
        if not isinstance(self.kind, VehicleKind):
            raise ValueError(f"{where}: kind must be a VehicleKind, got {self.kind!r}")
        if self.count < 0:
            raise ValueError(f"{where}: count must be >= 0")
        if self.capacity_g < 0 or self.capacity_ml < 0:
            raise ValueError(f"{where}: capacities must be >= 0")
        if self.speed_kmh is not None and not self.speed_kmh > 0:
            raise ValueError(f"{where}: speed_kmh must be > 0")
        if self.max_duration_s is not None and self.max_duration_s < 0:
            raise ValueError(f"{where}: max_duration_s must be >= 0")
        if self.max_distance_m is not None and self.max_distance_m < 0:
            raise ValueError(f"{where}: max_distance_m must be >= 0")
        _check_window(f"{where} shift", self.shift_start, self.shift_end)
        if self.fixed_cost < 0 or self.cost_per_km < 0 or self.cost_per_hour < 0:
            raise ValueError(f"{where}: costs must be >= 0")

    @property
    def end(self) -> str:
        """The depot the vehicle returns to."""
        return self.end_depot if self.end_depot is not None else self.start_depot

    @property
    def speed(self) -> float:
        """Speed in km/h (explicit or the kind's default)."""
        return self.speed_kmh if self.speed_kmh is not None else DEFAULT_SPEED_KMH[self.kind]

    @property
    def unit_duration_cost(self) -> int:
        """Cost per second of route duration in milli-fen (per-hour rate / 3.6, rounded)."""
        return round(self.cost_per_hour / 3.6)


@dataclass(frozen=True, slots=True)
class RoutingProblem:
    """Depots, stops and the fleet.

    Location indices used by matrix providers are: depots ``0..D-1`` in order, then stops
    ``D..D+N-1`` in order.

    Raises
    ------
    ValueError
        On duplicate ids, unknown depot references or an empty problem.
    """

    depots: tuple[Depot, ...]
    stops: tuple[Stop, ...]
    vehicle_types: tuple[VehicleType, ...]
    name: str = "problem"
    depot_index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for attr in ("depots", "stops", "vehicle_types"):
            if not isinstance(getattr(self, attr), tuple):
                object.__setattr__(self, attr, tuple(getattr(self, attr)))
        if not self.depots:
            raise ValueError("problem has no depots")
        if not self.vehicle_types:
            raise ValueError("problem has no vehicle types")
        for what, items in (
            ("depot", self.depots),
            ("stop", self.stops),
            ("vehicle type", self.vehicle_types),
        ):
            seen: set[str] = set()
            for it in items:
                if it.id in seen:
                    raise ValueError(f"duplicate {what} id {it.id!r}")
                seen.add(it.id)
        index = {d.id: i for i, d in enumerate(self.depots)}
        for vt in self.vehicle_types:
            for ref in (vt.start_depot, vt.end):
                if ref not in index:
                    raise ValueError(f"vehicle type {vt.id!r}: unknown depot {ref!r}")
        type_ids = {vt.id for vt in self.vehicle_types}
        for i, st in enumerate(self.stops):
            unknown = sorted((st.allowed_types or frozenset()) - type_ids)
            if unknown:
                raise ValueError(
                    f"stops[{i}] ({st.id!r}): allowed_types names unknown vehicle type(s) "
                    f"{', '.join(map(repr, unknown))}"
                )
        object.__setattr__(self, "depot_index", index)

    @property
    def num_locations(self) -> int:
        """Number of matrix locations (depots + stops)."""
        return len(self.depots) + len(self.stops)

    def stop_location(self, stop: int) -> int:
        """Matrix index of stop number ``stop``."""
        return len(self.depots) + stop
