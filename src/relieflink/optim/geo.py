"""Distance and duration matrices for routing.

Locations are addressed by integer index into the caller's location list (for the routing
engine: depots first, then stops). A :class:`MatrixProvider` turns index blocks into integer
matrices in metres (and, optionally, seconds). Three providers ship with the library:

* :class:`HaversineProvider` — great-circle distance × a circuity factor (the default);
  durations are left to the caller, who divides by the vehicle's speed.
* :class:`EuclideanProvider` — planar coordinates with a rounding convention, used for
  VRPLIB benchmark files (``round`` = nint, ``dimacs`` = ×10 truncated, ``exact`` = ×1000 rounded).
* :class:`ExplicitMatrixProvider` — a full matrix the user already has, e.g. from the table API
  of an OSRM or Valhalla server, or loaded with :func:`load_matrix_file`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

__all__ = [
    "DEFAULT_CIRCUITY",
    "EARTH_RADIUS_M",
    "EuclideanProvider",
    "ExplicitMatrixProvider",
    "HaversineProvider",
    "IntMatrix",
    "MatrixProvider",
    "haversine_m",
    "load_matrix_file",
    "travel_seconds",
]

EARTH_RADIUS_M = 6_371_008.8
"""Mean Earth radius in metres (IUGG)."""

DEFAULT_CIRCUITY = 1.3
"""Road distance / great-circle distance; 1.2–1.4 is typical for cities."""

IntMatrix = npt.NDArray[np.int64]
IndexArray = npt.NDArray[np.intp] | npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def haversine_m(
    lat1: npt.ArrayLike, lon1: npt.ArrayLike, lat2: npt.ArrayLike, lon2: npt.ArrayLike
) -> FloatArray:
    """Great-circle distance in metres, broadcast over numpy arrays.

    Parameters
    ----------
    lat1, lon1, lat2, lon2
        Coordinates in decimal degrees; any shapes that broadcast together.

    Returns
    -------
    numpy.ndarray
        Distances in metres (float64).
    """
    p1 = np.radians(np.asarray(lat1, dtype=np.float64))
    p2 = np.radians(np.asarray(lat2, dtype=np.float64))
    dp = p2 - p1
    dl = np.radians(np.asarray(lon2, dtype=np.float64) - np.asarray(lon1, dtype=np.float64))
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    out: FloatArray = 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
    return out


def travel_seconds(distance_m: IntMatrix, speed_kmh: float) -> IntMatrix:
    """Travel time in whole seconds (rounded) for ``distance_m`` at ``speed_kmh``."""
    if speed_kmh <= 0:
        raise ValueError(f"speed_kmh must be positive, got {speed_kmh}")
    out: IntMatrix = np.rint(distance_m * (3.6 / speed_kmh)).astype(np.int64)
    return out


@runtime_checkable
class MatrixProvider(Protocol):
    """Source of travel distances (and optionally durations) between indexed locations."""

    def distances(self, origins: IndexArray, destinations: IndexArray) -> IntMatrix:
        """Block of distances in metres, shape ``(len(origins), len(destinations))``."""
        ...

    def durations(
        self, origins: IndexArray, destinations: IndexArray, profile: str
    ) -> IntMatrix | None:
        """Block of durations in seconds for ``profile``, or ``None`` to derive from speed."""
        ...


class HaversineProvider:
    """Great-circle distance × ``circuity``, rounded to whole metres.

    Parameters
    ----------
    lat, lon
        Coordinates in decimal degrees, one per location index.
    circuity
        Multiplier from great-circle to road distance (default 1.3).
    """

    def __init__(
        self, lat: npt.ArrayLike, lon: npt.ArrayLike, circuity: float = DEFAULT_CIRCUITY
    ) -> None:
        self.lat = np.asarray(lat, dtype=np.float64)
        self.lon = np.asarray(lon, dtype=np.float64)
        if self.lat.shape != self.lon.shape or self.lat.ndim != 1:
            raise ValueError("lat and lon must be 1-D arrays of equal length")
        if circuity < 1.0:
            raise ValueError(f"circuity must be >= 1, got {circuity}")
        self.circuity = float(circuity)

    def distances(self, origins: IndexArray, destinations: IndexArray) -> IntMatrix:
        """Distances in metres between ``origins`` (rows) and ``destinations`` (columns)."""
        o = np.asarray(origins)
        d = np.asarray(destinations)
        dist = haversine_m(
            self.lat[o][:, None], self.lon[o][:, None], self.lat[d][None, :], self.lon[d][None, :]
        )
        out: IntMatrix = np.rint(dist * self.circuity).astype(np.int64)
        return out

    def durations(
        self, origins: IndexArray, destinations: IndexArray, profile: str
    ) -> IntMatrix | None:
        """Always ``None``: durations come from each vehicle type's speed."""
        return None


_ROUNDING = {"round", "dimacs", "exact", "trunc"}


