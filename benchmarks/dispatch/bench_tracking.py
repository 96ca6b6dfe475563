"""Tracking events under load: ``relieflink serve`` (several workers) on PostgreSQL, loopback.

Target (issue 6): 500 events per second sustained for 60 s, p99 latency ≤ 100 ms, no lost or
duplicated event. The load is open-loop (events are scheduled at the rate whether or not earlier
answers came back; latency is measured from the scheduled time, so a server that falls behind
shows it) and bounded (``--rate`` × ``--seconds`` events, loopback only).

Events: ``delivered`` with the resident's pickup code (97 %) or ``failed``/not home (3 %, which
returns stock to the warehouse and carries the request over), on parcels already loaded and on
their way; 5 % of sends are retries of an earlier event with the same ``client_event_id`` (a
flaky phone network), which must come back ``replayed`` and move nothing. Afterwards the
database is checked: one stored event per distinct client id, every parcel in the state its
events say, the stock ledger reconciled.

Side by side: the same events posted one after another by one client (the ceiling of a
sequential app), for the ratio.

    .venv/bin/python benchmarks/dispatch/bench_tracking.py               # 500/s for 60 s
    .venv/bin/python benchmarks/dispatch/bench_tracking.py --rate 200 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, func, select, text

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.dispatch.seed import DAY, PASSWORD, seed  # noqa: E402

from relieflink.config import get_settings  # noqa: E402
from relieflink.db import reset_engine, session_scope  # noqa: E402
from relieflink.db.migrations import upgrade  # noqa: E402
from relieflink.dispatch import codes, planning, tracking  # noqa: E402
from relieflink.dispatch.schemas import EventIn  # noqa: E402
from relieflink.models import (  # noqa: E402
    Parcel,
    ParcelStatus,
    Route,
    RouteStop,
    TrackingEvent,
    User,
)
from relieflink.stock import service as stock  # noqa: E402

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/"
LOG = Path("/tmp/relieflink-bench-tracking-server.log")


def fresh_pg(name: str) -> str:
    admin = create_engine(PG + "postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return PG + name


def prepare(url: str, households: int, communities: int) -> list[dict[str, Any]]:
    """Seed, plan, and put every planned parcel on its way (loaded, departed, at the gate)."""
    os.environ["RELIEFLINK_DATABASE_URL"] = url
    get_settings.cache_clear()
    reset_engine()
    upgrade(url)
    with session_scope() as session:
        made = seed(
            session,
            communities=communities,
            households=households,
            vehicles=max(200, households // 100),
            robots=40,
        )
    print(f"seeded {made['households']} households in {made['seed_s']} s")
    t0 = time.perf_counter()
    with session_scope() as session:
        plan = planning.plan_dispatch(session, day=DAY, actor=None, time_limit=20)
        print(f"planned: {plan.message} in {time.perf_counter() - t0:.0f} s")
    with session_scope() as session:
        admin = session.scalars(select(User).where(User.username == "bench-admin")).one()
        routes = session.scalars(select(Route.id).order_by(Route.id)).all()
        stops = session.scalars(select(RouteStop.id).order_by(RouteStop.id)).all()
    t0 = time.perf_counter()
    for kind, ids, field in (
        ("loaded", routes, "route_id"),
        ("departed", routes, "route_id"),
        ("arrived", stops, "stop_id"),
    ):
        for target in ids:
            with session_scope() as session:
                actor = session.get(User, admin.id)
                assert actor is not None
                tracking.record_event(
                    session,
                    EventIn.model_validate(
                        {"client_event_id": f"prep-{uuid.uuid4()}", "kind": kind, field: target}
                    ),
                    actor=actor,
                )
    print(f"loaded, departed, arrived: {time.perf_counter() - t0:.0f} s")
    return at_gate()


def at_gate() -> list[dict[str, Any]]:
    """Parcels on their way, at their gate, with the codes their residents would give."""
    with session_scope() as session:
        rows = session.execute(
            select(Parcel.id, Parcel.code_nonce, Route.carrier_id)
            .join(Route, Route.id == Parcel.route_id)
            .where(Parcel.status == ParcelStatus.at_gate)
            .order_by(Parcel.id)
        ).all()
    return [{"parcel": p, "code": codes.derive(n), "carrier": c} for p, n, c in rows]


def start_server(url: str, port: int, workers: int) -> subprocess.Popen[bytes]:
    env = os.environ.copy() | {"RELIEFLINK_DATABASE_URL": url, "RELIEFLINK_LOG_LEVEL": "WARNING"}
    # ``relieflink serve`` runs ``uvicorn.run("relieflink.app:create_app", factory=True, ...)``;
    # this is the same server through uvicorn's CLI, only with a longer worker health check:
    # uvicorn kills a worker that does not answer within 5 s, and on a loaded 2-core machine a
    # worker's start-up (importing numpy, scipy, PyVRP) takes longer, so ``relieflink serve
    # --workers N`` restarts its workers forever there (reported to the lead).
    command = [str(ROOT / ".venv/bin/relieflink"), "serve", "--port", str(port)]
    command += ["--workers", str(workers)]
    if os.environ.get("BENCH_UVICORN_CLI", "1") == "1":
        command = [
            str(ROOT / ".venv/bin/python"), "-m", "uvicorn", "--factory",
            "relieflink.app:create_app", "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(workers), "--timeout-worker-healthcheck", "120",
            "--log-level", "warning", "--no-access-log",
        ]  # fmt: skip
    server = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=LOG.open("w"),
        start_new_session=True,
    )
    for _ in range(240):
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    os.killpg(server.pid, signal.SIGTERM)
    raise SystemExit("the server did not start")


def tokens(base: str) -> dict[int, str]:
    out = {}
    with session_scope() as session:
        couriers = session.scalars(select(User).where(User.role == "courier")).all()
        for user in couriers:
            r = httpx.post(
                f"{base}/auth/sign-in", json={"username": user.username, "password": PASSWORD}
            )
            r.raise_for_status()
            assert user.organization_id is not None
            out[user.organization_id] = r.json()["access_token"]
    return out


RUN = uuid.uuid4().hex[:8]


def plan_events(parcels: list[dict[str, Any]], n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` sends: first sends of events on distinct parcels, and 5 % retries of earlier ones."""
    rng = random.Random(seed)
    sends: list[dict[str, Any]] = []
    firsts: list[dict[str, Any]] = []
    it = iter(parcels)
    while len(sends) < n:
        if firsts and rng.random() < 0.05:
            sends.append(dict(rng.choice(firsts), retry=True))
            continue
        try:
            p = next(it)
        except StopIteration:
            break
        body: dict[str, Any] = {
            "client_event_id": f"bench-{RUN}-{uuid.uuid4()}",
            "parcel_id": p["parcel"],
        }
        if rng.random() < 0.03:
            body |= {"kind": "failed", "reason": "not_home"}
        else:
            body |= {"kind": "delivered", "code": p["code"]}
        event = {"body": body, "carrier": p["carrier"], "retry": False}
        firsts.append(event)
        sends.append(event)
    return sends


