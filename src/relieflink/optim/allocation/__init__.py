"""Fair allocation of scarce relief stock to demand lines (pure numpy, no database).

Public API
----------
solve_allocation(problem, *, params) -> AllocationResult
    The engine (semantics below).
solve_fcfs(problem, *, params) -> AllocationResult
    First-come-first-served baseline on the same input (arrival order, classes ignored).
evaluate(problem, result) -> AllocationOutcome
    Coverage per class, unmet units by item and by region, person-weighted Gini of packs per
    person per class, mean distance per unit.
check_allocation(problem, result) -> list[str]
    Independent feasibility checker (empty list = feasible).
solve_fair_lp(problem, *, params, per_item) -> LPAllocation
    Reference LP solved by HiGHS (scipy) for tests and benchmarks; ``fair_objective`` scores any
    allocation with the LP's objective.

Semantics
---------
* Whole units only. A demand line is one household's request for one item (kit).
* Strict priority: class 0 (medical) is served completely before class 1 (infant/maternity),
  then 2 (other vulnerable), then 3 (everyone). Within a class, items are processed in
  ``params.item_order`` (only matters when outbound capacity shared by items binds).
* For a (class, item) group the *supply* is what the warehouses can still ship:
  ``sum_w min(stock[w, j], capacity_left[w] // unit_weight[j])``.
* Minimum ration: if the supply covers ``min(min_ration, quantity)`` for every line of the group,
  each line gets it first; otherwise the group is water-filled without rations.
* Weighted water-filling: the level of a line is ``allocated / weight``; unit ``k`` of a line has
  key ``(k - 1) / weight`` (its level before receiving it) and units go out in increasing key
  order, so nobody receives a unit while an eligible line of the same group sits at a lower
  level: for an unmet line ``j`` and any line ``i`` holding units above its ration,
  ``(a_i - 1) / w_i <= a_j / w_j``. Exact ties go to the smaller weight, then the smaller line
  index; the sorted level vector is then leximin-optimal (checked against brute force).
* Sourcing: per delivery location, from the nearest warehouse (haversine metres, or
  ``problem.distance``) that can still ship the item; a warehouse short of units serves the
  locations nearest to it first. A line is split over warehouses only if its location's need
  straddles a warehouse running out (``split_*`` arrays).
* Deterministic: same input, same output (no randomness, stable sorts).
"""

from ._engine import solve_allocation, solve_fcfs
from ._lp import LPAllocation, fair_objective, objective_constant, solve_fair_lp
from ._outcome import AllocationOutcome, evaluate, weighted_gini
from ._problem import (
    CLASS_NAMES,
    AllocationParams,
    AllocationProblem,
    Demands,
    Locations,
    Warehouses,
)
from ._result import (
    LIMIT_CAPACITY,
    LIMIT_NONE,
    LIMIT_STOCK,
    AllocationResult,
    check_allocation,
)
from ._sourcing import distance_matrix, haversine_matrix

__all__ = [
    "CLASS_NAMES",
    "LIMIT_CAPACITY",
    "LIMIT_NONE",
    "LIMIT_STOCK",
    "AllocationOutcome",
    "AllocationParams",
    "AllocationProblem",
    "AllocationResult",
    "Demands",
    "LPAllocation",
    "Locations",
    "Warehouses",
    "check_allocation",
    "distance_matrix",
    "evaluate",
    "fair_objective",
    "haversine_matrix",
    "objective_constant",
    "solve_allocation",
    "solve_fair_lp",
    "solve_fcfs",
    "weighted_gini",
]
