"""Sustained reservations against ``relieflink serve`` on loopback, at a fixed rate.

An open-loop asyncio load generator sends ``--rate`` reservation requests per second for
``--duration`` seconds (each with its own Idempotency-Key, random warehouse and item, 1–3 units)
to a server started here with ``--workers`` uvicorn workers against a fresh database. The stock
is sized so that late requests run out (409): afterwards the database must show reserved ==
the sum of the 201 answers ≤ what was there, every balance must equal its movements, and no
answer may be a 5xx or a transport error. Requests are never retried and the in-flight count is
bounded (``--max-in-flight``); a request that cannot be sent on time counts as late.

    .venv/bin/python benchmarks/stock/bench_reserve_load.py --rate 200 --duration 60 --workers 3
    .venv/bin/python benchmarks/stock/bench_reserve_load.py --backend sqlite --workers 1 ...

The server, PostgreSQL and the load generator share the machine's cores, so the generator is a
small HTTP/1.1 keep-alive client on raw asyncio streams (``--client raw``, on uvloop); ``--client
httpx`` is the general-purpose client it replaced, which costs several times more CPU per request.
Each run reports the CPU per request of the client, the server processes and the PostgreSQL
backends (read from /proc), so a shortfall can be put where it belongs.

``--also`` runs a second configuration right after the first, on a fresh database, and prints
the two side by side with ratios: ``no-key`` (no Idempotency-Key header: the middleware's share
of the cost) or ``httpx`` (the heavier client).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from _db import fresh_database as shared_fresh_database

RESULTS = Path(__file__).resolve().parents[1] / "results"
PASSWORD = "load test password 1"
CLK = os.sysconf("SC_CLK_TCK")


def fresh_url(backend: str, name: str, workdir: Path) -> str:
    return shared_fresh_database(backend, name, workdir)


def seed(url: str, warehouses: int, items: int, units: int) -> tuple[list[int], list[int], int]:
    from relieflink.db.engine import build_engine
    from relieflink.db.migrations import upgrade
    from relieflink.models import Item, Organization, Role, Warehouse
    from relieflink.stock import service as stock
    from relieflink.users import service as users
    from relieflink.users.schemas import UserCreate

    upgrade(url)
    engine = build_engine(url)
    with Session(engine) as s:
        ngo = Organization(code="NGO", kind="ngo", name="NGO", country="CN")
        donor = Organization(code="DONOR", kind="donor", name="Donor", country="CN")
        s.add_all([ngo, donor])
        s.flush()
        whs = [Warehouse(code=f"W{i}", name=f"W{i}", name_zh=f"仓{i}", owner_id=ngo.id,
                         lat=31.2, lon=121.4) for i in range(warehouses)]  # fmt: skip
        its = [Item(sku=f"I{i}", name=f"I{i}", name_zh=f"物{i}", category="food", unit="bag")
               for i in range(items)]  # fmt: skip
        s.add_all(whs + its)
        s.flush()
        for w in whs:
            for i in its:
                for k in range(2):  # two lots each, so FEFO spans lots
                    stock.receive_lot(s, warehouse_id=w.id, item_id=i.id,
                                      quantity=units // 2 + k * (units % 2),
                                      donor_org_id=donor.id, actor=None)  # fmt: skip
        users.create_user(s, UserCreate(username="loader", full_name="Load", role=Role.warehouse,
                                        password=PASSWORD), actor=None)  # fmt: skip
        s.commit()
        result = [w.id for w in whs], [i.id for i in its], warehouses * items * units
    engine.dispose()
    return result


# --- CPU accounting (/proc) -------------------------------------------------------------------


def _proc_cpu(match: Callable[[bytes, list[str]], bool]) -> float:
    """User + system CPU seconds of the live processes ``match`` accepts (cmdline, stat)."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if match(cmd, fields):
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLK


def server_cpu_s(pgid: int) -> float:
    """The server's processes: its process group (the uvicorn supervisor and its workers)."""
    return _proc_cpu(lambda _cmd, f: int(f[2]) == pgid)


