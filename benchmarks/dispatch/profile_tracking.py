"""Per-event cost of tracking, in process, on PostgreSQL: SQL statements and CPU milliseconds.

Load-independent figures (a statement count does not change with the machine's load; CPU time
of this process changes little), to compare code versions side by side. Each event type runs
on a small seeded city (``benchmarks/dispatch/seed.py``) in its own transaction, the way the
API runs it: ``record_event`` then ``commit`` (statements counted include the COMMIT; a COPY
of stock movements, which bypasses SQLAlchemy, is not counted). The last row runs the load
script's mix through ``record_events`` (one transaction per batch) when the module
has it. Statements and CPU are this process's only: not the HTTP layer, not PostgreSQL's.

    .venv/bin/python benchmarks/dispatch/profile_tracking.py
    .venv/bin/python benchmarks/dispatch/profile_tracking.py --cprofile delivered
    # an older version of the code, side by side (the seed script is this one):
    git archive <commit> src | tar -x -C /tmp/old
    PYTHONPATH=/tmp/old/src .venv/bin/python benchmarks/dispatch/profile_tracking.py
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import random
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, select

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks._db import fresh_database  # noqa: E402
from benchmarks.dispatch.seed import DAY, seed  # noqa: E402

from relieflink.config import get_settings  # noqa: E402
from relieflink.db import get_engine, reset_engine, session_scope  # noqa: E402
from relieflink.db.migrations import upgrade  # noqa: E402
from relieflink.dispatch import codes, planning, tracking  # noqa: E402

try:  # plans are made by the dispatch flow (before it: by dispatch.planning itself)
    from relieflink.flows import dispatch as dispatch_flow
except ImportError:
    dispatch_flow = planning  # type: ignore[misc]
try:  # events are recorded by the delivery flow (before it: by dispatch.tracking itself)
    from relieflink.flows import delivery
except ImportError:
    delivery = tracking  # type: ignore[misc]
from relieflink.dispatch.schemas import EventIn  # noqa: E402
from relieflink.models import Parcel, Route, RouteStop, User  # noqa: E402
from relieflink.stock import service as stock  # noqa: E402


class Counter:
    def __init__(self) -> None:
        self.n = 0
        self.on = False
        self.show = False

    def __call__(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if self.on:
            self.n += 1
            if self.show:
                print("   ", " ".join(statement.split())[:150])


COUNT = Counter()


@contextmanager
def counting() -> Iterator[Counter]:
    COUNT.n, COUNT.on = 0, True
    try:
        yield COUNT
    finally:
        COUNT.on = False


def eid() -> str:
    return f"prof-{uuid.uuid4()}"


def courier_of(session: Any, carrier_id: int) -> User:
    return session.scalars(
        select(User).where(User.role == "courier", User.organization_id == carrier_id)
    ).first()


def run_one(body: dict[str, Any], carrier_id: int, profiler: cProfile.Profile | None) -> tuple:
    """One event in its own transaction: (statements incl. COMMIT, CPU ms, wall ms)."""
    data = EventIn.model_validate(body)
    with session_scope() as session:
        actor = courier_of(session, carrier_id)  # the API has it from the token
        with counting() as c:
            cpu, wall = time.process_time(), time.perf_counter()
            if profiler:
                profiler.enable()
            delivery.record_event(session, data, actor=actor)
            session.commit()
            if profiler:
                profiler.disable()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            n = c.n + 1  # + COMMIT (not a cursor execute)
    return n, cpu * 1000, wall * 1000


def run_batch(
    bodies: list[dict[str, Any]], carrier_id: int, profiler: cProfile.Profile | None
) -> tuple:
    """A batch in one transaction, per event: (statements, CPU ms, wall ms)."""
    data = [EventIn.model_validate(b) for b in bodies]
    with session_scope() as session:
        actor = courier_of(session, carrier_id)
        with counting() as c:
            cpu, wall = time.process_time(), time.perf_counter()
            if profiler:
                profiler.enable()
            answers = delivery.record_events(session, data, actor=actor)  # type: ignore[attr-defined]
            session.commit()
            if profiler:
                profiler.disable()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            n = c.n + 1
    refused = [a.error for a in answers if a.error is not None]
    assert not refused, refused
    k = len(bodies)
    return n / k, cpu * 1000 / k, wall * 1000 / k


def summarise(name: str, rows: list[tuple], note: str = "") -> dict[str, Any]:
    stmts = [r[0] for r in rows]
    cpu = [r[1] for r in rows]
    wall = [r[2] for r in rows]
    out = {
        "event": name,
        "n": len(rows),
        "stmts": statistics.mean(stmts),
        "cpu_ms": statistics.median(cpu),
        "wall_ms": statistics.median(wall),
        "note": note,
    }
    print(
        f"{name:<26}{len(rows):>5}{out['stmts']:>9.1f}{out['cpu_ms']:>10.2f}"
        f"{out['wall_ms']:>10.2f}  {note}"
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="rl_tracking_profile")
    parser.add_argument("--households", type=int, default=3000)
    parser.add_argument("--communities", type=int, default=60)
    parser.add_argument("--routes", type=int, default=12, help="routes driven (loaded...)")
    parser.add_argument("--parcels", type=int, default=200, help="parcel events per kind")
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--cprofile", default="", help="event kind to profile with cProfile")
    parser.add_argument("--show", action="store_true", help="print the SQL of one of each")
    args = parser.parse_args()
    os.environ.setdefault("RELIEFLINK_SECRET_KEY", "bench-secret-" + "x" * 32)
    url = fresh_database("postgresql", args.database)
    os.environ["RELIEFLINK_DATABASE_URL"] = url
    get_settings.cache_clear()
    reset_engine()
    upgrade(url)
    event.listen(get_engine(), "before_cursor_execute", COUNT)
    with session_scope() as session:
        seed(session, communities=args.communities, households=args.households, vehicles=60)
    with session_scope() as session:
        dispatch_flow.plan_dispatch(session, day=DAY, actor=None, time_limit=5)
    # Planner statistics (this server runs with autovacuum off; see bench_tracking.analyze).
    with get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE")
    with session_scope() as session:
        routes = session.execute(
            select(Route.id, Route.carrier_id).order_by(Route.id).limit(args.routes)
        ).all()
        route_ids = [r for r, _ in routes]
        carrier = dict(routes)
        stops = session.execute(
            select(RouteStop.id, RouteStop.route_id, RouteStop.parcels)
            .where(RouteStop.route_id.in_(route_ids))
            .order_by(RouteStop.id)
        ).all()
        parcels = session.execute(
            select(Parcel.id, Parcel.route_id, Parcel.code_nonce)
            .where(Parcel.route_id.in_(route_ids))
            .order_by(Parcel.id)
        ).all()
    per_route = len(parcels) / max(1, len(route_ids))
    profiler = cProfile.Profile(time.process_time) if args.cprofile else None

    shown: set[str] = set()

    def prof(kind: str) -> cProfile.Profile | None:
        COUNT.show = args.show and kind not in shown
        if COUNT.show:
            print(f"-- {kind}")
            shown.add(kind)
        return profiler if args.cprofile == kind else None

    print(f"{len(route_ids)} routes, {len(stops)} stops, {len(parcels)} parcels")
    print(f"\n{'event':<26}{'n':>5}{'stmts':>9}{'CPU ms':>10}{'wall ms':>10}")
    table = []
    for kind in ("loaded", "departed"):
        rows = [
            run_one({"client_event_id": eid(), "kind": kind, "route_id": r}, carrier[r], prof(kind))
            for r in route_ids
        ]
        table.append(summarise(kind, rows, f"per route (~{per_route:.0f} parcels)"))
    rows = [
        run_one(
            {"client_event_id": eid(), "kind": "arrived", "stop_id": s}, carrier[r], prof("arrived")
        )
        for s, r, _ in stops
    ]
    table.append(summarise("arrived", rows, "per stop"))
    rows = [
        run_one(
            {"client_event_id": eid(), "kind": "handed_off", "stop_id": s, "counted": n},
            carrier[r],
            prof("handed_off"),
        )
        for s, r, n in stops[: len(stops) // 2]
    ]
    table.append(summarise("handed_off", rows, "per stop, count matches"))
    todo = list(parcels)
    n = min(args.parcels, len(todo) // 4)
    delivered = [
        {"client_event_id": eid(), "kind": "delivered", "parcel_id": p, "code": codes.derive(nonce)}
        for p, _, nonce in todo[:n]
    ]
    rows = [
        run_one(b, carrier[r], prof("delivered"))
        for b, (_, r, _) in zip(delivered, todo, strict=False)
    ]
    table.append(summarise("delivered", rows, "pickup code"))
    rows = [
        run_one(b, carrier[r], prof("replayed"))
        for b, (_, r, _) in zip(delivered, todo, strict=False)
    ]
    table.append(summarise("delivered, retried", rows, "same client event id: replayed"))
    failed = [
        {"client_event_id": eid(), "kind": "failed", "parcel_id": p, "reason": "not_home"}
        for p, _, _ in todo[n : n + n // 4]
    ]
    rows = [
        run_one(b, carrier[r], prof("failed"))
        for b, (_, r, _) in zip(failed, todo[n:], strict=False)
    ]
    table.append(summarise("failed", rows, "not home: stock back, request carried over"))
    if hasattr(delivery, "record_events"):
        # The load script's mix: 97 % deliveries, 3 % failures, 5 % resends; one route's
        # phone sends ``--batch`` at a time.
        rng = random.Random(1)
        rest = todo[n + n // 4 :]
        by_route: dict[int, list[dict[str, Any]]] = {}
        for p, r, nonce in rest[: 2 * n]:
            mine = by_route.setdefault(r, [])
            if mine and rng.random() < 0.05:
                mine.append(rng.choice(mine))
            body: dict[str, Any] = {"client_event_id": eid(), "parcel_id": p}
            if rng.random() < 0.03:
                body |= {"kind": "failed", "reason": "not_home"}
            else:
                body |= {"kind": "delivered", "code": codes.derive(nonce)}
            mine.append(body)
        rows = []
        for r, bodies in by_route.items():
            for start in range(0, len(bodies), args.batch):
                chunk = bodies[start : start + args.batch]
                rows.extend([run_batch(chunk, carrier[r], prof("batch"))] * len(chunk))
        note = f"{args.batch} a batch, 3 % failed, 5 % resent; per event"
        table.append(summarise("mixed, in batches", rows, note))
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = out / f"dispatch_tracking_profile_{stamp}.json"
    path.write_text(json.dumps({"code": delivery.__file__, "args": vars(args), "events": table}))
    print(f"wrote {path}")
    with session_scope() as session:
        problems = stock.check_ledger(session)
    print(f"\nledger problems: {len(problems)}")
    if profiler is not None:
        pstats.Stats(profiler).sort_stats(os.environ.get("SORT", "tottime")).print_stats(
            int(os.environ.get("TOP", "30"))
        )


if __name__ == "__main__":
    main()
