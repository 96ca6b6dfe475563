from __future__ import annotations

import pytest

from relieflink.optim.routing import Depot, RoutingProblem, Stop, VehicleKind, VehicleType

from .conftest import truck


def test_duplicate_stop_ids_rejected() -> None:
    s = Stop("A", 0.0, 0.0)
    with pytest.raises(ValueError, match="duplicate stop id 'A'"):
        RoutingProblem((Depot("D", 0, 0),), (s, s), (truck(),))


def test_unknown_depot_rejected() -> None:
    vt = VehicleType("v", VehicleKind.VAN, 1, "nowhere", 10, 10)
    with pytest.raises(ValueError, match="unknown depot 'nowhere'"):
        RoutingProblem((Depot("D", 0, 0),), (), (vt,))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"weight_g": -1}, "demand must be >= 0"),
        ({"tw_start": 100, "tw_end": 50}, "before start"),
        ({"allowed_kinds": frozenset()}, "allowed_kinds is empty"),
        ({"lat": float("nan")}, "finite"),
    ],
)
def test_stop_validation(kwargs: dict[str, object], message: str) -> None:
    base: dict[str, object] = {"id": "S", "lat": 0.0, "lon": 0.0}
    base.update(kwargs)
    with pytest.raises(ValueError, match=message):
        Stop(**base)  # type: ignore[arg-type]


def test_vehicle_validation() -> None:
    with pytest.raises(ValueError, match="speed_kmh must be > 0"):
        VehicleType("v", VehicleKind.ROBOT, 1, "D", 10, 10, speed_kmh=0)
    with pytest.raises(ValueError, match="count must be >= 0"):
        VehicleType("v", VehicleKind.ROBOT, -1, "D", 10, 10)


def test_sealed_compound_access() -> None:
    s = Stop("S", 0, 0, allowed_kinds=frozenset({VehicleKind.ROBOT, VehicleKind.FOOT}))
    assert s.allows(VehicleKind.ROBOT)
    assert not s.allows(VehicleKind.TRUCK)
