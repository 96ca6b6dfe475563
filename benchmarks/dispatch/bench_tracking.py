"""Tracking events under load: the API (uvicorn workers) on PostgreSQL, loopback.

Target (issue 6): 500 events per second sustained for 60 s, p99 latency ≤ 100 ms, no lost or
duplicated event. The load is open-loop (events happen at the rate whether or not earlier
answers came back; latency is measured from the moment an event happened, so a server that
falls behind shows it) and bounded (``--rate`` × ``--seconds`` events per run, loopback only).

Events: ``delivered`` with the resident's pickup code (97 %) or ``failed``/not home (3 %, which
returns stock to the warehouse and carries the request over), on parcels already loaded and at
their gate; 5 % of sends are retries of an earlier event with the same ``client_event_id`` (a
flaky phone network), which must come back ``replayed`` and move nothing. Afterwards the
database is checked: one stored event per distinct client id, every parcel in the state its
events say, the stock ledger reconciled.

Side by side, in one run, on the same server:

* ``one at a time``: one client posting single events and waiting for each answer (what a
  sequential app gets);
* ``single events``: ``POST /dispatch/events``, one request per event, paced at ``--rate``;
* ``batches``: ``POST /dispatch/events:batch``, paced at ``--rate``. Each route's phone keeps
  one request in flight: an event that happens meanwhile waits in its buffer and goes with the
  next batch (everything buffered, up to ``--max-batch``), as an app on a flaky network sends
  what it holds when it can. An event's latency runs from the moment it happened, so it
  includes the wait on the phone. (Events come in parcel order, so a few routes are busy at a
  time: the load of a hub scanning its queue, or phones reconnecting with their buffers.)

Per run: events/s, p50/p99/max latency per event, SQL round trips per event (statements,
commits and the pool's pings the server made, counted by ``benchmarks/dispatch/_server.py``) and
CPU ms per event of the server's workers, of PostgreSQL's backends serving them and of this load
generator. The load generator is a small HTTP/1.1 keep-alive client on asyncio (httpx would
spend more of the two cores than the server it measures).

    .venv/bin/python benchmarks/dispatch/bench_tracking.py               # 500/s for 60 s each
    .venv/bin/python benchmarks/dispatch/bench_tracking.py --rate 200 --seconds 20
    .venv/bin/python benchmarks/dispatch/bench_tracking.py --reuse --runs batches
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import create_engine, func, select, text

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.dispatch.seed import DAY, PASSWORD, seed  # noqa: E402

from relieflink.config import get_settings  # noqa: E402
from relieflink.db import reset_engine, session_scope  # noqa: E402
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
RUN = uuid.uuid4().hex[:8]


def fresh_pg(name: str) -> str:
    admin = create_engine(PG + "postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return PG + name


def prepare(url: str, households: int, communities: int) -> None:
    """Seed, plan, and put every planned parcel on its way (loaded, departed, at the gate):
    route and stop events through ``record_events``, a route's worth at a time."""
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
        plan = dispatch_flow.plan_dispatch(session, day=DAY, actor=None, time_limit=20)
        print(f"planned: {plan.message} in {time.perf_counter() - t0:.0f} s")
    with session_scope() as session:
        admin = session.scalars(select(User).where(User.username == "bench-admin")).one()
        routes = session.scalars(select(Route.id).order_by(Route.id)).all()
        stops = session.execute(select(RouteStop.route_id, RouteStop.id).order_by(RouteStop.id))
        stops_of: dict[int, list[int]] = defaultdict(list)
        for route_id, stop_id in stops:
            stops_of[route_id].append(stop_id)
    t0 = time.perf_counter()
    for route_id in routes:
        events = [
            {"kind": "loaded", "route_id": route_id},
            {"kind": "departed", "route_id": route_id},
        ]
        events += [{"kind": "arrived", "stop_id": s} for s in stops_of[route_id]]
        with session_scope() as session:
            actor = session.get(User, admin.id)
            assert actor is not None
            answers = delivery.record_events(
                session,
                [
                    EventIn.model_validate({"client_event_id": f"prep-{uuid.uuid4()}", **e})
                    for e in events
                ],
                actor=actor,
            )
            refused = [a.error for a in answers if a.error is not None]
            if refused:
                raise SystemExit(f"preparing route {route_id}: {refused[0]}")
    print(f"loaded, departed, arrived: {time.perf_counter() - t0:.0f} s")


