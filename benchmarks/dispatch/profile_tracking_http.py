"""CPU and Python function calls per tracking event through the whole API request, in process.

The app is called as ASGI, one request at a time, on a database ``bench_tracking.py`` prepared
(parcels at their gates); the thread-pool hops (the session's commit, the sign-in lookup, the
route) run inline so that cProfile sees the whole request. Function calls per event do not
depend on the machine's load, so two code versions compare side by side even on a busy machine;
the CPU ms do. Half the events are measured plain, then half under cProfile (printed: the top
``TOP`` functions by ``SORT``, default cumulative).

    # DB: a copy of the database bench_tracking.py prepared (the events use up its parcels)
    .venv/bin/python benchmarks/dispatch/profile_tracking_http.py DB 1000 single
    .venv/bin/python benchmarks/dispatch/profile_tracking_http.py DB 4000 batch 10
    # the code of another commit, side by side:
    git archive main src | tar -x -C /tmp/old
    PYTHONPATH=/tmp/old/src .venv/bin/python benchmarks/dispatch/profile_tracking_http.py ...
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import os
import pstats
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


async def _inline(fn: Any, *args: Any, **_: Any) -> Any:
    return fn(*args)


def main() -> None:
    database, n, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    size = int(sys.argv[4]) if len(sys.argv) > 4 else 20
    os.environ.setdefault("RELIEFLINK_SECRET_KEY", "bench-secret-" + "x" * 32)
    os.environ["RELIEFLINK_DATABASE_URL"] = (
        "postgresql+psycopg://postgres@127.0.0.1:5432/" + database
    )
    import anyio.to_thread

    anyio.to_thread.run_sync = _inline  # type: ignore[assignment]
    from benchmarks.dispatch import bench_tracking as bench
    from benchmarks.dispatch.seed import PASSWORD
    from sqlalchemy import select

    from relieflink.app import create_app
    from relieflink.db import session_scope
    from relieflink.models import User

    app = create_app()
    sends = bench.plan_events(bench.at_gate(), n + 200, seed=int(time.time()))
    if len(sends) < n + 200:
        raise SystemExit(f"only {len(sends)} events available")

    async def call(path: str, body: Any, token: str | None) -> dict[str, Any]:
        payload = json.dumps(body).encode()
        headers = [(b"host", b"x"), (b"content-type", b"application/json")]
        headers.append((b"content-length", str(len(payload)).encode()))
        if token:
            headers.append((b"authorization", f"Bearer {token}".encode()))
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "POST", "scheme": "http", "path": "/api/v1" + path,
            "raw_path": ("/api/v1" + path).encode(), "query_string": b"", "root_path": "",
            "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80), "headers": headers,
            "state": {},
        }  # fmt: skip
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": payload, "more_body": False}
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

        out: dict[str, Any] = {"body": b""}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                out["status"] = message["status"]
            elif message["type"] == "http.response.body":
                out["body"] += message.get("body", b"")

        await app(scope, receive, send)
        return out

    async def run(items: list[dict[str, Any]], tokens: dict[int, str]) -> None:
        if mode == "single":
            for s in items:
                r = await call("/dispatch/events", s["body"], tokens[s["carrier"]])
                assert r["status"] == 200, r
            return
        by_carrier: dict[int, list[dict[str, Any]]] = {}
        for s in items:
            by_carrier.setdefault(s["carrier"], []).append(s)
        for mine in by_carrier.values():
            for i in range(0, len(mine), size):
                chunk = mine[i : i + size]
                body = {"events": [s["body"] for s in chunk]}
                r = await call("/dispatch/events:batch", body, tokens[chunk[0]["carrier"]])
                assert r["status"] == 200, r

    async def go() -> None:
        async with app.router.lifespan_context(app):
            with session_scope() as session:
                couriers = session.scalars(select(User).where(User.role == "courier")).all()
                names = {u.organization_id: u.username for u in couriers}
            tokens = {}
            for org, name in names.items():
                r = await call("/auth/sign-in", {"username": name, "password": PASSWORD}, None)
                tokens[org] = json.loads(r["body"])["access_token"]
            half = n // 2
            await run(sends[:200], tokens)  # warm up
            c0 = time.process_time()
            await run(sends[200 : 200 + half], tokens)
            plain = (time.process_time() - c0) * 1000 / half
            print(f"{half} events, {mode}: {plain:.2f} CPU ms/event (not profiled)")
            profiler = cProfile.Profile(time.process_time)
            profiler.enable()
            await run(sends[200 + half :], tokens)
            profiler.disable()
            stats = pstats.Stats(profiler)
            print(f"function calls per event: {stats.total_calls / (n - half):.0f}")  # type: ignore[attr-defined]
            stats.sort_stats(os.environ.get("SORT", "cumulative")).print_stats(
                int(os.environ.get("TOP", "40"))
            )

    asyncio.run(go())


if __name__ == "__main__":
    main()
