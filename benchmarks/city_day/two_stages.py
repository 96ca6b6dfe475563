"""The city day's requests import and allocation run alone, on copies of one database, for
each of several source trees in turn (before and after a change, back to back).

    .venv/bin/python -m benchmarks.city_day.two_stages --scale 0.2 --build \\
        --code /work/wt/base/src --code src

``--build`` makes the template database (``--template``, dropped and made again) as
:mod:`benchmarks.city_day.run` does up to the stock receipts, and keeps the day's requests
file in ``--workdir``. Then, for each ``--code`` (a ``src`` directory put first on
``PYTHONPATH`` of every ``relieflink`` process), the template is copied to a database of its
own and the two stages run there through the CLI: ``requests import`` and ``allocate``. The
columns are those of ``run.py`` (rows inserted, a COPY of as many rows, wall / COPY).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from benchmarks._db import fresh_database
from benchmarks.city_day import run


def _build(scale: float, seed: int, database: str, workdir: Path, env: dict[str, str]) -> None:
    url = fresh_database("postgres", database)
    env = {**env, "RELIEFLINK_DATABASE_URL": url}
    city = workdir / "city"
    stage = run.Stage("build")
    args = ["--scale", str(scale), "--seed", str(seed), "--out", str(city)]
    run._run(stage, env, "scenario", "generate", *args)
    run._run(stage, env, "db", "upgrade")
    run._run(stage, env, "catalog", "seed")
    kinds = ["organizations", "districts", "communities", "warehouses", "households"]
    for kind in [*kinds, "teams", "programs", "pledges"]:
        run._run(stage, env, "import", kind, str(city / f"{kind}.csv"))
    run._run(stage, env, "dispatch", "import-fleet", str(city / "vehicles.csv"))
    n = run._requests_file(city, workdir / "requests.csv", 0.35, seed)
    per = n // len(run._warehouses(city)) + 1
    warehouses = [a for w in run._warehouses(city) for a in ("--warehouse", w)]
    receive = ["stock", "receive", *warehouses, "--sku", run.SKU, "--quantity", str(per)]
    run._run(stage, env, *receive, "--donor", run._donor(city))
    print(f"template {database}: {stage.wall_s:.0f} s, {n:,} requests", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--template", default="relieflink_city_day_template")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/city_day_two_stages"))
    parser.add_argument("--build", action="store_true", help="make the template first")
    parser.add_argument("--code", action="append", default=[], help="a src directory")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    base_env = run._bytecode_env()
    if args.build:
        _build(args.scale, args.seed, args.template, args.workdir, base_env)
    requests = args.workdir / "requests.csv"
    for code in args.code:  # each tree's bytecode compiled before any stage, as run.py does
        compile_all = [sys.executable, "-m", "compileall", "-q", "-j", "0", code]
        subprocess.run(compile_all, env=base_env, stdout=subprocess.DEVNULL, check=False)
    for k, code in enumerate(args.code):
        src = str(Path(code).resolve())
        url = fresh_database("postgres", f"{args.template}_{k}", template=args.template)
        env = {**base_env, "RELIEFLINK_DATABASE_URL": url, "PYTHONPATH": src}
        stages = []
        for name, command in [
            ("requests import", ["requests", "import", str(requests)]),
            ("allocation run", ["allocate"]),
        ]:
            stage = run.Stage(name)
            before = run._inserted(url)
            load = os.getloadavg()[0]
            run._run(stage, env, *command)
            after = run._inserted(url)
            stage.rows = {t: n - before.get(t, 0) for t, n in after.items() if n > before.get(t, 0)}
            stage.copy_s = run._copy_limit(url, stage.rows, args.workdir)
            stages.append((stage, load, os.getloadavg()[0]))
        print(f"\n{src} on {url.rsplit('/', 1)[1]} (scale {args.scale})")
        print(
            f"{'stage':20} {'wall s':>8} {'CPU s':>8} {'peak MB':>8} {'rows':>10} "
            f"{'COPY s':>8} {'ratio':>6}  load before/after"
        )
        for st, before_load, after_load in stages:
            copy = st.copy_s or 0.0
            print(
                f"{st.name:20} {st.wall_s:8.1f} {st.cpu_s:8.1f} {st.peak_mb:8.0f} "
                f"{sum(st.rows.values()):10,} {copy:8.2f} {st.wall_s / max(copy, 1e-9):6.0f}"
                f"  {before_load:.1f} / {after_load:.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
