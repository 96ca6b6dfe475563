"""A whole relief day on PostgreSQL, end to end through the real CLI (issue #16).

    .venv/bin/python -m benchmarks.city_day.run --scale 0.01 [--dask] [--iterations 200]

Stages: scenario generate; schema and catalog; every registry file and the fleet; stock received
at every warehouse (one ``stock receive`` with every ``--warehouse``); one day's requests (35 %
of households) through ``requests import``; one allocation run; one dispatch plan for the whole
city for tomorrow; the manifest of every route. Each stage is
one or more ``relieflink`` processes; for each it prints wall time, CPU time (the processes and
their children), peak memory (the largest process) and rows inserted (PostgreSQL's own
counters), and next to it the database's limit: a ``COPY`` of the same rows into a copy of the
same tables (indexes included), and the ratio stage / COPY.

With ``--dask`` the plan is made twice more with ``--iterations``: on the local pool and on a
cluster of one ``dask scheduler`` and two ``dask worker`` processes started here, and the two
plans' routes are compared. ``--scale 1.0`` is the whole city (10.7 M households; hours, not
minutes, on 2 cores). The database ``relieflink_city_day`` is dropped and made again.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import psutil
import psycopg
from benchmarks._db import ADMIN_URL, fresh_database

from relieflink import clock

BIN = Path(sys.executable).parent
SKU = "RICE-5KG"


@dataclass
class Stage:
    name: str
    wall_s: float = 0.0
    cpu_s: float = 0.0
    pool_cpu_s: float = 0.0
    server_cpu_s: float | None = None
    peak_mb: float = 0.0
    rows: dict[str, int] = field(default_factory=dict)
    copy_s: float | None = None


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _inserted(url: str) -> dict[str, int]:
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        rows = conn.execute("SELECT relname, n_tup_ins FROM pg_stat_user_tables").fetchall()
    return {name: int(n) for name, n in rows}


class _Unwaited:
    """CPU of the processes a ``relieflink`` process starts but never waits for.

    The routing pool's workers are children of a ``multiprocessing`` forkserver that the CLI
    does not wait for, so their CPU never reaches ``RUSAGE_CHILDREN``. This samples the
    process tree twice a second and keeps each forkserver-subtree process's own CPU as last
    seen (a process that ends loses at most half a second)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.seen: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            try:
                tree = psutil.Process(self.pid).children(recursive=True)
            except psutil.Error:
                return
            servers = set()
            for proc in tree:
                try:
                    if "forkserver" in " ".join(proc.cmdline()):
                        servers.add(proc.pid)
                    if proc.pid in servers or proc.ppid() in servers:
                        t = proc.cpu_times()
                        self.seen[proc.pid] = t.user + t.system
                except psutil.Error:
                    continue

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return sum(self.seen.values())


