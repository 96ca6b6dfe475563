"""Instances for the other regime: long routes from an eccentric depot.

The Belgium instances (Arnold, Gendreau, Sörensen) have a central or near-central depot and
about 20 clients per route. Relief routes are often long and leave from the edge of the city,
so this script derives, deterministically, from three of them (3,000, 10,000 and 20,000
clients):

- the depot moved to the middle of one edge of the clients' bounding box (west by default);
- the capacity raised to ``round(route_len × mean demand)`` so routes hold about ``route_len``
  clients (default 115, inside the 80–150 the issue asks for; the lower bound on the number of
  routes is printed);
- everything else (coordinates, demands, rounding) kept.

The files are VRPLIB CVRP, so ``run.py`` reads them like any other. They have no published
best-known solution: ``run.py`` gives gaps to a reference cost when one is recorded in
``reference.json`` beside them (``--reference``), and says so.

It also lists the X instances with long routes (capacity ÷ mean demand large), the second
half of the long-route suite::

    .venv/bin/python benchmarks/routing/variants.py            # writes benchmarks/results/variants
    .venv/bin/python benchmarks/routing/variants.py --list-x   # X instances by clients per route
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import vrplib

ROOT = Path(os.environ.get("RELIEFLINK_INSTANCES", "/work/shared/instances"))
SOURCES = {3000: "Leuven1", 10000: "Ghent1", 20000: "Flanders1"}
EDGES = ("west", "south", "east", "north")
# X instances whose capacity holds at least this many average demands: long routes.
LONG_X_MIN = 16.0


def edge_point(coords: np.ndarray, edge: str) -> tuple[float, float]:
    """The middle of ``edge`` of the bounding box of ``coords`` (rounded to whole units)."""
    lo, hi = coords.min(axis=0), coords.max(axis=0)
    mid = (lo + hi) / 2
    x, y = {
        "west": (lo[0], mid[1]),
        "east": (hi[0], mid[1]),
        "south": (mid[0], lo[1]),
        "north": (mid[0], hi[1]),
    }[edge]
    return float(round(x)), float(round(y))


def make_variant(src: Path, route_len: int, edge: str) -> tuple[str, str]:
    """Return (name, VRPLIB text) of the eccentric, long-route variant of ``src``."""
    inst = vrplib.read_instance(str(src), compute_edge_weights=False)
    coords = np.asarray(inst["node_coord"], dtype=np.float64)
    demand = np.asarray(inst["demand"], dtype=np.int64)
    depot = int(np.atleast_1d(inst["depot"])[0])
    clients = [i for i in range(len(coords)) if i != depot]
    mean = float(demand[clients].mean())
    capacity = max(round(route_len * mean), int(demand[clients].max()))
    dx, dy = edge_point(coords[clients], edge)
    name = f"{src.stem}-{edge}-L{route_len}"
    min_routes = -(-int(demand[clients].sum()) // capacity)
    lines = [
        f"NAME : {name}",
        f'COMMENT : "{src.stem} (Arnold, Gendreau, Sorensen 2017) with the depot at the middle '
        f"of the {edge} edge of the bounding box and capacity {route_len} x mean demand; "
        f'at least {min_routes} routes"',
        "TYPE : CVRP",
        f"DIMENSION : {len(clients) + 1}",
        "EDGE_WEIGHT_TYPE : EUC_2D",
        f"CAPACITY : {capacity}",
        "NODE_COORD_SECTION",
        f"1 {dx:g} {dy:g}",
    ]
    lines += [f"{k} {coords[i, 0]:g} {coords[i, 1]:g}" for k, i in enumerate(clients, start=2)]
    lines += ["DEMAND_SECTION", "1 0"]
    lines += [f"{k} {demand[i]}" for k, i in enumerate(clients, start=2)]
    lines += ["DEPOT_SECTION", "1", "-1", "EOF", ""]
    return name, "\n".join(lines)


def long_route_x(folder: Path, threshold: float = LONG_X_MIN) -> list[tuple[str, int, float]]:
    """X instances with capacity ÷ mean demand ≥ ``threshold``: (name, n, ratio), longest first."""
    out = []
    for f in sorted(folder.glob("X-n*.vrp")):
        inst = vrplib.read_instance(str(f), compute_edge_weights=False)
        dem = np.asarray(inst["demand"], dtype=np.float64)[1:]
        ratio = float(inst["capacity"]) / float(dem.mean())
        if ratio >= threshold:
            out.append((f.stem, len(dem), round(ratio, 1)))
    return sorted(out, key=lambda r: (-r[2], r[0]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/variants"))
    ap.add_argument("--route-len", type=int, default=115)
    ap.add_argument("--edge", choices=EDGES, default="west")
    ap.add_argument("--sizes", default="3000,10000,20000")
    ap.add_argument("--list-x", action="store_true", help="only list long-route X instances")
    ap.add_argument("--x-min", type=float, default=LONG_X_MIN)
    args = ap.parse_args()
    if args.list_x:
        for name, n, ratio in long_route_x(ROOT / "CVRP_X", args.x_min):
            print(f"{name:<16}{n:>6}  capacity/mean demand {ratio:>7}")
        return
    args.out.mkdir(parents=True, exist_ok=True)
    for size in (int(s) for s in args.sizes.split(",")):
        src = ROOT / "CVRP_XXL_Belgium" / f"{SOURCES[size]}.vrp"
        name, text = make_variant(src, args.route_len, args.edge)
        (args.out / f"{name}.vrp").write_text(text)
        print(f"wrote {args.out / name}.vrp")


if __name__ == "__main__":
    main()
