"""Synthetic city-scale routing problems (deterministic by seed) for tests and benchmarks."""

from __future__ import annotations

import math

import numpy as np

from relieflink.optim.routing.model import Depot, RoutingProblem, Stop, VehicleKind, VehicleType

__all__ = ["generate_city_problem"]

_SEALED = frozenset({VehicleKind.ROBOT, VehicleKind.FOOT})
_NO_TRUCK = frozenset({VehicleKind.VAN, VehicleKind.EBIKE, VehicleKind.ROBOT, VehicleKind.FOOT})


def generate_city_problem(
    n_stops: int = 20_000,
    n_depots: int = 20,
    *,
    seed: int = 0,
    center: tuple[float, float] = (31.23, 121.47),
    radius_km: float = 15.0,
    sealed_share: float = 0.05,
    households_per_compound: int = 20,
    fleet_scale: float = 1.0,
) -> RoutingProblem:
    """A city of residential compounds served from ``n_depots`` warehouses.

    Stops are compound gates (bulk deliveries, trucks allowed) and households inside
    compounds (lanes too narrow for trucks). A share of compounds near depots is sealed: only
    robots and volunteers on foot may enter. Each depot runs trucks, vans, e-bikes, delivery
    robots (small payload, limited range) and on-foot volunteers.

    Parameters
    ----------
    n_stops, n_depots
        Problem size.
    seed
        Random seed; the same seed gives the same problem.
    center, radius_km
        City centre (lat, lon) and radius.
    sealed_share
        Share of compounds that are sealed.
    households_per_compound
        Average households per compound (one more stop per compound is its gate).
    fleet_scale
        Multiplies every vehicle count.

    Returns
    -------
    RoutingProblem
    """
    if n_stops < 1 or n_depots < 1:
        raise ValueError("n_stops and n_depots must be >= 1")
    rng = np.random.default_rng(seed)
    lat0, lon0 = center
    km_lat = 1 / 111.195
    km_lon = km_lat / math.cos(math.radians(lat0))

    def point(r_km: np.ndarray, ang: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return lat0 + r_km * np.sin(ang) * km_lat, lon0 + r_km * np.cos(ang) * km_lon

    r = radius_km * np.sqrt(rng.uniform(0.05, 0.8, n_depots))
    dlat, dlon = point(r, rng.uniform(0, 2 * np.pi, n_depots))
    depots = tuple(
        Depot(f"W{j:02d}", float(dlat[j]), float(dlon[j]), open_s=6 * 3600, close_s=22 * 3600)
        for j in range(n_depots)
    )
    n_comp = max(1, n_stops // (households_per_compound + 1))
    sealed = rng.uniform(size=n_comp) < sealed_share
    # Sealed compounds sit within robot range of a depot; others anywhere in the city.
    home = rng.integers(0, n_depots, n_comp)
    r_any = radius_km * np.sqrt(rng.uniform(0, 1, n_comp))
    clat, clon = point(r_any, rng.uniform(0, 2 * np.pi, n_comp))
    off = rng.uniform(0.3, 2.0, n_comp)
    ang = rng.uniform(0, 2 * np.pi, n_comp)
    slat = dlat[home] + off * np.sin(ang) * km_lat
    slon = dlon[home] + off * np.cos(ang) * km_lon
    clat = np.where(sealed, slat, clat)
    clon = np.where(sealed, slon, clon)

    stops: list[Stop] = []
    comp_of = rng.integers(0, n_comp, n_stops)
    comp_of[:n_comp] = np.arange(min(n_comp, n_stops))
    jit = rng.normal(0, 0.08, (n_stops, 2))
    for i in range(n_stops):
        c = int(comp_of[i])
        lat = float(clat[c] + jit[i, 0] * km_lat)
        lon = float(clon[c] + jit[i, 1] * km_lon)
        gate = i < n_comp
        if gate:
            stops.append(
                Stop(
                    f"C{c:05d}-gate",
                    float(clat[c]),
                    float(clon[c]),
                    weight_g=int(rng.integers(20, 120) if sealed[c] else rng.integers(40, 400))
                    * 1000,
                    volume_ml=int(rng.integers(100, 1500)) * 1000,
                    service_s=600,
                    tw_start=8 * 3600,
                    tw_end=18 * 3600,
                    allowed_kinds=_SEALED if sealed[c] else None,
                )
            )
        else:
            narrow = int(rng.integers(0, 3)) == 0
            tw_s = int(rng.choice([8, 8, 8, 10, 14])) * 3600
            stops.append(
                Stop(
                    f"C{c:05d}-H{i:06d}",
                    lat,
                    lon,
                    weight_g=int(rng.integers(2, 12)) * 1000,
                    volume_ml=int(rng.integers(5, 40)) * 1000,
                    service_s=int(rng.integers(60, 180)),
                    tw_start=tw_s,
                    tw_end=tw_s + (4 * 3600 if narrow else 10 * 3600),
                    allowed_kinds=_SEALED if sealed[c] else _NO_TRUCK,
                )
            )
    per_depot = n_stops / n_depots

    def cnt(base: float) -> int:
        return max(1, round(base * fleet_scale * per_depot / 1000))

    vts: list[VehicleType] = []
    for d in depots:
        spec = [
            (VehicleKind.TRUCK, 6, 3_000_000, 15_000_000, None, 10 * 3600, 20000, 3000, 6000, "Sf"),
            (VehicleKind.VAN, 10, 800_000, 4_000_000, None, 10 * 3600, 8000, 1500, 4000, "JD"),
            (VehicleKind.EBIKE, 10, 120_000, 500_000, 40_000, 8 * 3600, 1000, 300, 3000, "Meituan"),
            (VehicleKind.ROBOT, 12, 100_000, 300_000, 12_000, 8 * 3600, 500, 100, 500, "Neolix"),
            (VehicleKind.FOOT, 15, 25_000, 80_000, 8_000, 5 * 3600, 0, 0, 0, "volunteers"),
        ]
        for kind, base, cap_g, cap_ml, rng_m, dur, fixed, per_km, per_h, carrier in spec:
            vts.append(
                VehicleType(
                    id=f"{d.id}-{kind.value}",
                    kind=kind,
                    count=cnt(base),
                    start_depot=d.id,
                    capacity_g=cap_g,
                    capacity_ml=cap_ml,
                    max_distance_m=rng_m,
                    max_duration_s=dur,
                    shift_start=7 * 3600,
                    shift_end=21 * 3600,
                    fixed_cost=fixed,
                    cost_per_km=per_km,
                    cost_per_hour=per_h,
                    carrier=carrier,
                )
            )
    return RoutingProblem(depots, tuple(stops), tuple(vts), name=f"city-{n_stops}-{seed}")
