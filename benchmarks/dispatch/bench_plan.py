"""Dispatch plan at city scale: ``relieflink dispatch plan`` end to end on SQLite.

Target (issue 6): 1,000 communities, 50,000 household deliveries, 200 vehicles and 20 robots in
≤ 60 s end to end (the CLI command as a user runs it: start-up, reading allocations, routing,
writing parcels with pickup codes, routes, stops). Side by side: what a dispatcher without the
engine would do — each vehicle in turn takes the nearest gate it may enter that still fits
(greedy nearest neighbour, same access rules, payload, range and shift) — on the same gate
loads. Prints a table and writes JSON to benchmarks/results/.

    .venv/bin/python benchmarks/dispatch/bench_plan.py              # full size
    .venv/bin/python benchmarks/dispatch/bench_plan.py --households 5000 --communities 200
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.dispatch.seed import DAY, seed  # noqa: E402

from relieflink.config import get_settings  # noqa: E402
from relieflink.db import reset_engine, session_scope  # noqa: E402
from relieflink.db.migrations import upgrade  # noqa: E402
from relieflink.dispatch import planning  # noqa: E402
from relieflink.models import DispatchPlan, Route, RouteStop  # noqa: E402
from relieflink.optim.geo import haversine_m  # noqa: E402

CIRCUITY = 1.3


def greedy(wp: planning.WarehouseProblem) -> dict[str, float]:
    """Nearest-neighbour routes on one warehouse's gate loads (same rules as the engine)."""
    p = wp.problem
    depot = p.depots[0]
    lat = np.array([s.lat for s in p.stops])
    lon = np.array([s.lon for s in p.stops])
    weight = np.array([s.weight_g for s in p.stops])
    service = np.array([s.service_s for s in p.stops])
    served = np.zeros(len(p.stops), dtype=bool)
    distance = 0.0
    routes = 0
    for vt in p.vehicle_types:
        allowed = np.array([s.allows(vt.kind) for s in p.stops])
        speed = vt.speed / 3.6
        for _ in range(vt.count):
            here = (depot.lat, depot.lon)
            load = 0
            dist = 0.0
            clock = float(vt.shift_start)
            used = False
            while True:
                d = haversine_m(here[0], here[1], lat, lon) * CIRCUITY
                back = haversine_m(lat, lon, depot.lat, depot.lon) * CIRCUITY
                ok = (
                    ~served
                    & allowed
                    & (load + weight <= vt.capacity_g)
                    & (clock + (d + back) / speed + service <= vt.shift_end)
                )
                if vt.max_distance_m is not None:
                    ok &= dist + d + back <= vt.max_distance_m
                if not ok.any():
                    break
                j = int(np.argmin(np.where(ok, d, np.inf)))
                served[j] = True
                used = True
                load += int(weight[j])
                dist += float(d[j])
                clock += float(d[j]) / speed + float(service[j])
                here = (float(lat[j]), float(lon[j]))
            if used:
                dist += float(haversine_m(here[0], here[1], depot.lat, depot.lon)) * CIRCUITY
                distance += dist
                routes += 1
    parcels = sum(len(ps) for ps, s in zip(wp.stop_parcels, served, strict=True) if s)
    return {"distance_m": distance, "routes": routes, "parcels": parcels}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--communities", type=int, default=1000)
    parser.add_argument("--households", type=int, default=50_000)
    parser.add_argument("--vehicles", type=int, default=200)
    parser.add_argument("--robots", type=int, default=20)
    parser.add_argument("--time-limit", type=float, default=None)
    parser.add_argument("--db", type=Path, default=Path("/tmp/relieflink-bench-dispatch.db"))
    args = parser.parse_args()

    for suffix in ("", "-wal", "-shm"):
        Path(f"{args.db}{suffix}").unlink(missing_ok=True)
    url = f"sqlite:///{args.db}"
    os.environ["RELIEFLINK_DATABASE_URL"] = url
    get_settings.cache_clear()
    reset_engine()
    upgrade(url)
    with session_scope() as session:
        made = seed(
            session,
            communities=args.communities,
            households=args.households,
            vehicles=args.vehicles,
            robots=args.robots,
        )
    print(f"seeded in {made['seed_s']} s: {made}")

    # The baseline on the same gate loads (read-only).
    with session_scope() as session:
        inp = planning.prepare_plan(session, day=DAY)
        problems, _ = planning.build_problems(inp)
        session.rollback()
    t0 = time.perf_counter()
    base = [greedy(wp) for wp in problems]
    greedy_s = time.perf_counter() - t0
    base_km = sum(b["distance_m"] for b in base) / 1000
    base_parcels = sum(b["parcels"] for b in base)
    base_routes = sum(b["routes"] for b in base)

    command = [
        str(ROOT / ".venv/bin/relieflink"),
        "dispatch",
        "plan",
        "--date",
        DAY.isoformat(),
    ]
    if args.time_limit is not None:
        command += ["--time-limit", str(args.time_limit)]
    t0 = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy())
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        print(done.stdout, done.stderr)
        raise SystemExit(f"dispatch plan failed ({done.returncode})")
    with session_scope() as session:
        from sqlalchemy import func, select

        plan = session.scalars(select(DispatchPlan).order_by(DispatchPlan.id.desc())).first()
        assert plan is not None
        summary = dict(plan.summary)
        sealed_trucks = session.scalar(
            select(func.count())
            .select_from(RouteStop)
            .join(Route, Route.id == RouteStop.route_id)
            .where(RouteStop.inner_mode == "robot", Route.kind.notin_(["robot", "foot"]))
        )
    km = summary["distance_m"] / 1000
    rows = [
        ("RelieFlink (PyVRP engine)", wall, summary["routes"], summary["planned_parcels"], km),
        ("greedy nearest neighbour", greedy_s, base_routes, base_parcels, base_km),
    ]
    print()
    print(f"{'method':<28}{'time s':>9}{'routes':>8}{'parcels':>10}{'km':>11}{'km/parcel':>11}")
    for name, secs, routes, parcels, dist in rows:
        per = dist / parcels if parcels else float("nan")
        print(f"{name:<28}{secs:>9.1f}{routes:>8}{parcels:>10}{dist:>11.1f}{per:>11.3f}")
    eng_per = km / max(summary["planned_parcels"], 1)
    base_per = base_km / max(base_parcels, 1)
    print(
        f"\nengine vs greedy: parcels planned "
        f"×{summary['planned_parcels'] / max(base_parcels, 1):.2f}, "
        f"km per parcel ×{eng_per / base_per:.2f}"
    )
    print(f"end to end {wall:.1f} s (target ≤ 60 s): {'PASS' if wall <= 60 else 'FAIL'}")
    print(f"unplanned by reason: {summary['unassigned']}")
    print(
        f"checker violations: {len(summary['violations'])}; "
        f"vans/trucks at sealed gates: {sealed_trucks}"
    )
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = out / f"dispatch_plan_{stamp}.json"
    path.write_text(
        json.dumps(
            {
                "args": {k: str(v) for k, v in vars(args).items()},
                "seed": {k: v for k, v in made.items() if k != "couriers"},
                "end_to_end_s": round(wall, 2),
                "plan": summary,
                "greedy": {
                    "s": round(greedy_s, 2),
                    "routes": base_routes,
                    "parcels": base_parcels,
                    "km": round(base_km, 1),
                },
                "sealed_gate_vehicle_visits": sealed_trucks,
                "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
                "cli_stdout": done.stdout[-2000:],
            },
            indent=2,
            default=str,
        )
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
