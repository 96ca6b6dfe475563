"""Nearest-first sourcing of allocated units from warehouses.

Distances are per *location* (not per demand line): ``distance[l, w]`` in metres, by default the
great-circle (haversine) distance. Each location ranks the warehouses nearest first (ties by
warehouse index). Within one (class, item) group the per-location need is served in rounds:
in each round every location still short asks its nearest warehouse that can still ship the
item; a warehouse serves the requests closest to it first (ties by location index) up to its
remaining ``min(stock, capacity // unit_weight)``. Every round empties a warehouse or ends the
group, so after at most ``m + 1`` rounds every unit that the pooled supply covers is placed.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ._problem import AllocationProblem

EARTH_RADIUS_M = 6_371_008.8


def haversine_matrix(
    lat1: NDArray[np.floating],
    lon1: NDArray[np.floating],
    lat2: NDArray[np.floating],
    lon2: NDArray[np.floating],
    *,
    chunk: int = 65_536,
) -> NDArray[np.float64]:
    """Great-circle distance in metres between every point of set 1 and every point of set 2.

    Parameters
    ----------
    lat1, lon1 : ndarray, shape (a,)
        Degrees.
    lat2, lon2 : ndarray, shape (b,)
        Degrees.
    chunk : int
        Rows computed at a time (bounds temporary memory).

    Returns
    -------
    ndarray of float64, shape (a, b)
    """
    p2 = np.radians(np.asarray(lat2, dtype=np.float64))[None, :]
    l2 = np.radians(np.asarray(lon2, dtype=np.float64))[None, :]
    la1 = np.radians(np.asarray(lat1, dtype=np.float64))
    lo1 = np.radians(np.asarray(lon1, dtype=np.float64))
    out = np.empty((la1.shape[0], p2.shape[1]), dtype=np.float64)
    for s in range(0, la1.shape[0], chunk):
        p1 = la1[s : s + chunk, None]
        dphi = p2 - p1
        dlam = l2 - lo1[s : s + chunk, None]
        h = np.sin(dphi / 2.0) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlam / 2.0) ** 2
        out[s : s + chunk] = 2.0 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))
    return out


def source_group(
    pair_loc: NDArray[np.int64],
    need: NDArray[np.int64],
    avail: NDArray[np.int64],
    rank: NDArray[np.integer],
    distance: NDArray[np.floating],
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Place ``need[p]`` units for location ``pair_loc[p]`` nearest-first.

    ``avail`` (units each warehouse can still ship of this item) is updated in place. In each
    round every location still short asks its nearest warehouse with ``avail > 0``; each
    warehouse serves the requests nearest to it first (ties by location index). A round either
    satisfies every request or empties a warehouse, so there are at most ``m + 1`` rounds.

    Returns
    -------
    (pair, warehouse, units, rank) : tuple of int64 arrays
        One row per grant; ``rank`` is the warehouse's position in the location's
        nearest-first list.
    """
    m = avail.shape[0]
    need = need.copy()
    active = np.flatnonzero(need > 0)
    out_p: list[NDArray[np.int64]] = []
    out_w: list[NDArray[np.int64]] = []
    out_u: list[NDArray[np.int64]] = []
    out_r: list[NDArray[np.int64]] = []
    span = 0.0
    for _ in range(m + 1):
        if active.shape[0] == 0:
            break
        loc = pair_loc[active]
        pos = np.zeros(active.shape[0], dtype=np.int64)
        wh = rank[loc, 0].astype(np.int64)
        bad = np.flatnonzero(avail[wh] <= 0)
        if bad.shape[0]:
            ok = avail[rank[loc[bad]]] > 0
            if not np.all(ok.any(axis=1)):
                raise RuntimeError("internal: sourcing left need unplaced though supply covered it")
            pos[bad] = np.argmax(ok, axis=1)
            wh[bad] = rank[loc[bad], pos[bad]]
        need_a = need[active]
        demand = np.bincount(wh, weights=need_a, minlength=m)
        if np.all(demand <= avail):  # no warehouse is oversubscribed: everyone is served
            out_p.append(active)
            out_w.append(wh)
            out_u.append(need_a)
            out_r.append(pos)
            avail -= demand.astype(np.int64)
            need[active] = 0
            active = active[:0]
            break
        # by warehouse, then distance to it, then location (``active`` is in location order)
        d_sel = distance[loc, wh]
        if span == 0.0:
            span = float(distance[pair_loc].max()) * 2.0 + 1.0
        order = np.argsort(wh * span + d_sel, kind="stable")
        wh_o = wh[order]
        need_o = need[active[order]]
        before = np.cumsum(need_o) - need_o
        first = np.empty(wh_o.shape[0], dtype=bool)
        first[0] = True
        np.not_equal(wh_o[1:], wh_o[:-1], out=first[1:])
        seg0 = np.maximum.accumulate(np.where(first, np.arange(wh_o.shape[0]), 0))
        before -= before[seg0]
        give = np.minimum(np.maximum(avail[wh_o] - before, 0), need_o)
        got = give > 0
        pairs = active[order[got]]
        out_p.append(pairs)
        out_w.append(wh_o[got])
        out_u.append(give[got])
        out_r.append(pos[order[got]])
        avail -= np.bincount(wh_o[got], weights=give[got], minlength=m).astype(np.int64)
        need[pairs] -= give[got]
        active = active[need[active] > 0]
    if active.shape[0]:
        raise RuntimeError("internal: sourcing did not finish within m + 1 rounds")
    if not out_p:
        e = np.zeros(0, dtype=np.int64)
        return e, e, e, e
    return (
        np.concatenate(out_p),
        np.concatenate(out_w),
        np.concatenate(out_u),
        np.concatenate(out_r),
    )


def distance_matrix(problem: AllocationProblem) -> NDArray[np.float64]:
    """Location × warehouse distances in metres (``problem.distance`` or haversine)."""
    if problem.distance is not None:
        return np.asarray(problem.distance, dtype=np.float64)
    return haversine_matrix(
        problem.locations.lat,
        problem.locations.lon,
        problem.warehouses.lat,
        problem.warehouses.lon,
    )
