"""CPU per reservation request, in process (independent of machine load).

Drives the real ASGI app (middleware, authentication, routing, the service, serialisation)
directly from an asyncio loop, with no HTTP server or client, against a fresh database, and
reports per request: Python CPU ms (this process, all threads), PostgreSQL backend CPU ms (the
server processes of the benchmark database, read from /proc), SQL statements and round trips.

Side by side in one run:

- ``new``: ``POST /api/v1/stock/reservations`` with an Idempotency-Key, as the load test sends;
- ``no-key``: the same without the header (the middleware's share of the cost);
- ``service``: ``stock.reserve`` called directly, one transaction each (no HTTP layer);
- ``service-orm``: the previous ORM implementation of the same reservation (a copy kept here as
  the baseline: lock every balance row, look up the reference, an ORM flush per movement).

    .venv/bin/python benchmarks/stock/profile_reserve.py --requests 600
    .venv/bin/python benchmarks/stock/profile_reserve.py --profile new   # cProfile top functions
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import random
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_reserve_load import PASSWORD, fresh_url, seed
from sqlalchemy import event
from sqlalchemy.orm import Session

CLK = os.sysconf("SC_CLK_TCK")


def postgres_cpu_s(dbname: str) -> float:
    """User + system CPU seconds of the PostgreSQL backends serving ``dbname``."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            if not cmd.startswith(b"postgres: ") or f" {dbname} ".encode() not in cmd:
                continue
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLK


async def asgi_call(
    app: Any, method: str, path: str, headers: dict[str, str], body: bytes
) -> tuple[int, bytes]:
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8000),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        + [(b"content-length", str(len(body)).encode()), (b"host", b"bench")],
    }  # fmt: skip
    sent = False
    status = 0
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


