"""Weighted integer water-filling for one (class, item) group.

First units come first: when the supply cannot give every line its first unit (above its
minimum ration), the first units go to the most urgent lines (higher score, then earlier
arrival, then smaller line index) and nobody gets a second. Only once every line has one do the
rest follow the water-filling order below. (Breaking the ties at level 0 by weight, as the
water-filling does, gave all of a scarce kit to single people ahead of a family with an infant.)

Unit ``k`` (1-based) of line ``i`` has the *key* ``(k - 1) / w_i``: the level the line is at
*before* it receives that unit (keys are float64 ``j / w_i``, compared exactly). Units above the
minimum ration (``base_i``) are handed out in increasing key order ("the poorest line gets the
next unit"); ties at the last key are broken by smaller weight (the unit lifts that line's level
the most, which makes the sorted level vector leximin-optimal), then by smaller line index.

Two exact kernels find that set without a per-unit loop:

* integer weights (household sizes): per weight value ``v`` the number of units with key below
  a threshold ``L`` is a table lookup, so the threshold is found by binary search over the
  candidate keys ``j / v`` at a cost independent of the number of lines;
* general weights: a bracketed bisection on ``L`` with exact per-line counts, dropping lines whose
  count no longer changes inside the bracket, then selection among the few units left.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

#: Stop the bracket search once at most this many candidate units remain.
ENUM_LIMIT = 1 << 15
#: Largest (weight values × quantity values) table used by the integer-weight kernel.
TABLE_LIMIT = 1 << 22


def count_below(level: float, w: F64) -> F64:
    """Number of ``j >= 0`` with ``j / w < level`` (exact in float64 arithmetic)."""
    c = np.ceil(w * level)
    c -= (c > 0) & ((c - 1.0) / w >= level)
    c += c / w < level
    return c


def _take_ties(
    tied: NDArray[np.int64], w: NDArray[np.floating] | NDArray[np.integer], line_ids: I64, need: int
) -> NDArray[np.int64]:
    """The ``need`` entries of ``tied`` first by (weight, line id), in O(len(tied))."""
    if need >= tied.shape[0]:
        return tied
    if need <= 0:
        return tied[:0]
    wt = w[tied]
    w_cut = np.partition(wt, need - 1)[need - 1]
    lower = wt < w_cut
    rest = need - int(np.count_nonzero(lower))
    at = np.flatnonzero(wt == w_cut)
    ids = line_ids[tied[at]]
    if rest < at.shape[0]:
        id_cut = np.partition(ids, rest - 1)[rest - 1]
        at = at[ids <= id_cut]
    return np.concatenate([tied[lower], tied[at]])


def first_units(
    q: I64,
    base: I64,
    spare: int,
    score: NDArray[np.floating],
    arrival: NDArray[np.floating],
    line_ids: I64,
) -> I64 | None:
    """One unit each to the ``spare`` most urgent lines still at zero, when there are more such
    lines than ``spare`` units; ``None`` when every line can have its first unit.

    Parameters
    ----------
    q, base
        Requested and guaranteed units per line.
    spare
        Units left after the guaranteed ones.
    score, arrival, line_ids
        Urgency per line: higher score first, then earlier arrival, then smaller line id.

    Returns
    -------
    ndarray of int64 or None
        Units per line (``base`` plus the first units given), or ``None``.
    """
    waiting = np.flatnonzero((base == 0) & (q > 0))
    if spare >= waiting.shape[0]:
        return None
    a = base.astype(np.int64, copy=True)
    if spare > 0:
        order = np.lexsort((line_ids[waiting], arrival[waiting], -score[waiting]))
        a[waiting[order[:spare]]] += 1
    return a


def waterfill(
    q: I64,
    w: F64,
    base: I64,
    supply: int,
    line_ids: NDArray[np.int64],
    w_int: NDArray[np.integer] | None = None,
    urgency: tuple[NDArray[np.floating], NDArray[np.floating]] | None = None,
) -> I64:
    """Allocate ``supply`` units over lines in weighted max-min (water-filling) order.

    Parameters
    ----------
    q, w, base
        Requested units, weights (> 0) and guaranteed units (``0 <= base <= q``) per line;
        the caller guarantees ``base.sum() <= supply``.
    supply
        Units available for the group.
    line_ids
        Original line index per line (tie-break).
    w_int
        The weights as integers when they are all integral (enables the table kernel).
    urgency
        ``(score, arrival)`` per line, which decide first units when they are scarce (see
        :func:`first_units`); ``None``: all equal, the line id decides.

    Returns
    -------
    ndarray of int64
        Units per line, ``base <= a <= q``, ``a.sum() == min(supply, q.sum())``.
    """
    total = int(q.sum())
    if supply >= total:
        return q.astype(np.int64, copy=True)
    base_total = int(base.sum())
    if supply < base_total:
        raise ValueError("internal: supply below the minimum rations")
    if supply == base_total:
        return base.astype(np.int64, copy=True)
    score, arrival = urgency if urgency is not None else (np.zeros(q.shape[0]),) * 2
    scarce = first_units(q, base, supply - base_total, score, arrival, line_ids)
    if scarce is not None:
        return scarce
    if w_int is not None:
        wmax = int(w_int.max())
        qmax = int(q.max())
        if (wmax + 1) * (qmax + 2) <= TABLE_LIMIT:
            return _waterfill_table(q, w, base, supply, line_ids, w_int.astype(np.int64), qmax)
    return _waterfill_bisect(q, w, base, supply, line_ids)


def _waterfill_table(
    q: I64, w: F64, base: I64, supply: int, line_ids: I64, wi: I64, qmax: int
) -> I64:
    wmax = int(wi.max())
    width = qmax + 2
    size = (wmax + 1) * width
    # ge_q[v, t] = #lines of weight v with q >= t ; ge_b likewise for base
    hq = np.bincount(wi * width + q, minlength=size).reshape(wmax + 1, width)
    hb = np.bincount(wi * width + base, minlength=size).reshape(wmax + 1, width)
    ge_q = np.cumsum(hq[:, ::-1], axis=1)[:, ::-1]
    ge_b = np.cumsum(hb[:, ::-1], axis=1)[:, ::-1]
    # F[v, c] = sum_i min(c, q_i) + sum_i max(0, b_i - c)  for c = 0..qmax
    g = np.concatenate([np.zeros((wmax + 1, 1), np.int64), np.cumsum(ge_q[:, 1:], axis=1)], 1)
    h_tail = np.cumsum(ge_b[:, ::-1], axis=1)[:, ::-1]  # h_tail[v, t] = sum_{s >= t} ge_b[v, s]
    h = np.concatenate([h_tail[:, 1:], np.zeros((wmax + 1, 1), np.int64)], 1)
    f = (g + h)[:, : qmax + 1]
    present = np.flatnonzero(hq.sum(axis=1) > 0)
    vals = present.astype(np.float64)
    rows = f[present]

    def units_below(level: float) -> tuple[int, F64]:
        c = np.minimum(count_below(level, vals), float(qmax))
        return int(rows[np.arange(present.shape[0]), c.astype(np.int64)].sum()), c

    cand = np.unique((np.arange(qmax, dtype=np.float64)[None, :] / vals[:, None]).ravel())
    # largest candidate key K with units_below(K) <= supply (cand[0] = 0 always qualifies)
    lo, hi = 0, cand.shape[0]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if units_below(float(cand[mid]))[0] <= supply:
            lo = mid
        else:
            hi = mid
    k_star = float(cand[lo])
    t_k, c_v = units_below(k_star)
    c_tab = np.zeros(wmax + 1, dtype=np.int64)
    c_tab[present] = c_v.astype(np.int64)
    tie_tab = np.zeros(wmax + 1, dtype=bool)
    tie_tab[present] = (c_v < qmax) & (c_v / vals == k_star)
    c_line = c_tab[wi]
    a = np.minimum(np.maximum(c_line, base), q)
    need = supply - t_k
    if need > 0:
        tied = np.flatnonzero(tie_tab[wi] & (c_line >= base) & (c_line < q))
        a[_take_ties(tied, wi, line_ids, need)] += 1
    return a


def _waterfill_bisect(q: I64, w: F64, base: I64, supply: int, line_ids: I64) -> I64:
    n = q.shape[0]
    out = np.empty(n, dtype=np.float64)
    idx = np.arange(n, dtype=np.int64)
    wa = w.astype(np.float64, copy=False)
    qa = q.astype(np.float64)
    ba = base.astype(np.float64)
    a_lo = ba
    a_hi = qa
    open_ = qa > ba
    lo = 0.0
    hi = float(np.nextafter(float(((qa[open_] - 1.0) / wa[open_]).max()), np.inf))
    t_lo = float(base.sum())
    t_hi = float(q.sum())
    fixed = 0.0
    target = float(supply)
    while t_hi - t_lo > max(ENUM_LIMIT, 2 * idx.shape[0]):
        mid = lo + 0.5 * (hi - lo)
        if not (lo < mid < hi):
            break
        a_mid = count_below(mid, wa)
        np.maximum(a_mid, ba, out=a_mid)
        np.minimum(a_mid, qa, out=a_mid)
        t_mid = fixed + float(a_mid.sum())
        if t_mid <= target:
            lo, a_lo, t_lo = mid, a_mid, t_mid
        else:
            hi, a_hi, t_hi = mid, a_mid, t_mid
        diff = a_lo != a_hi
        n_diff = int(np.count_nonzero(diff))
        if n_diff < 0.75 * idx.shape[0]:
            done = ~diff
            out[idx[done]] = a_lo[done]
            fixed += float(a_lo[done].sum())
            idx, wa, qa, ba, a_lo, a_hi = (
                idx[diff],
                wa[diff],
                qa[diff],
                ba[diff],
                a_lo[diff],
                a_hi[diff],
            )

    # Candidate units with key in [lo, hi): exactly t_hi - t_lo of them.
    lo_i = a_lo.astype(np.int64)
    cnt = a_hi.astype(np.int64) - lo_i
    n_cand = int(cnt.sum())
    owner = np.repeat(np.arange(idx.shape[0], dtype=np.int64), cnt)
    starts = np.cumsum(cnt) - cnt
    j = lo_i[owner] + (np.arange(n_cand, dtype=np.int64) - starts[owner])
    key = j / wa[owner]
    need = round(target - t_lo)
    extra = np.zeros(idx.shape[0], dtype=np.int64)
    if need > 0:
        k_star = float(np.partition(key, need - 1)[need - 1])
        below = key < k_star
        extra += np.bincount(owner[below], minlength=idx.shape[0])
        tied_units = np.flatnonzero(key == k_star)  # at most one per line
        left = need - int(np.count_nonzero(below))
        owners = owner[tied_units]
        chosen = _take_ties(owners, wa, line_ids[idx], left)
        extra[chosen] += 1
    out[idx] = lo_i + extra
    return out.astype(np.int64)
