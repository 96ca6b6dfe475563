"""The allocation engine: strict class priority, weighted water-filling, nearest-first sourcing."""

from __future__ import annotations

import logging
import time
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from ._problem import AllocationParams, AllocationProblem, validate_problem
from ._result import LIMIT_CAPACITY, LIMIT_NONE, LIMIT_STOCK, AllocationResult
from ._sourcing import distance_matrix, source_group
from ._waterfill import waterfill

__all__ = ["solve_allocation", "solve_fcfs"]

logger = logging.getLogger(__name__)

_BIG = np.int64(1) << np.int64(62)


def solve_allocation(
    problem: AllocationProblem, *, params: AllocationParams | None = None
) -> AllocationResult:
    """Allocate scarce stock to demand lines: priority first, then weighted max-min fair.

    Classes are served in strict order (0 = medical first). Within a class, items are processed
    in ``params.item_order`` and, for each item, the units that the warehouses can still ship
    (``sum_w min(stock[w, j], capacity_left[w] // unit_weight[j])``) are shared by weighted
    water-filling: first every line's minimum ration if the supply covers all of them; then, if
    the supply cannot give every line its first unit, one unit each to the most urgent lines
    (higher ``demands.score``, then earlier ``demands.arrival``, then smaller line index) and
    no more; otherwise one unit at a time to the line with the lowest level
    ``allocated / weight`` (ties: smaller weight, then smaller line index; this makes the sorted
    vector of levels leximin-optimal once everyone has a first unit).
    Allocated units are sourced per location from the nearest warehouse that still has stock
    of the item and outbound capacity; a line is split over warehouses only when its
    location's need straddles a warehouse running out.

    Parameters
    ----------
    problem : AllocationProblem
        Stock, warehouses, locations and demand lines.
    params : AllocationParams, optional
        Engine options; defaults to ``AllocationParams()``.

    Returns
    -------
    AllocationResult
        Deterministic for the same input.

    Raises
    ------
    ValueError
        If the problem is malformed (shapes, negative stock or quantities, unknown class...).
    """
    params = params or AllocationParams()
    validate_problem(problem, params)
    return _solve(problem, params, "waterfill")


def solve_fcfs(
    problem: AllocationProblem, *, params: AllocationParams | None = None
) -> AllocationResult:
    """First-come-first-served baseline on the same input, for side-by-side comparison.

    Ignores classes, weights and minimum rations: for each item (in ``params.item_order``),
    lines are served in ``demands.arrival`` order (then line index), each taking all it asks
    for while supply lasts. Sourcing and capacity handling are the same as
    :func:`solve_allocation`.

    Parameters
    ----------
    problem : AllocationProblem
    params : AllocationParams, optional

    Returns
    -------
    AllocationResult
        With ``method == "fcfs"``.
    """
    params = params or AllocationParams()
    validate_problem(problem, params)
    return _solve(problem, params, "fcfs")


def _argsort_key(key: NDArray[np.int64], max_key: int) -> NDArray[np.int64]:
    """Stable argsort of non-negative int keys using 16-bit radix passes when possible."""
    if max_key < (1 << 16):
        return np.argsort(key.astype(np.uint16), kind="stable").astype(np.int64, copy=False)
    if max_key < (1 << 32):
        p1 = np.argsort((key & 0xFFFF).astype(np.uint16), kind="stable")
        hi = (key >> 16).astype(np.uint16)[p1]
        p2 = np.argsort(hi, kind="stable")
        return p1[p2].astype(np.int64, copy=False)
    return np.argsort(key, kind="stable").astype(np.int64, copy=False)


def _held_back(
    stock: NDArray[np.int64],
    unmet: NDArray[np.int32],
    limit: NDArray[np.int8],
    item: NDArray[np.integer],
) -> NDArray[np.int64]:
    """Units per (warehouse, item) that outbound capacity kept in, up to the unmet demand.

    A group short for capacity took all the supply it could ship, and capacity only shrinks, so
    whatever stock of its item is left at the end is stock no warehouse could send out.
    """
    held = np.zeros_like(stock)
    capped = limit == LIMIT_CAPACITY
    short = np.bincount(
        item[capped], weights=unmet[capped].astype(np.float64), minlength=stock.shape[1]
    ).astype(np.int64)
    for j in np.flatnonzero(short).tolist():
        left = int(short[j])
        for w in np.argsort(-stock[:, j], kind="stable").tolist():
            if left <= 0 or stock[w, j] <= 0:
                break
            held[w, j] = min(left, int(stock[w, j]))
            left -= int(held[w, j])
    return held