def postgres_cpu_s(dbname: str) -> float:
    """The PostgreSQL backends serving ``dbname`` (their process titles name the database)."""
    tag = f" {dbname} ".encode()
    return _proc_cpu(lambda cmd, _f: cmd.startswith(b"postgres: ") and tag in cmd)


def client_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- clients ----------------------------------------------------------------------------------

Post = Callable[[str, bytes, dict[str, str]], Awaitable[tuple[int, bytes]]]


class TransportError(Exception):
    """The connection failed or the answer could not be read (counted, never retried)."""


Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]
# uvicorn closes a keep-alive connection idle for 5 s (its default); one idle nearly that long is
# not reused, or a request could be written into a connection the server is closing.
IDLE_LIMIT_S = 3.0


class RawClient:
    """HTTP/1.1 with keep-alive over asyncio streams: one connection per request in flight,
    reused; only what this benchmark needs (POST, Content-Length answers)."""

    def __init__(self, host: str, port: int, timeout: float = 30.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.idle: list[tuple[float, Conn]] = []  # (idle since, connection), most recent last

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        conn = self._reusable()
        try:
            if conn is None:
                conn = await asyncio.open_connection(self.host, self.port)
            return await asyncio.wait_for(self._exchange(conn, path, body, headers), self.timeout)
        except (OSError, EOFError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
            if conn is not None:
                conn[1].close()
                conn = None
            raise TransportError(type(exc).__name__) from exc
        finally:
            if conn is not None:
                self.idle.append((time.monotonic(), conn))

    def _reusable(self) -> Conn | None:
        now = time.monotonic()
        while self.idle:
            since, conn = self.idle.pop()
            if now - since < IDLE_LIMIT_S:
                return conn
            conn[1].close()  # the rest idled longer still
            for _, old in self.idle:
                old[1].close()
            self.idle.clear()
        return None

    async def _exchange(
        self,
        conn: Conn,
        path: str,
        body: bytes,
        headers: dict[str, str],
    ) -> tuple[int, bytes]:
        reader, writer = conn
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n{head}\r\n"
            .encode("latin-1") + body
        )  # fmt: skip
        raw = await reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = None
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
            elif name.strip().lower() == "connection" and value.strip().lower() == "close":
                raise ValueError("the server closed the connection")
        if length is None:
            raise ValueError("an answer without Content-Length")
        return status, await reader.readexactly(length)

    async def aclose(self) -> None:
        for _, (_, writer) in self.idle:
            writer.close()
        self.idle.clear()


class HttpxClient:
    """The general-purpose client, for comparison (``--client httpx``)."""

    def __init__(self, base: str, max_in_flight: int) -> None:
        import httpx

        self.httpx = httpx
        limits = httpx.Limits(max_connections=max_in_flight,
                              max_keepalive_connections=max_in_flight)  # fmt: skip
        self.client = httpx.AsyncClient(base_url=base, limits=limits, timeout=30.0)

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        try:
            r = await self.client.post(
                path, content=body, headers=headers | {"Content-Type": "application/json"}
            )
        except self.httpx.HTTPError as exc:
            raise TransportError(type(exc).__name__) from exc
        return r.status_code, r.content

    async def aclose(self) -> None:
        await self.client.aclose()


# --- the load -----------------------------------------------------------------------------------


async def wait_ready(host: str, port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(f"GET /api/v1/health HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            ok = (await reader.readuntil(b"\r\n")).split(b" ")[1] == b"200"
            writer.close()
            if ok:
                return
        except OSError:
            pass
        await asyncio.sleep(0.25)
    raise RuntimeError("the server did not start")


async def sign_in(host: str, port: int) -> str:
    client = RawClient(host, port)
    body = json.dumps({"username": "loader", "password": PASSWORD}).encode()
    status, raw = await client.post("/api/v1/auth/sign-in", body, {})
    await client.aclose()
    if status != 200:
        raise RuntimeError(f"sign-in failed: {status} {raw[:200]!r}")
    return str(json.loads(raw)["access_token"])


async def run_load(
    host: str, port: int, token: str, wh: list[int], items: list[int], rate: float,
    duration: float, max_in_flight: int, use_keys: bool, client_kind: str,
    sample_cpu: Callable[[], dict[str, float]], tag: str = "load", seed: int = 11,
) -> dict[str, Any]:  # fmt: skip
    client: RawClient | HttpxClient = (
        RawClient(host, port) if client_kind == "raw"
        else HttpxClient(f"http://{host}:{port}", max_in_flight)
    )  # fmt: skip
    auth = {"Authorization": f"Bearer {token}"}
    statuses: Counter[str] = Counter()
    latencies: list[float] = []
    worst: dict[int, float] = {}  # second of the run -> the slowest answer sent in it
    capped: Counter[int] = Counter()  # second of the run -> requests not sent (cap reached)
    granted = 0
    late = 0
    in_flight = 0
    rng = random.Random(seed)
    tasks: set[asyncio.Task[None]] = set()

    async def one(n: int) -> None:
        nonlocal granted, in_flight
        quantity = rng.randint(1, 3)
        body = json.dumps({"warehouse_id": rng.choice(wh), "item_id": rng.choice(items),
                           "quantity": quantity, "reference": f"{tag}:{n}"}).encode()  # fmt: skip
        headers = auth | {"Idempotency-Key": f"{tag}-{n}"} if use_keys else auth
        start = time.perf_counter()
        try:
            status, raw = await client.post("/api/v1/stock/reservations", body, headers)
            statuses[str(status)] += 1
            if status == 201:
                granted += sum(m["d_reserved"] for m in json.loads(raw))
        except TransportError as exc:
            statuses[str(exc)] += 1
        finally:
            took = time.perf_counter() - start
            latencies.append(took)
            second = int(start - t0)
            worst[second] = max(worst.get(second, 0.0), took)
            in_flight -= 1

    total = int(rate * duration)
    cpu0 = sample_cpu()
    t0 = time.perf_counter()  # read by one() too
    for n in range(total):
        due = t0 + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.1:
            late += 1
        if in_flight >= max_in_flight:
            late += 1
            statuses["not_sent_in_flight_cap"] += 1
            capped[int(time.perf_counter() - t0)] += 1
            continue
        in_flight += 1
        task = asyncio.create_task(one(n))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    send_s = time.perf_counter() - t0
    while tasks:
        await asyncio.sleep(0.05)
    wall_s = time.perf_counter() - t0
    cpu1 = sample_cpu()
    await client.aclose()
    done = len(latencies)
    ms = sorted(x * 1000 for x in latencies)
    cpu_ms = {k: round(1000 * (cpu1[k] - cpu0[k]) / max(done, 1), 2) for k in cpu0}
    cpu_ms["total"] = round(sum(cpu_ms.values()), 2)
    return {
        "requests": total,
        "sent_over_s": round(send_s, 2),
        "wall_s": round(wall_s, 2),
        "achieved_rate": round(done / wall_s, 1),
        "late_sends": late,
        "statuses": dict(statuses),
        "granted_units": granted,
        "cpu_ms_per_request": cpu_ms,
        # Where the tail came from: the slowest seconds (a stall of the whole machine shows as
        # one or two seconds with every answer slow) and the seconds in which the cap was hit.
        "slowest_seconds_ms": {
            k: round(1000 * v, 1) for k, v in sorted(worst.items(), key=lambda kv: -kv[1])[:5]
        },
        "seconds_at_cap": dict(sorted(capped.items())),
        "latency_ms": {
            "p50": round(statistics.median(ms), 1),
            "p95": round(ms[int(0.95 * (len(ms) - 1))], 1),
            "p99": round(ms[int(0.99 * (len(ms) - 1))], 1),
            "max": round(ms[-1], 1),
        },
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def one_run(args: argparse.Namespace, *, use_keys: bool, client_kind: str) -> dict[str, Any]:
    """Seed a fresh database, start the server, send the load, check the ledger."""
    workdir = Path(tempfile.mkdtemp(prefix="rl-load-"))
    url = fresh_url(args.backend, args.db_name, workdir)
    # Size the stock to ~85 % of what the run asks for (2 units on average): the tail refuses.
    asked = args.rate * (args.duration + args.warmup) * 2
    units = max(2, int(asked * 0.85 / (args.warehouses * args.items)))
    wh, items, stock_units = seed(url, args.warehouses, args.items, units)
    env = os.environ | {"RELIEFLINK_DATABASE_URL": url, "RELIEFLINK_LOG_LEVEL": "WARNING"}
    port = args.port or free_port()
    # What `relieflink serve --workers N` runs (uvicorn with the app factory; it picks uvloop and
    # httptools when installed, as they are); called directly because `relieflink serve` with
    # more than one worker loses its children on this version.
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "relieflink.app:create_app",
         "--host", "127.0.0.1", "--port", str(port), "--workers", str(args.workers),
         "--log-level", "warning", "--no-access-log"],
        env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip

    def sample_cpu() -> dict[str, float]:
        return {
            "client": client_cpu_s(),
            "server": server_cpu_s(server.pid),
            "postgres": postgres_cpu_s(args.db_name) if args.backend == "postgres" else 0.0,
        }

    async def drive() -> dict[str, Any]:
        await wait_ready("127.0.0.1", port)
        token = await sign_in("127.0.0.1", port)
        warm = None
        if args.warmup > 0:  # every worker opens its database connections: not measured
            warm = await run_load("127.0.0.1", port, token, wh, items, args.rate, args.warmup,
                                  args.max_in_flight, use_keys, client_kind, sample_cpu,
                                  tag="warmup", seed=7)  # fmt: skip
        load = await run_load("127.0.0.1", port, token, wh, items, args.rate, args.duration,
                              args.max_in_flight, use_keys, client_kind, sample_cpu)  # fmt: skip
        load["warmup"] = warm and {k: warm[k] for k in ("requests", "statuses", "granted_units")}
        return load

    try:
        load = _run(drive())
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            _, err = server.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            _, err = server.communicate()
    from relieflink.db.engine import build_engine
    from relieflink.models import StockBalance
    from relieflink.stock import service as stock

    engine = build_engine(url)
    with Session(engine) as s:
        reserved = int(s.scalar(select(func.coalesce(func.sum(StockBalance.reserved), 0))) or 0)
        problems = stock.check_ledger(s)
    engine.dispose()
    errors = sum(  # the warm-up's too: unmeasured, but an error is an error
        n
        for statuses in (load["statuses"], (load["warmup"] or {}).get("statuses", {}))
        for k, n in statuses.items()
        if k != "not_sent_in_flight_cap" and (not k.isdigit() or k.startswith("5"))
    )
    not_sent = load["statuses"].get("not_sent_in_flight_cap", 0)
    sustained = not_sent == 0 and load["late_sends"] == 0 and errors == 0
    server_log = (err or b"").decode()
    server_errors = [line for line in server_log.splitlines() if "Traceback" in line]
    (workdir / "server.log").write_text(server_log)
    # Oversold: more reserved than was there. (Reserved may exceed the units the client saw
    # granted when a request timed out on the client but completed on the server.)
    granted = load["granted_units"] + (load["warmup"] or {}).get("granted_units", 0)
    oversold = reserved > stock_units or reserved < granted
    return {
        "label": f"{client_kind}{'' if use_keys else ', no key'}",
        "stock_units": stock_units,
        "reserved_in_db": reserved,
        "ledger_problems": len(problems),
        "errors": errors,
        "server_tracebacks": len(server_errors),
        "server_log": str(workdir / "server.log"),
        "oversold": oversold,
        "target_sustained": sustained,
        **load,
    }


def _run(coro: Any) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def report(runs: list[dict[str, Any]], args: argparse.Namespace) -> None:
    width = 22 * len(runs)
    print(f"backend {args.backend}, {args.workers} workers, target {args.rate:g}/s for "
          f"{args.duration:g} s ({runs[0]['requests']:,} requests), "
          f"at most {args.max_in_flight} in flight")  # fmt: skip
    print(f"{'':<28}" + "".join(f"{r['label']:>22}" for r in runs))
    print("-" * (28 + width))

    def line(label: str, values: list[Any]) -> None:
        print(f"{label:<28}" + "".join(f"{v!s:>22}" for v in values))

    line("achieved rate /s", [r["achieved_rate"] for r in runs])
    line("late sends", [r["late_sends"] for r in runs])
    for k in sorted({k for r in runs for k in r["statuses"]}):
        line(f"status {k}", [r["statuses"].get(k, 0) for r in runs])
    for k in ("p50", "p95", "p99", "max"):
        line(f"latency {k} ms", [r["latency_ms"][k] for r in runs])
    for k in ("client", "server", "postgres", "total"):
        line(f"CPU ms/request, {k}", [r["cpu_ms_per_request"][k] for r in runs])
    line("units in stock", [r["stock_units"] for r in runs])
    line("units granted (201)", [r["granted_units"] for r in runs])
    line("  + in the warm-up", [(r["warmup"] or {}).get("granted_units", 0) for r in runs])
    line("units reserved in db", [r["reserved_in_db"] for r in runs])
    line("oversold", [r["oversold"] for r in runs])
    line("5xx / transport errors", [r["errors"] for r in runs])
    line("ledger problems", [r["ledger_problems"] for r in runs])
    line("server tracebacks", [r["server_tracebacks"] for r in runs])
    line("target rate sustained", [r["target_sustained"] for r in runs])
    for r in runs:
        print(f"slowest seconds of the run ({r['label']}): {r['slowest_seconds_ms']} ms; "
              f"seconds at the in-flight cap: {r['seconds_at_cap'] or 'none'}")  # fmt: skip
    if len(runs) == 2:
        a, b = runs
        for k in ("server", "total"):
            ratio = b["cpu_ms_per_request"][k] / max(a["cpu_ms_per_request"][k], 1e-9)
            print(f"CPU per request, {k}: {b['label']} / {a['label']} = {ratio:.2f}x")
    for r in runs:
        print(f"server log ({r['label']}): {r['server_log']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument(
        "--warmup", type=float, default=3,
        help="seconds of the same load first, not measured (connections, prepared statements)",
    )  # fmt: skip
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--db-name", default="rl_bench_reserve_load")
    parser.add_argument("--warehouses", type=int, default=3)
    parser.add_argument("--items", type=int, default=20)
    # Keep in-flight requests per worker below the database pool (10 + 20 overflow per worker):
    # a keyed request holds up to two connections at a time (the claim, then the route's).
    parser.add_argument("--max-in-flight", type=int, default=60)
    parser.add_argument("--client", choices=["raw", "httpx"], default="raw")
    parser.add_argument(
        "--no-idempotency-key",
        action="store_true",
        help="send no Idempotency-Key (isolates the middleware's share of the cost)",
    )
    parser.add_argument(
        "--also", choices=["no-key", "httpx"], default=None,
        help="run a second configuration after the first and compare the two",
    )  # fmt: skip
    args = parser.parse_args()

    runs = [one_run(args, use_keys=not args.no_idempotency_key, client_kind=args.client)]
    if args.also == "no-key":
        runs.append(one_run(args, use_keys=False, client_kind=args.client))
    elif args.also == "httpx":
        runs.append(one_run(args, use_keys=not args.no_idempotency_key, client_kind="httpx"))
    report(runs, args)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"stock_load_{args.backend}_{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    result = {
        "machine": {"python": sys.version.split()[0], "platform": platform.platform(),
                    "cpus": os.cpu_count(), "load_avg_at_end": os.getloadavg()},
        "params": vars(args),
        "runs": runs,
    }  # fmt: skip
    out.write_text(json.dumps(result, indent=2, default=str))
    print(f"wrote {out}")
    first = runs[0]
    ok = first["target_sustained"] and not (first["oversold"] or first["ledger_problems"])
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
