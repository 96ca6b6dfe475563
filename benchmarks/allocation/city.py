"""Synthetic city for the allocation benchmarks (deterministic by seed, compact dtypes).

Households live in residential compounds (locations) spread over a 40 km × 40 km city around
Shanghai's centre; each household has one priority class, a size (the fairness weight) and asks
for 1-5 distinct items (mean about 3). Stock is about ``scarcity`` × demand per item, spread over
the warehouses; outbound capacity (grams per day) is ``capacity_ratio`` × the weight of the stock
each warehouse holds.
"""

from __future__ import annotations

import numpy as np

from relieflink.optim.allocation import AllocationProblem, Demands, Locations, Warehouses

CLASS_SHARE = (0.03, 0.06, 0.16, 0.75)  # medical, infant/maternity, other vulnerable, everyone


def make_city(
    *,
    households: int,
    items: int = 20,
    warehouses: int = 50,
    locations: int | None = None,
    lines_per_household: float = 3.0,
    scarcity: float = 0.6,
    capacity_ratio: float | None = 0.8,
    min_ration: bool = True,
    seed: int = 0,
) -> AllocationProblem:
    """Build a city-sized :class:`AllocationProblem` with struct-of-arrays demand lines."""
    rng = np.random.default_rng(seed)
    n_loc = locations or max(1, households // 500)
    # households per location: contiguous blocks (as a database ordered by compound would give)
    hh_loc = np.sort(rng.integers(0, n_loc, households)).astype(np.int32)
    hh_class = rng.choice(4, size=households, p=CLASS_SHARE).astype(np.int8)
    hh_size = rng.choice(np.arange(1, 7), size=households, p=[0.2, 0.3, 0.25, 0.15, 0.07, 0.03])
    # lines per household: 1..5 with mean ~ lines_per_household
    p5 = np.array([0.1, 0.2, 0.4, 0.2, 0.1])
    shift = lines_per_household - 3.0
    k = np.clip(rng.choice(np.arange(1, 6), size=households, p=p5) + round(shift), 1, items)
    k = k.astype(np.int64)
    n = int(k.sum())
    starts = np.cumsum(k) - k
    hh = np.repeat(np.arange(households, dtype=np.int32), k)
    t = np.arange(n, dtype=np.int64) - np.repeat(starts, k)
    first = rng.integers(0, items, households).astype(np.int64)
    item = ((np.repeat(first, k) + t) % items).astype(np.int8)
    del t, starts
    quantity = rng.integers(1, 4, n, dtype=np.int8)
    priority = hh_class[hh]
    weight = hh_size.astype(np.float32)[hh]
    location = hh_loc[hh]
    ration = np.ones(n, dtype=np.int8) if min_ration else None
    region = (location % 16).astype(np.int8)
    arrival = rng.permutation(n).astype(np.int32)

    lat0, lon0 = 31.23, 121.47
    loc_lat = lat0 + rng.uniform(-0.18, 0.18, n_loc)
    loc_lon = lon0 + rng.uniform(-0.21, 0.21, n_loc)
    wh_lat = lat0 + rng.uniform(-0.18, 0.18, warehouses)
    wh_lon = lon0 + rng.uniform(-0.21, 0.21, warehouses)

    demand = np.bincount(item, weights=quantity, minlength=items)
    stock = np.zeros((warehouses, items), dtype=np.int64)
    for j in range(items):
        share = rng.dirichlet(np.full(warehouses, 2.0))
        stock[:, j] = rng.multinomial(int(demand[j] * scarcity), share)
    unit_weight = rng.integers(200, 5000, items).astype(np.int64)  # grams per kit
    capacity = None
    if capacity_ratio is not None:
        capacity = (stock @ unit_weight * capacity_ratio).astype(np.int64)
    return AllocationProblem(
        demands=Demands(
            item=item,
            quantity=quantity,
            priority=priority,
            weight=weight,
            location=location,
            min_ration=ration,
            region=region,
            arrival=arrival,
        ),
        warehouses=Warehouses(lat=wh_lat, lon=wh_lon, capacity=capacity),
        locations=Locations(lat=loc_lat, lon=loc_lon),
        stock=stock,
        unit_weight=unit_weight,
    )