def settle(url: str) -> None:
    """Fresh planner statistics, and the seeding's dirty pages written out before measuring.
    Autovacuum would gather the statistics in production; on a server running with
    ``autovacuum = off`` (this one) a freshly bulk-loaded database has none, and the planner
    then hash-joins every reserved allocation to close one parcel's (40× slower). The
    checkpoint keeps the bulk load's writes out of the measured minute (a checkpoint it forces
    half-way stalls commits)."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.execute(text("CHECKPOINT"))
    engine.dispose()


def at_gate() -> list[dict[str, Any]]:
    """Parcels on their way, at their gate, with the codes their residents would give."""
    with session_scope() as session:
        rows = session.execute(
            select(Parcel.id, Parcel.code_nonce, Route.carrier_id, Route.id)
            .join(Route, Route.id == Parcel.route_id)
            .where(Parcel.status == ParcelStatus.at_gate)
            .order_by(Parcel.id)
        ).all()
    return [{"parcel": p, "code": codes.derive(n), "carrier": c, "route": r} for p, n, c, r in rows]


# --- a small HTTP/1.1 client ------------------------------------------------------------------


class Http:
    """Keep-alive connections to one server; at most ``limit`` requests in flight."""

    def __init__(self, host: str, port: int, limit: int) -> None:
        self.host, self.port = host, port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.slots = asyncio.Semaphore(limit)

    async def post(self, path: str, body: Any, token: str) -> tuple[int, Any]:
        payload = json.dumps(body).encode()
        head = (
            f"POST /api/v1{path} HTTP/1.1\r\nHost: {self.host}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n"
        ).encode()
        async with self.slots:
            for attempt in (1, 2):
                conn = None
                while self.idle and conn is None:
                    conn = self.idle.pop()
                    if conn[0].at_eof() or conn[1].is_closing():  # the server closed it idle
                        conn[1].close()
                        conn = None
                reused = conn is not None
                if conn is None:
                    conn = await asyncio.open_connection(self.host, self.port)
                reader, writer = conn
                try:
                    writer.write(head + payload)
                    await writer.drain()
                    first = await reader.readline()
                    if not first and reused and attempt == 1:
                        # Closed by the server (keep-alive timeout) before it read the request:
                        # nothing was applied; send it again on a new connection.
                        writer.close()
                        continue
                    status = int(first.split()[1])
                    length, close = 0, False
                    while (line := await reader.readline()) not in (b"\r\n", b""):
                        name, _, value = line.decode("latin-1").partition(":")
                        if name.lower() == "content-length":
                            length = int(value)
                        elif name.lower() == "connection" and "close" in value.lower():
                            close = True
                    data = await reader.readexactly(length) if length else b""
                except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
                    writer.close()
                    return 0, {"detail": f"connection error: {exc!r}"}
                if close:
                    writer.close()
                else:
                    self.idle.append(conn)
                break
        try:
            return status, json.loads(data) if data else {}
        except ValueError:
            return status, {"detail": data[:200].decode(errors="replace")}

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()


def sign_in(base: str) -> dict[int, str]:
    """A bearer token per carrier (its courier's), through the real sign-in endpoint."""
    import httpx  # only here: one request per courier

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


# --- what is sent -----------------------------------------------------------------------------


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
        event = {"body": body, "carrier": p["carrier"], "route": p["route"], "retry": False}
        firsts.append(event)
        sends.append(event)
    return sends


@dataclass
class Result:
    i: int
    status: int
    latency: float  # from when the event happened (was due) to its answer
    service: float  # from when its request was sent to its answer
    retry: bool
    replayed: bool | None
    client_event_id: str
    kind: str
    parcel: int
    detail: str | None


def result(
    i: int, send: dict[str, Any], status: int, answer: Any, due: float, sent: float, end: float
) -> Result:
    ok = status == 200 and isinstance(answer, dict)
    return Result(
        i,
        status,
        end - due,
        end - sent,
        send["retry"],
        answer.get("replayed") if ok else None,
        send["body"]["client_event_id"],
        send["body"]["kind"],
        send["body"]["parcel_id"],
        None if ok else str(answer.get("detail") if isinstance(answer, dict) else answer),
    )


async def singles(
    http: Http, toks: dict[int, str], sends: list[dict[str, Any]], rate: float
) -> list[Result]:
    """One request per event: paced at ``rate`` (open loop), or one after another (rate 0)."""
    results: list[Result] = []
    start = time.perf_counter()

    async def one(i: int, send: dict[str, Any], due: float) -> None:
        sent = time.perf_counter()
        status, answer = await http.post("/dispatch/events", send["body"], toks[send["carrier"]])
        results.append(result(i, send, status, answer, due, sent, time.perf_counter()))

    tasks = []
    for i, send in enumerate(sends):
        if rate > 0:
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, send, due)))
        else:
            await one(i, send, time.perf_counter())
    await asyncio.gather(*tasks)
    return results


