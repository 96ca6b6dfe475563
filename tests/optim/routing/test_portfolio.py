"""The portfolio: plain PyVRP on the whole problem beside the decomposition, cheaper plan wins."""

from __future__ import annotations

import dataclasses
import time

from relieflink.optim.routing import (
    LocalProcessExecutor,
    RoutingParams,
    SerialExecutor,
    check_solution,
    generate_city_problem,
    solve_routing,
)
from relieflink.optim.routing.solver import whole_instance_bytes

SMALL = RoutingParams(direct_limit=40, part_size=30, rounds=2, portfolio_memory_mb=1024)
ITS = 150


def test_portfolio_is_at_least_as_good_as_each_member_and_feasible() -> None:
    p = generate_city_problem(120, 3, seed=5, radius_km=4)
    apart = dataclasses.replace(SMALL, portfolio_exchange=False)
    with LocalProcessExecutor(2) as pool:
        both = solve_routing(p, iterations=ITS, seed=3, executor=pool, params=apart)
    assert both.stats["mode"] == "portfolio"
    assert check_solution(p, both) == []
    # Each member alone: the decomposition on one lane (what the portfolio leaves it) and
    # plain PyVRP on the whole problem with the whole lane's iterations and seed (this city's
    # mixed fleets have no savings plan, so the lane starts where plain PyVRP starts).
    decomposed = solve_routing(p, iterations=ITS, seed=3, executor=SerialExecutor(), params=SMALL)
    whole = solve_routing(
        p,
        iterations=ITS * SMALL.rounds,
        seed=3,
        executor=SerialExecutor(),
        params=dataclasses.replace(SMALL, direct_limit=10**6),
    )
    assert decomposed.stats["mode"] == "decomposed" and whole.stats["mode"] == "direct"
    assert both.stats["portfolio_decomposed_cost"] == decomposed.cost()
    assert both.stats["portfolio_whole_cost"] == whole.cost()
    assert (len(both.unassigned), both.cost()) == min(
        (len(decomposed.unassigned), decomposed.cost()), (len(whole.unassigned), whole.cost())
    )


def test_exchange_seeds_each_side_once_and_the_plan_is_feasible_and_reproducible() -> None:
    p = generate_city_problem(120, 3, seed=5, radius_km=4)
    with LocalProcessExecutor(2) as pool:
        a = solve_routing(p, iterations=ITS, seed=3, executor=pool, params=SMALL)
        b = solve_routing(p, iterations=ITS, seed=3, executor=pool, params=SMALL)
    assert a.stats["mode"] == "portfolio"
    assert a.stats["exchange"] in ("whole", "decomposed")
    assert check_solution(p, a) == []
    assert a.cost() == min(a.stats["portfolio_whole_cost"], a.stats["portfolio_decomposed_cost"])
    assert [r.visits for r in a.routes] == [r.visits for r in b.routes]


def test_no_portfolio_by_default_on_one_worker_or_above_the_memory_budget() -> None:
    p = generate_city_problem(120, 3, seed=5, radius_km=4)
    assert RoutingParams().portfolio_memory_mb == 0
    serial = solve_routing(p, iterations=20, seed=1, executor=SerialExecutor(), params=SMALL)
    assert serial.stats["mode"] == "decomposed"
    tight = dataclasses.replace(SMALL, portfolio_memory_mb=0)
    with LocalProcessExecutor(2) as pool:
        off = solve_routing(p, iterations=20, seed=1, executor=pool, params=tight)
    assert off.stats["mode"] == "decomposed"
    assert check_solution(p, off) == []


def test_whole_instance_bytes_grows_with_the_square_and_the_profiles() -> None:
    assert whole_instance_bytes(1000, 1) == 8 * 1000 * 1000 * 4
    assert whole_instance_bytes(2000, 1) == 4 * whole_instance_bytes(1000, 1)
    # A 1 GB budget takes a one-profile instance up to about 5,800 locations.
    assert whole_instance_bytes(5_700, 1) <= 1024 * 2**20 < whole_instance_bytes(6_000, 1)


def test_the_lane_s_stop_is_a_duration_on_the_worker_s_own_clock() -> None:
    """The whole-instance lane stops ``run_for_s`` after its worker started the task, read on
    that worker's monotonic clock: never a moment handed from another process or machine,
    whose wall clock may differ (a Dask worker elsewhere, a test that moves the clock)."""
    from relieflink.optim.routing._pyvrp import _Deadline

    started = time.monotonic()
    assert not _Deadline(started, 60.0)(0.0)
    assert _Deadline(started - 5.0, 1.0)(0.0)


def test_a_timed_portfolio_ends_and_gives_a_feasible_plan() -> None:
    p = generate_city_problem(120, 3, seed=5, radius_km=4)
    with LocalProcessExecutor(2) as pool:
        timed = solve_routing(p, time_limit=4, seed=3, executor=pool, params=SMALL)
    assert timed.stats["mode"] == "portfolio"
    assert check_solution(p, timed) == []
