"""The engine against independent references: HiGHS LP and brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from relieflink.optim.allocation import (
    AllocationParams,
    check_allocation,
    fair_objective,
    solve_allocation,
    solve_fair_lp,
)

from .helpers import make_problem, random_problem

NO_RATION = AllocationParams(use_min_ration=False)


def _group_min_levels(problem, allocated):  # type: ignore[no-untyped-def]
    d = problem.demands
    out = {}
    for c in range(4):
        for j in range(problem.n_items):
            sel = (d.priority == c) & (d.item == j) & (d.quantity > 0)
            if np.any(sel):
                out[(c, j)] = float(np.min(allocated[sel] / d.weight[sel]))
    return out


@pytest.mark.parametrize("seed", range(12))
def test_matches_lp_without_capacity(seed: int) -> None:
    rng = np.random.default_rng(seed)
    p = random_problem(
        rng,
        n=int(rng.integers(5, 120)),
        n_items=int(rng.integers(1, 4)),
        m=int(rng.integers(1, 5)),
        n_loc=int(rng.integers(1, 10)),
        capacity=False,
        min_ration=False,
        integer_weights=bool(seed % 2),
    )
    r = solve_allocation(p, params=NO_RATION)
    assert check_allocation(p, r) == []
    lp = solve_fair_lp(p)
    # LP optimum is integral here (no coupling between items)
    assert np.allclose(lp.allocated, np.round(lp.allocated), atol=1e-6)
    lp_alloc = np.round(lp.allocated)
    np.testing.assert_allclose(fair_objective(p, r.allocated), lp.objective, rtol=1e-9, atol=1e-6)
    np.testing.assert_array_equal(
        r.class_allocated,
        np.bincount(p.demands.priority, weights=lp_alloc, minlength=4).astype(np.int64),
    )
    ref_levels = _group_min_levels(p, lp_alloc)
    for (c, j), level in ref_levels.items():
        assert r.group_level[c, j] == pytest.approx(level, abs=1e-12)
    # scarce first units go to the same (most urgent) lines in both
    np.testing.assert_array_equal(r.allocated > 0, lp_alloc > 0)


@pytest.mark.parametrize("seed", range(8))
def test_matches_lp_with_capacity_on_one_item(seed: int) -> None:
    # with a single item of unit weight 1, capacity does not couple items and every
    # warehouse's shippable amount is min(stock, capacity): same optimum as the LP
    rng = np.random.default_rng(100 + seed)
    p = random_problem(
        rng,
        n=int(rng.integers(5, 80)),
        n_items=1,
        m=3,
        n_loc=5,
        capacity=True,
        min_ration=False,
        unit_weights=False,
    )
    r = solve_allocation(p, params=NO_RATION)
    lp = solve_fair_lp(p)
    np.testing.assert_allclose(fair_objective(p, r.allocated), lp.objective, rtol=1e-9, atol=1e-6)
    ref_levels = _group_min_levels(p, np.round(lp.allocated))
    for (c, j), level in ref_levels.items():
        assert r.group_level[c, j] == pytest.approx(level, abs=1e-12)


@pytest.mark.parametrize("seed", range(8))
def test_lp_bounds_top_class_when_capacity_couples_items(seed: int) -> None:
    # the joint per-class LP may share capacity between items better than the item-order rule,
    # never worse, for the first class served
    rng = np.random.default_rng(200 + seed)
    p = random_problem(rng, n=60, n_items=3, m=3, n_loc=5, capacity=True, min_ration=False)
    r = solve_allocation(p, params=NO_RATION)
    lp = solve_fair_lp(p, per_item=False)
    top = int(np.min(p.demands.priority[p.demands.quantity > 0]))
    assert fair_objective(p, r.allocated)[top] <= lp.objective[top] + 1e-6


def _leximin_brute_force(q, w, base, supply):  # type: ignore[no-untyped-def]
    """Sorted level vector of the leximin-best allocation with a_i in [base_i, q_i]."""
    best = None
    total = min(supply, sum(q))
    for a in itertools.product(*[range(b, qi + 1) for b, qi in zip(base, q, strict=True)]):
        if sum(a) != total:
            continue
        levels = sorted(ai / wi for ai, wi in zip(a, w, strict=True))
        if best is None or levels > best:
            best = levels
    return best


@pytest.mark.parametrize("seed", range(60))
def test_leximin_optimal_against_brute_force(seed: int) -> None:
    rng = np.random.default_rng(300 + seed)
    n = int(rng.integers(1, 5))
    q = rng.integers(0, 4, n).tolist()
    w = rng.integers(1, 4, n).astype(float).tolist()
    ration = rng.integers(0, 3, n).tolist()
    supply = int(rng.integers(0, 9))
    p = make_problem(quantity=q, weight=w, min_ration=ration, stock=[[supply]])
    r = solve_allocation(p)
    base = [min(m_, qi) for m_, qi in zip(ration, q, strict=True)]
    if sum(base) > supply or sum(base) == 0:
        base = [0] * n
    assert bool(r.group_min_ration[3, 0]) == (sum(base) > 0)
    waiting = [i for i in range(n) if base[i] == 0 and q[i] > 0]
    spare = supply - sum(base)
    if spare < len(waiting):
        # scarce first units: the most urgent lines (equal scores and arrivals: line order)
        want = list(base)
        for i in waiting[:spare]:
            want[i] += 1
        assert r.allocated.tolist() == want
        return
    got = sorted(a / wi for a, wi in zip(r.allocated.tolist(), w, strict=True))
    assert got == _leximin_brute_force(q, w, base, supply)


@pytest.mark.parametrize("seed", range(30))
def test_priority_coverage_against_brute_force(seed: int) -> None:
    # two items, two classes, several warehouses, no capacity: class coverage is the greedy
    # prefix of the pooled stock, and within each group the level vector is leximin-optimal
    rng = np.random.default_rng(400 + seed)
    n = int(rng.integers(2, 6))
    q = rng.integers(0, 3, n).tolist()
    item = rng.integers(0, 2, n).tolist()
    pr = rng.integers(0, 2, n).tolist()
    w = rng.integers(1, 3, n).astype(float).tolist()
    stock = rng.integers(0, 3, (2, 2)).tolist()
    p = make_problem(quantity=q, item=item, priority=pr, weight=w, stock=stock)
    r = solve_allocation(p)
    assert check_allocation(p, r) == []
    for j in range(2):
        left = int(np.sum(np.asarray(stock)[:, j]))
        for c in range(2):
            idx = [i for i in range(n) if item[i] == j and pr[i] == c]
            want = min(left, sum(q[i] for i in idx))
            assert sum(int(r.allocated[i]) for i in idx) == want
            left -= want
            best = _leximin_brute_force(
                [q[i] for i in idx], [w[i] for i in idx], [0] * len(idx), want
            )
            got = sorted(int(r.allocated[i]) / w[i] for i in idx)
            assert got == (best or [])