@dataclass
class Phone:
    """One route's app: buffers its events, one batch in flight at a time."""

    buffer: list[tuple[int, dict[str, Any], float]] = field(default_factory=list)
    busy: bool = False


async def batches(
    http: Http,
    toks: dict[int, str],
    sends: list[dict[str, Any]],
    rate: float,
    flush_s: float,
    max_batch: int,
    sizes: list[int],
) -> list[Result]:
    """Events happen at ``rate`` (open loop); each route's phone sends what it has buffered
    (at most ``max_batch``) as soon as its previous batch is answered, after the oldest has
    waited ``flush_s`` if that is not 0, and never has two batches in flight."""
    results: list[Result] = []
    phones: dict[int, Phone] = defaultdict(Phone)
    tasks: list[asyncio.Task[None]] = []

    async def run(phone: Phone) -> None:
        while phone.buffer:
            wait = phone.buffer[0][2] + flush_s - time.perf_counter()
            if wait > 0 and len(phone.buffer) < max_batch:
                await asyncio.sleep(wait)
            batch, phone.buffer = phone.buffer[:max_batch], phone.buffer[max_batch:]
            sizes.append(len(batch))
            carrier = batch[0][1]["carrier"]
            sent = time.perf_counter()
            body = {"events": [s["body"] for _, s, _ in batch]}
            status, answer = await http.post("/dispatch/events:batch", body, toks[carrier])
            end = time.perf_counter()
            answers = answer.get("results") if status == 200 and isinstance(answer, dict) else None
            for k, (i, send, due) in enumerate(batch):
                if answers is None:
                    results.append(result(i, send, status, answer, due, sent, end))
                elif answers[k]["status"] == 200:
                    results.append(result(i, send, 200, answers[k]["event"], due, sent, end))
                else:
                    one = answers[k]
                    results.append(result(i, send, one["status"], one["problem"], due, sent, end))
        phone.busy = False

    start = time.perf_counter()
    for i, send in enumerate(sends):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        phone = phones[send["route"]]
        phone.buffer.append((i, send, due))
        if not phone.busy:
            phone.busy = True
            tasks.append(asyncio.create_task(run(phone)))
    await asyncio.gather(*tasks)
    return results


# --- measuring --------------------------------------------------------------------------------


@dataclass
class Meter:
    """Statements the server made, and CPU seconds of its workers, of the PostgreSQL backends
    connected to the benchmark database, and of this process."""

    server: subprocess.Popen[bytes]
    counts: Path
    database: str

    def read(self) -> dict[str, float]:
        statements = sum(int(p.read_text() or 0) for p in self.counts.iterdir())
        workers = 0.0
        try:
            root = psutil.Process(self.server.pid)
            for proc in [root, *root.children(recursive=True)]:
                t = proc.cpu_times()
                workers += t.user + t.system
        except psutil.Error:
            pass
        backends = {}
        engine = create_engine(PG + "postgres")
        with engine.connect() as conn:
            pids = conn.execute(
                text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = :d AND pid <> "
                    "pg_backend_pid()"
                ),
                {"d": self.database},
            ).scalars()
            for pid in pids:
                try:
                    t = psutil.Process(pid).cpu_times()
                    backends[pid] = t.user + t.system
                except psutil.Error:
                    pass
        engine.dispose()
        me = psutil.Process().cpu_times()
        return {
            "statements": statements,
            "workers": workers,
            "backends": backends,  # type: ignore[dict-item]
            "client": me.user + me.system,
        }

    def measure(
        self, fn: Callable[[], list[Result]]
    ) -> tuple[list[Result], float, dict[str, float]]:
        time.sleep(1.2)  # the workers' counts are written twice a second
        before = self.read()
        t0 = time.perf_counter()
        results = fn()
        wall = time.perf_counter() - t0
        time.sleep(1.2)
        after = self.read()
        pg = sum(
            cpu - before["backends"].get(pid, 0.0)  # type: ignore[attr-defined]
            for pid, cpu in after["backends"].items()  # type: ignore[attr-defined]
        )
        return (
            results,
            wall,
            {
                "statements": after["statements"] - before["statements"],
                "server_cpu_s": after["workers"] - before["workers"],
                "postgres_cpu_s": pg,
                "client_cpu_s": after["client"] - before["client"],
            },
        )