async def fire(
    base: str, toks: dict[int, str], sends: list[dict[str, Any]], rate: float, limit: int
) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    sem = asyncio.Semaphore(limit)
    limits = httpx.Limits(max_connections=limit, max_keepalive_connections=limit)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        start = time.perf_counter()

        async def one(i: int, send: dict[str, Any]) -> None:
            due = start + i / rate if rate > 0 else None
            async with sem:
                sent = time.perf_counter()
                due = due if due is not None else sent
                try:
                    r = await client.post(
                        "/dispatch/events",
                        json=send["body"],
                        headers={"Authorization": f"Bearer {toks[send['carrier']]}"},
                    )
                    status = r.status_code
                    try:
                        body = r.json()
                    except ValueError:
                        body = {"detail": r.text[:200]}
                except httpx.HTTPError as exc:
                    status, body = 0, {"error": str(exc)}
                end = time.perf_counter()
            results.append(
                {
                    "i": i,
                    "status": status,
                    "latency": end - due,
                    "service": end - sent,
                    "retry": send["retry"],
                    "replayed": body.get("replayed") if isinstance(body, dict) else None,
                    "client_event_id": send["body"]["client_event_id"],
                    "kind": send["body"]["kind"],
                    "parcel": send["body"]["parcel_id"],
                    "detail": body.get("detail") if status != 200 else None,
                }
            )

        tasks = []
        for i, send in enumerate(sends):
            if rate > 0:
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(i, send)))
            elif limit > 1:  # as fast as the server answers, ``limit`` at a time
                tasks.append(asyncio.create_task(one(i, send)))
            else:
                await one(i, send)
        await asyncio.gather(*tasks)
    return results


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q / 100 * len(values)))] if values else float("nan")


