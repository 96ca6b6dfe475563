"""A city-sized database for the dispatch benchmarks (deterministic by seed).

``communities`` compounds over a 40 km × 40 km city around Shanghai's centre (70 % open, 20 %
controlled, 10 % sealed and closed to vehicles), ``households`` households spread evenly, each
with one allocated request line of one 5 kg bag of rice, reserved at the nearest of 9
warehouses. Stock is received through the real ledger service (one lot per warehouse, one donor
each); the 50,000 reservations are then written in bulk as the ledger's own movement and
balance rows (what ``stock.reserve`` would write, without 50,000 round trips), and the ledger
check confirms they reconcile. The fleet: ``vehicles`` trucks, vans and e-bikes of three
carriers, and ``robots`` delivery robots (200 kg, 100 km) of the first carrier.
"""

from __future__ import annotations

import time
from datetime import date
from typing import Any

import numpy as np
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from relieflink import clock
from relieflink.catalog import service as catalog
from relieflink.catalog.schemas import ItemCreate
from relieflink.models import (
    Allocation,
    AllocationRun,
    Community,
    District,
    FleetKind,
    Household,
    MovementKind,
    NeedRequest,
    Organization,
    OrgKind,
    RequestLine,
    Role,
    StockBalance,
    StockMovement,
    User,
    Vehicle,
    Warehouse,
)
from relieflink.optim.geo import haversine_m
from relieflink.stock import service as stock
from relieflink.users import service as users
from relieflink.users.schemas import UserCreate

DAY = date(2026, 11, 30)
PASSWORD = "benchmark password 1"
LAT0, LON0 = 31.23, 121.47


def _bulk(session: Session, model: Any, rows: list[dict[str, Any]], chunk: int = 5000) -> None:
    for start in range(0, len(rows), chunk):
        session.execute(insert(model), rows[start : start + chunk])


