"""Reading VRPLIB, Solomon and the engine's JSON problem format; writing plans.

VRPLIB numbering: stops are numbered as in a VRPLIB ``.sol`` file: a client's 0-based position
among the file's nodes, so with one depot clients are ``1..n`` in file order and with ``D``
depots (listed first, as in every benchmark file) ``D..D+n-1``. Costs follow each file's
distance convention: CVRP (X, Belgium) rounded Euclidean (nint); VRPTW (Solomon,
Gehring–Homberger) DIMACS (one decimal, truncated; the engine works in tenths and reports
tenths / 10); other types (MDVRPTW, SDVRPTW, HFVRP) PyVRP's ``exact`` convention (×1000,
rounded), as their ``.sol`` files do.

Site rules (``VEHICLES_ALLOWED_CLIENTS_SECTION``, SDVRPTW) become ``Stop.allowed_types``: the
file's vehicles are grouped into vehicle types by all their attributes *including* the clients
they may visit, and each client lists the types whose vehicles may serve it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from relieflink.optim.geo import EuclideanProvider, MatrixProvider
from relieflink.optim.routing.model import (
    Depot,
    RoutingProblem,
    Stop,
    VehicleKind,
    VehicleType,
)
from relieflink.optim.routing.result import RoutingResult

__all__ = [
    "LoadedInstance",
    "load_instance",
    "problem_from_json",
    "problem_to_json",
    "result_to_json",
    "write_vrplib_solution",
]


@dataclass(frozen=True, slots=True)
class LoadedInstance:
    """A problem read from a file, with the provider and cost convention that go with it.

    Attributes
    ----------
    problem
        The problem.
    provider
        Matrix provider (``None``: the default haversine provider).
    cost_divisor
        Divide the engine's distance units by this to get the file's cost units (10 for DIMACS).
    vrplib
        True for VRPLIB/Solomon files (routes are written in ``.sol`` numbering).
    client_numbers
        ``.sol`` number of each stop (empty: ``stop + 1``).
    file_vehicles
        For each of the file's vehicles in file order, ``(vehicle type index, index of the
        vehicle within its type)``; ``.sol`` route ``#k`` is the file's vehicle ``k - 1``
        (empty when the file lists no vehicles one by one).
    """

    problem: RoutingProblem
    provider: MatrixProvider | None
    cost_divisor: int
    vrplib: bool
    client_numbers: tuple[int, ...] = ()
    file_vehicles: tuple[tuple[int, int], ...] = ()

    def client_number(self, stop: int) -> int:
        """The ``.sol`` number of stop index ``stop``."""
        return self.client_numbers[stop] if self.client_numbers else stop + 1


def _rounding_for(kind: str) -> str:
    k = kind.upper()
    if k == "CVRP":
        return "round"
    if k == "VRPTW":
        return "dimacs"
    return "exact"


def _load_vrplib(path: Path, solomon: bool) -> LoadedInstance:
    import vrplib

    inst: dict[str, Any] = (
        vrplib.read_instance(str(path), instance_format="solomon", compute_edge_weights=False)
        if solomon
        else vrplib.read_instance(str(path), compute_edge_weights=False)
    )
    kind = "VRPTW" if solomon else str(inst.get("type", "CVRP")).strip()
    rounding = _rounding_for(kind)
    scale = {"round": 1, "dimacs": 10, "exact": 1000, "trunc": 1}[rounding]
    coords = np.asarray(inst["node_coord"], dtype=np.float64)
    dim = len(coords)
    depot_idx = [0] if solomon else [int(d) for d in np.atleast_1d(inst.get("depot", [0]))]
    depot_set = set(depot_idx)
    client_idx = [i for i in range(dim) if i not in depot_set]
    demand = np.atleast_1d(np.asarray(inst.get("demand", np.zeros(dim)), dtype=np.int64))
    service = np.asarray(inst.get("service_time", np.zeros(dim)), dtype=np.float64)
    if service.ndim == 0:
        service = np.full(dim, float(service))
    tws = inst.get("time_window")
    tw = None if tws is None else np.asarray(tws, dtype=np.float64)

    horizon = 2**40

    def sc(x: float) -> int:
        return round(x * scale) if rounding == "exact" else int(x * scale)

    depots = []
    for j, d in enumerate(depot_idx):
        open_s, close_s = (0, horizon) if tw is None else (sc(tw[d, 0]), sc(tw[d, 1]))
        depots.append(Depot(f"D{j}", float(coords[d, 1]), float(coords[d, 0]), open_s, close_s))
    n = len(client_idx)
    big = 10**12
    max_dur = inst.get("vehicles_max_duration")
    max_dist = inst.get("vehicles_max_distance")
    cap = np.atleast_1d(np.asarray(inst.get("capacity", big), dtype=np.int64))
    n_veh = int(inst.get("vehicles", n if len(cap) == 1 else len(cap)))
    per_vehicle = max(n_veh, 1)

    def vec(key: str, default: float) -> np.ndarray[Any, Any]:
        val = inst.get(key)
        if val is None:
            return np.full(per_vehicle, default)
        arr = np.atleast_1d(np.asarray(val, dtype=np.float64))
        return np.full(per_vehicle, arr[0]) if len(arr) == 1 else arr

    caps = vec("capacity", float(big))
    fixed = vec("vehicles_fixed_cost", 0.0)
    unit = vec("vehicles_unit_distance_cost", 1.0)
    vdep = vec("vehicles_depot", float(depot_idx[0] + 1)) - 1
    mdur = vec("vehicles_max_duration", -1.0) if max_dur is not None else np.full(per_vehicle, -1.0)
    mdist = (
        vec("vehicles_max_distance", -1.0) if max_dist is not None else np.full(per_vehicle, -1.0)
    )
    allowed = _allowed_clients(inst.get("vehicles_allowed_clients"), per_vehicle)
    groups: dict[tuple[tuple[float, ...], frozenset[int] | None], list[int]] = {}
    for k in range(per_vehicle):
        attrs = tuple(float(a[k]) for a in (caps, fixed, unit, vdep, mdur, mdist))
        groups.setdefault((attrs, allowed[k]), []).append(k)
    file_vehicles = [(0, 0)] * per_vehicle
    for t, members in enumerate(groups.values()):
        for j, k in enumerate(members):
            file_vehicles[k] = (t, j)
    vtypes = []
    for t, (key, members) in enumerate(groups.items()):
        c, f, u, dep, md, mx = key[0]
        count = len(members)
        dep_no = depot_idx.index(int(dep)) if int(dep) in depot_idx else 0
        vtypes.append(
            VehicleType(
                id=f"V{t}",
                kind=VehicleKind.TRUCK,
                count=count,
                start_depot=f"D{dep_no}",
                capacity_g=int(c),
                capacity_ml=0,
                max_duration_s=None if md < 0 else sc(md),
                max_distance_m=None if mx < 0 else sc(mx),
                fixed_cost=int(f),
                cost_per_km=round(u * 1000),
                shift_end=depots[dep_no].close_s,
            )
        )
    # Site rules: the types whose allowed-client set holds the client (None: every type).
    type_sets = [key[1] for key in groups]
    all_types = frozenset(vt.id for vt in vtypes)
    stops = []
    for c_no, i in enumerate(client_idx, start=1):
        ok = frozenset(vtypes[t].id for t, cl in enumerate(type_sets) if cl is None or i in cl)
        if not ok:
            raise ValueError(f"client {i + 1} (node id) is in no vehicle's allowed clients")
        stops.append(
            Stop(
                str(c_no),
                float(coords[i, 1]),
                float(coords[i, 0]),
                weight_g=int(demand[i]),
                service_s=sc(float(service[i])),
                tw_start=0 if tw is None else sc(tw[i, 0]),
                tw_end=horizon if tw is None else sc(tw[i, 1]),
                allowed_types=None if ok == all_types else ok,
            )
        )
    order = depot_idx + client_idx
    provider = EuclideanProvider(coords[order, 0], coords[order, 1], rounding=rounding)
    name = str(inst.get("name", path.stem)).strip()
    problem = RoutingProblem(tuple(depots), tuple(stops), tuple(vtypes), name=name)
    explicit = inst.get("vehicles") is not None
    return LoadedInstance(
        problem,
        provider,
        10 if rounding == "dimacs" else 1,
        True,
        client_numbers=tuple(client_idx),
        file_vehicles=tuple(file_vehicles) if explicit else (),
    )


def _allowed_clients(raw: Any, n_vehicles: int) -> list[frozenset[int] | None]:
    """Per vehicle, the 0-based node indices it may visit (``None``: all)."""
    if raw is None:
        return [None] * n_vehicles
    rows: list[Any]
    if isinstance(raw, np.ndarray) and raw.ndim == 1 and raw.dtype != object:
        rows = [[int(x)] for x in raw]  # one allowed client per vehicle
    else:
        rows = [np.atleast_1d(r).tolist() for r in raw]
    if len(rows) != n_vehicles:
        raise ValueError(
            f"VEHICLES_ALLOWED_CLIENTS_SECTION has {len(rows)} rows for {n_vehicles} vehicles"
        )
    return [frozenset(int(x) - 1 for x in r) for r in rows]


def problem_to_json(problem: RoutingProblem) -> dict[str, Any]:
    """The engine's JSON problem format (plain dicts; kinds as strings)."""

    def conv(obj: Any) -> dict[str, Any]:
        d = asdict(obj)
        for k, v in list(d.items()):
            if isinstance(v, frozenset):
                d[k] = sorted(getattr(x, "value", x) for x in v)
            elif isinstance(v, VehicleKind):
                d[k] = v.value
        return d

    return {
        "name": problem.name,
        "depots": [conv(d) for d in problem.depots],
        "stops": [conv(s) for s in problem.stops],
        "vehicle_types": [conv(v) for v in problem.vehicle_types],
    }


