"""``make_*`` helpers for the stock and donation tests (through the real services)."""

from __future__ import annotations

import itertools
from datetime import date

from sqlalchemy.orm import Session

from relieflink.catalog import service as catalog
from relieflink.catalog.schemas import ItemCreate, KitCreate
from relieflink.donations import service as donations
from relieflink.donations.schemas import PledgeCreate, ProgramCreate
from relieflink.models import Item, Kit, Organization, OrgKind, Pledge, Program, StockLot, Warehouse
from relieflink.places import service as places
from relieflink.places.schemas import WarehouseCreate
from relieflink.stock import service as stock
from tests.factories import make_org

_seq = itertools.count(1)


def make_item(db: Session, **overrides: object) -> Item:
    n = next(_seq)
    data = {
        "sku": f"ITEM-{n}",
        "name": f"Item {n}",
        "name_zh": f"物品{n}",
        "category": "food",
        "unit": "bag",
    } | overrides
    return catalog.create_item(db, ItemCreate.model_validate(data), actor=None)


def make_kit(db: Session, lines: list[tuple[Item, int]], **overrides: object) -> Kit:
    n = next(_seq)
    data = {
        "sku": f"KIT-{n}",
        "name": f"Kit {n}",
        "name_zh": f"套装{n}",
        "purpose": "family_food",
        "lines": [{"item_sku": item.sku, "quantity": q} for item, q in lines],
    } | overrides
    return catalog.create_kit(db, KitCreate.model_validate(data), actor=None)


def make_warehouse(
    db: Session, owner: Organization | None = None, **overrides: object
) -> Warehouse:
    n = next(_seq)
    owner = owner or make_org(db, OrgKind.ngo)
    data = {
        "code": f"WH{n}",
        "name": f"Warehouse {n}",
        "name_zh": f"仓库{n}",
        "owner_id": owner.id,
        "lat": 31.2,
        "lon": 121.4,
    } | overrides
    return places.create_warehouse(db, WarehouseCreate.model_validate(data), actor=None)


def make_program(db: Session, org: Organization | None = None, **overrides: object) -> Program:
    n = next(_seq)
    org = org or make_org(db, OrgKind.ngo)
    data = {
        "code": f"PRG{n}",
        "name": f"Shanghai 2022 ({n})",
        "region": "Shanghai",
        "country": "CN",
        "organization_id": org.id,
    } | overrides
    return donations.create_program(db, ProgramCreate.model_validate(data), actor=None)


def make_pledge(
    db: Session,
    *,
    donor: Organization,
    recipient: Organization,
    program: Program,
    lines: list[tuple[Item, int, int]],
) -> Pledge:
    data = {
        "donor_org_id": donor.id,
        "recipient_org_id": recipient.id,
        "program_id": program.id,
        "declared_value_fen": sum(q * v for _, q, v in lines),
        "lines": [{"item_id": i.id, "quantity": q, "unit_value_fen": v} for i, q, v in lines],
    }
    return donations.create_pledge(db, PledgeCreate.model_validate(data), actor=None)


def make_lot(
    db: Session,
    warehouse: Warehouse,
    item: Item,
    quantity: int,
    *,
    donor: Organization | None = None,
    expiry: date | None = None,
    unit_value_fen: int = 0,
) -> StockLot:
    donor = donor or make_org(db, OrgKind.donor)
    return stock.receive_lot(
        db,
        warehouse_id=warehouse.id,
        item_id=item.id,
        quantity=quantity,
        donor_org_id=donor.id,
        expiry=expiry,
        unit_value_fen=unit_value_fen,
        actor=None,
    )
