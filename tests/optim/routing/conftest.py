"""Small hand-checkable routing instances on a planar grid (1 unit = 1 metre = 1 second)."""

from __future__ import annotations

import pytest

from relieflink.optim.geo import EuclideanProvider
from relieflink.optim.routing import (
    Depot,
    RoutingProblem,
    RoutingResult,
    Stop,
    VehicleKind,
    VehicleType,
    check_solution,
)


def planar(problem: RoutingProblem) -> EuclideanProvider:
    xs = [d.lon for d in problem.depots] + [s.lon for s in problem.stops]
    ys = [d.lat for d in problem.depots] + [s.lat for s in problem.stops]
    return EuclideanProvider(xs, ys, rounding="round")


def truck(id_: str = "truck", count: int = 2, cap: int = 100, **kw: object) -> VehicleType:
    return VehicleType(
        id=id_,
        kind=VehicleKind.TRUCK,
        count=count,
        start_depot="D",
        capacity_g=cap,
        capacity_ml=10**9,
        **kw,  # type: ignore[arg-type]
    )


def assert_clean(problem: RoutingProblem, result: RoutingResult) -> None:
    violations = check_solution(problem, result, planar(problem))
    assert violations == [], violations
    assert result.is_feasible()


@pytest.fixture
def line_problem() -> RoutingProblem:
    """Depot at 0 and three stops at x = 10, 20, 30: one truck route 0-10-20-30-0 costs 60."""
    depot = Depot("D", 0.0, 0.0)
    stops = tuple(Stop(f"S{x}", 0.0, float(x), weight_g=10) for x in (10, 20, 30))
    return RoutingProblem((depot,), stops, (truck(count=1),))
