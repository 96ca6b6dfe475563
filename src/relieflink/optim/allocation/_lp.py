"""Reference fair allocation by linear programming (HiGHS through scipy), for checks.

One variable ``y_u in [0, 1]`` per requested unit ``u = (line i, k-th unit)`` whose key is
``(k - 1) / w_i``, and a flow ``z[j, w] >= 0`` per (item, warehouse)::

    maximise   sum_u (C - key_u) y_u
    subject to sum_{u of item j} y_u = sum_w z[j, w]               for each item j
               z[j, w] <= stock_left[w, j]
               sum_j unit_weight[j] z[j, w] <= capacity_left[w]     for each warehouse w

With ``C`` larger than any key every extra unit pays, and among allocations of equal size the
objective prefers units of lower level, i.e. weighted water-filling. First units (key 0) tie;
a bonus too small to trade against any level (in total below half the smallest positive key)
ranks them by urgency, as the engine does: higher ``demands.score``, then earlier
``demands.arrival``, then smaller line index. The reported objective leaves the bonus out.
Strict priority is imposed by solving in stages and carrying the remaining stock and capacity
forward:

* ``per_item=True`` (default, the engine's semantics): one LP per (class, item) in the engine's
  order, with ``z[j, w] <= min(stock_left, capacity_left // unit_weight)`` (whole units);
* ``per_item=False``: one LP per class over all items together, letting HiGHS share each
  warehouse's capacity between items to maximise the objective (it favours light items and may
  ship fractional units). This shows what the engine's item-order rule costs when capacity binds.

The LP ignores minimum rations and the nearest-first rule (it may ship from any warehouse).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._problem import AllocationParams, AllocationProblem, validate_problem

__all__ = ["LPAllocation", "fair_objective", "objective_constant", "solve_fair_lp"]


def objective_constant(problem: AllocationProblem) -> float:
    """The constant ``C`` of the fair objective: 1 + the largest unit key."""
    d = problem.demands
    q = np.asarray(d.quantity, dtype=np.float64)
    w = np.asarray(d.weight, dtype=np.float64)
    if q.shape[0] == 0:
        return 1.0
    return 1.0 + float(np.max(np.maximum(q - 1.0, 0.0) / w))


def fair_objective(
    problem: AllocationProblem,
    allocated: NDArray[np.integer] | NDArray[np.floating],
    *,
    params: AllocationParams | None = None,
) -> NDArray[np.float64]:
    """Fair objective per class of an integer allocation: ``sum_i C a_i - a_i (a_i - 1) / (2 w_i)``.

    Parameters
    ----------
    problem : AllocationProblem
    allocated : ndarray, shape (n,)
        Units per line (e.g. ``AllocationResult.allocated``).
    params : AllocationParams, optional

    Returns
    -------
    ndarray of float64, shape (n_classes,)
    """
    params = params or AllocationParams()
    d = problem.demands
    a = np.asarray(allocated, dtype=np.float64)
    w = np.asarray(d.weight, dtype=np.float64)
    big = objective_constant(problem)
    per_line = big * a - a * (a - 1.0) / (2.0 * w)
    out: NDArray[np.float64] = np.bincount(
        np.asarray(d.priority).astype(np.intp), weights=per_line, minlength=params.n_classes
    ).astype(np.float64)
    return out


@dataclass(frozen=True, slots=True)
class LPAllocation:
    """Result of :func:`solve_fair_lp`.

    Attributes
    ----------
    allocated : ndarray of float64, shape (n,)
        Units per line (integral up to solver tolerance when capacity does not couple items).
    objective : ndarray of float64, shape (n_classes,)
        LP objective value per class.
    runtime_s : float
    """

    allocated: NDArray[np.float64]
    objective: NDArray[np.float64]
    runtime_s: float


def _first_unit_bonus(
    lines: NDArray[np.int64],
    score: NDArray[np.float64],
    arrival: NDArray[np.float64],
    w: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Per line of a stage, the bonus of its first unit: distinct, decreasing with urgency
    rank, and summing to less than half the smallest positive key (1 / max weight)."""
    n_l = lines.shape[0]
    order = np.lexsort((lines, arrival[lines], -score[lines]))
    rank = np.empty(n_l, dtype=np.float64)
    rank[order] = np.arange(n_l)
    bonus: NDArray[np.float64] = (n_l - rank) / (n_l * n_l) * 0.5 / float(w[lines].max())
    return bonus