def problem_from_json(data: dict[str, Any]) -> RoutingProblem:
    """Inverse of :func:`problem_to_json`; raises ``ValueError`` naming the bad entry."""
    try:
        depots = tuple(Depot(**d) for d in data["depots"])
        stops = []
        for i, s in enumerate(data["stops"]):
            s = dict(s)
            kinds = s.pop("allowed_kinds", None)
            types = s.pop("allowed_types", None)
            try:
                allowed = None if kinds is None else frozenset(VehicleKind(k) for k in kinds)
                a_types = None if types is None else frozenset(str(t) for t in types)
                stops.append(Stop(**s, allowed_kinds=allowed, allowed_types=a_types))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"stops[{i}]: {exc}") from exc
        vts = []
        for i, v in enumerate(data["vehicle_types"]):
            v = dict(v)
            try:
                v["kind"] = VehicleKind(v["kind"])
                vts.append(VehicleType(**v))
            except (TypeError, ValueError, KeyError) as exc:
                raise ValueError(f"vehicle_types[{i}]: {exc}") from exc
        return RoutingProblem(depots, tuple(stops), tuple(vts), name=data.get("name", "problem"))
    except KeyError as exc:
        raise ValueError(f"problem JSON is missing key {exc}") from exc
    except TypeError as exc:
        raise ValueError(f"problem JSON: {exc}") from exc


