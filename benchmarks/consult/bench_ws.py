"""Consultation messages in real time: N concurrent WebSocket sessions on loopback exchange
messages for a fixed time, against ``relieflink serve`` (one uvicorn worker) and, side by side,
a bare ``websockets`` relay with no authentication, storage or audit (what a user might run
instead). Target (issue 8): 1,000 sessions for 60 s, p99 delivery ≤ 200 ms, no message lost.

Each consultation has two sessions (the resident and the doctor). Every session sends a message
every ``--interval`` seconds (timestamped by the client process, which also receives, so the
clocks agree); delivery latency is measured at the *other* participant. "Lost" = sent but never
delivered to the peer; for RelieFlink the stored history is also counted in the database.

    .venv/bin/python benchmarks/consult/bench_ws.py --sessions 1000 --seconds 60
    .venv/bin/python benchmarks/consult/bench_ws.py --database postgresql
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import random
import resource
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import create_engine, func, select
from websockets.asyncio.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, fresh_database, percentile, populate, staff_token

from relieflink.models import ConsultMessage

ROOT = Path(__file__).resolve().parents[2]
# What the client offers: "deflate" (permessage-deflate, what browsers offer) or None.
CLIENT_COMPRESSION: str | None = "deflate"


@dataclass
class Stats:
    sent: set[tuple[str, int]] = field(default_factory=set)
    delivered: set[tuple[str, int]] = field(default_factory=set)
    duplicates: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    ack_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    connected: int = 0
    client_cpu_seconds: float = 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"server at {url} did not start")


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"nothing listening on {port}")


async def session(
    url: str,
    token: str,
    me: str,
    stats: Stats,
    *,
    start: asyncio.Event,
    stop_at: list[float],
    interval: float,
    drain: float,
    gate: asyncio.Semaphore,
) -> None:
    try:
        async with gate:
            ws = await connect(
                url,
                open_timeout=60,
                ping_interval=None,
                max_queue=None,
                compression=CLIENT_COMPRESSION,
            )
            await ws.send(json.dumps({"type": "auth", "token": token}))
            ready = json.loads(await ws.recv())
            if ready.get("type") != "ready":
                raise RuntimeError(f"not ready: {ready}")
        stats.connected += 1
    except Exception as exc:
        stats.errors.append(f"connect {me}: {exc!r}")
        return
    sent_at: dict[int, float] = {}

    async def reader() -> None:
        async for raw in ws:
            event = json.loads(raw)
            if event.get("type") != "message":
                if event.get("type") == "error":
                    stats.errors.append(f"{me}: {event}")
                continue
            now = time.perf_counter()
            body = json.loads(event["body"])
            key = (body["s"], body["n"])
            if body["s"] == me:
                stats.ack_ms.append((now - body["t"]) * 1000)
                continue
            if key in stats.delivered:
                stats.duplicates += 1
            stats.delivered.add(key)
            stats.latencies_ms.append((now - body["t"]) * 1000)

    task = asyncio.create_task(reader())
    await start.wait()
    await asyncio.sleep(random.random() * interval)  # spread the senders
    n = 0
    next_at = time.perf_counter()
    try:
        while time.perf_counter() < stop_at[0]:
            body = json.dumps({"s": me, "n": n, "t": time.perf_counter(), "pad": "健康咨询" * 8})
            await ws.send(json.dumps({"type": "message", "body": body, "client_ref": f"{me}:{n}"}))
            stats.sent.add((me, n))
            sent_at[n] = time.perf_counter()
            n += 1
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
        await asyncio.sleep(drain)
    except Exception as exc:
        stats.errors.append(f"send {me}: {exc!r}")
    finally:
        task.cancel()
        await ws.close()


async def drive(
    base: str,
    pairs: list[tuple[int, str, str]],
    *,
    seconds: float,
    interval: float,
    barrier: Any = None,
) -> tuple[Stats, float]:
    stats = Stats()
    start = asyncio.Event()
    stop_at = [0.0]
    gate = asyncio.Semaphore(50)
    tasks = []
    for cid, resident_token, doctor_token in pairs:
        url = f"{base}/{cid}/ws"
        for who, token in (("r", resident_token), ("d", doctor_token)):
            tasks.append(
                asyncio.create_task(
                    session(
                        url,
                        token,
                        f"{who}{cid}",
                        stats,
                        start=start,
                        stop_at=stop_at,
                        interval=interval,
                        drain=5.0,
                        gate=gate,
                    )
                )
            )
    t0 = time.perf_counter()
    while stats.connected + len(stats.errors) < len(tasks):
        await asyncio.sleep(0.2)
        if time.perf_counter() - t0 > 300:
            break
    connect_s = time.perf_counter() - t0
    if barrier is not None:  # every client process connected: start sending together
        await asyncio.get_running_loop().run_in_executor(None, barrier.wait)
    stop_at[0] = time.perf_counter() + seconds
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    start.set()
    await asyncio.gather(*tasks)
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    stats.client_cpu_seconds = cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime
    return stats, connect_s


def _drive_process(args: tuple[Any, ...]) -> tuple[Stats, float]:
    base, pairs, seconds, interval, barrier, compression = args
    global CLIENT_COMPRESSION
    CLIENT_COMPRESSION = compression
    return asyncio.run(drive(base, pairs, seconds=seconds, interval=interval, barrier=barrier))


def drive_processes(
    base: str, pairs: list[tuple[int, str, str]], *, seconds: float, interval: float, procs: int
) -> tuple[Stats, float]:
    """Drive the sessions from ``procs`` client processes (both sides of a consultation in the
    same process, so latencies use one clock), so the client is not the bottleneck."""
    if procs <= 1:
        return asyncio.run(drive(base, pairs, seconds=seconds, interval=interval))
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(procs)
        slices = [pairs[i::procs] for i in range(procs)]
        with ctx.Pool(procs) as pool:
            parts = pool.map(
                _drive_process,
                [(base, sl, seconds, interval, barrier, CLIENT_COMPRESSION) for sl in slices],
            )
    total = Stats()
    for stats, _ in parts:
        total.sent |= stats.sent
        total.delivered |= stats.delivered
        total.duplicates += stats.duplicates
        total.latencies_ms += stats.latencies_ms
        total.ack_ms += stats.ack_ms
        total.errors += stats.errors
        total.connected += stats.connected
        total.client_cpu_seconds += stats.client_cpu_seconds
    return total, max(c for _, c in parts)


def summarise(
    name: str, stats: Stats, sessions: int, seconds: float, connect_s: float
) -> dict[str, Any]:
    lost = len(stats.sent - stats.delivered)
    return {
        "system": name,
        "sessions": sessions,
        "connected": stats.connected,
        "connect_seconds": round(connect_s, 1),
        "sent": len(stats.sent),
        "delivered": len(stats.delivered),
        "lost": lost,
        "duplicates": stats.duplicates,
        "messages_per_second": round(len(stats.sent) / seconds, 1),
        "p50_ms": round(percentile(stats.latencies_ms, 50), 1),
        "p95_ms": round(percentile(stats.latencies_ms, 95), 1),
        "p99_ms": round(percentile(stats.latencies_ms, 99), 1),
        "max_ms": round(max(stats.latencies_ms, default=float("nan")), 1),
        "ack_p99_ms": round(percentile(stats.ack_ms, 99), 1),
        "errors": len(stats.errors),
        "first_errors": stats.errors[:5],
        "client_cpu_seconds": round(stats.client_cpu_seconds, 1),
    }


def run_relieflink(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    url = fresh_database(args.database, workdir, "rl_bench_ws")
    t0 = time.perf_counter()
    pairs = populate(url, consultations=args.sessions // 2, doctors=args.doctors, take=True)
    setup_s = time.perf_counter() - t0
    coordinator = staff_token(url)
    port = free_port()
    env = os.environ | {
        "RELIEFLINK_DATABASE_URL": url,
        "RELIEFLINK_LOG_LEVEL": "WARNING",
        "RELIEFLINK_ENVIRONMENT": "development",
    }
    server = subprocess.Popen(
        [str(ROOT / ".venv/bin/relieflink"), "serve", "--port", str(port), "--workers", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(workdir / "server.log", "w"),  # noqa: SIM115
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/api/v1/health")
        proc = psutil.Process(server.pid)
        cpu0 = proc.cpu_times()
        stats, connect_s = drive_processes(
            f"ws://127.0.0.1:{port}/api/v1/consultations",
            [(p.consultation_id, p.resident_token, p.doctor_token) for p in pairs],
            seconds=args.seconds,
            interval=args.interval,
            procs=args.client_procs,
        )
        cpu1 = proc.cpu_times()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/consultations/realtime/stats",
            headers={"Authorization": f"Bearer {coordinator}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            hub_stats = json.loads(response.read())
    finally:
        server.terminate()
        server.wait(timeout=30)
    result = summarise("relieflink", stats, len(pairs) * 2, args.seconds, connect_s)
    result["hub"] = hub_stats
    result["server_cpu_seconds"] = round(cpu1.user + cpu1.system - cpu0.user - cpu0.system, 1)
    engine = create_engine(url)
    with engine.connect() as conn:
        result["stored_in_history"] = conn.scalar(
            select(func.count()).select_from(ConsultMessage.__table__)
        )
    engine.dispose()
    result["database"] = args.database
    result["setup_seconds"] = round(setup_s, 1)
    return result


def run_baseline(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("relay_baseline.py")), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=open(workdir / "relay.log", "w"),  # noqa: SIM115
    )
    try:
        wait_port(port)
        pairs = [(i, "x", "x") for i in range(1, args.sessions // 2 + 1)]
        proc = psutil.Process(server.pid)
        cpu0 = proc.cpu_times()
        stats, connect_s = drive_processes(
            f"ws://127.0.0.1:{port}/c",
            pairs,
            seconds=args.seconds,
            interval=args.interval,
            procs=args.client_procs,
        )
        cpu1 = proc.cpu_times()
    finally:
        server.terminate()
        server.wait(timeout=30)
    result = summarise("bare websockets relay", stats, len(pairs) * 2, args.seconds, connect_s)
    result["server_cpu_seconds"] = round(cpu1.user + cpu1.system - cpu0.user - cpu0.system, 1)
    result["stored_in_history"] = None
    result["database"] = None
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--sessions", type=int, default=1000, help="WebSocket sessions (2 per consultation)"
    )
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument(
        "--interval", type=float, default=1.0, help="seconds between a session's messages"
    )
    parser.add_argument("--doctors", type=int, default=50)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--client-procs", type=int, default=2, help="client processes")
    parser.add_argument(
        "--no-compression",
        action="store_true",
        help="do not offer permessage-deflate (browsers offer it; chat messages are small)",
    )
    args = parser.parse_args()
    global CLIENT_COMPRESSION
    CLIENT_COMPRESSION = None if args.no_compression else "deflate"
    if args.seconds > 600 or args.sessions > 5000:
        parser.error("keep runs bounded: at most 600 s and 5000 sessions")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        rows.append(run_relieflink(args, workdir))
        if not args.skip_baseline:
            rows.append(run_baseline(args, workdir))
        log = (workdir / "server.log").read_text(errors="replace")[-2000:]
    keys = [
        "system",
        "connected",
        "sent",
        "delivered",
        "lost",
        "duplicates",
        "messages_per_second",
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "max_ms",
        "ack_p99_ms",
        "errors",
        "stored_in_history",
        "server_cpu_seconds",
        "client_cpu_seconds",
    ]
    print(
        f"\n{args.sessions} sessions, {args.seconds:.0f} s, one message per session every "
        f"{args.interval} s, RelieFlink on {args.database}, one uvicorn worker\n"
    )
    print(" | ".join(f"{k:>12}" for k in keys))
    for row in rows:
        print(" | ".join(f"{row[k]!s:>12}" for k in keys))
    if len(rows) == 2 and rows[1]["p99_ms"]:
        print(f"\np99 ratio RelieFlink / bare relay: {rows[0]['p99_ms'] / rows[1]['p99_ms']:.2f}")
    ok = rows[0]["p99_ms"] <= 200 and rows[0]["lost"] == 0 and rows[0]["connected"] == args.sessions
    print(f"target (p99 ≤ 200 ms, nothing lost, all connected): {'MET' if ok else 'NOT MET'}")
    print(f"server hub (submit → fan-out, one batch's store): {rows[0]['hub']}")
    for row in rows:
        for err in row["first_errors"]:
            print(f"  {row['system']} error: {err}")
    if rows[0]["errors"]:
        print("server log tail:\n" + log)
    RESULTS.mkdir(exist_ok=True)
    tag = f"{args.database}_{args.sessions}s_every{args.interval:g}s"
    tag += "_nodeflate" if args.no_compression else "_deflate"
    out = RESULTS / f"consult_ws_{tag}.json"
    out.write_text(
        json.dumps(
            {
                "args": vars(args),
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "load_average_at_end": os.getloadavg(),
                "rows": rows,
            },
            indent=2,
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