class EuclideanProvider:
    """Planar Euclidean distance with a benchmark rounding convention.

    Parameters
    ----------
    x, y
        Planar coordinates, one per location index.
    rounding
        ``"round"`` (nint, CVRPLIB X and Belgium), ``"dimacs"`` (×10 then truncated, the
        DIMACS/Gehring–Homberger convention), ``"exact"`` (×1000 rounded) or ``"trunc"``.
    speed_factor
        Durations equal distances × this factor (VRPLIB instances use 1).
    """

    def __init__(
        self,
        x: npt.ArrayLike,
        y: npt.ArrayLike,
        rounding: str = "round",
        speed_factor: float = 1.0,
    ) -> None:
        if rounding not in _ROUNDING:
            raise ValueError(f"rounding must be one of {sorted(_ROUNDING)}, got {rounding!r}")
        self.x = np.asarray(x, dtype=np.float64)
        self.y = np.asarray(y, dtype=np.float64)
        self.rounding = rounding
        self.speed_factor = speed_factor

    def _round(self, d: FloatArray) -> IntMatrix:
        if self.rounding == "round":
            return np.rint(d).astype(np.int64)
        if self.rounding == "dimacs":
            return np.floor(10 * d).astype(np.int64)
        if self.rounding == "exact":
            return np.rint(1000 * d).astype(np.int64)
        return np.floor(d).astype(np.int64)

    def distances(self, origins: IndexArray, destinations: IndexArray) -> IntMatrix:
        """Rounded Euclidean distances between ``origins`` and ``destinations``."""
        o = np.asarray(origins)
        d = np.asarray(destinations)
        dx = self.x[o][:, None] - self.x[d][None, :]
        dy = self.y[o][:, None] - self.y[d][None, :]
        return self._round(np.sqrt(dx * dx + dy * dy))

    def durations(
        self, origins: IndexArray, destinations: IndexArray, profile: str
    ) -> IntMatrix | None:
        """Durations equal to distances × ``speed_factor`` (same for every profile)."""
        dist = self.distances(origins, destinations)
        if self.speed_factor == 1.0:
            return dist
        out: IntMatrix = np.rint(dist * self.speed_factor).astype(np.int64)
        return out


class ExplicitMatrixProvider:
    """A full distance matrix (metres) and optional per-profile duration matrices (seconds).

    Parameters
    ----------
    distance
        Square integer matrix; entry ``[i, j]`` is the road distance from location i to j.
    durations
        Optional mapping from profile name (vehicle kind, e.g. ``"truck"``) to a square matrix
        of travel seconds. Profiles not present fall back to distance / vehicle speed.
    """

    def __init__(
        self, distance: npt.ArrayLike, durations: Mapping[str, npt.ArrayLike] | None = None
    ) -> None:
        self.distance = np.asarray(distance, dtype=np.int64)
        if self.distance.ndim != 2 or self.distance.shape[0] != self.distance.shape[1]:
            raise ValueError(f"distance matrix must be square, got shape {self.distance.shape}")
        if (self.distance < 0).any():
            raise ValueError("distance matrix has negative entries")
        self.duration_by_profile: dict[str, IntMatrix] = {}
        for name, mat in (durations or {}).items():
            arr = np.asarray(mat, dtype=np.int64)
            if arr.shape != self.distance.shape:
                raise ValueError(
                    f"duration matrix for {name!r} has shape {arr.shape}, "
                    f"expected {self.distance.shape}"
                )
            self.duration_by_profile[name] = arr

    def distances(self, origins: IndexArray, destinations: IndexArray) -> IntMatrix:
        """Sub-block of the stored distance matrix."""
        out: IntMatrix = self.distance[np.ix_(np.asarray(origins), np.asarray(destinations))]
        return out

    def durations(
        self, origins: IndexArray, destinations: IndexArray, profile: str
    ) -> IntMatrix | None:
        """Sub-block of the stored duration matrix for ``profile``, if any."""
        mat = self.duration_by_profile.get(profile, self.duration_by_profile.get("default"))
        if mat is None:
            return None
        out: IntMatrix = mat[np.ix_(np.asarray(origins), np.asarray(destinations))]
        return out


def load_matrix_file(path: str | Path) -> ExplicitMatrixProvider:
    """Load a provider from ``.npy``/``.npz`` or an OSRM/Valhalla-style table JSON.

    Parameters
    ----------
    path
        ``.npy``: a square distance matrix. ``.npz``: key ``distance`` plus optional
        ``duration_<profile>`` keys. ``.json``: ``{"distances": [[...]], "durations": {...}}``
        (``durations`` may also be a single matrix, used for every profile under key
        ``"default"``), the shape of an OSRM ``/table`` answer with ``annotations=distance``.

    Returns
    -------
    ExplicitMatrixProvider
    """
    p = Path(path)
    if p.suffix == ".npy":
        return ExplicitMatrixProvider(np.load(p))
    if p.suffix == ".npz":
        with np.load(p) as z:
            if "distance" not in z:
                raise ValueError(f"{p}: .npz needs a 'distance' array")
            npz_durs = {
                k.removeprefix("duration_"): z[k] for k in z.files if k.startswith("duration_")
            }
            return ExplicitMatrixProvider(z["distance"], npz_durs)
    if p.suffix == ".json":
        raw = json.loads(p.read_text())
        if "distances" not in raw:
            raise ValueError(f"{p}: JSON matrix needs a 'distances' key")
        dist = np.rint(np.asarray(raw["distances"], dtype=np.float64)).astype(np.int64)
        durs_raw = raw.get("durations")
        durs: dict[str, npt.ArrayLike] = {}
        if isinstance(durs_raw, dict):
            durs = {
                k: np.rint(np.asarray(v, dtype=np.float64)).astype(np.int64)
                for k, v in durs_raw.items()
            }
        elif durs_raw is not None:
            durs = {"default": np.rint(np.asarray(durs_raw, dtype=np.float64)).astype(np.int64)}
        return ExplicitMatrixProvider(dist, durs)
    raise ValueError(f"{p}: unsupported matrix file type {p.suffix!r} (use .npy, .npz or .json)")
