"""The doctors' queue under concurrent doctors: takes per second, latency of one take, and
double assignments, for ``consult.service.take_next`` (PostgreSQL: ``FOR UPDATE SKIP LOCKED``;
SQLite: ``BEGIN IMMEDIATE``; both: an UPDATE conditional on the row still waiting) side by side
with the naive code a user would write first (SELECT the next waiting row, then UPDATE it).
Target (issue 8): 200 takes per second without a double assignment.

Each doctor is a thread with its own session; one take is one transaction (take + commit), the
same path as ``POST /consultations/take`` without HTTP. The paced run holds the target rate;
the unpaced run shows the ceiling.

    .venv/bin/python benchmarks/consult/bench_queue.py --database sqlite
    .venv/bin/python benchmarks/consult/bench_queue.py --database postgresql
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, fresh_database, percentile, populate

from relieflink import clock
from relieflink.consult import repository
from relieflink.consult import service as consult
from relieflink.db.engine import build_engine
from relieflink.models import Consultation, User


def naive_take(session: Session, doctor: User) -> int | None:
    """What one writes first: read the next waiting row, then assign it."""
    cid = session.scalar(repository.waiting_matching(["general"], ["zh", "en"]).limit(1))
    if cid is None:
        return None
    session.execute(
        update(Consultation)
        .where(Consultation.id == cid)
        .values(status="in_progress", doctor_id=doctor.id, taken_at=clock.now())
    )
    return cid


def ours_take(session: Session, doctor: User) -> int | None:
    got = consult.take_next(session, actor=doctor)
    return got.id if got is not None else None


def run(
    url: str,
    *,
    label: str,
    take: Any,
    doctors: int,
    seconds: float,
    rate: float | None,
    pool: int,
) -> dict[str, Any]:
    engine = build_engine(url)
    if url.startswith("postgresql"):
        engine.dispose()
        from sqlalchemy import create_engine

        engine = create_engine(url, pool_size=doctors + 2, max_overflow=0)
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    with factory() as s:
        staff = list(s.scalars(select(User).where(User.role == "doctor").order_by(User.id)))
    staff = staff[:doctors]
    assert len(staff) == doctors, "populate more doctors"
    taken: list[tuple[int, int]] = []
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(doctors + 1)
    stop = [0.0]

    def worker(doctor: User) -> None:
        period = doctors / rate if rate else 0.0
        barrier.wait()
        next_at = time.perf_counter()
        while time.perf_counter() < stop[0]:
            t0 = time.perf_counter()
            try:
                with factory() as session:
                    cid = take(session, doctor)
                    session.commit()
            except Exception as exc:
                with lock:
                    errors.append(type(exc).__name__ + ": " + str(exc).splitlines()[0][:120])
                cid = None
            dt = time.perf_counter() - t0
            if cid is not None:
                with lock:
                    taken.append((cid, doctor.id))
                    latencies.append(dt * 1000)
            if period:
                next_at += period
                time.sleep(max(0.0, next_at - time.perf_counter()))

    threads = [threading.Thread(target=worker, args=(d,)) for d in staff]
    for t in threads:
        t.start()
    stop[0] = time.perf_counter() + seconds
    t0 = time.perf_counter()
    barrier.wait()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    counts = Counter(cid for cid, _ in taken)
    double = sum(1 for n in counts.values() if n > 1)
    # Reset what was taken so the next run starts from the same queue.
    with factory() as s:
        s.execute(
            update(Consultation)
            .where(Consultation.status == "in_progress")
            .values(status="waiting", doctor_id=None, taken_at=None)
        )
        s.commit()
    engine.dispose()
    return {
        "system": label,
        "doctors": doctors,
        "target_rate": rate,
        "takes": len(taken),
        "takes_per_second": round(len(taken) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 50), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "double_assigned": double,
        "errors": len(errors),
        "first_errors": sorted(set(errors))[:3],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--doctors", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=200.0, help="paced takes per second")
    parser.add_argument("--consultations", type=int, default=0, help="default: enough for all")
    args = parser.parse_args()
    if args.seconds > 300:
        parser.error("keep runs bounded: at most 300 s")
    consultations = args.consultations or int(args.rate * args.seconds * 2.5) + 1000
    with tempfile.TemporaryDirectory() as tmp:
        url = fresh_database(args.database, Path(tmp), "rl_bench_queue")
        t0 = time.perf_counter()
        populate(url, consultations=consultations, doctors=args.doctors, take=False)
        setup = time.perf_counter() - t0
        common = {"doctors": args.doctors, "seconds": args.seconds, "pool": args.doctors}
        rows = [
            run(url, label="take_next, paced", take=ours_take, rate=args.rate, **common),
            run(url, label="take_next, unpaced", take=ours_take, rate=None, **common),
            run(url, label="naive, unpaced", take=naive_take, rate=None, **common),
        ]
    keys = ["system", "takes", "takes_per_second", "p50_ms", "p99_ms", "double_assigned", "errors"]
    print(
        f"\n{args.doctors} doctor threads, {args.seconds:.0f} s per run, {args.database}, "
        f"{consultations} waiting consultations (set up in {setup:.0f} s)\n"
    )
    print(" | ".join(f"{k:>18}" for k in keys))
    for row in rows:
        print(" | ".join(f"{row[k]!s:>18}" for k in keys))
    for row in rows:
        for err in row["first_errors"]:
            print(f"  {row['system']}: {err}")
    paced = rows[0]
    ok = paced["takes_per_second"] >= 0.95 * args.rate and paced["double_assigned"] == 0
    ok = ok and rows[1]["double_assigned"] == 0 and paced["errors"] == rows[1]["errors"] == 0
    print(
        f"\nceiling ratio take_next / naive: "
        f"{rows[1]['takes_per_second'] / max(rows[2]['takes_per_second'], 1e-9):.2f}"
    )
    print(f"target ({args.rate:.0f} takes/s, no double assignment): {'MET' if ok else 'NOT MET'}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"consult_queue_{args.database}.json"
    out.write_text(
        json.dumps(
            {
                "args": vars(args),
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "consultations": consultations,
                "rows": rows,
            },
            indent=2,
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
