"""Input dataclasses of the allocation engine and their validation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "CLASS_NAMES",
    "AllocationParams",
    "AllocationProblem",
    "Demands",
    "Locations",
    "Warehouses",
]

#: Names of the default priority classes, index = class number (0 is served first).
CLASS_NAMES: tuple[str, ...] = ("medical", "infant_maternity", "other_vulnerable", "everyone")

IntArray = NDArray[np.integer]
FloatArray = NDArray[np.floating]
NumArray = NDArray[np.integer] | NDArray[np.floating]


@dataclass(frozen=True, slots=True)
class Demands:
    """Demand lines, struct-of-arrays: one entry per (household, item) request.

    Line ``i`` is identified by its position; the caller keeps the mapping to households and
    request ids. When a (class, item) group's supply cannot give every line its first unit,
    first units go by higher ``score``, then earlier ``arrival``, then smaller index; later
    units go by water-filling level, exact ties to the smaller weight, then the smaller index.
    Order lines by a stable id (e.g. request id) for reproducible results.

    Parameters
    ----------
    item : ndarray of int, shape (n,)
        Item (kit) index, ``0 <= item < n_items`` (column of the stock matrix).
    quantity : ndarray of int, shape (n,)
        Whole units requested, ``>= 0``. Lines with 0 are ignored.
    priority : ndarray of int, shape (n,)
        Priority class, ``0 <= priority < params.n_classes``; 0 = medical (served first),
        1 = infant/maternity, 2 = other vulnerable, 3 = everyone.
    weight : ndarray of float, shape (n,)
        Fairness weight ``> 0`` (e.g. household size). The *level* of a line holding ``a``
        units is ``a / weight`` (packs per person).
    location : ndarray of int, shape (n,)
        Index into :class:`Locations` (a building, compound or grid cell). Sourcing is decided
        per location, so group households that share a delivery point.
    min_ration : ndarray of int, shape (n,), optional
        Minimum ration in units; effective value is ``min(min_ration, quantity)``. Granted to
        every line of a (class, item) group before any line gets more, if the group's
        available supply covers all of them; otherwise ignored for that group.
    region : ndarray of int, shape (n,), optional
        Region label index ``>= 0`` (e.g. district) for unmet-demand reporting.
    arrival : ndarray of int or float, shape (n,), optional
        Arrival order (smaller = earlier): the first-come-first-served baseline's order, and
        the engine's tie-break for first units after ``score``; defaults to the line index.
    score : ndarray of int or float, shape (n,), optional
        Priority score within a class (higher = more urgent, e.g. the ration policy's score).
        Decides who gets a first unit when a group cannot give one to every line; defaults to
        0 for every line (arrival order then decides).
    """

    item: IntArray
    quantity: IntArray
    priority: IntArray
    weight: NumArray
    location: IntArray
    min_ration: IntArray | None = None
    region: IntArray | None = None
    arrival: NumArray | None = None
    score: NumArray | None = None

    @property
    def n(self) -> int:
        """Number of demand lines."""
        return int(np.asarray(self.item).shape[0])


@dataclass(frozen=True, slots=True)
class Warehouses:
    """Warehouses (sources of stock).

    Parameters
    ----------
    lat, lon : ndarray of float, shape (m,)
        Coordinates in degrees (WGS84).
    capacity : ndarray of int, shape (m,), optional
        Daily outbound capacity in *capacity units* (e.g. grams, or pieces when every item's
        ``unit_weight`` is 1). ``None`` means unlimited.
    """

    lat: FloatArray
    lon: FloatArray
    capacity: IntArray | None = None

    @property
    def m(self) -> int:
        """Number of warehouses."""
        return int(np.asarray(self.lat).shape[0])


@dataclass(frozen=True, slots=True)
class Locations:
    """Delivery locations referenced by :attr:`Demands.location`.

    Parameters
    ----------
    lat, lon : ndarray of float, shape (n_locations,)
        Coordinates in degrees (WGS84).
    """

    lat: FloatArray
    lon: FloatArray

    @property
    def size(self) -> int:
        """Number of locations."""
        return int(np.asarray(self.lat).shape[0])


@dataclass(frozen=True, slots=True)
class AllocationProblem:
    """One allocation round (e.g. one day): stock, warehouses, locations and demand lines.

    Parameters
    ----------
    demands : Demands
        The demand lines.
    warehouses : Warehouses
        Warehouse coordinates and outbound capacity.
    locations : Locations
        Delivery points referenced by ``demands.location``.
    stock : ndarray of int, shape (m, n_items)
        Units of each item available at each warehouse, ``>= 0``.
    unit_weight : ndarray of int, shape (n_items,), optional
        Capacity units consumed by one unit of each item (e.g. grams per kit); default 1.
        0 means the item does not count against capacity.
    distance : ndarray of float, shape (n_locations, m), optional
        Distance (metres) from each location to each warehouse. If omitted, great-circle
        (haversine) distance is used. Pass a road-distance matrix here to change sourcing.
    """

    demands: Demands
    warehouses: Warehouses
    locations: Locations
    stock: IntArray
    unit_weight: IntArray | None = None
    distance: FloatArray | None = None

    @property
    def n_items(self) -> int:
        """Number of items (columns of ``stock``)."""
        return int(np.asarray(self.stock).shape[1])


@dataclass(frozen=True, slots=True)
class AllocationParams:
    """Engine options.

    Parameters
    ----------
    n_classes : int
        Number of priority classes (default 4, see :data:`CLASS_NAMES`).
    item_order : sequence of int, optional
        Order in which items are processed within a class. Only matters when warehouse
        capacity is shared by several items and binds: earlier items are served first.
        Default: ascending item index.
    use_min_ration : bool
        Honour ``Demands.min_ration`` (default True).
    """

    n_classes: int = 4
    item_order: Sequence[int] | None = None
    use_min_ration: bool = True


def _arr(name: str, value: object, ndim: int = 1) -> NDArray[np.generic]:
    a = np.asarray(value)
    if a.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array, got shape {a.shape}")
    return a


def _int_arr(name: str, value: object, ndim: int = 1) -> NDArray[np.integer]:
    a = _arr(name, value, ndim)
    if a.size and not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{name} must hold integers (whole units), got dtype {a.dtype}")
    return a.astype(np.int64, copy=False) if a.size == 0 else a  # type: ignore[return-value]


def _check_range(name: str, a: NDArray[np.generic], lo: float, hi: float | None = None) -> None:
    if a.size == 0:
        return
    amin = a.min()
    if amin < lo:
        where = int(np.argmin(a))
        raise ValueError(f"{name}[{where}] = {amin} is below the minimum {lo}")
    if hi is not None:
        amax = a.max()
        if amax >= hi:
            where = int(np.argmax(a))
            raise ValueError(f"{name}[{where}] = {amax} is out of range (must be < {hi})")


def validate_problem(problem: AllocationProblem, params: AllocationParams) -> None:
    """Raise ``ValueError`` with a clear message if the problem is malformed."""
    if params.n_classes < 1 or params.n_classes > 127:
        raise ValueError(f"params.n_classes must be in 1..127, got {params.n_classes}")
    stock = _int_arr("stock", problem.stock, ndim=2)
    m, n_items = stock.shape
    if m < 1:
        raise ValueError("stock must have at least one warehouse row")
    _check_range("stock", stock, 0)
    wh = problem.warehouses
    for name, v in (("warehouses.lat", wh.lat), ("warehouses.lon", wh.lon)):
        a = _arr(name, v)
        if a.shape != (m,):
            raise ValueError(f"{name} has shape {a.shape}, expected ({m},) = rows of stock")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name} contains non-finite coordinates")
    if wh.capacity is not None:
        cap = _int_arr("warehouses.capacity", wh.capacity)
        if cap.shape != (m,):
            raise ValueError(f"warehouses.capacity has shape {cap.shape}, expected ({m},)")
        _check_range("warehouses.capacity", cap, 0)
    if problem.unit_weight is not None:
        uw = _int_arr("unit_weight", problem.unit_weight)
        if uw.shape != (n_items,):
            raise ValueError(f"unit_weight has shape {uw.shape}, expected ({n_items},)")
        _check_range("unit_weight", uw, 0)
    loc = problem.locations
    n_loc = _arr("locations.lat", loc.lat).shape[0]
    if _arr("locations.lon", loc.lon).shape != (n_loc,):
        raise ValueError("locations.lat and locations.lon differ in length")
    if problem.distance is None:
        for name, v in (("locations.lat", loc.lat), ("locations.lon", loc.lon)):
            if not np.all(np.isfinite(np.asarray(v))):
                raise ValueError(f"{name} contains non-finite coordinates")
    else:
        d = _arr("distance", problem.distance, ndim=2)
        if d.shape != (n_loc, m):
            raise ValueError(f"distance has shape {d.shape}, expected ({n_loc}, {m})")
        if not np.all(np.isfinite(d)) or (d.size and d.min() < 0):
            raise ValueError("distance must be finite and >= 0")
    if params.item_order is not None:
        order = np.asarray(params.item_order)
        if order.shape != (n_items,) or not np.array_equal(np.sort(order), np.arange(n_items)):
            raise ValueError(f"params.item_order must be a permutation of 0..{n_items - 1}")

    d_ = problem.demands
    n = _arr("demands.item", d_.item).shape[0]
    fields: list[tuple[str, object, bool]] = [
        ("item", d_.item, True),
        ("quantity", d_.quantity, True),
        ("priority", d_.priority, True),
        ("weight", d_.weight, False),
        ("location", d_.location, True),
        ("min_ration", d_.min_ration, True),
        ("region", d_.region, True),
        ("arrival", d_.arrival, False),
        ("score", d_.score, False),
    ]
    for name, val, integral in fields:
        if val is None:
            continue
        a_: NDArray[np.generic] = (
            _int_arr(f"demands.{name}", val) if integral else _arr(f"demands.{name}", val)
        )
        if a_.shape != (n,):
            raise ValueError(f"demands.{name} has shape {a_.shape}, expected ({n},)")
    if n == 0:
        return
    _check_range("demands.item", np.asarray(d_.item), 0, n_items)
    _check_range("demands.quantity", np.asarray(d_.quantity), 0)
    pr = np.asarray(d_.priority)
    if pr.min() < 0 or pr.max() >= params.n_classes:
        bad = int(np.flatnonzero((pr < 0) | (pr >= params.n_classes))[0])
        raise ValueError(
            f"demands.priority[{bad}] = {pr[bad]} is an unknown class "
            f"(must be 0..{params.n_classes - 1})"
        )
    w = np.asarray(d_.weight)
    if not np.issubdtype(w.dtype, np.number) or np.issubdtype(w.dtype, np.complexfloating):
        raise ValueError(f"demands.weight must be real numbers, got dtype {w.dtype}")
    if not (np.all(np.isfinite(w)) and w.min() > 0):
        bad = int(np.flatnonzero(~np.isfinite(w) | (w <= 0))[0])
        raise ValueError(f"demands.weight[{bad}] = {w[bad]} must be finite and > 0")
    _check_range("demands.location", np.asarray(d_.location), 0, n_loc)
    if d_.min_ration is not None:
        _check_range("demands.min_ration", np.asarray(d_.min_ration), 0)
    if d_.region is not None:
        _check_range("demands.region", np.asarray(d_.region), 0)
    if d_.arrival is not None:
        arr = np.asarray(d_.arrival)
        if not np.issubdtype(arr.dtype, np.number) or not np.all(np.isfinite(arr)):
            raise ValueError("demands.arrival must be finite numbers")
    if d_.score is not None:
        sc = np.asarray(d_.score)
        if not np.issubdtype(sc.dtype, np.number) or not np.all(np.isfinite(sc)):
            raise ValueError("demands.score must be finite numbers")
