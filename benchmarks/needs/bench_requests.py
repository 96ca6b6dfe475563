"""Residents' requests: one at a time through ``create_request`` vs in batches through
``create_requests``.

Side by side, on a fresh database each, the same stream of ``--requests`` requests by a
coordinator (as the demo simulation asks): one household in ten asks twice (the second merges),
one in fifty names an unknown kit (refused). One at a time, each request runs in its own
savepoint (as the simulation does, as its own transaction would); in batches, ``--batch``
requests a call. Both commit once at the end; the rows they leave are checked equal.

    .venv/bin/python benchmarks/needs/bench_requests.py --requests 5000
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from _db import fresh_database

TODAY = date(2026, 11, 30)
COMMUNITIES = 50


def prepare(url: str, households: int) -> None:
    from relieflink.catalog import service as catalog
    from relieflink.db.engine import build_engine
    from relieflink.db.migrations import upgrade
    from relieflink.models import Community, District, Household, Organization, Role, User

    upgrade(url)
    engine = build_engine(url)
    with Session(engine) as session:
        catalog.seed_catalog(session, actor=None)
        committee = Organization(code="COM", kind="committee", name="Committee", country="CN")
        district = District(code="D1", name="District", name_zh="区", lat=31.2, lon=121.4)
        session.add_all([committee, district])
        session.flush()
        communities = [
            Community(code=f"C{i}", name=f"C{i}", name_zh=f"小区{i}", district_id=district.id,
                      lat=31.2, lon=121.45, committee_id=committee.id, lockdown_status="open")
            for i in range(COMMUNITIES)
        ]  # fmt: skip
        session.add_all(communities)
        session.add(User(username="coord", full_name="c", role=Role.coordinator, password_hash="x"))
        session.flush()
        session.execute(
            insert(Household),
            [
                {"code": f"H{i}", "community_id": communities[i % COMMUNITIES].id, "size": 3}
                for i in range(households)
            ],
        )
        session.commit()
    engine.dispose()


def stream(households: list[int], n: int, seed: int) -> list[Any]:
    from relieflink.needs.schemas import RequestCreate

    rng = random.Random(seed)
    out = []
    for household_id in rng.sample(households, n):
        kits = [{"kit_sku": "KIT-FAMILY-FOOD", "quantity": rng.randint(1, 2)}]
        if rng.random() < 0.2:
            kits.append({"kit_sku": "KIT-INFANT", "quantity": 1})
        if rng.random() < 0.02:
            kits = [{"kit_sku": "KIT-RICE-TYPO", "quantity": 1}]
        out.append(RequestCreate.model_validate({"household_id": household_id, "lines": kits}))
    for first in rng.sample(range(n), n // 10):  # asks again, later in the stream
        out.insert(rng.randint(first + 1, len(out)), out[first])
    return out[:n]


def run(url: str, n: int, batch: int, seed: int) -> dict[str, Any]:
    from relieflink.db.engine import build_engine
    from relieflink.errors import RelieflinkError
    from relieflink.models import Household, NeedRequest, RequestLine, User
    from relieflink.needs import service as needs

    engine = build_engine(url)
    with Session(engine) as session:
        actor = session.scalars(select(User)).one()
        items = stream(list(session.scalars(select(Household.id).order_by(Household.id))), n, seed)
        refused = 0
        started = time.perf_counter()
        if batch:
            for i in range(0, len(items), batch):
                answers = needs.create_requests(
                    session, items[i : i + batch], actor=actor, today=TODAY
                )
                refused += sum(1 for a in answers if a.error is not None)
        else:
            for item in items:
                try:
                    with session.begin_nested():
                        needs.create_request(session, item, actor=actor, today=TODAY)
                except RelieflinkError:
                    refused += 1
        session.commit()
        seconds = time.perf_counter() - started
        count = session.scalar(select(func.count()).select_from(NeedRequest))
        lines = session.scalar(select(func.sum(RequestLine.quantity)))
    engine.dispose()
    return {"seconds": seconds, "refused": refused, "rows": (count, lines)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.databases.split(","):
            out = {}
            for mode, batch in (("one at a time", 0), (f"batches of {args.batch}", args.batch)):
                url = fresh_database(kind, f"bench_requests_{batch}", Path(tmp))
                prepare(url, args.requests)
                out[mode] = run(url, args.requests, batch, args.seed)
                rate = args.requests / out[mode]["seconds"]
                print(
                    f"{kind:<11}{mode:<18}{args.requests:>7} requests {out[mode]['seconds']:7.2f} s"
                    f" {rate:9,.0f} req/s  refused {out[mode]['refused']}"
                    f"  (requests, units) {out[mode]['rows']}",
                    flush=True,
                )
            single, batched = out.values()
            assert single["rows"] == batched["rows"], "the two paths left different rows"
            print(f"{kind:<11}speed-up {single['seconds'] / batched['seconds']:.1f}x", flush=True)
    print(f"load average after: {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    main()