def seed(
    session: Session,
    *,
    communities: int = 1000,
    households: int = 50_000,
    vehicles: int = 200,
    robots: int = 20,
    seed: int = 7,
) -> dict[str, Any]:
    """Fill an empty, migrated database; returns what was made (ids and counts)."""
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    now = clock.now()
    orgs = {}
    for code, kind in (
        ("NGO", OrgKind.ngo),
        ("DONOR", OrgKind.donor),
        ("CAR-1", OrgKind.carrier),
        ("CAR-2", OrgKind.carrier),
        ("CAR-3", OrgKind.carrier),
    ):
        org = Organization(code=code, kind=kind, name=code, name_zh=code, country="CN")
        session.add(org)
        orgs[code] = org
    district = District(code="D1", name="City", name_zh="市", lat=LAT0, lon=LON0)
    session.add(district)
    session.flush()
    item = catalog.create_item(
        session,
        ItemCreate(
            sku="RICE-5KG",
            name="Rice 5 kg",
            name_zh="大米5公斤",
            category="food",
            unit="bag",
            grams_per_unit=5000,
            ml_per_unit=6500,
        ),
        actor=None,
    )
    carriers = ["CAR-1", "CAR-2", "CAR-3"]
    wh_lat = LAT0 + rng.uniform(-0.15, 0.15, 9)
    wh_lon = LON0 + rng.uniform(-0.18, 0.18, 9)
    warehouses = []
    for i in range(9):
        w = Warehouse(
            code=f"W{i + 1}",
            name=f"Warehouse {i + 1}",
            name_zh=f"仓库{i + 1}",
            owner_id=orgs[carriers[i % 3]].id,
            lat=float(wh_lat[i]),
            lon=float(wh_lon[i]),
            daily_outbound_kg=10**7,
        )
        session.add(w)
        warehouses.append(w)
    session.flush()
    c_lat = LAT0 + rng.uniform(-0.18, 0.18, communities)
    c_lon = LON0 + rng.uniform(-0.21, 0.21, communities)
    status = rng.choice(3, size=communities, p=[0.7, 0.2, 0.1])
    names = ("open", "controlled", "sealed")
    _bulk(
        session,
        Community,
        [
            {
                "code": f"C{i:05d}",
                "name": f"Compound {i}",
                "name_zh": f"小区{i}",
                "district_id": district.id,
                "lat": float(c_lat[i]),
                "lon": float(c_lon[i]),
                "households": 0,
                "residents": 0,
                "lockdown_status": names[int(status[i])],
                "vehicles_allowed": int(status[i]) != 2,
                "created_at": now,
                "updated_at": now,
            }
            for i in range(communities)
        ],
    )
    community_ids = list(session.scalars(select(Community.id).order_by(Community.id)))
    nearest = np.argmin(
        haversine_m(c_lat[:, None], c_lon[:, None], wh_lat[None, :], wh_lon[None, :]), axis=1
    )
    hh_comm = np.sort(rng.integers(0, communities, households))
    _bulk(
        session,
        Household,
        [
            {
                "code": f"H{i:07d}",
                "community_id": community_ids[int(hh_comm[i])],
                "building": str(1 + i % 40),
                "unit": str(100 + i % 400),
                "size": 3,
                "created_at": now,
                "updated_at": now,
            }
            for i in range(households)
        ],
    )
    hh_ids = list(session.scalars(select(Household.id).order_by(Household.id)))
    # Stock: one lot per warehouse, through the ledger service.
    per_wh = np.bincount(nearest[hh_comm], minlength=9)
    lots = {}
    for i, w in enumerate(warehouses):
        lot = stock.receive_lot(
            session,
            warehouse_id=w.id,
            item_id=item.id,
            quantity=int(per_wh[i]) + 100,
            donor_org_id=orgs["DONOR"].id,
            unit_value_fen=3500,
            actor=None,
        )
        lots[w.id] = lot.id
    _bulk(
        session,
        NeedRequest,
        [
            {
                "household_id": h,
                "source": "ngo",
                "status": "allocated",
                "period_start": DAY,
                "medical_urgency": 0,
                "carried_over": 0,
                "created_at": now,
                "updated_at": now,
            }
            for h in hh_ids
        ],
    )
    req_ids = list(session.scalars(select(NeedRequest.id).order_by(NeedRequest.id)))
    _bulk(
        session,
        RequestLine,
        [{"request_id": r, "item_id": item.id, "quantity": 1, "allocated": 1} for r in req_ids],
    )
    line_ids = list(session.scalars(select(RequestLine.id).order_by(RequestLine.id)))
    run = AllocationRun(
        policy_version="bench",
        method="bench",
        lines_considered=households,
        units_requested=households,
        units_allocated=households,
        runtime_s=0.0,
        summary={},
    )
    session.add(run)
    session.flush()
    alloc_rows, move_rows = [], []
    for i, (line, h) in enumerate(zip(line_ids, hh_ids, strict=True)):
        w = warehouses[int(nearest[hh_comm[i]])].id
        ref = f"alloc:{run.id}:{line}:{w}"
        alloc_rows.append(
            {
                "run_id": run.id,
                "line_id": line,
                "household_id": h,
                "warehouse_id": w,
                "item_id": item.id,
                "quantity": 1,
                "priority_class": 3,
                "score": 0,
                "reasons": "benchmark",
                "reference": ref,
            }
        )
        move_rows.append(
            {
                "kind": MovementKind.reservation,
                "warehouse_id": w,
                "lot_id": lots[w],
                "item_id": item.id,
                "d_on_hand": 0,
                "d_reserved": 1,
                "d_in_transit": 0,
                "reference": ref,
                "created_at": now,
            }
        )
    _bulk(session, Allocation, alloc_rows)
    _bulk(session, StockMovement, move_rows)
    for i, w in enumerate(warehouses):
        session.execute(
            update(StockBalance)
            .where(StockBalance.warehouse_id == w.id, StockBalance.lot_id == lots[w.id])
            .values(reserved=int(per_wh[i]))
        )
    # Fleet: 30 % trucks, 50 % vans, 20 % e-bikes, spread over carriers' depots; robots at the
    # first carrier's depots.
    specs = {
        FleetKind.truck: (3_000_000, 16_000_000, 30, 400_000, 6, 18, 30000, 400),
        FleetKind.van: (800_000, 5_000_000, 30, 250_000, 7, 19, 15000, 200),
        FleetKind.ebike: (150_000, 1_000_000, 15, 60_000, 8, 20, 3000, 30),
        FleetKind.robot: (200_000, 2_000_000, 15, 100_000, 6, 22, 1000, 20),
    }
    split = {
        FleetKind.truck: int(vehicles * 0.3),
        FleetKind.van: int(vehicles * 0.5),
        FleetKind.ebike: vehicles - int(vehicles * 0.3) - int(vehicles * 0.5),
        FleetKind.robot: robots,
    }
    n = 0
    for kind, total in split.items():
        depots = [w for i, w in enumerate(warehouses) if kind != FleetKind.robot or i % 3 == 0]
        counts = np.bincount(np.arange(total) % len(depots), minlength=len(depots))
        cap_g, cap_ml, speed, rng_m, s0, s1, fixed, per_km = specs[kind]
        for w, count in zip(depots, counts.tolist(), strict=True):
            if count == 0:
                continue
            n += 1
            session.add(
                Vehicle(
                    code=f"V{n:04d}",
                    carrier_id=w.owner_id,
                    kind=kind,
                    depot_id=w.id,
                    count=count,
                    capacity_g=cap_g,
                    capacity_ml=cap_ml,
                    speed_kmh=speed,
                    range_m=rng_m,
                    shift_start_s=s0 * 3600,
                    shift_end_s=s1 * 3600,
                    fixed_cost_fen=fixed,
                    cost_per_km_fen=per_km,
                )
            )
    couriers = {}
    for code in carriers:
        user = users.create_user(
            session,
            UserCreate(
                username=f"courier-{code.lower()}",
                full_name=f"Courier {code}",
                role=Role.courier,
                password=PASSWORD,
                organization_id=orgs[code].id,
            ),
            actor=None,
        )
        couriers[orgs[code].id] = user.username
    session.flush()
    problems = stock.check_ledger(session)
    if problems:
        raise RuntimeError(f"seeded ledger does not reconcile: {problems[:3]}")
    return {
        "communities": communities,
        "households": households,
        "vehicles": vehicles,
        "robots": robots,
        "sealed": int((status == 2).sum()),
        "controlled": int((status == 1).sum()),
        "couriers": couriers,
        "seed_s": round(time.perf_counter() - started, 1),
        "admin": _admin(session),
    }


def _admin(session: Session) -> str:
    existing = session.scalars(select(User).where(User.username == "bench-admin")).first()
    if existing is None:
        users.create_user(
            session,
            UserCreate(
                username="bench-admin", full_name="Bench admin", role=Role.admin, password=PASSWORD
            ),
            actor=None,
        )
    return "bench-admin"
