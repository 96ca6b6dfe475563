"""Stock ledger on PostgreSQL: ingesting movements, and stock on hand over 10,000,000 movements.

Side by side, in one run, on a fresh database:

1. Ingest. (a) the service path the API uses (``reserve``/``issue``/``release`` with row locks,
   checks and one balance update per movement), measured on ``--service-ops`` operations and
   reported as movements per second; (b) a bulk load of ``--ingest`` movements of a consistent
   history (COPY into ``stock_movements``, then ``rebuild_balances`` and ``check_ledger``).
2. Query. The ledger is grown to ``--movements`` movements (server-side ``generate_series``), the
   balance table rebuilt and analysed; then stock on hand by warehouse and item (and for a whole
   warehouse) is read through ``stock_on_hand`` (balance table + indexes) and with the naive
   ``SUM`` over the movements a user would write, on the same random pairs.

    .venv/bin/python benchmarks/stock/bench_ledger.py --movements 10000000 --ingest 1000000

Targets (issue 3): ingest 1,000,000 movements; on-hand by warehouse and item over 10,000,000
movements in ≤ 100 ms on PostgreSQL.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sqlalchemy import text
from sqlalchemy.orm import Session

from _db import fresh_database as shared_fresh_database

RESULTS = Path(__file__).resolve().parents[1] / "results"


def fresh_database(name: str) -> str:
    return shared_fresh_database("postgresql", name)


def seed(session: Session, warehouses: int, items: int) -> tuple[list[int], list[int], list[int]]:
    from relieflink.models import Item, Organization, Warehouse

    ngo = Organization(code="NGO", kind="ngo", name="NGO", country="CN")
    donors = [Organization(code=f"D{i}", kind="donor", name=f"Donor {i}", country="CN")
              for i in range(20)]  # fmt: skip
    session.add_all([ngo, *donors])
    session.flush()
    whs = [Warehouse(code=f"W{i}", name=f"W{i}", name_zh=f"仓{i}", owner_id=ngo.id, lat=31.2,
                     lon=121.4) for i in range(warehouses)]  # fmt: skip
    its = [Item(sku=f"I{i}", name=f"Item {i}", name_zh=f"物{i}", category="food", unit="bag")
           for i in range(items)]  # fmt: skip
    session.add_all(whs + its)
    session.flush()
    return [w.id for w in whs], [i.id for i in its], [d.id for d in donors]


def make_lots(
    session: Session, wh_ids: list[int], item_ids: list[int], donor_ids: list[int], per_pair: int
) -> list[tuple[int, int, int]]:
    """One receipt lot per (warehouse, item, k): (lot, warehouse, item), via the lots table only
    (their receipt movements are part of the generated history)."""
    today = date.today()
    conn = session.connection().connection.dbapi_connection
    assert conn is not None
    rows = []
    with conn.cursor() as cur:
        cur.execute("SELECT coalesce(max(id), 0) FROM stock_lots")
        (before,) = cur.fetchone()  # type: ignore[misc]
        with cur.copy(
            "COPY stock_lots (item_id, expiry, donor_org_id, origin, quantity, unit_value_fen, "
            "created_at) FROM STDIN"
        ) as copy:
            now = datetime.now(UTC)
            for w in wh_ids:
                for i in item_ids:
                    for k in range(per_pair):
                        d = donor_ids[(w + i + k) % len(donor_ids)]
                        exp = today + timedelta(days=30 + (w * 7 + i * 3 + k * 11) % 300)
                        copy.write_row((i, exp, d, "receipt", 1_000_000, 100, now))
        cur.execute("SELECT id FROM stock_lots WHERE id > %s ORDER BY id", (before,))
        lot_ids = [r[0] for r in cur.fetchall()]
        with cur.copy(
            "COPY lot_sources (lot_id, donor_org_id, item_id, quantity, value_fen) FROM STDIN"
        ) as copy:
            n = 0
            for w in wh_ids:
                for i in item_ids:
                    for k in range(per_pair):
                        d = donor_ids[(w + i + k) % len(donor_ids)]
                        copy.write_row((lot_ids[n], d, i, 1_000_000, 100_000_000))
                        rows.append((lot_ids[n], w, i))
                        n += 1
    return rows


GEN_SQL = """
INSERT INTO stock_movements (kind, warehouse_id, lot_id, item_id, d_on_hand, d_reserved,
                             d_in_transit, reference, delivery_ref, created_at)
