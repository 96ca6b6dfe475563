"""Builders of small allocation problems for the tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from relieflink.optim.allocation import (
    AllocationProblem,
    Demands,
    Locations,
    Warehouses,
)


def make_problem(
    *,
    quantity: Sequence[int],
    stock: Sequence[Sequence[int]],
    item: Sequence[int] | None = None,
    priority: Sequence[int] | None = None,
    weight: Sequence[float] | None = None,
    location: Sequence[int] | None = None,
    min_ration: Sequence[int] | None = None,
    region: Sequence[int] | None = None,
    arrival: Sequence[int] | None = None,
    score: Sequence[float] | None = None,
    capacity: Sequence[int] | None = None,
    unit_weight: Sequence[int] | None = None,
    distance: Sequence[Sequence[float]] | None = None,
    n_locations: int | None = None,
) -> AllocationProblem:
    """Problem with defaults: one item, class 3, weight 1, location 0."""
    n = len(quantity)
    st = np.asarray(stock, dtype=np.int64)
    m = st.shape[0]
    loc = np.zeros(n, dtype=np.int64) if location is None else np.asarray(location)
    n_loc = n_locations or (int(loc.max()) + 1 if n else 1)
    if distance is None:
        # locations on a line east of the warehouses' row; distance grows with warehouse index
        dist = np.tile(np.arange(1, m + 1, dtype=np.float64) * 1000.0, (n_loc, 1))
    else:
        dist = np.asarray(distance, dtype=np.float64)
    return AllocationProblem(
        demands=Demands(
            item=np.zeros(n, dtype=np.int64) if item is None else np.asarray(item),
            quantity=np.asarray(quantity, dtype=np.int64),
            priority=np.full(n, 3) if priority is None else np.asarray(priority),
            weight=np.ones(n) if weight is None else np.asarray(weight, dtype=np.float64),
            location=loc,
            min_ration=None if min_ration is None else np.asarray(min_ration),
            region=None if region is None else np.asarray(region),
            arrival=None if arrival is None else np.asarray(arrival),
            score=None if score is None else np.asarray(score, dtype=np.float64),
        ),
        warehouses=Warehouses(
            lat=np.zeros(m),
            lon=np.zeros(m),
            capacity=None if capacity is None else np.asarray(capacity, dtype=np.int64),
        ),
        locations=Locations(lat=np.zeros(n_loc), lon=np.zeros(n_loc)),
        stock=st,
        unit_weight=None if unit_weight is None else np.asarray(unit_weight),
        distance=dist,
    )


def random_problem(
    rng: np.random.Generator,
    *,
    n: int,
    n_items: int,
    m: int,
    n_loc: int,
    n_classes: int = 4,
    max_q: int = 4,
    capacity: bool = True,
    min_ration: bool = True,
    integer_weights: bool = True,
    scarcity: float = 0.5,
    unit_weights: bool = True,
) -> AllocationProblem:
    """Random instance with haversine geometry around a city centre."""
    item = rng.integers(0, n_items, n)
    q = rng.integers(0, max_q + 1, n)
    demand_per_item = np.bincount(item, weights=q, minlength=n_items)
    stock = np.zeros((m, n_items), dtype=np.int64)
    for j in range(n_items):
        total = int(demand_per_item[j] * scarcity * rng.uniform(0.3, 1.7))
        share = rng.dirichlet(np.ones(m))
        stock[:, j] = rng.multinomial(total, share)
    uw = rng.integers(1, 4, n_items) if unit_weights else np.ones(n_items, dtype=np.int64)
    cap = None
    if capacity:
        load = int((stock @ uw).sum())
        cap = rng.integers(0, max(2, 2 * load // m + 2), m)
    w = rng.integers(1, 6, n).astype(np.float64) if integer_weights else rng.uniform(0.3, 4.0, n)
    return AllocationProblem(
        demands=Demands(
            item=item,
            quantity=q,
            priority=rng.integers(0, n_classes, n),
            weight=w,
            location=rng.integers(0, n_loc, n),
            min_ration=rng.integers(0, 3, n) if min_ration else None,
            region=rng.integers(0, 3, n),
            arrival=rng.permutation(n),
            score=rng.integers(0, 4, n) * 10.0,
        ),
        warehouses=Warehouses(
            lat=31.2 + rng.uniform(-0.1, 0.1, m),
            lon=121.4 + rng.uniform(-0.1, 0.1, m),
            capacity=cap,
        ),
        locations=Locations(
            lat=31.2 + rng.uniform(-0.1, 0.1, n_loc), lon=121.4 + rng.uniform(-0.1, 0.1, n_loc)
        ),
        stock=stock,
        unit_weight=uw,
    )