def start_server(url: str, port: int, workers: int, counts: Path) -> subprocess.Popen[bytes]:
    env = os.environ.copy() | {
        "RELIEFLINK_DATABASE_URL": url,
        "RELIEFLINK_LOG_LEVEL": "WARNING",
        "BENCH_STATEMENTS_DIR": str(counts),
        # an older commit's src first, side by side (as profile_tracking_http.py)
        "PYTHONPATH": os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(ROOT)])),
    }
    # ``relieflink serve`` runs ``uvicorn.run("relieflink.app:create_app", factory=True, ...)``;
    # this is the same server through uvicorn's CLI, with the statement counter of _server.py
    # and a longer worker health check: uvicorn kills a worker that does not answer within 5 s,
    # and on a loaded 2-core machine a worker's start-up (numpy, scipy, PyVRP) takes longer.
    command = [
        str(ROOT / ".venv/bin/python"), "-m", "uvicorn", "--factory",
        "benchmarks.dispatch._server:create_app", "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(workers), "--timeout-worker-healthcheck", "120",
        "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    server = subprocess.Popen(
        command,
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=LOG.open("w"),
        start_new_session=True,
    )
    import httpx

    for _ in range(240):
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}; see {LOG}")
        try:
            health = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1)
            if health.status_code == 200 and len(list(counts.iterdir())) >= workers:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    os.killpg(server.pid, signal.SIGTERM)
    raise SystemExit("the server did not start")


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q / 100 * len(values)))] if values else float("nan")


def per_second(results: list[Result], rate: float) -> list[float]:
    """The p99 latency (ms) of each second of a paced run (by when events happened): a stall
    shows as a few bad seconds, a server short of CPU as many."""
    if rate <= 0:
        return []
    by_second: dict[int, list[float]] = defaultdict(list)
    for r in results:
        by_second[int(r.i / rate)].append(r.latency * 1000)
    return [pct(by_second[k], 99) for k in sorted(by_second)]