def _run(stage: Stage, env: dict[str, str], *args: str) -> str:
    """One ``relieflink`` process, its rusage (children included) and the CPU of its routing
    pool (``_Unwaited``) added to ``stage``."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [str(BIN / "relieflink"), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    pool = _Unwaited(proc.pid)
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    stage.wall_s += time.perf_counter() - started
    stage.pool_cpu_s += pool.stop()
    stage.cpu_s += usage.ru_utime + usage.ru_stime
    stage.peak_mb = max(stage.peak_mb, usage.ru_maxrss / 1024)
    if proc.returncode != 0:
        raise SystemExit(f"relieflink {' '.join(args)} failed:\n{output}")
    return output


def _bytecode_env() -> dict[str, str]:
    """The children's environment with their bytecode compiled once, as an install does.

    Where ``PYTHONDONTWRITEBYTECODE`` is set (these machines set it) and nothing was compiled,
    every ``relieflink`` process compiles each module it imports from source: ~2 s CPU a
    process (``relieflink --help`` 3.8 -> 2.0 s CPU at load 12), more than the work of most
    stages. The bytecode goes to a cache beside the interpreter (``PYTHONPYCACHEPREFIX``),
    compiled here before any stage, not timed (~45 s CPU the first time, ~10 s of checks
    after)."""
    prefix = Path(sys.prefix) / "pycache"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(prefix)
    started = time.perf_counter()
    roots = sorted({p for p in sys.path if p and Path(p).is_dir() and Path(p) != Path.cwd()})
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "-j", "0", "-x", r"[/\\]tests?[/\\]", *roots],
        env=env,
        stdout=subprocess.DEVNULL,
        check=False,  # a file that does not compile (tests of other packages) is no matter
    )
    print(f"bytecode in {prefix}: {time.perf_counter() - started:.1f} s", flush=True)
    return env


def _server_cpu(url: str) -> float | None:
    """CPU seconds PostgreSQL's processes have used so far (the postmaster, the backends it
    has reaped and those alive), or None where the server is not on this machine."""
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        try:
            postmaster = psutil.Process(int(row[0]) if row else 0).parent()
            if postmaster is None:
                return None
            t = postmaster.cpu_times()
            total = t.user + t.system + t.children_user + t.children_system
            for child in postmaster.children():
                c = child.cpu_times()
                total += c.user + c.system
        except psutil.Error:
            return None
    return float(total)


def _statements(admin: str, top: int) -> list[str] | None:
    """The ``top`` statements by total execution time since the last reset
    (``pg_stat_statements``), then a reset; None where the server does not have it."""
    try:
        with psycopg.connect(_libpq(admin), autocommit=True) as conn:
            rows = conn.execute(
                "SELECT total_exec_time / 1000, calls, rows, left(regexp_replace(query, "
                "'\\s+', ' ', 'g'), 110) FROM pg_stat_statements "
                "ORDER BY total_exec_time DESC LIMIT %s",
                (top,),
            ).fetchall()
            conn.execute("SELECT pg_stat_statements_reset()")
    except psycopg.Error:
        return None
    return [f"{sec:8.1f} s {calls:>9,} calls {n:>11,} rows  {q}" for sec, calls, n, q in rows]


def _copy_limit(url: str, rows: dict[str, int], workdir: Path) -> float:
    """Seconds for PostgreSQL to COPY the same number of rows of the same tables into empty
    copies of them (indexes included), rolled back."""
    total = 0.0
    with psycopg.connect(_libpq(url)) as conn:
        for table, n in rows.items():
            if n <= 0:
                continue
            dump = workdir / f"{table}.copy"
            query = f"COPY (SELECT * FROM {table} LIMIT {n}) TO STDOUT (FORMAT binary)"
            with dump.open("wb") as out, conn.cursor() as cur, cur.copy(query) as copy:
                for block in copy:
                    out.write(block)
            conn.execute(f"CREATE TEMP TABLE copy_{table} (LIKE {table} INCLUDING ALL)")
            started = time.perf_counter()
            sql = f"COPY copy_{table} FROM STDIN (FORMAT binary)"
            with dump.open("rb") as src, conn.cursor() as cur, cur.copy(sql) as copy:
                while block := src.read(1 << 20):
                    copy.write(block)
            total += time.perf_counter() - started
            dump.unlink()
        conn.rollback()
    return total


def _requests_file(city: Path, out: Path, share: float, seed: int) -> int:
    """One day's requests: ``share`` of the households, one bag of rice each."""
    rng = random.Random(seed)
    n = 0
    with (city / "households.csv").open(newline="") as src, out.open("w", newline="") as dst:
        writer = csv.writer(dst)
        writer.writerow(["household_code", "kit_sku", "item_sku", "quantity", "note"])
        for row in csv.DictReader(src):
            if rng.random() < share:
                writer.writerow([row["code"], "", SKU, 1, ""])
                n += 1
    return n


def _warehouses(city: Path) -> list[str]:
    with (city / "warehouses.csv").open(newline="") as src:
        return [row["code"] for row in csv.DictReader(src)]


def _donor(city: Path) -> str:
    with (city / "pledges.csv").open(newline="") as src:
        return next(csv.DictReader(src))["donor_code"]


def _plan_id(output: str) -> int:
    return int(output.split("plan ", 1)[1].split()[0])


