"""Granular savings and route neighbourhoods on hand-checkable instances."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import numpy.typing as npt
import pytest

from relieflink.optim.routing import (
    Depot,
    RoutingParams,
    RoutingProblem,
    SerialExecutor,
    Stop,
    solve_routing,
)
from relieflink.optim.routing.construct import (
    nearest_neighbours,
    packed_sweep_routes,
    pick_route_groups,
    savings_routes,
)

from .conftest import assert_clean, planar, truck

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def _line_savings(xs: list[float], cap: int, k: int = 4) -> list[list[int]]:
    """Savings on a line with the depot at 0 (distances |x|), demand 1 each."""
    x = np.array(xs, dtype=np.float64)
    nb = nearest_neighbours(np.column_stack([x, np.zeros_like(x)]), k)
    d0 = np.rint(np.abs(x)).astype(np.int64)
    nd = np.rint(np.abs(x[:, None] - x[nb])).astype(np.int64)
    return savings_routes(d0, d0, nb, nd, np.ones((len(x), 1), dtype=np.int64), [cap])


def test_nearest_neighbours_skip_self_and_come_nearest_first() -> None:
    xy = np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [7.0, 0.0]])
    nb = nearest_neighbours(xy, 2)
    assert nb.tolist() == [[1, 2], [0, 2], [1, 0], [2, 1]]
    # Duplicate points: a row still holds k others and never itself.
    dup = nearest_neighbours(np.zeros((4, 2)), 3)
    assert all(sorted(row) == sorted(set(range(4)) - {i}) for i, row in enumerate(dup.tolist()))
    assert nearest_neighbours(np.zeros((1, 2)), 3).shape == (1, 0)


def test_savings_on_a_line_give_the_optimum() -> None:
    # Depot at 0, clients at 10..60, capacity 3: {40,50,60} (120) + {10,20,30} (60) = 180.
    routes = _line_savings([10, 20, 30, 40, 50, 60], cap=3)
    assert sorted(sorted(r) for r in routes) == [[0, 1, 2], [3, 4, 5]]
    assert all(r in ([0, 1, 2], [2, 1, 0], [3, 4, 5], [5, 4, 3]) for r in routes)


def test_savings_keep_opposite_sides_apart_and_respect_capacity() -> None:
    # Two arms: joining across the depot saves nothing (|-10 - 10| = 20 = 10 + 10).
    routes = _line_savings([-20, -10, 10, 20, 30], cap=10)
    assert sorted(sorted(r) for r in routes) == [[0, 1], [2, 3, 4]]
    tight = _line_savings([10, 20, 30, 40, 50], cap=2)
    assert sorted(c for r in tight for c in r) == [0, 1, 2, 3, 4]
    assert all(len(r) <= 2 for r in tight)


def test_savings_build_one_long_route_from_an_eccentric_depot() -> None:
    # Depot far west of a row of 40 clients: capacity for all of them gives one route.
    routes = _line_savings([100.0 + i for i in range(40)], cap=40, k=6)
    assert len(routes) == 1
    assert routes[0] in (list(range(40)), list(range(39, -1, -1)))


def test_route_groups_follow_shared_neighbours_not_centroids() -> None:
    # A: a ring of radius 50 (centroid at the origin); B: a half-ring of radius 53 beside it;
    # C: a tight cluster at the origin. By centroid C is A's nearest route; by shared client
    # neighbours B is, and B is the route A can trade clients with.
    ang_a = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    ang_b = np.linspace(0, np.pi, 20)
    a = np.column_stack([50 * np.cos(ang_a), 50 * np.sin(ang_a)])
    b = np.column_stack([53 * np.cos(ang_b), 53 * np.sin(ang_b)])
    c = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.5, 0.5]])
    xy = np.vstack([a, b, c])
    route_of = np.array([0] * 40 + [1] * 20 + [2] * 5, dtype=np.int64)
    cents = np.array([a.mean(axis=0), b.mean(axis=0), c.mean(axis=0)])
    assert np.linalg.norm(cents[2] - cents[0]) < np.linalg.norm(cents[1] - cents[0])
    nb = nearest_neighbours(xy, 3)
    seen_a_first = False
    for s in range(20):
        groups = pick_route_groups(
            route_of, [40, 20, 5], nb, cents, 3, 41, np.random.default_rng(s)
        )
        assert sorted(r for g in groups for r in g) == [0, 1, 2]  # disjoint, all covered
        if groups[0][0] == 0:
            seen_a_first = True
            assert groups[0] == [0, 1]
    assert seen_a_first


def test_route_groups_start_from_the_routes_solved_longest_ago() -> None:
    # Six routes of two clients on a line. Routes 1 and 4 were re-optimised longest ago
    # (round 0), so every group starts from one of them, the first group's seed
    # leaving the other for the second group; with no stamps any route may seed.
    xy = np.column_stack([np.arange(12, dtype=np.float64), np.zeros(12)])
    route_of = np.repeat(np.arange(6), 2).astype(np.int64)
    cents = np.column_stack([np.arange(6) * 2 + 0.5, np.zeros(6)])
    nb = nearest_neighbours(xy, 2)
    solved = [3, 0, 2, 5, 0, 4]
    seeds = set()
    for s in range(30):
        rng = np.random.default_rng(s)
        groups = pick_route_groups(route_of, [2] * 6, nb, cents, 2, 4, rng, solved)
        assert {groups[0][0], groups[1][0]} == {1, 4}
        seeds.add(groups[0][0])
    assert seeds == {1, 4}  # ties are drawn at random
    any_seed = {
        pick_route_groups(route_of, [2] * 6, nb, cents, 1, 2, np.random.default_rng(s))[0][0]
        for s in range(30)
    }
    assert len(any_seed) > 2


def _eccentric_problem(n: int = 60) -> RoutingProblem:
    """Depot at the west edge of a 100 x 40 field; capacity for about 15 clients a route."""
    rng = np.random.default_rng(7)
    depot = Depot("D", 20.0, 0.0)  # lat = y, lon = x (planar in these tests)
    stops = tuple(
        Stop(f"S{i}", float(rng.uniform(0, 40)), float(rng.uniform(10, 110)), weight_g=1)
        for i in range(n)
    )
    return RoutingProblem((depot,), stops, (truck(count=n, cap=15),), name="eccentric")


def test_decomposed_plain_cvrp_has_a_savings_plan_and_stays_feasible() -> None:
    p = _eccentric_problem()
    params = RoutingParams(direct_limit=10, part_size=20, rounds=2, group_routes=2)
    res = solve_routing(
        p, iterations=100, seed=1, executor=SerialExecutor(), provider=planar(p), params=params
    )
    assert_clean(p, res)
    assert res.stats["construction"] == "sweep"  # the sweep plan seeds the rounds
    # Rounds only keep improvements, and the savings plan is returned if still cheaper.
    assert res.cost() <= float(res.stats["initial_cost"])
    assert res.cost() <= float(res.stats["savings_cost"])
    assert res.stats["result_from"] in ("savings", "search")
    assert len(res.routes) >= math.ceil(60 / 15)
    assert not res.unassigned


def test_time_windows_fall_back_to_the_sweep_start() -> None:
    p = _eccentric_problem()
    p = RoutingProblem(
        p.depots,
        tuple(Stop(s.id, s.lat, s.lon, weight_g=1, tw_start=0, tw_end=10_000) for s in p.stops),
        p.vehicle_types,
    )
    params = RoutingParams(direct_limit=10, part_size=20, rounds=1)
    res = solve_routing(
        p, iterations=50, seed=1, executor=SerialExecutor(), provider=planar(p), params=params
    )
    assert_clean(p, res)
    assert res.stats["construction"] == "sweep"
    assert "savings_cost" not in res.stats


def _half_ring(n: int = 90, seed: int = 3) -> tuple[FloatArray, FloatArray, IntArray]:
    rng = np.random.default_rng(seed)
    ang = np.sort(rng.uniform(0.0, np.pi, n))
    rad = rng.uniform(10.0, 100.0, n)
    return ang, rad, rng.integers(1, 4, size=(n, 1)).astype(np.int64)


def test_packed_sweep_reaches_the_bin_packing_bound_with_balanced_loops() -> None:
    # 90 clients on a half ring around the depot, loads 1-3, capacity 40: the sweep cut
    # makes ceil(total / 40) routes of about equal load, each a loop out and back.
    ang, rad, loads = _half_ring()
    n, total = len(ang), int(loads.sum())
    sectors = packed_sweep_routes(ang, rad, loads, [40])
    routes = [r for sec in sectors for r in sec]
    assert all(len(sec) == 1 for sec in sectors)  # by default one route a sector
    assert sorted(c for r in routes for c in r) == list(range(n))
    assert len(routes) == math.ceil(total / 40)
    route_loads = [int(loads[r].sum()) for r in routes]
    assert max(route_loads) <= 40
    assert max(route_loads) - min(route_loads) <= 3  # balanced: within one client's load
    for r in routes:  # thin sectors: out by radius on one side, back on the other
        half = [c for c in r if ang[c] <= np.median(ang[r])]
        assert r[: len(half)] == sorted(half, key=lambda c: rad[c])
        assert rad[r[len(half) :]].tolist() == sorted(rad[r[len(half) :]], reverse=True)
    assert [max(ang[r]) for r in routes] == sorted(max(ang[r]) for r in routes)
    assert packed_sweep_routes(np.zeros(0), np.zeros(0), np.zeros((0, 1), np.int64), [5]) == []
    with pytest.raises(ValueError, match="sectors"):
        packed_sweep_routes(ang, rad, loads, [40], -1)


def test_packed_sweep_sectors_are_cut_into_bands_by_distance() -> None:
    # Two sectors of whole routes: within each the routes are bands, the nearest first.
    ang, rad, loads = _half_ring(200, seed=5)
    total = int(loads.sum())
    k = math.ceil(total / 40)
    sectors = packed_sweep_routes(ang, rad, loads, [40], 2)
    assert len(sectors) == 2
    assert sum(len(sec) for sec in sectors) == k  # still the bound
    assert max(ang[sectors[0][0]]) <= min(ang[sectors[1][0]])  # sectors follow the sweep
    for sec in sectors:
        assert all(int(loads[r].sum()) <= 40 for r in sec)
        assert [max(rad[r]) for r in sec] == sorted(max(rad[r]) for r in sec)


def test_long_routes_start_from_routes_packed_to_capacity() -> None:
    # Capacity for 60 of the 120 clients: two long routes from the west edge. Sweep parts
    # solved from scratch may round up part by part; the packed start keeps the bound.
    p = _eccentric_problem(120)
    p = RoutingProblem(p.depots, p.stops, (truck(count=120, cap=60),), name="long")
    # No memory for whole-instance solves: long routes above direct_limit are decomposed.
    params = RoutingParams(direct_limit=10, part_size=40, rounds=1, direct_memory_mb=0)
    res = solve_routing(
        p, iterations=50, seed=1, executor=SerialExecutor(), provider=planar(p), params=params
    )
    assert_clean(p, res)
    assert res.stats["construction"] == "packed sweep"
    assert res.stats["packed_cut"] in ("sectors", "bands", "savings")
    assert res.stats["parts"] == 2  # never more parts than packed routes
    assert len(res.routes) == 2
    # Below the threshold (or with time windows, see above) the sweep parts start from scratch.
    short = RoutingParams(direct_limit=10, part_size=40, rounds=1, long_route_clients=61)
    res = solve_routing(
        p, iterations=50, seed=1, executor=SerialExecutor(), provider=planar(p), params=short
    )
    assert_clean(p, res)
    assert res.stats["construction"] == "sweep"


def test_long_routes_go_to_pyvrp_whole_where_its_matrices_fit() -> None:
    p = _eccentric_problem(120)
    long = RoutingProblem(p.depots, p.stops, (truck(count=120, cap=60),), name="long")
    fits = RoutingParams(direct_limit=10, part_size=40, rounds=1)  # 1 GB: 121 locations fit
    tight = dataclasses.replace(fits, direct_memory_mb=0)
    short = dataclasses.replace(fits, long_route_clients=61)  # 60 clients a route: short
    for prob, params, mode in [
        (long, fits, "direct"),
        (long, tight, "decomposed"),
        (long, short, "decomposed"),
        (p, fits, "decomposed"),  # capacity for 15 clients a route
    ]:
        res = solve_routing(
            prob,
            iterations=50,
            seed=1,
            executor=SerialExecutor(),
            provider=planar(prob),
            params=params,
        )
        assert_clean(prob, res)
        assert res.stats["mode"] == mode, (prob.name, params)
    assert len(res.routes) >= 4


@pytest.mark.parametrize(
    "kw",
    [
        {"construction": "savings"},
        {"neighbours": 0},
        {"max_slice_growth": 0.5},
        {"long_route_clients": 0},
        {"covers": 0},
        {"direct_memory_mb": -1},
    ],
)
def test_bad_params_are_refused(kw: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="must be"):
        RoutingParams(**kw)  # type: ignore[arg-type]


def test_long_route_start_takes_the_fewest_routes_first() -> None:
    # A savings plan with a route more than the bound loses to the packed sweep, however
    # cheap: with long routes from the edge the route count decides.
    from relieflink.optim.routing import solver

    p = _eccentric_problem(120)
    p = RoutingProblem(p.depots, p.stops, (truck(count=120, cap=60),), name="long")
    prep = solver._prepare(p, planar(p))
    params = RoutingParams(direct_limit=10, part_size=40)
    nb = solver._piece_neighbours(prep, params.savings_neighbours)
    sav = solver._savings_start(prep, nb)
    assert sav is not None
    split = [solver._schedule(prep, 0, r.pieces[:1]) for r in sav]
    split += [solver._schedule(prep, 0, r.pieces[1:]) for r in sav]
    stats: dict[str, float | int | str] = {}
    packed = solver._packed_parts(prep, params, stats, split)
    assert packed is not None
    parts, seeds, budgets = packed
    assert stats["packed_cut"] in ("sectors", "bands")
    assert sum(len(s) for s in seeds) == 2  # the bound, not the split plan's routes
    assert sorted(p for part in parts for p in part) == list(range(120))
    assert [b[0] for b in budgets] == [len(s) + 59 for s in seeds]  # plus the spare share