def solve_fair_lp(
    problem: AllocationProblem,
    *,
    params: AllocationParams | None = None,
    per_item: bool = True,
) -> LPAllocation:
    """Solve the reference fair-allocation LP with HiGHS, in priority stages.

    Parameters
    ----------
    problem : AllocationProblem
    params : AllocationParams, optional
        ``n_classes`` and ``item_order`` are honoured; minimum rations are ignored.
    per_item : bool
        One LP per (class, item) (default, same staging as the engine) or one per class.

    Returns
    -------
    LPAllocation

    Raises
    ------
    RuntimeError
        If HiGHS does not report an optimal solution.
    """
    import scipy.sparse as sp  # imported here: scipy is only needed for the reference LP
    from scipy.optimize import linprog

    # scipy-stubs does not accept sparse matrices or an (n, 2) bounds array, which linprog
    # supports at runtime.
    _linprog: Any = linprog
    params = params or AllocationParams()
    validate_problem(problem, params)
    t0 = time.perf_counter()
    d = problem.demands
    stock = np.asarray(problem.stock, dtype=np.float64).copy()
    m, n_items = stock.shape
    uw = (
        np.ones(n_items)
        if problem.unit_weight is None
        else np.asarray(problem.unit_weight, dtype=np.float64)
    )
    cap = (
        None
        if problem.warehouses.capacity is None
        else np.asarray(problem.warehouses.capacity, dtype=np.float64).copy()
    )
    q = np.asarray(d.quantity, dtype=np.int64)
    w = np.asarray(d.weight, dtype=np.float64)
    item = np.asarray(d.item, dtype=np.int64)
    pr = np.asarray(d.priority, dtype=np.int64)
    n = q.shape[0]
    score = np.zeros(n) if d.score is None else np.asarray(d.score, dtype=np.float64)
    arrival = (
        np.arange(n, dtype=np.float64) if d.arrival is None else np.asarray(d.arrival, np.float64)
    )
    order = list(range(n_items)) if params.item_order is None else list(params.item_order)
    big = objective_constant(problem)
    allocated = np.zeros(q.shape[0])
    objective = np.zeros(params.n_classes)
    stages: list[tuple[int, list[int]]] = [
        (c, [j]) if per_item else (c, order)
        for c in range(params.n_classes)
        for j in (order if per_item else [0])
    ]
    for c, items in stages:
        in_stage = np.isin(item, items) if len(items) > 1 else item == items[0]
        lines = np.flatnonzero((pr == c) & (q > 0) & in_stage)
        if lines.shape[0] == 0:
            continue
        k_items = len(items)
        local = np.zeros(n_items, dtype=np.int64)
        local[items] = np.arange(k_items)
        ql = q[lines]
        n_u = int(ql.sum())
        owner = np.repeat(np.arange(lines.shape[0]), ql)
        k = np.arange(n_u) - np.repeat(np.cumsum(ql) - ql, ql)
        key = k / w[lines][owner]
        n_z = k_items * m
        cost = np.concatenate([-(big - key), np.zeros(n_z)])
        bonus = np.zeros(n_u + n_z)
        bonus[np.flatnonzero(k == 0)] = _first_unit_bonus(lines, score, arrival, w)
        zub = stock[:, items].T.copy()  # (k_items, m); z index = local_j * m + w
        if cap is not None and per_item:
            j = items[0]
            if uw[j] > 0:
                zub[0] = np.minimum(zub[0], np.floor(cap / uw[j]))
        ub = np.concatenate([np.ones(n_u), zub.reshape(-1)])
        rows_eq = np.concatenate([local[item[lines]][owner], np.repeat(np.arange(k_items), m)])
        vals_eq = np.concatenate([np.ones(n_u), -np.ones(n_z)])
        a_eq = sp.csr_array((vals_eq, (rows_eq, np.arange(n_u + n_z))), shape=(k_items, n_u + n_z))
        a_ub = None
        b_ub = None
        if cap is not None and not per_item:
            zc = np.arange(n_z)
            a_ub = sp.csr_array((uw[items][zc // m], (zc % m, n_u + zc)), shape=(m, n_u + n_z))
            b_ub = cap
        res = _linprog(
            cost - bonus,
            A_ub=a_ub,
            b_ub=b_ub,
            A_eq=a_eq,
            b_eq=np.zeros(k_items),
            bounds=np.column_stack([np.zeros(n_u + n_z), ub]),
            method="highs",
        )
        if res.status != 0:
            raise RuntimeError(f"HiGHS failed on class {c}, items {items}: {res.message}")
        x = np.asarray(res.x)
        allocated[lines] = np.bincount(owner, weights=x[:n_u], minlength=lines.shape[0])
        objective[c] += -float(cost @ x)
        z = x[n_u:].reshape(k_items, m).T  # (m, k_items)
        if per_item:
            z = np.round(z)
        stock[:, items] = np.maximum(stock[:, items] - z, 0.0)
        if cap is not None:
            cap = np.maximum(cap - z @ uw[items], 0.0)
    return LPAllocation(
        allocated=allocated, objective=objective, runtime_s=time.perf_counter() - t0
    )
