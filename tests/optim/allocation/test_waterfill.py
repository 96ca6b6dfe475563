"""The two water-filling kernels against a naive unit-by-unit reference."""

from __future__ import annotations

import numpy as np
import pytest

from relieflink.optim.allocation._waterfill import (
    _waterfill_bisect,
    _waterfill_table,
    count_below,
    waterfill,
)


def naive(q, w, base, supply, urgency=None):  # type: ignore[no-untyped-def]
    """First units by urgency when they are scarce (higher score, earlier arrival, smaller
    line); otherwise every unit above the ration sorted by (key, weight, line)."""
    waiting = [i for i in range(len(q)) if base[i] == 0 and q[i] > 0]
    spare = supply - int(base.sum())
    if spare < len(waiting):
        score, arrival = urgency or ([0.0] * len(q), [0.0] * len(q))
        waiting.sort(key=lambda i: (-score[i], arrival[i], i))
        a = base.astype(np.int64).copy()
        a[waiting[:spare]] += 1
        return a
    return levels_naive(q, w, base, supply)


def levels_naive(q, w, base, supply):  # type: ignore[no-untyped-def]
    """Every unit above the ration, sorted by (key, weight, line); take the first ones."""
    line, key = [], []
    for i in range(len(q)):
        for j in range(int(base[i]), int(q[i])):
            line.append(i)
            key.append(j / w[i])
    line_a = np.array(line, dtype=np.int64)
    key_a = np.array(key, dtype=np.float64)
    order = np.lexsort((line_a, w[line_a], key_a))
    a = base.astype(np.int64).copy()
    np.add.at(a, line_a[order[: supply - int(base.sum())]], 1)
    return a


@pytest.mark.parametrize("seed", range(40))
def test_kernels_match_naive_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 300))
    q = rng.integers(0, int(rng.integers(1, 12)), n).astype(np.int64)
    base = np.minimum(rng.integers(0, 3, n), q).astype(np.int64)
    if seed % 3 == 0:
        base[:] = 0
    wi = rng.integers(1, int(rng.integers(2, 9)), n).astype(np.int64)
    w = wi.astype(np.float64)
    lo, hi = int(base.sum()), int(q.sum())
    supply = int(rng.integers(lo, hi + 1))
    ids = np.arange(n, dtype=np.int64)
    pure = levels_naive(q, w, base, supply)
    if supply < hi and supply > lo:
        # the kernels are pure water-filling; the first-unit rule sits in front of them
        np.testing.assert_array_equal(
            _waterfill_table(q, w, base, supply, ids, wi, int(q.max())), pure
        )
        np.testing.assert_array_equal(_waterfill_bisect(q, w, base, supply, ids), pure)
    np.testing.assert_array_equal(waterfill(q, w, base, supply, ids, wi), naive(q, w, base, supply))
    score = rng.integers(0, 4, n).astype(np.float64)
    arrival = rng.permutation(n).astype(np.float64)
    np.testing.assert_array_equal(
        waterfill(q, w, base, supply, ids, wi, (score, arrival)),
        naive(q, w, base, supply, (score, arrival)),
    )
    # fractional weights go through the bisection kernel
    wf = rng.uniform(0.2, 5.0, n)
    np.testing.assert_array_equal(
        waterfill(q, wf, base, supply, ids, None), naive(q, wf, base, supply)
    )


def test_scarce_first_units_go_by_score_then_arrival() -> None:
    # three single people (weight 1, score 35) and a family of three (score 70), one unit:
    # the family; two units: the family and the earliest single person
    q = np.array([1, 1, 1, 1], dtype=np.int64)
    w = np.array([1.0, 1.0, 1.0, 3.0])
    base = np.zeros(4, dtype=np.int64)
    ids = np.arange(4, dtype=np.int64)
    urgency = (np.array([35.0, 35.0, 35.0, 70.0]), np.array([2.0, 0.0, 1.0, 3.0]))
    assert waterfill(q, w, base, 1, ids, None, urgency).tolist() == [0, 0, 0, 1]
    assert waterfill(q, w, base, 2, ids, None, urgency).tolist() == [0, 1, 0, 1]


def test_bisection_handles_large_groups_with_many_ties() -> None:
    rng = np.random.default_rng(7)
    n = 60_000
    q = rng.integers(1, 4, n).astype(np.int64)
    w = rng.integers(1, 4, n).astype(np.float64)
    base = np.zeros(n, dtype=np.int64)
    ids = np.arange(n, dtype=np.int64)
    for supply in (1, n // 2, n + 7, int(q.sum()) - 1):
        a = _waterfill_bisect(q, w, base, supply, ids)
        b = _waterfill_table(q, w, base, supply, ids, w.astype(np.int64), 3)
        np.testing.assert_array_equal(a, b)
        assert a.sum() == supply


def test_count_below_is_exact_at_keys() -> None:
    w = np.array([3.0, 7.0, 0.1, 10.0])
    for j in range(30):
        for k, wk in enumerate(w):
            level = j / wk
            # keys j'/w < j/w  <=>  j' < j
            assert count_below(level, w[k : k + 1])[0] == j


@pytest.mark.parametrize("max_key", [100, 70_000, 3_000_000_000, 2**40])
def test_radix_argsort_is_a_stable_sort(max_key: int) -> None:
    from relieflink.optim.allocation._engine import _argsort_key

    rng = np.random.default_rng(max_key % 1000)
    key = rng.integers(0, max_key, 5000).astype(np.int64)
    key[::7] = key[0]  # plenty of ties
    np.testing.assert_array_equal(_argsort_key(key, max_key), np.argsort(key, kind="stable"))
