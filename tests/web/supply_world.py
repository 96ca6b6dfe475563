"""A small supply chain for the donation and warehouse page tests: two donors, an NGO with two
warehouses (one abroad), a program, two items and a pledge from each donor."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from relieflink.models import Item, Organization, OrgKind, Pledge, Program, Role, User, Warehouse
from tests.factories import make_org, make_user
from tests.stock.factories import make_item, make_pledge, make_program, make_warehouse


@dataclass
class SupplyWorld:
    donor: Organization
    other_donor: Organization
    ngo: Organization
    program: Program
    rice: Item
    oil: Item
    warehouse: Warehouse
    abroad: Warehouse  # owned by an organization in another country: transfers are cross-border
    pledge: Pledge  # donor → NGO: 100 rice at 50.00, 20 oil at 120.00
    other_pledge: Pledge  # other donor → NGO: 10 oil
    donor_user: User
    other_donor_user: User
    warehouse_user: User
    coordinator: User


def supply_world(db: Session) -> SupplyWorld:
    donor = make_org(db, OrgKind.donor, name="Acme Foods", name_zh="艾克米食品")
    other_donor = make_org(db, OrgKind.donor, name="Other Donor")
    ngo = make_org(db, OrgKind.ngo, name="Volunteer NGO")
    partner = make_org(db, OrgKind.ngo, name="Partner Abroad", country="HK")
    program = make_program(db, ngo, name="Shanghai 2022", name_zh="上海2022")
    rice = make_item(db, name="Rice 5 kg", name_zh="大米5公斤", unit="bag")
    oil = make_item(db, name="Cooking oil 1 L", name_zh="食用油1升", unit="bottle")
    warehouse = make_warehouse(db, ngo, name="North Hub", name_zh="北部仓库")
    abroad = make_warehouse(db, partner, name="Harbour Depot", name_zh="港口仓库")
    pledge = make_pledge(
        db, donor=donor, recipient=ngo, program=program, lines=[(rice, 100, 5000), (oil, 20, 12000)]
    )
    other_pledge = make_pledge(
        db, donor=other_donor, recipient=ngo, program=program, lines=[(oil, 10, 12000)]
    )
    world = SupplyWorld(
        donor=donor,
        other_donor=other_donor,
        ngo=ngo,
        program=program,
        rice=rice,
        oil=oil,
        warehouse=warehouse,
        abroad=abroad,
        pledge=pledge,
        other_pledge=other_pledge,
        donor_user=make_user(db, Role.donor, organization_id=donor.id, full_name="Ann Donor"),
        other_donor_user=make_user(db, Role.donor, organization_id=other_donor.id),
        warehouse_user=make_user(db, Role.warehouse, organization_id=ngo.id, full_name="Wang Bo"),
        coordinator=make_user(db, Role.coordinator),
    )
    db.commit()
    return world


def supply_ids(db: Session, *, donor: Organization, ngo: Organization) -> dict[str, int]:
    """For the role tests: a pledge from ``donor`` to ``ngo``, a receipt against it and a
    cross-border transfer, by the ids their pages take."""
    from relieflink.flows import receipts
    from relieflink.stock import service as stock
    from relieflink.stock.schemas import ReceiveIn

    program = make_program(db, ngo)
    rice = make_item(db)
    warehouse = make_warehouse(db, ngo)
    abroad = make_warehouse(db, make_org(db, OrgKind.ngo, country="HK"))
    pledge = make_pledge(db, donor=donor, recipient=ngo, program=program, lines=[(rice, 10, 100)])
    lots = [{"item_id": rice.id, "quantity": 8, "unit_value_fen": 100}]
    data = {"warehouse_id": warehouse.id, "pledge_id": pledge.id, "lots": lots}
    receipt = receipts.receive_against_pledge(
        db, ReceiveIn.model_validate(data), actor=None
    ).receipt
    shipment = stock.transfer(
        db,
        from_warehouse_id=warehouse.id,
        to_warehouse_id=abroad.id,
        lines=[stock.TransferLine(quantity=3, item_id=rice.id)],
        actor=None,
    )
    return {"pledge_id": pledge.id, "receipt_id": receipt.id, "transfer_id": shipment.id}
