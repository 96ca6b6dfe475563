"""Granular construction and route neighbourhoods for the decomposed search.

Two ideas from the large-scale CVRP literature, re-implemented here (no code taken):

- *Granular savings* (as FILO/FILO2 start): Clarke–Wright parallel savings restricted to each
  client's ``k`` nearest neighbours, so a start for 20,000 clients takes seconds and, unlike a
  polar sweep, lets a route run as far out from an eccentric depot as its capacity allows.
- *Route neighbourhoods* (as the route-based decomposition of Santini, Schneider, Vidal and
  Vigo, 2023): two routes are neighbours when many clients of one have a near neighbour in the
  other. A route's centroid says little about which routes it can trade with when routes are
  long and leave from the edge of the area; shared client neighbourhoods do.
- *Packed sweep* (the classic sweep of Gillett and Miller, cut by load): routes packed to
  capacity in polar order keep the route count at the bin-packing bound, which matters most
  when routes are long; with many routes, sectors are cut into bands by distance so that a
  route serves one area instead of running the whole way out.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree

__all__ = [
    "nearest_neighbours",
    "packed_sweep_routes",
    "pick_route_groups",
    "savings_routes",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def nearest_neighbours(xy: FloatArray, k: int) -> IntArray:
    """The ``k`` nearest other points of every point, nearest first.

    Parameters
    ----------
    xy
        Planar coordinates, shape ``(n, 2)``.
    k
        Neighbours per point (capped at ``n - 1``).

    Returns
    -------
    numpy.ndarray
        Shape ``(n, min(k, n - 1))``; row ``i`` never holds ``i`` itself.
    """
    n = len(xy)
    k = min(k, n - 1)
    if k <= 0:
        return np.zeros((n, 0), dtype=np.int64)
    _, idx = cKDTree(xy).query(xy, k=k + 1)
    idx = np.asarray(idx, dtype=np.int64).reshape(n, k + 1)
    own = idx == np.arange(n)[:, None]
    # With duplicate points a row may not list itself first (or at all): drop the last column.
    own[~own.any(axis=1), -1] = True
    own[np.cumsum(own, axis=1) > 1] = False
    out: IntArray = idx[~own].reshape(n, k)
    return out


def savings_routes(
    depot_out: IntArray,
    depot_in: IntArray,
    neighbours: IntArray,
    neighbour_dist: IntArray,
    loads: IntArray,
    capacity: Sequence[int],
) -> list[list[int]]:
    """Clarke–Wright parallel savings over a granular neighbour list.

    Parameters
    ----------
    depot_out, depot_in
        Distance from the depot to each client and from each client back, shape ``(n,)``.
    neighbours
        Candidate partners of each client, shape ``(n, k)`` (see :func:`nearest_neighbours`).
    neighbour_dist
        ``neighbour_dist[i, j]`` is the distance from ``i`` to ``neighbours[i, j]``.
    loads
        Load of each client per capacity dimension, shape ``(n, m)``.
    capacity
        Vehicle capacity per dimension (``m`` values).

    Returns
    -------
    list[list[int]]
        Routes as client sequences, every client exactly once; no route exceeds ``capacity``
        (a client heavier than the capacity on its own stays alone in its route).
    """
    n = len(depot_out)
    if n == 0:
        return []
    k = neighbours.shape[1]
    ii = np.repeat(np.arange(n, dtype=np.int64), k)
    jj = neighbours.reshape(-1)
    # Joining i -> j saves the return from i and the trip out to j, at the cost of i -> j.
    sav = depot_in[ii] + depot_out[jj] - neighbour_dist.reshape(-1)
    keep = (sav > 0) & (ii != jj)
    ii, jj, sav = ii[keep], jj[keep], sav[keep]
    order = np.lexsort((jj, ii, -sav))  # deterministic: ties by client index
    cap = [int(c) for c in capacity]
    route_of = list(range(n))
    routes: dict[int, list[int]] = {i: [i] for i in range(n)}
    load: dict[int, list[int]] = {i: [int(x) for x in loads[i]] for i in range(n)}
    for i, j in zip(ii[order].tolist(), jj[order].tolist(), strict=True):
        ri, rj = route_of[i], route_of[j]
        if ri == rj:
            continue
        a, b = routes[ri], routes[rj]
        la, lb = load[ri], load[rj]
        if any(x + y > c for x, y, c in zip(la, lb, cap, strict=True)):
            continue
        # i must end its route and j start its own; a route may be turned round to get there
        # (savings assume symmetric distances; the real route cost is taken later).
        if a[-1] != i and a[0] != i:
            continue
        if b[0] != j and b[-1] != j:
            continue
        if a[-1] != i:
            a.reverse()
        if b[0] != j:
            b.reverse()
        keep_r, gone_r = (ri, rj) if len(a) >= len(b) else (rj, ri)
        merged = a + b
        routes[keep_r] = merged
        load[keep_r] = [x + y for x, y in zip(la, lb, strict=True)]
        for c in routes[gone_r]:
            route_of[c] = keep_r
        del routes[gone_r], load[gone_r]
    return [routes[r] for r in sorted(routes)]


def _balanced_cut(
    order: IntArray, loads: IntArray, cap: IntArray, sizes: Sequence[int]
) -> list[IntArray]:
    """Cut ``order`` into consecutive runs holding ``sizes[j]`` routes' shares of the load
    each (a share: the total over ``sum(sizes)``); a run also closes before it would exceed
    ``cap`` times its size, and whatever is left after the last target forms one more run."""
    total_routes = max(1, sum(sizes))
    share = loads[order].sum(axis=0) / total_routes
    used = share > 0  # a dimension no client uses never closes a run
    targets = np.cumsum(sizes)
    runs: list[IntArray] = []
    start = 0
    load = np.zeros_like(cap)
    swept = np.zeros(len(cap), dtype=np.float64)
    for pos, c in enumerate(order.tolist()):
        j = min(len(runs), len(sizes) - 1)
        full = bool(np.any(load + loads[c] > cap * sizes[j]))
        # Close before ``c`` where taking it would overshoot the target by more than half
        # its load, so runs stay on target and the cut makes no run more than needed.
        reached = len(runs) < len(sizes) and bool(
            np.all((swept + loads[c] / 2 > share * targets[len(runs)])[used])
        )
        if pos > start and (full or reached):
            runs.append(order[start:pos])
            start, load = pos, np.zeros_like(cap)
        load += loads[c]
        swept += loads[c]
    runs.append(order[start:])
    return runs


def packed_sweep_routes(
    angle: FloatArray,
    radius: FloatArray,
    loads: IntArray,
    capacity: Sequence[int],
    sectors: int = 0,
) -> list[list[list[int]]]:
    """Routes cut from a polar sweep, packed to capacity and balanced, sector by sector.

    Clients are taken in order of ``angle`` (the caller starts the sweep where it wants,
    e.g. at the widest angular gap) and cut into ``sectors`` sectors of whole routes' worth
    of load, the fewest routes that capacity allows in all, each about the same load. Inside
    a sector the clients are cut by ``radius`` into its routes: bands, near ones first, so
    that a route serves one area instead of running the whole way out as a thin sector
    does when there are many routes. Inside a route the clients of its inner half go one
    way round by angle and the outer half come back (a loop, which a local search then
    tidies). Sector boundaries fall at multiples of a route's share of the load, which keeps
    the number of routes at (or next to) the bin-packing bound: sweep *parts* each solved on
    their own round their vehicle counts up part by part, and with long routes every extra
    route pays the trip out from the depot.

    Parameters
    ----------
    angle, radius
        Polar coordinates of each client around the depot, shape ``(n,)``.
    loads
        Load of each client per capacity dimension, shape ``(n, m)``.
    capacity
        Vehicle capacity per dimension (``m`` values).
    sectors
        Number of sectors (capped at the number of routes; ``0``: one route a sector).

    Returns
    -------
    list[list[list[int]]]
        For each sector in sweep order, its routes; every client is on exactly one route
        and no route exceeds ``capacity`` (a client heavier than the capacity on its own
        stays alone in its route).
    """
    n = len(angle)
    if n == 0:
        return []
    if sectors < 0:
        raise ValueError("sectors must be >= 0")
    cap = np.asarray(capacity, dtype=np.int64)
    loads = np.asarray(loads, dtype=np.int64).reshape(n, -1)
    usable = cap > 0
    total = loads.sum(axis=0)
    k = max(1, int(np.max(np.ceil(total[usable] / cap[usable]), initial=1)))
    n_sec = k if sectors == 0 else min(k, sectors)
    sizes = [len(a) for a in np.array_split(np.arange(k), n_sec)]
    order = np.lexsort((np.arange(n), angle))
    out: list[list[list[int]]] = []
    for j, sector in enumerate(_balanced_cut(order, loads, cap, sizes)):
        by_radius = sector[np.lexsort((sector, radius[sector]))]
        k_s = sizes[j] if j < len(sizes) else 1
        out.append(
            [_loop(ra, angle, radius) for ra in _balanced_cut(by_radius, loads, cap, [1] * k_s)]
        )
    return out


def _loop(ra: IntArray, angle: FloatArray, radius: FloatArray) -> list[int]:
    """A loop through a polar cell: along its longer side out on one half, back on the other."""
    depth = float(np.ptp(radius[ra]))
    width = float(np.ptp(angle[ra]) * np.mean(radius[ra]))
    if depth >= width:  # a thin sector: out by radius on one side, back on the other
        split, along = angle, radius
    else:  # a band: across by angle on the inner side, back on the outer
        split, along = radius, angle
    mid = np.median(split[ra])
    one, two = ra[split[ra] <= mid], ra[split[ra] > mid]
    return [int(x) for x in one[np.lexsort((one, along[one]))]] + [
        int(x) for x in two[np.lexsort((two, -along[two]))]
    ]


def pick_route_groups(
    route_of: IntArray,
    route_sizes: Sequence[int],
    neighbours: IntArray,
    centroids: FloatArray,
    width: int,
    size: int,
    rng: np.random.Generator,
    solved: Sequence[int] | None = None,
) -> list[list[int]]:
    """Pick up to ``width`` disjoint groups of routes that trade clients with each other.

    A group grows from a seed route, drawn at random among the free routes re-optimised
    longest ago (``solved``), by adding, each time, the free route nearest the
    seed (by centroid) among those with a client that is a near neighbour of a client in the
    group (when none is linked: the nearest free route), until it holds at least ``size``
    clients. A route that shares no neighbourhood with the group, however close its centroid,
    waits until the linked ones are taken.

    Parameters
    ----------
    route_of
        Route index of each client (``-1``: on no route).
    route_sizes
        Number of clients of each route.
    neighbours
        Nearest neighbours of each client, shape ``(n, k)``.
    centroids
        Centroid of each route, shape ``(routes, 2)``; breaks ties.
    width
        Maximum number of groups.
    size
        Target number of clients per group.
    rng
        Chooses the seed routes.
    solved
        The last round that re-optimised each route (lower: longer ago). Seeds come from the
        free routes with the lowest value, so successive rounds cover the whole plan before
        they return to a region; ``None``: any free route.

    Returns
    -------
    list[list[int]]
        Disjoint lists of route indices.
    """
    n_routes = len(route_sizes)
    if n_routes == 0:
        return []
    members: list[list[int]] = [[] for _ in range(n_routes)]
    for c, r in enumerate(route_of.tolist()):
        if r >= 0:
            members[r].append(c)
    free = np.ones(n_routes, dtype=bool)
    stamp = None if solved is None else np.asarray(solved, dtype=np.int64)
    groups: list[list[int]] = []
    for _ in range(width):
        cand = np.flatnonzero(free)
        if len(cand) == 0:
            break
        if stamp is not None:
            cand = cand[stamp[cand] == stamp[cand].min()]
        cur = int(rng.choice(cand))
        grp = [cur]
        free[cur] = False
        links = np.zeros(n_routes, dtype=np.int64)
        n = route_sizes[cur]
        d2 = ((centroids - centroids[cur]) ** 2).sum(axis=1)
        while n < size and free.any():
            nb = route_of[neighbours[members[cur]].reshape(-1)]
            links += np.bincount(nb[nb >= 0], minlength=n_routes)
            linked = np.flatnonzero(free & (links > 0))
            # Among routes sharing client neighbours with the group, the one nearest the seed
            # keeps the part compact (fewer clients on its border); none linked: nearest.
            pool = linked if len(linked) else np.flatnonzero(free)
            cur = int(pool[np.argmin(d2[pool])])
            grp.append(cur)
            free[cur] = False
            n += route_sizes[cur]
        groups.append(grp)
    return groups