def load_instance(path: str | Path) -> LoadedInstance:
    """Read a VRPLIB file (``.vrp``), a Solomon text file (``.txt``) or a JSON problem.

    Raises
    ------
    ValueError
        If the file does not exist or cannot be parsed.
    """
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{p}: no such file")
    if p.suffix == ".json":
        try:
            raw = json.loads(p.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{p}: invalid JSON at line {exc.lineno}: {exc.msg}") from exc
        return LoadedInstance(problem_from_json(raw), None, 1, False)
    solomon = p.suffix == ".txt"
    try:
        return _load_vrplib(p, solomon)
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(
            f"{p}: cannot read as {'Solomon' if solomon else 'VRPLIB'}: {exc}"
        ) from exc


def vrplib_routes(result: RoutingResult, loaded: LoadedInstance) -> list[list[int]]:
    """Routes as lists of ``.sol`` client numbers (see :attr:`LoadedInstance.client_numbers`)."""
    return [[loaded.client_number(v.stop) for v in r.visits] for r in result.routes]


def _sol_routes(result: RoutingResult, loaded: LoadedInstance) -> list[list[int]]:
    """Routes for a ``.sol`` file: route ``#k`` is the file's vehicle ``k - 1`` when the file
    has several vehicle types (so the depot and vehicle of each route are recoverable), else
    the non-empty routes in order."""
    routes = vrplib_routes(result, loaded)
    types = [vt.id for vt in loaded.problem.vehicle_types]
    if len(types) == 1 or not loaded.file_vehicles:
        return routes
    slot = {(t, j): k for k, (t, j) in enumerate(loaded.file_vehicles)}
    out: list[list[int]] = [[] for _ in loaded.file_vehicles]
    for r, nums in zip(result.routes, routes, strict=True):
        out[slot[(types.index(r.vehicle_type), r.vehicle_index)]] = nums
    return out


def file_cost(result: RoutingResult, loaded: LoadedInstance) -> float:
    """Cost in the file's convention (distance-based, divided by ``cost_divisor``)."""
    cost = result.cost()
    return cost / loaded.cost_divisor if loaded.cost_divisor != 1 else cost


def result_to_json(result: RoutingResult, loaded: LoadedInstance) -> dict[str, Any]:
    """``{"cost", "routes", "unassigned", "runtime_s", ...}`` as documented for the CLI."""
    if loaded.vrplib:
        routes: list[list[Any]] = vrplib_routes(result, loaded)
        unassigned: list[Any] = sorted({loaded.client_number(u.stop) for u in result.unassigned})
    else:
        routes = [[v.stop_id for v in r.visits] for r in result.routes]
        unassigned = [
            {
                "stop": u.stop_id,
                "weight_g": u.weight_g,
                "volume_ml": u.volume_ml,
                "reason": u.reason,
            }
            for u in result.unassigned
        ]
    return {
        "name": result.problem_name,
        "cost": file_cost(result, loaded),
        "routes": routes,
        "vehicle_types": [r.vehicle_type for r in result.routes],
        "unassigned": unassigned,
        "runtime_s": round(result.runtime_s, 3),
        "feasible": result.is_feasible(),
        "stats": result.stats,
    }


def write_vrplib_solution(path: str | Path, result: RoutingResult, loaded: LoadedInstance) -> None:
    """Write a VRPLIB ``.sol`` file (``Route #k: ...`` lines and ``Cost``)."""
    if loaded.vrplib:
        routes: list[list[Any]] = _sol_routes(result, loaded)
    else:
        routes = [[v.stop + 1 for v in r.visits] for r in result.routes]
    lines = [f"Route #{k}: {' '.join(str(s) for s in r)}" for k, r in enumerate(routes, start=1)]
    cost = file_cost(result, loaded)
    cost_txt = f"{cost:.1f}" if loaded.cost_divisor != 1 else f"{round(cost)}"
    lines.append(f"Cost {cost_txt}")
    Path(path).write_text("\n".join(lines) + "\n")
