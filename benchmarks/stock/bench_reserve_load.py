"""Sustained reservations against ``relieflink serve`` on loopback, at a fixed rate.

An open-loop asyncio + httpx load generator sends ``--rate`` reservation requests per second for
``--duration`` seconds (each with its own Idempotency-Key, random warehouse and item, 1–3 units)
to a server started here with ``--workers`` uvicorn workers against a fresh database. The stock
is sized so that late requests run out (409): afterwards the database must show reserved ==
the sum of the 201 answers ≤ what was there, every balance must equal its movements, and no
answer may be a 5xx or a transport error. Requests are never retried and the in-flight count is
bounded (``--max-in-flight``); a request that cannot be sent on time counts as late.

    .venv/bin/python benchmarks/stock/bench_reserve_load.py --rate 200 --duration 60 --workers 3
    .venv/bin/python benchmarks/stock/bench_reserve_load.py --backend sqlite --workers 1 ...

``--no-idempotency-key`` sends the same requests without the header, which bypasses the
Idempotency-Key middleware: side by side, this shows the middleware's share of the cost (it
does its database work synchronously on the event loop, so under load a worker's loop waits
for the database while requests queue behind it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from _db import fresh_database as shared_fresh_database

RESULTS = Path(__file__).resolve().parents[1] / "results"
PASSWORD = "load test password 1"


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


async def wait_ready(base: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get(f"{base}/api/v1/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.25)
    raise RuntimeError("the server did not start")


async def run_load(
    base: str, token: str, wh: list[int], items: list[int], rate: float, duration: float,
    max_in_flight: int, use_keys: bool = True,
) -> dict[str, Any]:  # fmt: skip
    limits = httpx.Limits(max_connections=max_in_flight, max_keepalive_connections=max_in_flight)
    headers = {"Authorization": f"Bearer {token}"}
    statuses: Counter[str] = Counter()
    latencies: list[float] = []
    granted = 0
    late = 0
    in_flight = 0
    rng = random.Random(11)
    tasks: set[asyncio.Task[None]] = set()

    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30.0) as client:

        async def one(n: int) -> None:
            nonlocal granted, in_flight
            quantity = rng.randint(1, 3)
            body = {"warehouse_id": rng.choice(wh), "item_id": rng.choice(items),
                    "quantity": quantity, "reference": f"load:{n}"}  # fmt: skip
            start = time.perf_counter()
            try:
                key = {"Idempotency-Key": f"load-{n}"} if use_keys else {}
                r = await client.post(
                    "/api/v1/stock/reservations", json=body, headers=headers | key
                )
                statuses[str(r.status_code)] += 1
                if r.status_code == 201:
                    granted += sum(m["d_reserved"] for m in r.json())
            except httpx.HTTPError as exc:
                statuses[type(exc).__name__] += 1
            finally:
                latencies.append(time.perf_counter() - start)
                in_flight -= 1

        total = int(rate * duration)
        t0 = time.perf_counter()
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
                continue
            in_flight += 1
            task = asyncio.create_task(one(n))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        send_s = time.perf_counter() - t0
        while tasks:
            await asyncio.sleep(0.05)
        wall_s = time.perf_counter() - t0
    ms = sorted(x * 1000 for x in latencies)
    return {
        "requests": total,
        "sent_over_s": round(send_s, 2),
        "wall_s": round(wall_s, 2),
        "achieved_rate": round(len(latencies) / wall_s, 1),
        "late_sends": late,
        "statuses": dict(statuses),
        "granted_units": granted,
        "latency_ms": {
            "p50": round(statistics.median(ms), 1),
            "p95": round(ms[int(0.95 * (len(ms) - 1))], 1),
            "p99": round(ms[int(0.99 * (len(ms) - 1))], 1),
            "max": round(ms[-1], 1),
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--warehouses", type=int, default=3)
    parser.add_argument("--items", type=int, default=20)
    # Keep in-flight requests per worker below the database pool (10 + 20 overflow per worker):
    # the idempotency middleware uses the pool from the event loop, so an exhausted pool stalls
    # a worker until the pool timeout.
    parser.add_argument("--max-in-flight", type=int, default=60)
    parser.add_argument(
        "--no-idempotency-key",
        action="store_true",
        help="send no Idempotency-Key (isolates the middleware's share of the cost)",
    )
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="rl-load-"))
    url = fresh_url(args.backend, "rl_bench_load", workdir)
    # Size the stock to ~85 % of what the run asks for (2 units on average): the tail refuses.
    asked = args.rate * args.duration * 2
    units = max(2, int(asked * 0.85 / (args.warehouses * args.items)))
    wh, items, stock_units = seed(url, args.warehouses, args.items, units)
    env = os.environ | {"RELIEFLINK_DATABASE_URL": url, "RELIEFLINK_LOG_LEVEL": "WARNING"}
    # What `relieflink serve --workers N` runs (uvicorn with the app factory); called directly
    # because `relieflink serve` with more than one worker loses its children on this version.
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "relieflink.app:create_app",
         "--host", "127.0.0.1", "--port", str(args.port), "--workers", str(args.workers),
         "--log-level", "warning", "--no-access-log"],
        env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    base = f"http://127.0.0.1:{args.port}"
    try:
        asyncio.run(wait_ready(base))
        token = httpx.post(f"{base}/api/v1/auth/sign-in",
                           json={"username": "loader", "password": PASSWORD}).json()[
            "access_token"
        ]  # fmt: skip
        load = asyncio.run(run_load(base, token, wh, items, args.rate, args.duration,
                                    args.max_in_flight, not args.no_idempotency_key))  # fmt: skip
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
    errors = sum(
        n
        for k, n in load["statuses"].items()
        if k != "not_sent_in_flight_cap" and (not k.isdigit() or k.startswith("5"))
    )
    not_sent = load["statuses"].get("not_sent_in_flight_cap", 0)
    sustained = not_sent == 0 and load["late_sends"] == 0 and errors == 0
    server_log = (err or b"").decode()
    server_errors = [line for line in server_log.splitlines() if "Traceback" in line]
    (workdir / "server.log").write_text(server_log)
    # Oversold: more reserved than was there. (Reserved may exceed the units the client saw
    # granted when a request timed out on the client but completed on the server.)
    oversold = reserved > stock_units or reserved < load["granted_units"]
    result = {
        "machine": {"python": sys.version.split()[0], "platform": platform.platform(),
                    "cpus": os.cpu_count(), "load_avg_at_end": os.getloadavg()},
        "params": vars(args),
        "stock_units": stock_units,
        "reserved_in_db": reserved,
        "ledger_problems": len(problems),
        "errors": errors,
        "server_tracebacks": len(server_errors),
        "oversold": oversold,
        "target_sustained": sustained,
        **load,
    }  # fmt: skip
    print(f"backend {args.backend}, {args.workers} workers, target {args.rate:g}/s for "
          f"{args.duration:g} s ({load['requests']:,} requests)")  # fmt: skip
    print(f"{'achieved rate':<28}{load['achieved_rate']:>12} /s")
    print(f"{'late sends':<28}{load['late_sends']:>12}")
    for k, v in sorted(load["statuses"].items()):
        print(f"{'status ' + k:<28}{v:>12,}")
    for k, v in load["latency_ms"].items():
        print(f"{'latency ' + k:<28}{v:>12} ms")
    print(f"{'units in stock':<28}{stock_units:>12,}")
    print(f"{'units granted (201)':<28}{load['granted_units']:>12,}")
    print(f"{'units reserved in db':<28}{reserved:>12,}")
    print(f"{'oversold':<28}{oversold!s:>12}")
    print(f"{'5xx / transport errors':<28}{errors:>12}")
    print(f"{'target rate sustained':<28}{sustained!s:>12}")
    print(f"{'ledger problems':<28}{len(problems):>12}")
    print(f"{'server tracebacks':<28}{len(server_errors):>12}  (log: {workdir / 'server.log'})")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"stock_load_{args.backend}_{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(result, indent=2, default=str))
    print(f"wrote {out}")
    return 0 if sustained and not (oversold or problems) else 1


if __name__ == "__main__":
    raise SystemExit(main())
