"""Multi-depot recomputation (benchmarks/routing/run.py) and site-dependent rules (SDVRPTW)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
import vrplib

from relieflink.optim.geo import EuclideanProvider
from relieflink.optim.routing import (
    Depot,
    RoutingProblem,
    SerialExecutor,
    Stop,
    VehicleKind,
    VehicleType,
    check_solution,
    load_instance,
    problem_from_json,
    problem_to_json,
    solve_routing,
    write_vrplib_solution,
)
from relieflink.optim.routing.io import LoadedInstance

from .conftest import assert_clean, planar

INSTANCES = Path("/work/shared/instances")
PR11A = INSTANCES / "MDVRPTW" / "PR11A.vrp"
SD_PR01 = INSTANCES / "SDVRPTW" / "PR01.vrp"
needs_instances = pytest.mark.skipif(not PR11A.exists(), reason="shared instances missing")
RUN_PY = Path(__file__).resolve().parents[3] / "benchmarks" / "routing" / "run.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    """The benchmark script, imported as a module (its recomputation is what is tested)."""
    spec = importlib.util.spec_from_file_location("routing_bench_run", RUN_PY)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def _two_depot_instance() -> LoadedInstance:
    """Depots at x=0 and x=100; A (x=10) opens at t=0..15, B (x=90) at t=0..15.

    Only a vehicle from the depot next to each client reaches it in time; the known solution
    is one route per depot, 2 x 20 = 40 long.
    """
    depots = (Depot("W", 0.0, 0.0), Depot("E", 0.0, 100.0))
    stops = (
        Stop("A", 0.0, 10.0, weight_g=1, tw_end=15),
        Stop("B", 0.0, 90.0, weight_g=1, tw_end=15),
    )
    fleet = tuple(
        VehicleType(f"V{d}", VehicleKind.TRUCK, 1, d, 10, 0, max_duration_s=25) for d in "WE"
    )
    p = RoutingProblem(depots, stops, fleet)
    return LoadedInstance(p, planar(p), 1, True)


def test_multi_depot_routes_start_at_their_own_depot(bench: ModuleType) -> None:
    loaded = _two_depot_instance()
    assert bench.evaluate(loaded, [(0, [0]), (1, [1])]) == (40.0, "ok")
    # The old recomputation sent every route from depot 0 (and read client c at index c):
    # B from the western depot is 180 long and late; the evaluation must say so.
    assert bench.evaluate(loaded, [(0, [0]), (0, [1])]) == (200.0, "time window")
    # Duration is taken with the start delayed as far as the windows allow (no waiting counted).
    late = LoadedInstance(
        RoutingProblem(
            loaded.problem.depots,
            (Stop("A", 0.0, 10.0, weight_g=1, tw_start=50, tw_end=60),),
            loaded.problem.vehicle_types,
        ),
        loaded.provider,
        1,
        True,
    )
    assert bench.evaluate(late, [(0, [0])]) == (20.0, "ok")


@needs_instances
def test_pr11a_bks_recomputes_to_its_file_cost(bench: ModuleType) -> None:
    loaded = load_instance(PR11A)
    assert len(loaded.problem.depots) == 4
    # .sol numbering: depots are 0..3, clients 4..363; route #k is the file's vehicle k-1.
    assert loaded.client_number(0) == 4
    sol = vrplib.read_solution(str(PR11A.with_suffix(".sol")))
    plan = bench.read_sol_plan(loaded, PR11A.with_suffix(".sol"))
    assert sum(len(r) for _, r in plan) == 360
    assert bench.evaluate(loaded, plan) == (6655548.0, "ok")
    assert sol["cost"] == 6655548


def test_stop_allowed_types_validation() -> None:
    d = (Depot("D", 0.0, 0.0),)
    v = (VehicleType("van", VehicleKind.VAN, 1, "D", 10, 0),)
    with pytest.raises(ValueError, match="allowed_types is empty"):
        Stop("S", 0.0, 1.0, allowed_types=frozenset())
    with pytest.raises(ValueError, match=r"stops\[0\].*unknown vehicle type.*'bike'"):
        RoutingProblem(d, (Stop("S", 0.0, 1.0, allowed_types=frozenset({"bike"})),), v)


def _site_problem() -> RoutingProblem:
    """Two trucks of the same kind and speed; the far stop admits only the small one."""
    depot = Depot("D", 0.0, 0.0)
    fleet = (
        VehicleType("big", VehicleKind.TRUCK, 1, "D", 100, 0),
        VehicleType("small", VehicleKind.TRUCK, 1, "D", 100, 0, fixed_cost=5),
    )
    stops = (
        Stop("S10", 0.0, 10.0, weight_g=1),
        Stop("S20", 0.0, 20.0, weight_g=1, allowed_types=frozenset({"small"})),
        Stop("S30", 0.0, 30.0, weight_g=1),
    )
    return RoutingProblem((depot,), stops, fleet)


def test_site_rule_is_honoured_and_checked() -> None:
    p = _site_problem()
    res = solve_routing(p, iterations=300, seed=1, executor=SerialExecutor(), provider=planar(p))
    assert_clean(p, res)
    assert not res.unassigned
    by_stop = {v.stop_id: r.vehicle_type for r in res.routes for v in r.visits}
    assert by_stop["S20"] == "small"
    # Without the rule "big" (no fixed cost) would serve all three in one route.
    free = RoutingProblem(
        p.depots, tuple(Stop(s.id, s.lat, s.lon, 1) for s in p.stops), p.vehicle_types
    )
    res_free = solve_routing(
        free, iterations=300, seed=1, executor=SerialExecutor(), provider=planar(free)
    )
    assert {r.vehicle_type for r in res_free.routes} == {"big"}
    # The checker flags a plan that breaks the rule.
    bad = check_solution(p, res_free, planar(p))
    assert [v.code for v in bad] == ["access"]


def test_site_rule_with_no_vehicle_is_unassigned_with_reason() -> None:
    p = _site_problem()
    fleet = (p.vehicle_types[0], VehicleType("small", VehicleKind.TRUCK, 0, "D", 100, 0))
    p = RoutingProblem(p.depots, p.stops, fleet)
    res = solve_routing(p, iterations=100, seed=1, executor=SerialExecutor(), provider=planar(p))
    assert_clean(p, res)
    assert [(u.stop_id, u.reason) for u in res.unassigned] == [
        ("S20", "no available vehicle of an allowed type (small)")
    ]


def test_allowed_types_json_roundtrip() -> None:
    p = _site_problem()
    data = problem_to_json(p)
    assert data["stops"][1]["allowed_types"] == ["small"]
    assert problem_from_json(data) == p


@needs_instances
def test_sdvrptw_reader_follows_the_files_site_rules(tmp_path: Path, bench: ModuleType) -> None:
    loaded = load_instance(SD_PR01)
    p = loaded.problem
    raw = vrplib.read_instance(str(SD_PR01), compute_edge_weights=False)
    allowed = [{int(x) - 1 for x in row} for row in raw["vehicles_allowed_clients"]]
    assert len(loaded.file_vehicles) == raw["vehicles"] == 8
    # Each client's allowed types are exactly the types of the file's vehicles that list it.
    for i, stop in enumerate(p.stops):
        node = loaded.client_number(i)
        want = {
            p.vehicle_types[t].id
            for k, (t, _) in enumerate(loaded.file_vehicles)
            if node in allowed[k]
        }
        got = set(stop.allowed_types or {vt.id for vt in p.vehicle_types})
        assert got == want, stop.id
    assert any(s.allowed_types is not None for s in p.stops)
    res = solve_routing(
        p, iterations=200, seed=1, executor=SerialExecutor(), provider=loaded.provider
    )
    assert check_solution(p, res, loaded.provider) == []
    assert not res.unassigned
    # Written as a .sol (route #k = file vehicle k-1), every route obeys the file's own lists
    # and the independent recomputation gives the engine's cost.
    out = tmp_path / "pr01.sol"
    write_vrplib_solution(out, res, loaded)
    sol = vrplib.read_solution(str(out))
    for k, route in enumerate(sol["routes"]):
        assert set(route) <= allowed[k], k
    assert bench.evaluate(loaded, bench.read_sol_plan(loaded, out)) == (res.cost(), "ok")
    assert isinstance(loaded.provider, EuclideanProvider)