def _routes(url: str, plan_id: int) -> list[tuple[object, ...]]:
    with psycopg.connect(_libpq(url)) as conn:
        return conn.execute(
            "SELECT r.depot_id, r.vehicle_id, r.vehicle_index, array_agg(s.community_id "
            "ORDER BY s.seq) FROM dispatch_routes r JOIN dispatch_stops s ON s.route_id = r.id "
            "WHERE r.plan_id = %s GROUP BY r.id ORDER BY r.depot_id, r.vehicle_id, "
            "r.vehicle_index, r.id",
            (plan_id,),
        ).fetchall()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tree_cpu(procs: list[subprocess.Popen[bytes]]) -> float:
    """CPU seconds used so far by ``procs`` and every process under them (the Dask scheduler,
    its workers' nannies and the workers)."""
    total = 0.0
    for proc in procs:
        try:
            root = psutil.Process(proc.pid)
            for each in (root, *root.children(recursive=True)):
                t = each.cpu_times()
                total += t.user + t.system
        except psutil.Error:
            continue
    return total


def _dask_plan(
    env: dict[str, str], database: str, url: str, plan_id: int, iterations: int
) -> list[Stage]:
    """The day's plan re-planned on the local pool, and on one scheduler and two workers
    started here, each from the same state: the Dask re-plan runs on a copy of the database
    made first (a re-plan releases what it cannot route, so re-planning the pool's re-plan
    would plan other parcels)."""
    copy_url = fresh_database("postgres", f"{database}_dask", template=database)
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [
        subprocess.Popen(
            [str(BIN / "dask"), "scheduler", "--port", str(port), "--no-dashboard"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    try:
        time.sleep(3)
        for _ in range(2):
            procs.append(
                subprocess.Popen(
                    [str(BIN / "dask"), "worker", address, "--nthreads", "1", "--no-dashboard"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        time.sleep(5)
        pool, dask = Stage("plan, local pool"), Stage("plan, Dask (1+2)")
        common = ["--iterations", str(iterations)]
        server = _server_cpu(url)
        first = _plan_id(_run(pool, env, "dispatch", "replan", str(plan_id), *common))
        middle, cluster = _server_cpu(url), _tree_cpu(procs)
        on_copy = {**env, "RELIEFLINK_DATABASE_URL": copy_url}
        replan = ["dispatch", "replan", str(plan_id), *common, "--scheduler", address]
        second = _plan_id(_run(dask, on_copy, *replan))
        dask.pool_cpu_s = _tree_cpu(procs) - cluster
        end = _server_cpu(url)
        if server is not None and middle is not None and end is not None:
            pool.server_cpu_s, dask.server_cpu_s = middle - server, end - middle
        same = _routes(url, first) == _routes(copy_url, second)
        print(f"plans {first} (pool) and {second} (Dask): routes identical: {same}")
        return [pool, dask]
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(timeout=30)


def _latest_plan(url: str) -> int:
    with psycopg.connect(_libpq(url)) as conn:
        row = conn.execute("SELECT max(id) FROM dispatch_plans").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _table(scale: float, stages: list[Stage]) -> None:
    self_usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        f"\ncity day at scale {scale} on PostgreSQL, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f} "
        f"{os.getloadavg()[2]:.1f} (machine shared); harness CPU {self_usage.ru_utime:.1f} s"
    )
    print(
        f"{'stage':32} {'wall s':>8} {'CPU s':>8} {'pool s':>8} {'server s':>8} "
        f"{'peak MB':>8} {'rows':>10} {'COPY s':>8} {'ratio':>7}"
    )
    for st in stages:
        rows = sum(st.rows.values())
        copy = f"{st.copy_s:8.2f}" if st.copy_s is not None else f"{'':8}"
        ratio = f"{st.wall_s / st.copy_s:7.0f}" if st.copy_s else f"{'':7}"
        server = f"{st.server_cpu_s:8.1f}" if st.server_cpu_s is not None else f"{'':8}"
        print(
            f"{st.name:32} {st.wall_s:8.1f} {st.cpu_s:8.1f} {st.pool_cpu_s:8.1f} {server} "
            f"{st.peak_mb:8.0f} {rows:10,} {copy} {ratio}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=0.01)
    parser.add_argument("--share", type=float, default=0.35, help="households asking today")
    parser.add_argument("--iterations", type=int, default=200, help="routing work per problem")
    parser.add_argument("--dask", action="store_true", help="also plan on a Dask cluster")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--statements", type=int, default=0, help="print each stage's N longest statements"
    )
    parser.add_argument("--database", default="relieflink_city_day", help="dropped and made again")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="only the pool-and-Dask re-plans, of the latest plan of the day in --database",
    )
    args = parser.parse_args()
    admin = os.environ.get("BENCH_POSTGRES_ADMIN_URL", ADMIN_URL)
    if args.reuse:
        url = admin.rsplit("/", 1)[0] + f"/{args.database}"
        env = {**_bytecode_env(), "RELIEFLINK_DATABASE_URL": url}
        _table(args.scale, _dask_plan(env, args.database, url, _latest_plan(url), args.iterations))
        return
    url = fresh_database("postgres", args.database)
    env = {**_bytecode_env(), "RELIEFLINK_DATABASE_URL": url}
    # Tomorrow's plan, as a coordinator makes it the evening before: today's shifts may be
    # over at the hour the benchmark runs (a plan uses no shift time already past).
    day = (clock.today() + timedelta(days=1)).isoformat()
    stages: list[Stage] = []
    with tempfile.TemporaryDirectory(prefix="city_day_") as tmp:
        work = Path(tmp)
        city = work / "city"

        def stage(name: str, *commands: list[str]) -> Stage:
            st = Stage(name)
            before = _inserted(url)
            _statements(admin, 0)
            server = _server_cpu(url)
            for command in commands:
                _run(st, env, *command)
            server_after = _server_cpu(url)
            if server is not None and server_after is not None:
                st.server_cpu_s = server_after - server
            if args.statements and (top := _statements(admin, args.statements)):
                print(f"  {name}: the server's {len(top)} longest statements", flush=True)
                print("\n".join(f"    {line}" for line in top), flush=True)
            after = _inserted(url)
            st.rows = {t: n - before.get(t, 0) for t, n in after.items() if n > before.get(t, 0)}
            if st.rows:
                st.copy_s = _copy_limit(url, st.rows, work)
            stages.append(st)
            print(f"  {name}: {st.wall_s:.1f} s, {sum(st.rows.values()):,} rows", flush=True)
            return st

        stage(
            "scenario generate",
            [
                "scenario",
                "generate",
                "--scale",
                str(args.scale),
                "--seed",
                str(args.seed),
                "--out",
                str(city),
            ],
        )
        stage("schema and catalog", ["db", "upgrade"], ["catalog", "seed"])
        kinds = ["organizations", "districts", "communities", "warehouses", "households"]
        kinds += ["teams", "programs", "pledges"]
        stage(
            "import registry and fleet",
            *[["import", kind, str(city / f"{kind}.csv")] for kind in kinds],
            ["dispatch", "import-fleet", str(city / "vehicles.csv")],
        )
        requests = work / "requests.csv"
        n = _requests_file(city, requests, args.share, args.seed)
        per = n // len(_warehouses(city)) + 1
        donor = _donor(city)
        stage(
            "stock receipts",
            [
                "stock",
                "receive",
                *[arg for w in _warehouses(city) for arg in ("--warehouse", w)],
                "--sku",
                SKU,
                "--quantity",
                str(per),
                "--donor",
                donor,
            ],
        )
        stage(f"requests import ({n:,})", ["requests", "import", str(requests)])
        stage("allocation run", ["allocate"])
        stage(
            "dispatch plan",
            ["dispatch", "plan", "--date", day, "--iterations", str(args.iterations)],
        )
        plan_id = _latest_plan(url)
        stage("manifests", ["dispatch", "manifests", str(plan_id), "--out", str(work / "m")])
        day_s = sum(st.wall_s for st in stages)
        if args.dask:
            stages.extend(_dask_plan(env, args.database, url, plan_id, args.iterations))
    _table(args.scale, stages)
    print(f"{'whole day (without --dask)':32} {day_s:8.1f}")


if __name__ == "__main__":
    main()