class StatementCounter:
    def __init__(self, engine: Any) -> None:
        self.statements = 0
        self.show = False
        event.listen(engine, "before_cursor_execute", self._on)
        event.listen(engine, "commit", self._commit)

    def _on(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.statements += 1
        if self.show:
            print("   SQL:", " ".join(statement.split())[:160])

    def _commit(self, _conn: Any) -> None:
        if self.show:
            print("   COMMIT")


def reserve_orm(
    session: Session, *, warehouse_id: int, item_id: int, quantity: int, reference: str
) -> list[Any]:
    """The reservation as it was before the single-statement path (the baseline)."""
    from relieflink.errors import Conflict
    from relieflink.models import MovementKind, StockMovement
    from relieflink.stock import repository

    today = date.today()
    repository.begin_write(session)
    balances = repository.lock_balances_of(
        session, warehouse_id=warehouse_id, item_id=item_id, kit_id=None
    )
    existing = repository.movements_by_reference(session, reference, [MovementKind.reservation])
    if existing:
        return existing
    usable = [b for b in balances if not (b.expiry and b.expiry < today) and b.on_hand > b.reserved]
    if sum(b.on_hand - b.reserved for b in usable) < quantity:
        raise Conflict("not enough")
    out = []
    left = quantity
    for b in usable:
        take = min(left, b.on_hand - b.reserved)
        b.reserved += take
        m = StockMovement(kind=MovementKind.reservation, warehouse_id=b.warehouse_id,
                          lot_id=b.lot_id, item_id=b.item_id, kit_id=b.kit_id, d_reserved=take,
                          reference=reference, actor_id=None)  # fmt: skip
        session.add(m)
        out.append(m)
        left -= take
        if left == 0:
            break
    session.flush()
    return out


def measure(
    variants: dict[str, Callable[[int], Any]], n: int, rounds: int, dbname: str,
    counter: StatementCounter, profile: set[str],
) -> list[dict[str, Any]]:  # fmt: skip
    """Per variant: CPU, statements and wall time per request. The variants take turns in
    ``rounds`` slices, so that a change in the machine's load falls on all of them alike."""
    for one in variants.values():
        for i in range(20):  # warm caches (compiled statements, prepared statements, pool)
            one(-1 - i)
    totals = {name: [0.0, 0.0, 0, 0.0] for name in variants}
    profs = {name: cProfile.Profile(time.process_time) for name in profile}
    for r in range(rounds):
        for name, one in variants.items():
            k = n // rounds + (1 if r < n % rounds else 0)
            counter.statements = 0
            prof = profs.get(name)
            pg0, cpu0, t0 = postgres_cpu_s(dbname), time.process_time(), time.perf_counter()
            if prof:
                prof.enable()
            for i in range(k):
                one(i)
            if prof:
                prof.disable()
            t = totals[name]
            t[0] += time.process_time() - cpu0
            t[1] += postgres_cpu_s(dbname) - pg0
            t[2] += counter.statements
            t[3] += time.perf_counter() - t0
    rows = []
    for name, (cpu, pg, statements, wall) in totals.items():
        row: dict[str, Any] = {
            "variant": name,
            "requests": n,
            "python_cpu_ms": round(1000 * cpu / n, 3),
            "postgres_cpu_ms": round(1000 * pg / n, 3),
            "statements": round(statements / n, 2),
            "wall_ms": round(1000 * wall / n, 3),
        }
        if name in profs:
            out = io.StringIO()
            profs[name].dump_stats(str(Path(tempfile.gettempdir()) / f"reserve_{name}.pstats"))
            pstats.Stats(profs[name], stream=out).sort_stats("cumulative").print_stats(45)
            row["profile"] = out.getvalue()
        rows.append(row)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--db-name", default="rl_bench_profile")
    parser.add_argument(
        "--only", nargs="*", default=["new", "no-key", "service", "service-orm"],
        help="variants to run",
    )  # fmt: skip
    parser.add_argument("--rounds", type=int, default=8, help="turns the variants take")
    parser.add_argument("--profile", nargs="*", default=[], help="variants to cProfile")
    parser.add_argument(
        "--inline-threads", action="store_true",
        help="run thread-pool work inline on the loop, so cProfile sees it (profiling only)",
    )  # fmt: skip
    parser.add_argument("--show-sql", action="store_true", help="print one request's SQL")
    args = parser.parse_args()
    if args.inline_threads:
        import anyio.to_thread

        async def inline(func: Callable[..., Any], *a: Any, **_kw: Any) -> Any:
            return func(*a)

        anyio.to_thread.run_sync = inline  # type: ignore[assignment]

    workdir = Path(tempfile.mkdtemp(prefix="rl-prof-"))
    url = fresh_url(args.backend, args.db_name, workdir)
    # Plenty of stock: every request is granted, so each does the full work.
    runs = len(args.only) * (args.requests + 40)
    wh, items, _ = seed(url, 3, 20, max(50, runs))
    os.environ |= {"RELIEFLINK_DATABASE_URL": url, "RELIEFLINK_LOG_LEVEL": "WARNING"}
    from relieflink.app import create_app
    from relieflink.config import get_settings
    from relieflink.db import get_engine, get_sessionmaker, reset_engine
    from relieflink.stock import service as stock

    get_settings.cache_clear()
    reset_engine()
    app = create_app(check_schema=False)
    loop = asyncio.new_event_loop()
    _status, raw = loop.run_until_complete(
        asgi_call(app, "POST", "/api/v1/auth/sign-in", {"content-type": "application/json"},
                  json.dumps({"username": "loader", "password": PASSWORD}).encode())
    )  # fmt: skip
    token = json.loads(raw)["access_token"]
    counter = StatementCounter(get_engine())
    rng = random.Random(5)
    seq = iter(range(10**9))

    def body() -> dict[str, Any]:
        return {"warehouse_id": rng.choice(wh), "item_id": rng.choice(items),
                "quantity": rng.randint(1, 3), "reference": f"prof:{next(seq)}"}  # fmt: skip

    def http(with_key: bool) -> Callable[[int], None]:
        def one(_i: int) -> None:
            data = body()
            headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
            if with_key:
                headers["idempotency-key"] = f"k-{data['reference']}"
            status, raw = loop.run_until_complete(
                asgi_call(app, "POST", "/api/v1/stock/reservations", headers,
                          json.dumps(data).encode())
            )  # fmt: skip
            if status != 201:
                raise RuntimeError(f"{status}: {raw[:300]!r}")

        return one

    def service(fn: Callable[..., Any]) -> Callable[[int], None]:
        def one(_i: int) -> None:
            data = body()
            with get_sessionmaker()() as session:
                fn(session, **data) if fn is reserve_orm else fn(session, actor=None, **data)
                session.commit()

        return one

    variants = {
        "new": http(True),
        "no-key": http(False),
        "service": service(stock.reserve),
        "service-orm": service(reserve_orm),
    }
    if args.show_sql:
        for name in args.only:
            print(f"-- one {name} request:")
            counter.show = True
            variants[name](-1)
            counter.show = False
    chosen = {name: variants[name] for name in args.only}
    rows = measure(chosen, args.requests, args.rounds, args.db_name, counter, set(args.profile))
    loop.close()
    get_engine().dispose()

    base = {r["variant"]: r for r in rows}
    print(f"backend {args.backend}, {args.requests} sequential requests per variant, "
          f"in {args.rounds} interleaved rounds; CPU per request")  # fmt: skip
    print(f"{'variant':<14}{'python ms':>11}{'postgres ms':>13}{'total ms':>10}{'SQL':>7}"
          f"{'wall ms':>10}")  # fmt: skip
    for r in rows:
        total = r["python_cpu_ms"] + r["postgres_cpu_ms"]
        print(f"{r['variant']:<14}{r['python_cpu_ms']:>11.2f}{r['postgres_cpu_ms']:>13.2f}"
              f"{total:>10.2f}{r['statements']:>7.1f}{r['wall_ms']:>10.2f}")  # fmt: skip
    if "service" in base and "service-orm" in base:
        new, old = base["service"], base["service-orm"]
        ratio = (old["python_cpu_ms"] + old["postgres_cpu_ms"]) / (
            new["python_cpu_ms"] + new["postgres_cpu_ms"]
        )
        print(f"service-orm / service CPU: {ratio:.2f}x")
    for r in rows:
        if "profile" in r:
            print(f"--- cProfile: {r['variant']}")
            print(r.pop("profile"))
    out = Path(__file__).resolve().parents[1] / "results"
    out.mkdir(exist_ok=True)
    path = out / f"stock_profile_{args.backend}_{int(time.time())}.json"
    path.write_text(json.dumps({"params": vars(args), "rows": rows}, indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
