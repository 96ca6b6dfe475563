"""Result and outcome dataclasses of the allocation engine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from ._problem import CLASS_NAMES

if TYPE_CHECKING:
    from ._problem import AllocationProblem

__all__ = ["LIMIT_CAPACITY", "LIMIT_NONE", "LIMIT_STOCK", "AllocationResult", "check_allocation"]

#: ``limit`` codes: the line got everything it asked for.
LIMIT_NONE = 0
#: the line's (class, item) group ran out of stock (no warehouse had more of the item).
LIMIT_STOCK = 1
#: stock of the item was left, but outbound capacity of the warehouses holding it was exhausted.
LIMIT_CAPACITY = 2


@dataclass(frozen=True, slots=True)
class AllocationResult:
    """Allocation of one round, per demand line, with per-(class, item) group figures.

    Attributes
    ----------
    allocated : ndarray of int32, shape (n,)
        Units given to each demand line.
    unmet : ndarray of int32, shape (n,)
        ``quantity - allocated``.
    source : ndarray of int32, shape (n,)
        Warehouse shipping the line's units; -1 if nothing is allocated. If the line is split
        (it appears in ``split_line``), this is the nearest warehouse used.
    limit : ndarray of int8, shape (n,)
        Why the line is short: :data:`LIMIT_NONE` (0, fully served), :data:`LIMIT_STOCK` (1) or
        :data:`LIMIT_CAPACITY` (2).
    split_line, split_warehouse, split_units : ndarray, shape (k,)
        Full breakdown of the (rare) lines whose units come from several warehouses (one row
        per (line, warehouse) piece, nearest first). All other lines ship entirely from
        ``source``. :meth:`shipments` gives the complete table.
    group_requested, group_allocated, group_supply : ndarray of int64, shape (n_classes, n_items)
        Units asked for, given, and available (stock that could still be shipped given
        capacity) when the group was processed.
    group_level : ndarray of float64, shape (n_classes, n_items)
        Max-min level reached: ``min(allocated / weight)`` over the group's lines with
        ``quantity > 0`` (NaN when the group has no demand).
    group_limit : ndarray of int8, shape (n_classes, n_items)
        Limit code of the group (0 when the whole group was served).
    group_min_ration : ndarray of bool, shape (n_classes, n_items)
        Whether minimum rations were granted in the group.
    shipped : ndarray of int64, shape (m, n_items)
        Units leaving each warehouse.
    stock_remaining : ndarray of int64, shape (m, n_items)
    capacity_remaining : ndarray of int64, shape (m,) or None
    held_back : ndarray of int64, shape (m, n_items)
        Units each warehouse still held but could not ship because its outbound capacity was
        used up, counted up to the demand that went unmet for that reason (lines with
        :data:`LIMIT_CAPACITY`); where several warehouses held such stock, the one holding the
        most is counted first. All zeros without capacities.
    method : str
        ``"waterfill"`` (the engine) or ``"fcfs"`` (first-come-first-served baseline).
    runtime_s : float
        Wall time of the solve.
    """

    allocated: NDArray[np.int32]
    unmet: NDArray[np.int32]
    source: NDArray[np.int32]
    limit: NDArray[np.int8]
    split_line: NDArray[np.int64]
    split_warehouse: NDArray[np.int32]
    split_units: NDArray[np.int64]
    group_requested: NDArray[np.int64]
    group_allocated: NDArray[np.int64]
    group_supply: NDArray[np.int64]
    group_level: NDArray[np.float64]
    group_limit: NDArray[np.int8]
    group_min_ration: NDArray[np.bool_]
    shipped: NDArray[np.int64]
    stock_remaining: NDArray[np.int64]
    capacity_remaining: NDArray[np.int64] | None
    held_back: NDArray[np.int64]
    method: str
    runtime_s: float

    @property
    def class_requested(self) -> NDArray[np.int64]:
        """Units requested per class, shape (n_classes,)."""
        return np.asarray(self.group_requested.sum(axis=1), dtype=np.int64)

    @property
    def class_allocated(self) -> NDArray[np.int64]:
        """Units allocated per class, shape (n_classes,)."""
        return np.asarray(self.group_allocated.sum(axis=1), dtype=np.int64)

    @property
    def class_coverage(self) -> NDArray[np.float64]:
        """Allocated / requested units per class (1.0 where nothing was requested)."""
        req = self.class_requested
        return np.where(req > 0, self.class_allocated / np.maximum(req, 1), 1.0)

    @property
    def class_level(self) -> NDArray[np.float64]:
        """Lowest max-min level over the items of each class (NaN if the class is empty)."""
        lv = self.group_level
        out = np.full(lv.shape[0], np.nan)
        for c in range(lv.shape[0]):
            row = lv[c][~np.isnan(lv[c])]
            if row.size:
                out[c] = row.min()
        return out

    def cost(self) -> int:
        """Total unmet units (lower is better; priority is not reflected here)."""
        return int(self.group_requested.sum() - self.group_allocated.sum())

    def is_feasible(self, problem: AllocationProblem) -> bool:
        """True if :func:`check_allocation` finds no violation on ``problem``."""
        return not check_allocation(problem, self)

    def shipments(self) -> tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.int64]]:
        """All (line, warehouse, units) rows, unsplit lines first then split pieces."""
        split = np.zeros(self.allocated.shape[0], dtype=bool)
        split[self.split_line] = True
        whole = np.flatnonzero((self.allocated > 0) & ~split)
        return (
            np.concatenate([whole, self.split_line]),
            np.concatenate([self.source[whole], self.split_warehouse]).astype(np.int32),
            np.concatenate([self.allocated[whole].astype(np.int64), self.split_units]),
        )

    def summary(self) -> str:
        """Human-readable table: coverage and max-min level per class."""
        n_cls = self.group_requested.shape[0]
        names = [CLASS_NAMES[c] if c < len(CLASS_NAMES) else f"class{c}" for c in range(n_cls)]
        lines = [
            f"allocation ({self.method}): {int(self.group_allocated.sum())} of "
            f"{int(self.group_requested.sum())} units in {self.runtime_s:.3f} s",
            f"{'class':<18}{'requested':>12}{'allocated':>12}{'coverage':>10}{'level':>8}",
        ]
        req, alc, cov, lvl = (
            self.class_requested,
            self.class_allocated,
            self.class_coverage,
            self.class_level,
        )
        for c in range(n_cls):
            lines.append(f"{names[c]:<18}{req[c]:>12}{alc[c]:>12}{cov[c]:>10.3f}{lvl[c]:>8.3f}")
        short = int(np.count_nonzero(self.group_limit == LIMIT_CAPACITY))
        if short:
            lines.append(f"{short} (class, item) groups limited by outbound capacity")
        return "\n".join(lines)


def check_allocation(problem: AllocationProblem, result: AllocationResult) -> list[str]:
    """Independent feasibility check; returns a list of violations (empty when feasible).

    Checks whole units, ``0 <= allocated <= quantity``, that shipments add up to each line's
    allocation, stock per (warehouse, item), outbound capacity per warehouse, and that the
    reported remaining stock matches.
    """
    errors: list[str] = []
    d = problem.demands
    q = np.asarray(d.quantity, dtype=np.int64)
    a = result.allocated.astype(np.int64)
    n = q.shape[0]
    if a.shape != (n,):
        return [f"allocated has shape {a.shape}, expected ({n},)"]
    if np.any(a < 0) or np.any(a > q):
        errors.append("allocated outside [0, quantity]")
    if not np.array_equal(result.unmet.astype(np.int64), q - a):
        errors.append("unmet != quantity - allocated")
    stock = np.asarray(problem.stock, dtype=np.int64)
    m, n_items = stock.shape
    lines, wh, units = result.shipments()
    if np.any(units <= 0):
        errors.append("non-positive shipment")
    if np.any((wh < 0) | (wh >= m)):
        errors.append("shipment from unknown warehouse")
        return errors
    per_line = np.bincount(lines, weights=units, minlength=n).astype(np.int64)
    if not np.array_equal(per_line, a):
        errors.append("shipments do not add up to allocated units per line")
    item = np.asarray(d.item).astype(np.int64)
    used = np.zeros((m, n_items), dtype=np.int64)
    np.add.at(used, (wh, item[lines]), units)
    if np.any(used > stock):
        w_, j_ = np.argwhere(used > stock)[0]
        errors.append(f"warehouse {w_} ships {used[w_, j_]} of item {j_}, stock {stock[w_, j_]}")
    if not np.array_equal(stock - used, result.stock_remaining):
        errors.append("stock_remaining inconsistent with shipments")
    if problem.warehouses.capacity is not None:
        uw = (
            np.ones(n_items, dtype=np.int64)
            if problem.unit_weight is None
            else np.asarray(problem.unit_weight, dtype=np.int64)
        )
        load = used @ uw
        cap = np.asarray(problem.warehouses.capacity, dtype=np.int64)
        if np.any(load > cap):
            w_ = int(np.argmax(load - cap))
            errors.append(f"warehouse {w_} ships load {load[w_]} over capacity {cap[w_]}")
    return errors
