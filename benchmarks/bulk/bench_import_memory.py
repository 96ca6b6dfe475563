"""Import memory against file size: ``relieflink import households`` streaming (chunks of
``RELIEFLINK_IMPORT_CHUNK_ROWS``, 20,000) beside the whole file read, checked and written at
once (what the import did before it streamed: one chunk as large as the file), each in its own
process on a fresh database, with PostgreSQL's ``COPY`` of the same rows as the floor.

Prints rows → wall time and peak RSS for each; the target (issue 16) is a flat peak, ≤ 1 GB
for any import.

    .venv/bin/python benchmarks/bulk/bench_import_memory.py --rows 100000 1000000 [--postgres]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _db import fresh_database

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RESULTS = Path(__file__).resolve().parents[1] / "results" / "bulk_import_memory.json"
BIN = Path(sys.executable).parent
HEADER = "code,community_code,building,unit,size,infants,pregnant,chronic,elderly_80,disabled,phone"


def write_households(path: Path, rows: int) -> None:
    with path.open("w") as out:
        out.write(HEADER + "\n")
        for i in range(rows):
            out.write(f"B{i:08d},C00001,{i % 40},{i % 600},{1 + i % 5},0,0,0,0,0,+86 139 {i:08d}\n")


# A fresh wrapper per run, so the peak is that one child's (ru_maxrss of children only grows).
_PEAK = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
    "capture_output=True); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def run(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and the command's peak RSS in MB."""
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", _PEAK, *argv], env=env, check=True, capture_output=True, text=True
    )
    return time.perf_counter() - started, int(out.stdout.split()[-1]) / 1024


def database(kind: str, name: str, workdir: Path) -> str:
    url = fresh_database(kind, name, workdir)
    env = os.environ | {"RELIEFLINK_DATABASE_URL": url}
    subprocess.run([BIN / "relieflink", "db", "upgrade"], env=env, check=True, capture_output=True)
    for kind_ in ("organizations", "districts", "communities"):
        subprocess.run(
            [BIN / "relieflink", "import", kind_, EXAMPLES / f"{kind_}.csv"],
            env=env,
            check=True,
            capture_output=True,
        )
    return url


def copy_floor(url: str, path: Path) -> float:
    """PostgreSQL's COPY of the same rows into a bare table: the database's own limit."""
    import psycopg

    dsn = url.replace("postgresql+psycopg", "postgresql")
    started = time.perf_counter()
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "CREATE TEMP TABLE h (code text, community_code text, building text, unit text, "
            "size int, infants int, pregnant int, chronic int, elderly_80 int, disabled int, "
            "phone text)"
        )
        with path.open("rb") as src, cur.copy("COPY h FROM STDIN (FORMAT csv, HEADER)") as copy:
            while block := src.read(1 << 20):
                copy.write(block)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL instead of SQLite")
    args = parser.parse_args()
    kind = "postgres" if args.postgres else "sqlite"
    results = []
    print(f"{'rows':>10} {'how':>12} {'wall s':>8} {'peak MB':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for mode, chunk in (("streaming", "20000"), ("whole file", str(10**9))):
            for rows in sorted(args.rows):
                path = work / f"households_{rows}.csv"
                if not path.exists():
                    write_households(path, rows)
                url = database(kind, f"bench_mem_{rows}", work)
                env = os.environ | {
                    "RELIEFLINK_DATABASE_URL": url,
                    "RELIEFLINK_IMPORT_CHUNK_ROWS": chunk,
                }
                wall, peak = run([str(BIN / "relieflink"), "import", "households", str(path)], env)
                row = {"rows": rows, "mode": mode, "database": kind, "wall_s": round(wall, 1)}
                row["peak_rss_mb"] = round(peak)
                if kind == "postgres":
                    row["copy_s"] = round(copy_floor(url, path), 1)
                    row["ratio_to_copy"] = round(wall / row["copy_s"], 1)
                results.append(row)
                extra = (
                    f"  COPY {row['copy_s']} s (×{row['ratio_to_copy']})" if "copy_s" in row else ""
                )
                print(f"{rows:>10} {mode:>12} {wall:>8.1f} {peak:>8.0f}{extra}", flush=True)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"load": os.getloadavg(), "results": results}, indent=2))


if __name__ == "__main__":
    main()
