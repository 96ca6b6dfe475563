"""Result dataclasses of the routing engine."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["PlannedRoute", "RoutingResult", "Unassigned", "Violation", "Visit"]


@dataclass(frozen=True, slots=True)
class Visit:
    """One delivery on a route (a stop may be visited several times under split delivery)."""

    stop: int
    stop_id: str
    weight_g: int
    volume_ml: int
    arrival_s: int
    service_start_s: int


@dataclass(frozen=True, slots=True)
class PlannedRoute:
    """One vehicle's route: leave the start depot, make the visits in order, return.

    ``distance_m``, ``duration_s`` and ``cost_millifen`` are as computed by the solver; the
    feasibility checker recomputes them independently.
    """

    vehicle_type: str
    vehicle_index: int
    visits: tuple[Visit, ...]
    start_s: int
    end_s: int
    distance_m: int
    duration_s: int
    cost_millifen: int

    @property
    def stops(self) -> list[int]:
        """Stop indices in visiting order."""
        return [v.stop for v in self.visits]


@dataclass(frozen=True, slots=True)
class Unassigned:
    """(Part of) a stop's demand that no route delivers, and why."""

    stop: int
    stop_id: str
    weight_g: int
    volume_ml: int
    reason: str


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule found by :func:`~relieflink.optim.routing.check_solution`."""

    code: str
    message: str
    route: int | None = None
    stop_id: str | None = None


@dataclass(frozen=True, slots=True)
class RoutingResult:
    """What :func:`~relieflink.optim.routing.solve_routing` returns.

    Attributes
    ----------
    routes
        Non-empty routes, in a deterministic order (by vehicle type, then vehicle index).
    unassigned
        Demand left undelivered, each with a reason.
    runtime_s
        Wall-clock solve time.
    violations
        Violations found by the independent checker (empty for every plan the engine returns).
    stats
        Free-form figures about the run (mode, parts, rounds, first-feasible time, ...).
    """

    problem_name: str
    routes: tuple[PlannedRoute, ...]
    unassigned: tuple[Unassigned, ...]
    runtime_s: float
    violations: tuple[Violation, ...] = ()
    stats: dict[str, float | int | str] = field(default_factory=dict)

    def cost(self) -> float:
        """Total cost in fen: fixed + per-km + per-hour costs over all routes."""
        return sum(r.cost_millifen for r in self.routes) / 1000.0

    def distance_m(self) -> int:
        """Total distance of all routes."""
        return sum(r.distance_m for r in self.routes)

    def is_feasible(self) -> bool:
        """True when the checker found no violation (unassigned demand is not a violation)."""
        return not self.violations

    def is_complete(self) -> bool:
        """True when every stop's demand is delivered."""
        return not self.unassigned

    def summary(self) -> str:
        """A one-line human summary."""
        n_unassigned = len({u.stop for u in self.unassigned})
        return (
            f"{self.problem_name}: cost {self.cost():.1f}, {len(self.routes)} routes, "
            f"distance {self.distance_m()} m, {n_unassigned} stops unassigned, "
            f"{'feasible' if self.is_feasible() else f'{len(self.violations)} violations'}, "
            f"{self.runtime_s:.1f} s"
        )
