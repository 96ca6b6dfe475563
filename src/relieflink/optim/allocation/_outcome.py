"""Outcome measures: coverage, unmet demand by item and region, Gini, and a feasibility check."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ._problem import CLASS_NAMES, AllocationProblem
from ._result import AllocationResult
from ._sourcing import distance_matrix

__all__ = ["AllocationOutcome", "evaluate", "weighted_gini"]


def weighted_gini(values: NDArray[np.floating], weights: NDArray[np.floating]) -> float:
    """Gini coefficient of ``values`` with population ``weights`` (0 = perfectly equal).

    Parameters
    ----------
    values : ndarray, shape (k,)
        Non-negative values (e.g. packs per person of each line).
    weights : ndarray, shape (k,)
        Positive population weights (e.g. household size).

    Returns
    -------
    float
        ``1 - sum_i (P_i - P_{i-1}) (L_i + L_{i-1})`` on the Lorenz curve; 0.0 when there are
        no values or they are all zero.
    """
    v = np.asarray(values, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if v.shape[0] == 0:
        return 0.0
    o = np.argsort(v, kind="stable")
    v, w = v[o], w[o]
    vw = v * w
    total = float(vw.sum())
    if total <= 0.0:
        return 0.0
    p = np.cumsum(w) / float(w.sum())
    lor = np.cumsum(vw) / total
    dp = np.diff(np.concatenate(([0.0], p)))
    lprev = np.concatenate(([0.0], lor[:-1]))
    return float(1.0 - np.sum(dp * (lor + lprev)))


@dataclass(frozen=True, slots=True)
class AllocationOutcome:
    """Outcome measures of one allocation (see :func:`evaluate`).

    Attributes
    ----------
    method : str
    class_coverage : ndarray of float64, shape (n_classes,)
        Allocated / requested units per class.
    class_lines_served : ndarray of float64, shape (n_classes,)
        Share of lines (with quantity > 0) that got at least one unit.
    gini : ndarray of float64, shape (n_classes,)
        Person-weighted Gini of packs per person (``allocated / weight``) over the class's lines.
    unmet_by_item : ndarray of int64, shape (n_items,)
    unmet_by_region : ndarray of int64, shape (n_regions,) or None
    mean_distance_m : float
        Mean warehouse-to-location distance per allocated unit.
    """

    method: str
    class_coverage: NDArray[np.float64]
    class_lines_served: NDArray[np.float64]
    gini: NDArray[np.float64]
    unmet_by_item: NDArray[np.int64]
    unmet_by_region: NDArray[np.int64] | None
    mean_distance_m: float

    def summary(self) -> str:
        """Table of the per-class measures."""
        rows = [f"{'class':<18}{'coverage':>10}{'served':>10}{'gini':>8}"]
        for c in range(self.class_coverage.shape[0]):
            name = CLASS_NAMES[c] if c < len(CLASS_NAMES) else f"class{c}"
            rows.append(
                f"{name:<18}{self.class_coverage[c]:>10.3f}"
                f"{self.class_lines_served[c]:>10.3f}{self.gini[c]:>8.3f}"
            )
        rows.append(f"unmet units: {int(self.unmet_by_item.sum())}")
        rows.append(f"mean distance per unit: {self.mean_distance_m:.0f} m")
        return "\n".join(rows)


def evaluate(
    problem: AllocationProblem,
    result: AllocationResult,
    *,
    distance: NDArray[np.floating] | None = None,
) -> AllocationOutcome:
    """Compute outcome measures of ``result`` on ``problem``.

    Parameters
    ----------
    problem : AllocationProblem
    result : AllocationResult
    distance : ndarray, shape (n_locations, m), optional
        Location × warehouse metres; computed (haversine) if omitted.

    Returns
    -------
    AllocationOutcome
    """
    d = problem.demands
    n_cls = result.group_requested.shape[0]
    n_items = result.group_requested.shape[1]
    q = np.asarray(d.quantity)
    a = result.allocated
    pr = np.asarray(d.priority).astype(np.intp)
    w = np.asarray(d.weight, dtype=np.float64)
    pos = q > 0
    lines = np.bincount(pr[pos], minlength=n_cls)
    served = np.bincount(pr[pos & (a > 0)], minlength=n_cls)
    gini = np.zeros(n_cls)
    for c in range(n_cls):
        sel = pos & (pr == c)
        gini[c] = weighted_gini(a[sel] / w[sel], w[sel])
    unmet = result.unmet.astype(np.int64)
    by_item = np.bincount(np.asarray(d.item), weights=unmet, minlength=n_items).astype(np.int64)
    by_region = None
    if d.region is not None:
        by_region = np.bincount(np.asarray(d.region), weights=unmet).astype(np.int64)
    dist = distance_matrix(problem) if distance is None else np.asarray(distance)
    lines_s, wh_s, units_s = result.shipments()
    loc = np.asarray(d.location)[lines_s]
    tot = float(units_s.sum())
    mean_d = float((dist[loc, wh_s] * units_s).sum() / tot) if tot else 0.0
    return AllocationOutcome(
        method=result.method,
        class_coverage=result.class_coverage,
        class_lines_served=np.where(lines > 0, served / np.maximum(lines, 1), 1.0),
        gini=gini,
        unmet_by_item=by_item,
        unmet_by_region=by_region,
        mean_distance_m=mean_d,
    )