def check(results: list[Result]) -> dict[str, Any]:
    """No lost and no duplicated event: compare what the server said with what it stored."""
    ok_first = {r.client_event_id: r for r in results if r.status == 200 and not r.retry}
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
        r.parcel
        for r in ok_first.values()
        if parcels[r.parcel] != ("delivered" if r.kind == "delivered" else "failed")
    ]
    retries = [r for r in results if r.retry]
    # Each client event applied exactly once: of all its 200 answers, one is not a replay.
    applied: dict[str, int] = {}
    for r in results:
        if r.status == 200:
            applied[r.client_event_id] = applied.get(r.client_event_id, 0) + (
                0 if r.replayed else 1
            )
    return {
        "accepted_first_sends": len(ok_first),
        "stored_events": len(stored),
        "lost": len(lost),
        "duplicated": len(duplicated),
        "stored_without_ok": len(unexpected),
        "parcels_in_wrong_state": len(wrong_state),
        "retries": len(retries),
        "retries_replayed": sum(1 for r in retries if r.replayed),
        "retries_refused_or_failed": sum(1 for r in retries if r.status != 200),
        "applied_not_exactly_once": sum(1 for n in applied.values() if n != 1),
        "ledger_problems": len(ledger),
    }


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--runs", default="sequential,single,batches")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--concurrency",
        type=int,
        default=16,
        help="requests in flight, max (at most the workers' pools: 10 connections each)",
    )
    parser.add_argument(
        "--flush-ms",
        type=float,
        default=0,
        help="a phone holds its first buffered event this long before sending (0: sends at "
        "once when no batch of its is in flight)",
    )
    parser.add_argument("--max-batch", type=int, default=200)
    parser.add_argument("--households", type=int, default=70_000)
    parser.add_argument("--communities", type=int, default=1400)
    parser.add_argument("--sequential", type=int, default=500, help="events one at a time")
    parser.add_argument("--warmup", type=int, default=400, help="events before measuring")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--database", default="rl_dispatch_bench")
    parser.add_argument(
        "--reuse", action="store_true", help="use the database a previous run prepared"
    )
    args = parser.parse_args()
    runs = [r.strip() for r in args.runs.split(",") if r.strip()]
    os.environ.setdefault("RELIEFLINK_SECRET_KEY", "bench-secret-" + "x" * 32)
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC, {load()}")
    if args.reuse:
        url = PG + args.database
        os.environ["RELIEFLINK_DATABASE_URL"] = url
        get_settings.cache_clear()
        reset_engine()
    else:
        url = fresh_pg(args.database)
        prepare(url, args.households, args.communities)
    upgrade(url)  # other domains' migrations may have landed meanwhile
    settle(url)
    parcels = at_gate()
    total = int(args.rate * args.seconds)
    wanted = {"sequential": args.sequential, "single": total, "batches": total}
    need = args.warmup + sum(wanted[r] for r in runs)
    sends = plan_events(parcels, need, seed=1)
    if len(sends) < need:
        raise SystemExit(f"only {len(sends)} events available, {need} needed; seed more")
    if args.port == 0:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            args.port = probe.getsockname()[1]
    counts = Path(tempfile.mkdtemp(prefix="rl-bench-stmts-"))
    server = start_server(url, args.port, args.workers, counts)
    base = f"http://127.0.0.1:{args.port}/api/v1"
    meter = Meter(server, counts, args.database)
    measured: dict[str, tuple[list[Result], float, dict[str, float]]] = {}
    sizes: list[int] = []
    warmup: list[Result] = []
    try:
        toks = sign_in(base)
        # Warm the workers up (connections, compiled statements, prepared statements) at a
        # fifth of the rate, half single events and half batches; checked, not measured.
        half = args.warmup // 2

        async def warm() -> list[Result]:
            http = Http("127.0.0.1", args.port, args.concurrency)
            try:
                out = await singles(http, toks, sends[:half], args.rate / 5)
                more = sends[half : args.warmup]
                return out + await batches(http, toks, more, args.rate / 5, 0, args.max_batch, [])
            finally:
                http.close()

        if args.warmup:
            print(f"warm-up: {args.warmup} events ...", flush=True)
            warmup = asyncio.run(warm())
        offset = args.warmup
        for run in runs:
            mine = sends[offset : offset + wanted[run]]
            offset += wanted[run]

            def go(run: str = run, mine: list[dict[str, Any]] = mine) -> list[Result]:
                async def inner() -> list[Result]:
                    http = Http("127.0.0.1", args.port, args.concurrency)
                    try:
                        if run == "sequential":
                            return await singles(http, toks, mine, 0)
                        if run == "single":
                            return await singles(http, toks, mine, args.rate)
                        return await batches(
                            http,
                            toks,
                            mine,
                            args.rate,
                            args.flush_ms / 1000,
                            args.max_batch,
                            sizes,
                        )
                    finally:
                        http.close()

                return asyncio.run(inner())

            print(f"{run}: {len(mine)} events ...", flush=True)
            measured[run] = meter.measure(go)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=15)
        shutil.rmtree(counts, ignore_errors=True)
    verdict = check(warmup + [r for results, _, _ in measured.values() for r in results])
    names = {
        "sequential": "one at a time (single events)",
        "single": f"single events, paced {args.rate:.0f}/s",
        "batches": f"batches, paced {args.rate:.0f}/s",
    }
    print(f"\n{args.workers} workers, {os.cpu_count()} cores; {load()}")
    header = (
        f"{'run':<32}{'events':>7}{'ev/s':>7}{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}"
        f"{'errors':>7}{'SQL/ev':>7}{'srv ms':>7}{'pg ms':>7}{'gen ms':>7}"
    )
    print(header + "\n" + "-" * len(header))
    summary: dict[str, Any] = {}
    for run, (results, wall, cost) in measured.items():
        lat = (
            [r.latency * 1000 for r in results]
            if run != "sequential"
            else [r.service * 1000 for r in results]
        )
        n = len(results)
        row = {
            "events": n,
            "seconds": wall,
            "rate": n / wall,
            "p50_ms": pct(lat, 50),
            "p99_ms": pct(lat, 99),
            "max_ms": max(lat),
            "service_p99_ms": pct([r.service * 1000 for r in results], 99),
            "p99_ms_each_second": per_second(results, args.rate if run != "sequential" else 0),
            "errors": sum(1 for r in results if r.status != 200),
            "sql_per_event": cost["statements"] / n,
            "server_cpu_ms_per_event": cost["server_cpu_s"] * 1000 / n,
            "postgres_cpu_ms_per_event": cost["postgres_cpu_s"] * 1000 / n,
            "client_cpu_ms_per_event": cost["client_cpu_s"] * 1000 / n,
        }
        summary[run] = row
        print(
            f"{names[run]:<32}{n:>7}{row['rate']:>7.0f}{row['p50_ms']:>8.1f}{row['p99_ms']:>8.1f}"
            f"{row['max_ms']:>8.1f}{row['errors']:>7}{row['sql_per_event']:>7.1f}"
            f"{row['server_cpu_ms_per_event']:>7.2f}{row['postgres_cpu_ms_per_event']:>7.2f}"
            f"{row['client_cpu_ms_per_event']:>7.2f}"
        )
    for run, row in summary.items():
        seconds = row["p99_ms_each_second"]
        if seconds:
            over = sum(1 for v in seconds if v > 100)
            print(
                f"{names[run]}: p99 of each second: median {pct(seconds, 50):.0f} ms, worst "
                f"{max(seconds):.0f} ms, {over} of {len(seconds)} seconds over 100 ms"
            )
    print(
        "SQL/ev: statements, commits and pool pings the server made per event (auth included); "
        "srv, pg, "
        "gen: CPU ms per event of the server's workers, the PostgreSQL backends serving them, "
        "and this load generator. Latency from the moment an event happened (batches: "
        "including the wait on the phone); one at a time: from send."
    )
    if "batches" in summary and sizes:
        print(
            f"batches: {len(sizes)} requests, {sum(sizes) / len(sizes):.1f} events each on "
            f"average (max {max(sizes)}), phones hold events {args.flush_ms:.0f} ms; service "
            f"time (from send) p99 {summary['batches']['service_p99_ms']:.1f} ms"
        )
    if "single" in summary and "sequential" in summary:
        print(
            f"throughput ratio paced single / one at a time: "
            f"×{summary['single']['rate'] / summary['sequential']['rate']:.1f}"
        )
    if "batches" in summary and "single" in summary:
        s, b = summary["single"], summary["batches"]
        print(
            "batches vs single events: SQL per event "
            f"×{s['sql_per_event'] / b['sql_per_event']:.1f} fewer, server CPU per event ×"
            f"{s['server_cpu_ms_per_event'] / max(b['server_cpu_ms_per_event'], 1e-9):.1f} less"
        )
    print(f"checks: {verdict}")
    sound = verdict["lost"] == 0 and verdict["duplicated"] == 0 and not verdict["ledger_problems"]
    for run in ("single", "batches"):
        if run not in summary:
            continue
        row = summary[run]
        passed = (
            row["rate"] >= 0.98 * args.rate
            and row["p99_ms"] <= 100
            and row["errors"] == 0
            and sound
        )
        summary[run]["pass"] = passed
        print(
            f"target with {names[run]} (≥ {args.rate:.0f}/s for {args.seconds:.0f} s, p99 ≤ 100 "
            f"ms, none lost or duplicated, ledger reconciled): {'PASS' if passed else 'FAIL'}"
        )
        errors = [r for r in measured[run][0] if r.status != 200]
        if errors:
            print("  first errors:", [(e.status, e.detail) for e in errors[:5]])
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = out / f"dispatch_tracking_{stamp}.json"
    path.write_text(
        json.dumps(
            {
                "args": vars(args),
                "runs": summary,
                "batch_sizes": {
                    "requests": len(sizes),
                    "mean": sum(sizes) / len(sizes) if sizes else None,
                    "max": max(sizes) if sizes else None,
                },
                "checks": verdict,
                "load_after": os.getloadavg(),
                "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
            },
            indent=2,
        )
    )
    print(f"wrote {path}")
    raw = path.with_name(path.stem + "_latencies.json")
    raw.write_text(
        json.dumps(
            {
                run: [
                    [round(r.i / args.rate, 4), round(r.latency, 5), round(r.service, 5)]
                    for r in sorted(results, key=lambda r: r.i)
                ]
                for run, (results, _, _) in measured.items()
            }
        )
    )
    print(f"wrote {raw} (per event: due second, latency s, service s)")


if __name__ == "__main__":
    main()
