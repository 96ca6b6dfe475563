from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relieflink.catalog import service as catalog
from relieflink.models import Item, Kit


def test_seed_loads_the_reference_catalog_once(db: Session) -> None:
    first = catalog.seed_catalog(db, actor=None)
    second = catalog.seed_catalog(db, actor=None)
    assert first.items_created > 10 and first.kits_created == 5
    assert second.items_created == second.kits_created == 0
    assert db.scalar(select(func.count()).select_from(Item)) == first.items_created


def test_the_family_food_pack_meets_sphere(db: Session) -> None:
    catalog.seed_catalog(db, actor=None)
    kit = db.scalars(select(Kit).where(Kit.sku == "KIT-FAMILY-FOOD")).one()
    nutrition = catalog.kit_nutrition(kit)
    # Recompute from the items themselves, independently of the service's arithmetic.
    person_days = kit.persons * kit.days
    kcal = sum(line.item.kcal_per_unit * line.quantity for line in kit.lines) / person_days
    assert nutrition.kcal_per_person_day == round(kcal, 1)
    assert kcal >= 2100
    assert nutrition.meets_sphere_energy
    assert nutrition.protein_share_of_sphere >= 1.0 and nutrition.fat_share_of_sphere >= 1.0


def test_every_reference_kit_line_names_a_catalog_item() -> None:
    data = catalog.load_reference_catalog()
    skus = {item["sku"] for item in data["items"]}
    for kit in data["kits"]:
        for line in kit["lines"]:
            assert line["item_sku"] in skus, (kit["sku"], line)