SELECT
  CASE WHEN g.k = 0 THEN 'receipt' WHEN g.k % 2 = 1 THEN 'reservation'
       WHEN g.k % 10 = 0 THEN 'release' ELSE 'issue' END,
  l.warehouse_id, l.lot_id, l.item_id,
  CASE WHEN g.k = 0 THEN 1000000 WHEN g.k % 2 = 1 OR g.k % 10 = 0 THEN 0
       ELSE -(1 + (l.lot_id * 7 + (g.k / 2) * 13) % 20) END,
  CASE WHEN g.k = 0 THEN 0 WHEN g.k % 2 = 1 THEN 1 + (l.lot_id * 7 + ((g.k + 1) / 2) * 13) % 20
       ELSE -(1 + (l.lot_id * 7 + (g.k / 2) * 13) % 20) END,
  0,
  CASE WHEN g.k = 0 THEN NULL ELSE 'gen:' || l.lot_id || ':' || ((g.k + 1) / 2) END,
  CASE WHEN g.k > 0 AND g.k % 2 = 0 AND g.k % 10 <> 0 THEN 'hh:' || l.lot_id || ':' || g.k END,
  now()
FROM lots_tmp l CROSS JOIN generate_series(CAST(:k0 AS integer), CAST(:k1 AS integer)) AS g(k)
"""


def load_history(session: Session, lots: list[tuple[int, int, int]], k0: int, k1: int) -> None:
    """Movements k0..k1 of every lot: k=0 receipt, then (reservation, issue-or-release) pairs."""
    session.execute(text(GEN_SQL), {"k0": k0, "k1": k1})


def timed(fn: Any, repeat: int = 1) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def query_section(
    engine: Any, wh_ids: list[int], item_ids: list[int], queries: int, total: int
) -> dict[str, Any]:
    """Stock on hand through the balance table vs the naive SUM over movements."""
    from relieflink.stock import service as stock

    result: dict[str, Any] = {}
    naive_pair = text(
        "SELECT l.expiry, sum(m.d_on_hand), sum(m.d_reserved), sum(m.d_in_transit) "
        "FROM stock_movements m JOIN stock_lots l ON l.id = m.lot_id "
        "WHERE m.warehouse_id = :w AND m.item_id = :i GROUP BY l.expiry ORDER BY l.expiry"
    )
    naive_wh = text(
        "SELECT m.item_id, l.expiry, sum(m.d_on_hand), sum(m.d_reserved) "
        "FROM stock_movements m JOIN stock_lots l ON l.id = m.lot_id "
        "WHERE m.warehouse_id = :w GROUP BY m.item_id, l.expiry ORDER BY m.item_id, l.expiry"
    )
    pairs = [(random.choice(wh_ids), random.choice(item_ids)) for _ in range(queries)]
    timings: dict[str, list[float]] = {k: [] for k in ("balance_pair", "naive_pair",
                                                       "naive_pair_no_index", "balance_wh",
                                                       "naive_wh")}  # fmt: skip
    with Session(engine) as session:
        for w, i in pairs:
            a = stock.stock_on_hand(session, warehouse_id=w, item_id=i)
            t = timed(lambda w=w, i=i: stock.stock_on_hand(session, warehouse_id=w, item_id=i))
            timings["balance_pair"].append(t)
            b = session.execute(naive_pair, {"w": w, "i": i}).all()
            t = timed(lambda w=w, i=i: session.execute(naive_pair, {"w": w, "i": i}).all())
            timings["naive_pair"].append(t)
            assert [(r.expiry, r.on_hand, r.reserved) for r in a] == [
                (e, int(x), int(y)) for e, x, y, _ in b if x or _
            ]
        for w in wh_ids[: max(3, queries // 40)]:
            timings["balance_wh"].append(
                timed(lambda w=w: stock.stock_on_hand(session, warehouse_id=w))
            )
            timings["naive_wh"].append(timed(lambda w=w: session.execute(naive_wh, {"w": w}).all()))
        session.rollback()
        # The naive query once more without the (warehouse, item) index on the movements, as a
        # table without that index would answer it (DDL is transactional: rolled back after).
        session.execute(text("DROP INDEX ix_stock_movements_warehouse_id_item_id"))
        for w, i in pairs[: min(20, queries)]:
            session.execute(naive_pair, {"w": w, "i": i}).all()
            t = timed(lambda w=w, i=i: session.execute(naive_pair, {"w": w, "i": i}).all())
            timings["naive_pair_no_index"].append(t)
        session.rollback()
    table = []
    for key, values in timings.items():
        ms = [v * 1000 for v in values]
        table.append((key, len(ms), statistics.median(ms), pct(ms, 0.95), max(ms)))
    result["query_ms"] = {k: {"n": n, "p50": round(p50, 3), "p95": round(p95, 3),
                              "max": round(mx, 3)} for k, n, p50, p95, mx in table}  # fmt: skip
    print()
    print(f"stock on hand over {total:,} movements (PostgreSQL, warm cache)")
    print(f"{'query':<34} {'n':>5} {'p50 ms':>10} {'p95 ms':>10} {'max ms':>10}")
    labels = {
        "balance_pair": "balance table, warehouse × item",
        "naive_pair": "naive SUM(movements), wh × item",
        "naive_pair_no_index": "  same, no (wh, item) movement index",
        "balance_wh": "balance table, whole warehouse",
        "naive_wh": "naive SUM(movements), warehouse",
    }
    for key, n, p50, p95, mx in table:
        print(f"{labels[key]:<34} {n:>5} {p50:>10.2f} {p95:>10.2f} {mx:>10.2f}")
    q = result["query_ms"]
    print(f"ratio naive/balance (p50): wh × item {q['naive_pair']['p50'] / q['balance_pair']['p50']:.0f}×, "  # noqa: E501
          f"whole warehouse {q['naive_wh']['p50'] / q['balance_wh']['p50']:.0f}×")  # fmt: skip
    return result


def query_only(args: argparse.Namespace) -> int:
    from relieflink.db.engine import build_engine

    admin = os.environ.get(
        "BENCH_POSTGRES_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    engine = build_engine(admin.rsplit("/", 1)[0] + f"/{args.database}")
    random.seed(7)
    with engine.connect() as conn:
        wh_ids = [r[0] for r in conn.execute(text("SELECT id FROM warehouses ORDER BY id"))]
        item_ids = [r[0] for r in conn.execute(text("SELECT id FROM items ORDER BY id"))]
        total = conn.scalar(text("SELECT count(*) FROM stock_movements"))
    result = {"params": vars(args)} | query_section(
        engine, wh_ids, item_ids, args.queries, int(total or 0)
    )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"stock_ledger_queries_{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(result, indent=2, default=str))
    print(f"wrote {out}")
    engine.dispose()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--movements", type=int, default=10_000_000)
    parser.add_argument("--ingest", type=int, default=1_000_000)
    parser.add_argument("--service-ops", type=int, default=3000)
    parser.add_argument("--warehouses", type=int, default=20)
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--lots-per-pair", type=int, default=10)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--database", default="rl_bench_stock")
    parser.add_argument(
        "--query-only", action="store_true", help="only the queries, on an existing database"
    )
    args = parser.parse_args()
    if args.query_only:
        return query_only(args)

    from relieflink.db.engine import build_engine
    from relieflink.db.migrations import upgrade
    from relieflink.stock import service as stock

    url = fresh_database(args.database)
    upgrade(url)
    engine = build_engine(url)
    result: dict[str, Any] = {
        "machine": {"python": sys.version.split()[0], "platform": platform.platform(),
                    "cpus": os.cpu_count()},
        "params": vars(args),
    }  # fmt: skip
    random.seed(7)

    # --- 1a. the service path ----------------------------------------------------------
    with Session(engine) as session:
        wh_ids, item_ids, donor_ids = seed(session, args.warehouses, args.items)
        session.commit()
    with Session(engine) as session:
        for w in wh_ids[:2]:
            for i in item_ids[:10]:
                stock.receive_lot(session, warehouse_id=w, item_id=i, quantity=10**6,
                                  donor_org_id=donor_ids[0], actor=None)  # fmt: skip
        session.commit()
    moves = 0
    start = time.perf_counter()
    with Session(engine) as session:
        for n in range(args.service_ops):
            w, i = random.choice(wh_ids[:2]), random.choice(item_ids[:10])
            ref = f"svc:{n}"
            moves += len(stock.reserve(session, warehouse_id=w, item_id=i, quantity=3,
                                       reference=ref, actor=None))  # fmt: skip
            if n % 3 == 0:
                moves += len(stock.release(session, reference=ref, actor=None))
            else:
                moves += len(stock.issue(session, reference=ref, delivery_ref=f"d{n}",
                                         actor=None))  # fmt: skip
            if n % 100 == 99:
                session.commit()
        session.commit()
    service_s = time.perf_counter() - start
    result["service_path"] = {
        "movements": moves,
        "seconds": round(service_s, 2),
        "movements_per_s": round(moves / service_s),
        "projected_seconds_for_ingest": round(args.ingest / (moves / service_s), 1),
    }
    print(f"service path: {moves:,} movements in {service_s:.1f} s "
          f"({moves / service_s:,.0f}/s, committed every 100 operations)")  # fmt: skip

    # --- 1b. bulk ingest of a consistent history ---------------------------------------
    with Session(engine) as session:
        start = time.perf_counter()
        lots = make_lots(session, wh_ids, item_ids, donor_ids, args.lots_per_pair)
        session.execute(text("CREATE UNLOGGED TABLE lots_tmp (lot_id int, warehouse_id int, "
                             "item_id int)"))  # fmt: skip
        conn = session.connection().connection.dbapi_connection
        assert conn is not None
        with conn.cursor() as cur, cur.copy("COPY lots_tmp FROM STDIN") as copy:
            for row in lots:
                copy.write_row(row)
        per_lot_ingest = max(1, args.ingest // len(lots))
        load_history(session, lots, 0, per_lot_ingest - 1)
        rows = stock.rebuild_balances(session)
        problems = stock.check_ledger(session)
        session.commit()
        ingest_s = time.perf_counter() - start
    ingested = per_lot_ingest * len(lots)
    result["bulk_ingest"] = {
        "movements": ingested,
        "lots": len(lots),
        "balance_rows": rows,
        "seconds": round(ingest_s, 2),
        "movements_per_s": round(ingested / ingest_s),
        "ledger_problems": len(problems),
    }
    print(f"bulk ingest: {ingested:,} movements ({len(lots):,} lots) + rebuild + check in "
          f"{ingest_s:.1f} s; ledger problems: {len(problems)}")  # fmt: skip

    # --- 2. grow to --movements and query ----------------------------------------------
    per_lot_total = max(per_lot_ingest, args.movements // len(lots))
    with Session(engine) as session:
        start = time.perf_counter()
        step = 50
        for k0 in range(per_lot_ingest, per_lot_total, step):
            load_history(session, lots, k0, min(per_lot_total, k0 + step) - 1)
            session.commit()
            print(f"  movements per lot: {min(per_lot_total, k0 + step)}", file=sys.stderr)
        session.execute(text("DROP TABLE lots_tmp"))
        stock.rebuild_balances(session)
        session.commit()
        grow_s = time.perf_counter() - start
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE stock_movements"))
        conn.execute(text("VACUUM ANALYZE stock_balances"))
        total = conn.scalar(text("SELECT count(*) FROM stock_movements"))
        size = conn.scalar(text("SELECT pg_size_pretty(pg_total_relation_size('stock_movements'))"))
    print(f"ledger grown to {total:,} movements ({size}) in {grow_s:.0f} s")
    with Session(engine) as session:
        problems = stock.check_ledger(session)
    result["ledger"] = {"movements": total, "size": size, "grow_seconds": round(grow_s, 1),
                        "ledger_problems": len(problems)}  # fmt: skip

    result |= query_section(engine, wh_ids, item_ids, args.queries, int(total or 0))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"stock_ledger_{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(result, indent=2, default=str))
    print(f"wrote {out}")
    engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
