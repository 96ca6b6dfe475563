"""A small city for dispatch tests, built through the real services: pledges received into a
warehouse, households in open, controlled and sealed compounds asking for food, an allocation
run, and a carrier with vans and a delivery robot."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from relieflink.donations import service as donations
from relieflink.flows import allocation, receipts
from relieflink.models import (
    Community,
    FleetKind,
    Household,
    Item,
    LockdownStatus,
    NeedRequest,
    Organization,
    OrgKind,
    Role,
    User,
    Vehicle,
    Warehouse,
)
from relieflink.needs import service as needs
from relieflink.needs.schemas import RequestCreate
from relieflink.stock.schemas import ReceiveIn
from tests.factories import make_community, make_district, make_household, make_org, make_user
from tests.stock.factories import make_item, make_pledge, make_program, make_warehouse

TODAY = date(2026, 11, 30)
_seq = itertools.count(1)


@dataclass
class City:
    admin: User
    ngo: Organization
    donors: list[Organization]
    carrier: Organization
    other_carrier: Organization
    committee: Organization
    warehouse: Warehouse
    rice: Item
    oil: Item
    communities: dict[str, Community]
    homes: dict[str, list[Household]]
    vans: Vehicle
    robots: Vehicle
    residents: dict[int, User] = field(default_factory=dict)


def make_vehicle(
    db: Session, carrier: Organization, depot: Warehouse, kind: FleetKind, **overrides: object
) -> Vehicle:
    n = next(_seq)
    data: dict[str, object] = {
        "code": f"V{n}",
        "carrier_id": carrier.id,
        "kind": kind,
        "depot_id": depot.id,
        "count": 2,
        "capacity_g": 800_000,
        "capacity_ml": 5_000_000,
        "speed_kmh": 30,
        "range_m": 250_000,
        "shift_start_s": 7 * 3600,
        "shift_end_s": 19 * 3600,
    } | overrides
    vehicle = Vehicle(**data)
    db.add(vehicle)
    db.flush()
    return vehicle


def receive_pledged(
    db: Session,
    city_ngo: Organization,
    donor: Organization,
    warehouse: Warehouse,
    items: list[tuple[Item, int, int]],
) -> None:
    """Pledge → confirm → receipt against the pledge (lots carry the donor)."""
    program = make_program(db, org=city_ngo)
    pledge = make_pledge(db, donor=donor, recipient=city_ngo, program=program, lines=items)
    donations.change_status(db, pledge.id, "confirmed", actor=None)  # type: ignore[arg-type]
    receipts.receive_against_pledge(
        db,
        ReceiveIn.model_validate(
            {
                "warehouse_id": warehouse.id,
                "pledge_id": pledge.id,
                "lots": [
                    {"item_id": i.id, "quantity": q, "unit_value_fen": v} for i, q, v in items
                ],
            }
        ),
        actor=None,
    )


def ask(db: Session, city: City, home: Household, *lines: tuple[Item, int]) -> NeedRequest:
    data = RequestCreate.model_validate(
        {
            "household_id": home.id,
            "lines": [{"item_sku": i.sku, "quantity": q} for i, q in lines],
        }
    )
    needs.create_request(db, data, actor=city.admin, today=TODAY)
    return db.scalars(
        select(NeedRequest)
        .where(NeedRequest.household_id == home.id)
        .order_by(NeedRequest.id.desc())
    ).first()  # type: ignore[return-value]


def make_city(db: Session, *, per_community: int = 2, rice: int = 100) -> City:
    """Three compounds (open, controlled, sealed) near one warehouse; every household asks for
    2 bags of rice and 1 bottle of oil; two donors gave the stock; allocation has run."""
    admin = make_user(db, Role.admin)
    ngo = make_org(db, OrgKind.ngo)
    donors = [make_org(db, OrgKind.donor), make_org(db, OrgKind.donor)]
    carrier = make_org(db, OrgKind.carrier)
    other = make_org(db, OrgKind.carrier)
    committee = make_org(db, OrgKind.committee)
    warehouse = make_warehouse(db, owner=carrier, lat=31.20, lon=121.40, daily_outbound_kg=100_000)
    rice_item = make_item(db, grams_per_unit=5000, ml_per_unit=6000)
    oil_item = make_item(db, grams_per_unit=4600, ml_per_unit=5000)
    receive_pledged(
        db, ngo, donors[0], warehouse, [(rice_item, rice // 2, 3500), (oil_item, 50, 7000)]
    )
    receive_pledged(db, ngo, donors[1], warehouse, [(rice_item, rice - rice // 2, 3000)])
    district = make_district(db)
    communities = {
        "open": make_community(db, district, committee=committee, lat=31.21, lon=121.42),
        "controlled": make_community(
            db,
            district,
            committee=committee,
            lat=31.22,
            lon=121.41,
            lockdown_status=LockdownStatus.controlled,
        ),
        "sealed": make_community(
            db,
            district,
            committee=committee,
            lat=31.205,
            lon=121.43,
            lockdown_status=LockdownStatus.sealed,
            vehicles_allowed=False,
        ),
    }
    homes = {
        name: [make_household(db, c, actor=admin, size=3) for _ in range(per_community)]
        for name, c in communities.items()
    }
    vans = make_vehicle(db, carrier, warehouse, FleetKind.van, count=3)
    robots = make_vehicle(
        db,
        carrier,
        warehouse,
        FleetKind.robot,
        count=1,
        capacity_g=200_000,
        capacity_ml=2_000_000,
        speed_kmh=15,
        range_m=100_000,
    )
    city = City(
        admin,
        ngo,
        donors,
        carrier,
        other,
        committee,
        warehouse,
        rice_item,
        oil_item,
        communities,
        homes,
        vans,
        robots,
    )
    for group in homes.values():
        for home in group:
            ask(db, city, home, (rice_item, 2), (oil_item, 1))
            city.residents[home.id] = make_user(db, Role.resident, household_id=home.id)
    allocation.run_allocation(db, actor=None, today=TODAY)
    db.commit()
    return city
