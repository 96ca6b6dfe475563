"""Property tests (Hypothesis) of the allocation engine and the FCFS baseline."""

from __future__ import annotations

import os

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relieflink.optim.allocation import (
    AllocationParams,
    AllocationProblem,
    AllocationResult,
    check_allocation,
    distance_matrix,
    solve_allocation,
    solve_fcfs,
)

from .helpers import random_problem

# ALLOC_EXAMPLES=2000 for a longer hunt; the default keeps the suite fast
SETTINGS = settings(
    max_examples=int(os.environ.get("ALLOC_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@st.composite
def problems(draw: st.DrawFn) -> AllocationProblem:
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    return random_problem(
        rng,
        n=draw(st.integers(0, 150)),
        n_items=draw(st.integers(1, 4)),
        m=draw(st.integers(1, 5)),
        n_loc=draw(st.integers(1, 12)),
        max_q=draw(st.integers(1, 6)),
        capacity=draw(st.booleans()),
        min_ration=draw(st.booleans()),
        integer_weights=draw(st.booleans()),
        scarcity=draw(st.floats(0.0, 1.5)),
    )


def _shippable_left(p: AllocationProblem, r: AllocationResult) -> np.ndarray:
    """Units of each item each warehouse could still ship, shape (m, n_items)."""
    left = r.stock_remaining.copy()
    if r.capacity_remaining is not None:
        uw = np.asarray(p.unit_weight, dtype=np.int64)
        per = np.where(uw > 0, r.capacity_remaining[:, None] // np.maximum(uw, 1), left)
        left = np.minimum(left, per)
    return left


@SETTINGS
@given(problems())
def test_feasible_and_deterministic(p: AllocationProblem) -> None:
    r = solve_allocation(p)
    assert check_allocation(p, r) == []
    r2 = solve_allocation(p)
    for field in ("allocated", "source", "limit", "split_line", "split_units", "group_level"):
        np.testing.assert_array_equal(getattr(r, field), getattr(r2, field))
    f = solve_fcfs(p)
    assert check_allocation(p, f) == []


@SETTINGS
@given(problems())
def test_strict_priority_between_classes(p: AllocationProblem) -> None:
    r = solve_allocation(p)
    d = p.demands
    for j in range(p.n_items):
        for c in range(4):
            short = (d.item == j) & (d.priority == c) & (r.unmet > 0)
            if np.any(short):
                later = (d.item == j) & (d.priority > c)
                assert r.allocated[later].sum() == 0, (j, c)


@SETTINGS
@given(problems())
def test_group_gets_all_it_can(p: AllocationProblem) -> None:
    r = solve_allocation(p)
    np.testing.assert_array_equal(r.group_allocated, np.minimum(r.group_requested, r.group_supply))
    # a short group leaves nothing shippable of its item behind
    left = _shippable_left(p, r)
    for c, j in zip(*np.nonzero(r.group_allocated < r.group_requested), strict=True):
        assert left[:, j].sum() == 0, (c, j)


@SETTINGS
@given(problems())
def test_water_filling_within_class(p: AllocationProblem) -> None:
    """No line holds a unit above the ration at a level higher than an unmet line's level."""
    r = solve_allocation(p)
    d = p.demands
    w = np.asarray(d.weight, dtype=np.float64)
    a = r.allocated.astype(np.int64)
    ration = (
        np.zeros_like(a)
        if d.min_ration is None
        else np.minimum(np.asarray(d.min_ration), np.asarray(d.quantity))
    )
    for c in range(4):
        for j in range(p.n_items):
            g = (d.item == j) & (d.priority == c) & (d.quantity > 0)
            if not np.any(g):
                continue
            base = ration[g] if r.group_min_ration[c, j] else np.zeros(int(g.sum()), np.int64)
            assert np.all(a[g] >= base)
            unmet = r.unmet[g] > 0
            if not np.any(unmet):
                continue
            poorest_unmet = float(np.min(a[g][unmet] / w[g][unmet]))
            above = a[g] > base
            if np.any(above):
                top_key = float(np.max((a[g][above] - 1) / w[g][above]))
                assert top_key <= poorest_unmet
            # the ration is granted whenever the group's supply covered it
            if d.min_ration is not None and 0 < ration[g].sum() <= r.group_supply[c, j]:
                assert r.group_min_ration[c, j]


@SETTINGS
@given(problems())
def test_nearest_warehouse_with_stock(p: AllocationProblem) -> None:
    """A shipment from warehouse w means every nearer warehouse had nothing left to ship."""
    r = solve_allocation(p)
    left = _shippable_left(p, r)
    dist = distance_matrix(p)
    lines, wh, _ = r.shipments()
    loc = np.asarray(p.demands.location)[lines]
    item = np.asarray(p.demands.item)[lines]
    for li, w_, j in zip(loc.tolist(), wh.tolist(), item.tolist(), strict=True):
        nearer = (dist[li] < dist[li, w_]) | (
            (dist[li] == dist[li, w_]) & (np.arange(len(dist[li])) < w_)
        )
        assert left[nearer, j].sum() == 0


@SETTINGS
@given(problems(), st.permutations(range(4)))
def test_item_order_only_matters_through_capacity(p: AllocationProblem, perm: list[int]) -> None:
    order = [i for i in perm if i < p.n_items]
    r1 = solve_allocation(p, params=AllocationParams(item_order=order))
    assert check_allocation(p, r1) == []
    if p.warehouses.capacity is None:
        r0 = solve_allocation(p)
        np.testing.assert_array_equal(r0.allocated, r1.allocated)


@SETTINGS
@given(problems())
def test_fcfs_serves_in_arrival_order(p: AllocationProblem) -> None:
    f = solve_fcfs(p)
    d = p.demands
    arrival = np.asarray(d.arrival)
    for j in range(p.n_items):
        g = np.flatnonzero((d.item == j) & (d.quantity > 0))
        order = g[np.argsort(arrival[g], kind="stable")]
        short = np.flatnonzero(f.unmet[order] > 0)
        if short.size:
            assert f.allocated[order[short[0] + 1 :]].sum() == 0
