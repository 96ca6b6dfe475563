"""A city's dispatch plan split by warehouse: every parcel in exactly one sub-problem (or
released with a reason), and the same plan on a Dask cluster as on the local pool."""

from __future__ import annotations

from collections import Counter
from datetime import date

from relieflink.dispatch import planning
from relieflink.dispatch.reach import FleetGroup
from relieflink.models import FleetKind, LockdownStatus
from relieflink.optim.routing import DaskExecutor, LocalProcessExecutor


def _city(warehouses: int = 3, gates: int = 8, per_gate: int = 3) -> planning.PlanInput:
    """Warehouses on a line, each with vans and e-bikes; open gates around each; one gate far
    out of every range (its parcels are released)."""
    places = {w: (31.0 + 0.05 * w, 121.3 + 0.05 * w) for w in range(1, warehouses + 1)}
    fleet = [
        FleetGroup(10 * w + k, 100, kind, w, n, cap, cap * 2, 30, rng, 28_800, 64_800, 5000, 300)
        for w in places
        for k, (kind, n, cap, rng) in enumerate(
            [(FleetKind.van, 2, 800_000, None), (FleetKind.ebike, 2, 60_000, 30_000)]
        )
    ]
    communities: dict[int, tuple[float, float, str, bool]] = {}
    parcels: list[planning.PlanParcel] = []
    for w, (lat, lon) in places.items():
        for g in range(gates):
            c = 1000 * w + g
            communities[c] = (lat + 0.003 * (g % 4), lon + 0.003 * (g // 4), "open", True)
            for h in range(per_gate):
                parcels.append(planning.PlanParcel(None, 10 * c + h, c, w, 15_000, 16_000, 3))
    communities[9] = (35.0, 125.0, LockdownStatus.sealed.value, False)  # no team, no robot
    parcels.append(planning.PlanParcel(None, 90, 9, 1, 15_000, 16_000, 3))
    return planning.PlanInput(date(2022, 4, 10), None, parcels, fleet, places, communities)


def _plan(sol: planning.PlanSolution) -> list[tuple[int, int, list[tuple[int, list[int]]]]]:
    return [
        (r.depot_id, r.vehicle_id, [(s.community_id, s.parcels) for s in r.stops])
        for r in sol.routes
    ]


def test_the_split_covers_every_parcel_exactly_once() -> None:
    inp = _city()
    problems, unassigned = planning.build_problems(inp)
    assert sorted(wp.warehouse_id for wp in problems) == [1, 2, 3]
    seen = Counter(i for wp in problems for chunk in wp.stop_parcels for i in chunk)
    seen.update(list(unassigned))
    assert seen == Counter(range(len(inp.parcels)))
    assert unassigned == {len(inp.parcels) - 1: unassigned[len(inp.parcels) - 1]}
    sol = planning.solve_plan(inp, iterations=50, seed=3, workers=1)
    routed = Counter(i for r in sol.routes for s in r.stops for i in s.parcels)
    assert all(n == 1 for n in routed.values())
    assert set(routed) | set(sol.unassigned) == set(range(len(inp.parcels)))
    assert not set(routed) & set(sol.unassigned)
    assert sol.violations == []


def test_dask_gives_the_same_plan_as_the_local_pool_with_fixed_iterations() -> None:
    from distributed import Client, LocalCluster

    inp = _city()
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        on_dask = planning.solve_plan(
            inp, iterations=30, seed=5, executor=DaskExecutor(client=client)
        )
    with LocalProcessExecutor(2) as pool:
        on_pool = planning.solve_plan(inp, iterations=30, seed=5, executor=pool)
    assert on_dask.routes and on_dask.violations == []
    assert _plan(on_dask) == _plan(on_pool)
    assert on_dask.unassigned == on_pool.unassigned
