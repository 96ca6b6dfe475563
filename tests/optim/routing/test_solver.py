from __future__ import annotations

import dataclasses

import pytest

from relieflink.optim.routing import (
    MAX_SEED,
    Depot,
    RoutingParams,
    RoutingProblem,
    SerialExecutor,
    Stop,
    VehicleKind,
    VehicleType,
    check_solution,
    generate_city_problem,
    solve_routing,
)

from .conftest import assert_clean, planar, truck

SEALED = frozenset({VehicleKind.ROBOT, VehicleKind.FOOT})


def solve(problem: RoutingProblem, iterations: int = 300, **kw: object):  # type: ignore[no-untyped-def]
    return solve_routing(
        problem,
        iterations=iterations,
        seed=1,
        executor=SerialExecutor(),
        provider=planar(problem),
        **kw,  # type: ignore[arg-type]
    )


def test_line_instance_has_the_hand_computed_optimum(line_problem: RoutingProblem) -> None:
    result = solve(line_problem)
    assert_clean(line_problem, result)
    assert result.cost() == 60.0  # 0 -> 10 -> 20 -> 30 -> 0, cost_per_km 1000 = 1 per metre
    assert [v.stop_id for v in result.routes[0].visits] in (
        ["S10", "S20", "S30"],
        ["S30", "S20", "S10"],
    )


def test_capacity_forces_two_routes(line_problem: RoutingProblem) -> None:
    p = dataclasses.replace(line_problem, vehicle_types=(truck(count=2, cap=20),))
    result = solve(p)
    assert_clean(p, result)
    assert len(result.routes) == 2
    assert all(sum(v.weight_g for v in r.visits) <= 20 for r in result.routes)
    assert result.cost() == 80.0  # {10} and {20, 30}: 20 + 60 (better than 40 + 60)


def test_time_window_respected() -> None:
    depot = Depot("D", 0.0, 0.0)
    # S30 must be served before t=35, S10 only after t=100: order 30 then 10 (with waiting).
    stops = (
        Stop("S10", 0.0, 10.0, weight_g=1, tw_start=100, tw_end=200),
        Stop("S30", 0.0, 30.0, weight_g=1, tw_start=0, tw_end=35),
    )
    p = RoutingProblem((depot,), stops, (truck(count=1),))
    result = solve(p)
    assert_clean(p, result)
    assert [v.stop_id for v in result.routes[0].visits] == ["S30", "S10"]
    assert result.routes[0].visits[1].service_start_s >= 100


def test_no_truck_enters_a_sealed_compound() -> None:
    depot = Depot("D", 0.0, 0.0)
    stops = tuple(
        Stop(f"S{i}", float(i), 5.0, weight_g=5, allowed_kinds=SEALED if i % 2 else None)
        for i in range(8)
    )
    robot = VehicleType("robot", VehicleKind.ROBOT, 2, "D", 50, 10**6, speed_kmh=3.6)
    p = RoutingProblem((depot,), stops, (truck(count=2, cap=100), robot))
    result = solve(p)
    assert_clean(p, result)
    assert not result.unassigned
    for r in result.routes:
        if r.vehicle_type == "truck":
            assert all(p.stops[v.stop].allowed_kinds is None for v in r.visits)


def test_robot_payload_and_range_respected_and_out_of_range_reported() -> None:
    depot = Depot("D", 0.0, 0.0)
    stops = (
        Stop("near1", 0.0, 10.0, weight_g=30, allowed_kinds=SEALED),
        Stop("near2", 10.0, 0.0, weight_g=30, allowed_kinds=SEALED),
        Stop("far", 0.0, 500.0, weight_g=1, allowed_kinds=SEALED),
    )
    robot = VehicleType(
        "robot", VehicleKind.ROBOT, 3, "D", 40, 10**6, max_distance_m=100, speed_kmh=3.6
    )
    p = RoutingProblem((depot,), stops, (truck(), robot))
    result = solve(p)
    assert_clean(p, result)
    assert [u.stop_id for u in result.unassigned] == ["far"]
    assert "range" in result.unassigned[0].reason
    for r in result.routes:
        assert r.vehicle_type == "robot"
        assert r.distance_m <= 100
        assert sum(v.weight_g for v in r.visits) <= 40
    assert len(result.routes) == 2  # 30 + 30 > 40: one robot each


def test_split_delivery_full_loads_plus_remainder() -> None:
    depot = Depot("D", 0.0, 0.0)
    stops = (Stop("big", 0.0, 10.0, weight_g=250, volume_ml=10), Stop("s", 0.0, 20.0, weight_g=10))
    p = RoutingProblem((depot,), stops, (truck(count=4, cap=100),))
    result = solve(p)
    assert_clean(p, result)
    loads = sorted(v.weight_g for r in result.routes for v in r.visits if v.stop_id == "big")
    assert sum(loads) == 250
    assert loads.count(100) == 2 and len(loads) == 3


