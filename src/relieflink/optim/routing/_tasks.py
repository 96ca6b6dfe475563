"""Picklable sub-problem descriptions passed to workers (no solver import here)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from relieflink.optim.geo import MatrixProvider

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class SubVehicleType:
    """A vehicle type as seen by one sub-problem (local depot indices, a vehicle budget)."""

    type_index: int
    num: int
    start: int
    end: int
    capacity: tuple[int, int]
    tw_early: int
    tw_late: int
    max_duration: int | None
    max_distance: int | None
    fixed: int
    unit_distance: int
    unit_duration: int
    profile: int


@dataclass(frozen=True, slots=True)
class SubProfile:
    """Travel profile: provider profile name, speed fallback, and which clients it may visit."""

    name: str
    speed_kmh: float
    allowed: BoolArray


@dataclass(frozen=True, slots=True)
class SubTask:
    """One sub-problem: clients are demand pieces; locations are depots then clients."""

    provider: MatrixProvider
    depot_locs: IntArray
    depot_tw: IntArray  # shape (D, 2)
    client_locs: IntArray
    delivery: IntArray  # shape (M, 2): grams, millilitres
    service: IntArray
    tw: IntArray  # shape (M, 2)
    vehicle_types: tuple[SubVehicleType, ...]
    profiles: tuple[SubProfile, ...]
    initial: tuple[tuple[int, tuple[int, ...]], ...] | None
    iterations: int | None
    time_limit: float | None
    seed: int
    #: Seconds the solve may take from the moment its worker starts the task, the worker's
    #: own set-up (matrices, PyVRP data) included, which a loaded machine can stretch to many
    #: seconds; where given it replaces ``time_limit``.
    run_for_s: float | None = None


@dataclass(frozen=True, slots=True)
class SubRoute:
    """A route found for a sub-problem, with the solver's own schedule figures."""

    vehicle_type: int  # local index into SubTask.vehicle_types
    clients: tuple[int, ...]  # local client indices
    arrivals: tuple[int, ...]
    service_starts: tuple[int, ...]
    start: int
    end: int
    distance: int
    duration: int


@dataclass(frozen=True, slots=True)
class SubResult:
    """Outcome of one sub-problem solve."""

    routes: tuple[SubRoute, ...]
    dropped: tuple[int, ...]
    iterations: int
    runtime_s: float