def _solve(
    problem: AllocationProblem, params: AllocationParams, method: Literal["waterfill", "fcfs"]
) -> AllocationResult:
    t0 = time.perf_counter()
    d = problem.demands
    n = d.n
    n_cls = params.n_classes
    stock = np.array(problem.stock, dtype=np.int64)  # copy: remaining stock
    m, n_items = stock.shape
    n_loc = problem.locations.size
    uw = (
        np.ones(n_items, dtype=np.int64)
        if problem.unit_weight is None
        else np.asarray(problem.unit_weight, dtype=np.int64)
    )
    cap = (
        None
        if problem.warehouses.capacity is None
        else np.array(problem.warehouses.capacity, dtype=np.int64)
    )
    item_order = (
        np.arange(n_items, dtype=np.int64)
        if params.item_order is None
        else np.asarray(params.item_order, dtype=np.int64)
    )
    item_rank = np.empty(n_items, dtype=np.int64)
    item_rank[item_order] = np.arange(n_items)

    dist = distance_matrix(problem)
    rank_dtype = np.int16 if m < (1 << 15) else np.int32
    rank: NDArray[np.integer] = np.argsort(dist, axis=1, kind="stable").astype(rank_dtype)

    quantity = np.asarray(d.quantity)
    item = np.asarray(d.item)
    priority = np.asarray(d.priority)

    # Processing groups: (class, item) for the engine, item only for FCFS. Lines are sorted by
    # (group, location); when the input is already ordered by location (as a database query
    # ordered by compound gives) one 16-bit radix pass over the group suffices.
    location = np.asarray(d.location)
    n_groups = n_cls * n_items if method == "waterfill" else n_items
    gdt: type[np.int16] | type[np.int64] = np.int16 if n_groups < (1 << 15) else np.int64
    item_rank_g: NDArray[np.signedinteger] = item_rank.astype(gdt)
    g_of_line: NDArray[np.signedinteger]
    if method == "waterfill":
        g_of_line = priority.astype(gdt)
        g_of_line *= n_items
        g_of_line += item_rank_g[item]
    else:
        g_of_line = item_rank_g[item]
    sizes_g = np.bincount(g_of_line, minlength=n_groups)
    gstart = np.concatenate(([0], np.cumsum(sizes_g)))
    loc_ordered = n < 2 or bool(np.all(location[1:] >= location[:-1]))
    if loc_ordered and n_groups < (1 << 15):
        perm = np.argsort(g_of_line.view(np.uint16), kind="stable").astype(np.int64, copy=False)
    else:
        key = g_of_line.astype(np.int64)
        key *= n_loc
        key += location
        perm = _argsort_key(key, n_groups * n_loc)
        del key
    del g_of_line
    loc_s = location[perm].astype(np.int32, copy=False)
    q_s = quantity[perm].astype(np.int64)
    use_min = method == "waterfill" and params.use_min_ration and d.min_ration is not None
    weight = np.asarray(d.weight)
    # integral weights (household sizes) enable the table kernel of water-filling
    w_int_all: NDArray[np.integer] | None = None
    if np.issubdtype(weight.dtype, np.integer):
        if n == 0 or int(weight.max()) <= 4096:
            w_int_all = weight.astype(np.int64)
    elif n == 0 or (float(weight.max()) <= 4096.0 and np.array_equal(weight, np.floor(weight))):
        w_int_all = weight.astype(np.int16)
    t_sort = time.perf_counter()

    alloc_s = np.zeros(n, dtype=np.int32)
    src_s = np.full(n, -1, dtype=np.int32)
    g_req = np.zeros((n_cls, n_items), dtype=np.int64)
    g_alloc = np.zeros((n_cls, n_items), dtype=np.int64)
    g_supply = np.zeros((n_cls, n_items), dtype=np.int64)
    g_level = np.full((n_cls, n_items), np.nan)
    g_limit = np.zeros((n_cls, n_items), dtype=np.int8)
    g_minr = np.zeros((n_cls, n_items), dtype=bool)
    shipped = np.zeros((m, n_items), dtype=np.int64)
    split_parts: list[tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]] = []
    arrival = None if d.arrival is None else np.asarray(d.arrival)
    score = None if d.score is None else np.asarray(d.score, dtype=np.float64)
    min_ration = None if d.min_ration is None else np.asarray(d.min_ration)

    for g in range(n_groups):
        s, e = int(gstart[g]), int(gstart[g + 1])
        if s == e:
            continue
        qg = q_s[s:e]
        req = int(qg.sum())
        if req == 0:
            continue
        j = int(item_order[g % n_items]) if method == "waterfill" else int(item_order[g])
        lines = perm[s:e]
        if cap is None or uw[j] == 0:
            avail = stock[:, j].copy()
        else:
            avail = np.minimum(stock[:, j], cap // uw[j])
        supply = int(avail.sum())
        if method == "waterfill":
            c = g // n_items
            if w_int_all is not None:
                w_int = w_int_all[lines]
                wg = w_int.astype(np.float64)
            else:
                w_int = None
                wg = weight[lines].astype(np.float64)
            if use_min:
                assert min_ration is not None
                base = np.minimum(min_ration[lines].astype(np.int64), qg)
                base_total = int(base.sum())
                if base_total == 0 or base_total > supply:
                    base = np.zeros_like(qg)
                else:
                    g_minr[c, j] = True
            else:
                base = np.zeros_like(qg)
            # Scores and arrivals matter only when first units are scarce: gather them then.
            urgency = None
            waiting = int(np.count_nonzero((base == 0) & (qg > 0)))
            if waiting > min(supply, req) - int(base.sum()):
                urgency = (
                    np.zeros(lines.shape[0]) if score is None else score[lines],
                    lines.astype(np.float64) if arrival is None else arrival[lines].astype(float),
                )
            a = waterfill(qg, wg, base, min(supply, req), lines, w_int, urgency)
            given = int(a.sum())
            g_req[c, j] += req
            g_alloc[c, j] += given
            g_supply[c, j] = supply
            lv = a / wg
            if int(qg.min()) == 0:
                lv = lv[qg > 0]
            g_level[c, j] = float(lv.min())
            if given < req:
                g_limit[c, j] = LIMIT_CAPACITY if int(stock[:, j].sum()) > supply else LIMIT_STOCK
        else:
            arr = lines if arrival is None else arrival[lines]
            order = np.lexsort((lines, arr))
            qo = qg[order]
            before = np.cumsum(qo) - qo
            a = np.empty_like(qg)
            a[order] = np.clip(supply - before, 0, qo)
            given = int(a.sum())
            cls = priority[lines]
            wg = weight[lines].astype(np.float64)
            lim = LIMIT_NONE
            if given < req:
                lim = LIMIT_CAPACITY if int(stock[:, j].sum()) > supply else LIMIT_STOCK
            for c in range(n_cls):
                mask = (cls == c) & (qg > 0)
                if not np.any(mask):
                    continue
                rq, gv = int(qg[mask].sum()), int(a[mask].sum())
                g_req[c, j], g_alloc[c, j], g_supply[c, j] = rq, gv, supply
                g_level[c, j] = float((a[mask] / wg[mask]).min())
                if gv < rq:
                    g_limit[c, j] = lim
        alloc_s[s:e] = a
        if given == 0:
            continue

        # Sourcing, per location of the group.
        lg = loc_s[s:e]
        first = np.empty(e - s, dtype=bool)
        first[0] = True
        np.not_equal(lg[1:], lg[:-1], out=first[1:])
        starts = np.flatnonzero(first)
        need = np.add.reduceat(a, starts)
        pair_loc = lg[starts].astype(np.int64)
        before_avail = avail.copy()
        gp, gw, gu, grd = source_group(pair_loc, need, avail, rank, dist)
        taken = before_avail - avail
        stock[:, j] -= taken
        shipped[:, j] += taken
        if cap is not None:
            cap -= uw[j] * taken
        n_pairs = starts.shape[0]
        grants_per_pair = np.bincount(gp, minlength=n_pairs)
        pair_wh = np.full(n_pairs, -1, dtype=np.int64)
        pair_wh[gp] = gw  # exact for single-grant pairs
        if int(grants_per_pair.max()) <= 1:  # every location served by one warehouse
            src_g = pair_wh[np.cumsum(first) - 1].astype(np.int32)
            src_g[a == 0] = -1
            src_s[s:e] = src_g
            continue
        pair_of_line = np.cumsum(first) - 1
        gpl = grants_per_pair[pair_of_line]
        has = a > 0
        single = has & (gpl == 1)
        src_g = np.full(e - s, -1, dtype=np.int32)
        src_g[single] = pair_wh[pair_of_line[single]]
        multi = np.flatnonzero(has & (gpl > 1))
        if multi.shape[0]:
            # Grants of multi-grant pairs, ordered by (pair, round) = nearest first.
            sel = grants_per_pair[gp] > 1
            gp_m, gw_m, gu_m = gp[sel], gw[sel], gu[sel]
            gr_m = grd[sel]
            o2 = np.lexsort((gr_m, gp_m))
            gw_m, gu_m = gw_m[o2], gu_m[o2]
            g_end = np.cumsum(gu_m)
            a_m = a[multi]
            l_end = np.cumsum(a_m)
            l_start = l_end - a_m
            k0 = np.searchsorted(g_end, l_start, side="right")
            k1 = np.searchsorted(g_end, l_end - 1, side="right")
            src_g[multi] = gw_m[k0]
            sp = np.flatnonzero(k1 > k0)
            if sp.shape[0]:
                cnt = k1[sp] - k0[sp] + 1
                owner = np.repeat(sp, cnt)
                off = np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt)
                k = k0[owner] + off
                piece = np.minimum(g_end[k], l_end[owner]) - np.maximum(
                    g_end[k] - gu_m[k], l_start[owner]
                )
                split_parts.append((lines[multi[owner]], gw_m[k], piece))
        src_s[s:e] = src_g
    t_loop = time.perf_counter()

    allocated = np.empty(n, dtype=np.int32)
    allocated[perm] = alloc_s
    source = np.empty(n, dtype=np.int32)
    source[perm] = src_s
    del alloc_s, src_s, perm, loc_s, q_s
    unmet = np.subtract(quantity, allocated, dtype=np.int32)
    limit = np.zeros(n, dtype=np.int8)
    short = np.flatnonzero(unmet > 0)
    limit[short] = g_limit[priority[short], item[short]]
    held_back = _held_back(stock, unmet, limit, item)
    if split_parts:
        sl = np.concatenate([p[0] for p in split_parts])
        sw = np.concatenate([p[1] for p in split_parts]).astype(np.int32)
        su = np.concatenate([p[2] for p in split_parts])
    else:
        sl, sw, su = (
            np.zeros(0, dtype=np.int64),
            np.zeros(0, dtype=np.int32),
            np.zeros(0, dtype=np.int64),
        )
    t1 = time.perf_counter()
    logger.info(
        "allocation %s: %d lines, %d groups, sort %.2fs, groups %.2fs, total %.2fs",
        method,
        n,
        n_groups,
        t_sort - t0,
        t_loop - t_sort,
        t1 - t0,
    )
    return AllocationResult(
        allocated=allocated,
        unmet=unmet,
        source=source,
        limit=limit,
        split_line=sl,
        split_warehouse=sw,
        split_units=su,
        group_requested=g_req,
        group_allocated=g_alloc,
        group_supply=g_supply,
        group_level=g_level,
        group_limit=g_limit,
        group_min_ration=g_minr,
        shipped=shipped,
        stock_remaining=stock,
        capacity_remaining=cap,
        held_back=held_back,
        method=method,
        runtime_s=t1 - t0,
    )