def test_unassigned_with_reason_when_no_allowed_vehicle() -> None:
    depot = Depot("D", 0.0, 0.0)
    stops = (
        Stop("ok", 0.0, 10.0, weight_g=1),
        Stop("foot-only", 0.0, 5.0, weight_g=1, allowed_kinds=frozenset({VehicleKind.FOOT})),
        Stop("late", 0.0, 20.0, weight_g=1, tw_start=0, tw_end=5),
    )
    p = RoutingProblem((depot,), stops, (truck(),))
    result = solve(p)
    assert_clean(p, result)
    reasons = {u.stop_id: u.reason for u in result.unassigned}
    assert set(reasons) == {"foot-only", "late"}
    assert "foot" in reasons["foot-only"]
    assert "time window" in reasons["late"]


def test_fleet_too_small_reports_unassigned_not_infeasible() -> None:
    depot = Depot("D", 0.0, 0.0)
    stops = tuple(Stop(f"S{i}", 0.0, float(10 * i), weight_g=60) for i in range(1, 4))
    p = RoutingProblem((depot,), stops, (truck(count=2, cap=100),))
    result = solve(p)
    assert_clean(p, result)
    assert len(result.routes) == 2
    assert len(result.unassigned) == 1
    assert "fleet" in result.unassigned[0].reason


def test_checker_catches_tampered_plans(line_problem: RoutingProblem) -> None:
    result = solve(line_problem)
    route = result.routes[0]
    heavy = dataclasses.replace(route.visits[0], weight_g=route.visits[0].weight_g + 200)
    tampered = dataclasses.replace(route, visits=(heavy, *route.visits[1:]))
    bad = dataclasses.replace(result, routes=(tampered,))
    codes = {v.code for v in check_solution(line_problem, bad, planar(line_problem))}
    assert {"capacity_weight", "demand_mismatch"} <= codes
    dropped = dataclasses.replace(route, visits=route.visits[1:])
    codes = {
        v.code
        for v in check_solution(
            line_problem, dataclasses.replace(result, routes=(dropped,)), planar(line_problem)
        )
    }
    assert "dropped" in codes
    shorter = dataclasses.replace(route, distance_m=route.distance_m - 1)
    codes = {
        v.code
        for v in check_solution(
            line_problem, dataclasses.replace(result, routes=(shorter,)), planar(line_problem)
        )
    }
    assert "distance_mismatch" in codes


def test_requires_exactly_one_budget(line_problem: RoutingProblem) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        solve_routing(line_problem)
    with pytest.raises(ValueError, match="exactly one"):
        solve_routing(line_problem, time_limit=1, iterations=10)


SMALL = RoutingParams(direct_limit=40, part_size=30, rounds=2)


def _city() -> RoutingProblem:
    return generate_city_problem(120, 3, seed=5, radius_km=4)


def _plan(result):  # type: ignore[no-untyped-def]
    return [(r.vehicle_type, [(v.stop_id, v.weight_g) for v in r.visits]) for r in result.routes]


def test_decomposed_city_problem_is_feasible_and_deterministic() -> None:
    p = _city()
    kw = {"iterations": 150, "seed": 3, "executor": SerialExecutor(), "params": SMALL}
    a = solve_routing(p, **kw)  # type: ignore[arg-type]
    b = solve_routing(p, **kw)  # type: ignore[arg-type]
    assert a.stats["mode"] == "decomposed"
    assert int(a.stats["parts"]) >= 3
    assert check_solution(p, a) == []
    assert _plan(a) == _plan(b)
    assert a.cost() == b.cost()
    served = {v.stop for r in a.routes for v in r.visits}
    assert len(served) + len({u.stop for u in a.unassigned} - served) == len(p.stops)
    for r in a.routes:
        if r.vehicle_type.endswith("truck"):
            assert all(
                p.stops[v.stop].allowed_kinds is None
                or VehicleKind.TRUCK in (p.stops[v.stop].allowed_kinds or ())
                for v in r.visits
            )


def test_dask_local_cluster_gives_the_same_plan_as_a_process_pool() -> None:
    from distributed import Client, LocalCluster

    from relieflink.optim.routing import DaskExecutor, LocalProcessExecutor

    p = _city()
    kw = {"iterations": 100, "seed": 4, "params": SMALL}
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        dask_exe = DaskExecutor(client=client)
        assert dask_exe.workers == 2
        on_dask = solve_routing(p, executor=dask_exe, **kw)  # type: ignore[arg-type]
    with LocalProcessExecutor(2) as pool:
        on_pool = solve_routing(p, executor=pool, **kw)  # type: ignore[arg-type]
    assert on_dask.is_feasible() and on_pool.is_feasible()
    assert _plan(on_dask) == _plan(on_pool)


def test_the_seed_range_is_pyvrps_and_a_seed_outside_it_is_refused(
    line_problem: RoutingProblem,
) -> None:
    """Audit finding 7: the largest seed plans (the seeds derived from it for sub-problems wrap
    around), and one past it is refused up front rather than inside PyVRP."""
    provider = planar(line_problem)
    result = solve_routing(
        line_problem, iterations=20, seed=MAX_SEED, executor=SerialExecutor(), provider=provider
    )
    assert_clean(line_problem, result)
    for seed in (-1, MAX_SEED + 1):
        with pytest.raises(ValueError, match=f"seed must be between 0 and {MAX_SEED}"):
            solve_routing(line_problem, iterations=20, seed=seed, executor=SerialExecutor())