def check(results: list[dict[str, Any]]) -> dict[str, Any]:
    """No lost and no duplicated event: compare what the server said with what it stored."""
    ok_first = {r["client_event_id"]: r for r in results if r["status"] == 200 and not r["retry"]}
    with session_scope() as session:
        stored = dict(
            session.execute(
                select(TrackingEvent.client_event_id, func.count())
                .where(TrackingEvent.client_event_id.like(f"bench-{RUN}-%"))
                .group_by(TrackingEvent.client_event_id)
            ).all()
        )
        parcels = dict(session.execute(select(Parcel.id, Parcel.status)).all())
        ledger = stock.check_ledger(session)
    lost = [c for c in ok_first if c not in stored]
    duplicated = [c for c, n in stored.items() if n != 1]
    unexpected = [c for c in stored if c not in ok_first]
    wrong_state = [
        r["parcel"]
        for r in ok_first.values()
        if parcels[r["parcel"]] != ("delivered" if r["kind"] == "delivered" else "failed")
    ]
    retries = [r for r in results if r["retry"]]
    # Each client event applied exactly once: of all its 200 answers, one is not a replay.
    applied: dict[str, int] = {}
    for r in results:
        if r["status"] == 200:
            applied[r["client_event_id"]] = applied.get(r["client_event_id"], 0) + (
                0 if r["replayed"] else 1
            )
    return {
        "accepted_first_sends": len(ok_first),
        "stored_events": len(stored),
        "lost": len(lost),
        "duplicated": len(duplicated),
        "stored_without_ok": len(unexpected),
        "parcels_in_wrong_state": len(wrong_state),
        "retries": len(retries),
        "retries_replayed": sum(1 for r in retries if r["replayed"]),
        "retries_refused_or_failed": sum(1 for r in retries if r["status"] != 200),
        "applied_not_exactly_once": sum(1 for n in applied.values() if n != 1),
        "ledger_problems": len(ledger),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--households", type=int, default=40_000)
    parser.add_argument("--communities", type=int, default=800)
    parser.add_argument("--sequential", type=int, default=1000, help="events in the baseline")
    parser.add_argument(
        "--ceiling", type=int, default=0, help="events sent unpaced (at --concurrency) first"
    )
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--database", default="rl_dispatch_bench")
    parser.add_argument(
        "--reuse", action="store_true", help="use the database a previous run prepared"
    )
    args = parser.parse_args()
    os.environ.setdefault("RELIEFLINK_SECRET_KEY", "bench-secret-" + "x" * 32)
    if args.reuse:
        url = PG + args.database
        os.environ["RELIEFLINK_DATABASE_URL"] = url
        get_settings.cache_clear()
        reset_engine()
        parcels = at_gate()
    else:
        url = fresh_pg(args.database)
        parcels = prepare(url, args.households, args.communities)
    upgrade(url)  # other domains' migrations may have landed meanwhile
    total = int(args.rate * args.seconds)
    sends = plan_events(parcels, total + args.sequential + args.ceiling, seed=1)
    if len(sends) < total + args.sequential + args.ceiling:
        raise SystemExit(f"only {len(sends)} events available; seed more households")
    if args.port == 0:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            args.port = probe.getsockname()[1]
    server = start_server(url, args.port, args.workers)
    base = f"http://127.0.0.1:{args.port}/api/v1"
    try:
        toks = tokens(base)
        t0 = time.perf_counter()
        baseline = asyncio.run(fire(base, toks, sends[total : total + args.sequential], 0, 1))
        seq_s = time.perf_counter() - t0
        ceiling: list[dict[str, Any]] = []
        ceiling_s = 0.0
        if args.ceiling:
            extra = sends[total + args.sequential :]
            t0 = time.perf_counter()
            ceiling = asyncio.run(fire(base, toks, extra, 0, args.concurrency))
            ceiling_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        results = asyncio.run(fire(base, toks, sends[:total], args.rate, args.concurrency))
        wall = time.perf_counter() - t0
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=15)
    verdict = check(results + baseline + ceiling)
    lat = [r["latency"] * 1000 for r in results]
    svc = [r["service"] * 1000 for r in results]
    errors = [r for r in results if r["status"] != 200]
    achieved = len(results) / wall
    seq_rate = len(baseline) / seq_s
    print()
    print(
        f"{'run':<34}{'events':>8}{'ev/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'errors':>8}"
    )
    print(
        f"{'paced, ' + str(args.workers) + ' workers':<34}{len(results):>8}{achieved:>9.0f}"
        f"{pct(lat, 50):>9.1f}{pct(lat, 99):>9.1f}{max(lat):>9.1f}{len(errors):>8}"
    )
    blat = [r["service"] * 1000 for r in baseline]
    print(
        f"{'one client, one at a time':<34}{len(baseline):>8}{seq_rate:>9.0f}"
        f"{pct(blat, 50):>9.1f}{pct(blat, 99):>9.1f}{max(blat):>9.1f}"
        f"{sum(1 for r in baseline if r['status'] != 200):>8}"
    )
    if ceiling:
        clat = [r["service"] * 1000 for r in ceiling]
        print(
            f"{'unpaced, ' + str(args.concurrency) + ' at a time':<34}{len(ceiling):>8}"
            f"{len(ceiling) / ceiling_s:>9.0f}{pct(clat, 50):>9.1f}{pct(clat, 99):>9.1f}"
            f"{max(clat):>9.1f}{sum(1 for r in ceiling if r['status'] != 200):>8}"
        )
    print(f"\nthroughput ratio paced / sequential: ×{achieved / seq_rate:.1f}")
    print(f"service time (from send) p99: {pct(svc, 99):.1f} ms")
    print(f"checks: {verdict}")
    target = (
        achieved >= 0.98 * args.rate
        and pct(lat, 99) <= 100
        and verdict["lost"] == 0
        and verdict["duplicated"] == 0
        and not errors
    )
    print(
        f"target (≥ {args.rate:.0f}/s for {args.seconds:.0f} s, p99 ≤ 100 ms, none lost or "
        f"duplicated): {'PASS' if target else 'FAIL'}"
    )
    if errors:
        print("first errors:", [(e["status"], e["detail"]) for e in errors[:5]])
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = out / f"dispatch_tracking_{stamp}.json"
    path.write_text(
        json.dumps(
            {
                "args": vars(args),
                "paced": {
                    "events": len(results),
                    "seconds": wall,
                    "rate": achieved,
                    "p50_ms": pct(lat, 50),
                    "p99_ms": pct(lat, 99),
                    "max_ms": max(lat),
                    "service_p99_ms": pct(svc, 99),
                    "errors": len(errors),
                },
                "sequential": {"events": len(baseline), "rate": seq_rate},
                "ceiling": {
                    "events": len(ceiling),
                    "rate": len(ceiling) / ceiling_s if ceiling_s else None,
                },
                "checks": verdict,
                "pass": target,
                "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
            },
            indent=2,
        )
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
