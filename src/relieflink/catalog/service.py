"""Items, kits, the reference catalog and kit nutrition."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml
from sqlalchemy.orm import Session

from relieflink.audit import service as audit
from relieflink.catalog import repository
from relieflink.catalog.schemas import (
    ItemCreate,
    ItemFilters,
    ItemUpdate,
    KitCreate,
    KitFilters,
    KitLineIn,
    KitLineRead,
    KitRead,
    KitUpdate,
    Nutrition,
)
from relieflink.common import crud
from relieflink.errors import FieldError, Invalid
from relieflink.models import Item, Kit, KitLine, User

# Sphere Handbook, food security standard 1: 2,100 kcal per person per day, 10-12 % of the energy
# from protein and 17 % from fat (4 kcal per gram of protein, 9 per gram of fat).
SPHERE_KCAL = 2100
SPHERE_PROTEIN_G = SPHERE_KCAL * 0.10 / 4
SPHERE_FAT_G = SPHERE_KCAL * 0.17 / 9


def get_item(session: Session, item_id: int) -> Item | None:
    """The item with this id, or None."""
    return repository.get_item(session, item_id)


def require_item(session: Session, item_id: int) -> Item:
    """The item with this id; ``NotFound`` if there is none."""
    return crud.require(session, Item, item_id, label="item")


def get_items_by_sku(session: Session, skus: Sequence[str]) -> dict[str, Item]:
    """The items with these SKUs (missing ones are simply absent)."""
    return repository.items_by_sku(session, skus)


def kit_ids_by_sku(session: Session, skus: Sequence[str]) -> dict[str, int]:
    """Kit ids by SKU (missing ones are simply absent), without loading the kits."""
    return repository.ids_by_sku(session, Kit, skus)


def get_kits_by_sku(session: Session, skus: Sequence[str]) -> list[Kit]:
    """The kits with these SKUs (missing ones are simply absent)."""
    return list(repository.kits_by_sku(session, skus).values())


def create_item(session: Session, data: ItemCreate, *, actor: User | None) -> Item:
    """Add an item to the catalog."""
    return crud.create(session, Item, data, actor=actor, entity="item", code_field="sku")


def update_item(session: Session, item_id: int, data: ItemUpdate, *, actor: User | None) -> Item:
    """Change an item (its gross weight never below its net weight)."""
    item = require_item(session, item_id)
    net = data.grams_per_unit if data.grams_per_unit is not None else item.grams_per_unit
    gross = data.gross_grams_per_unit or item.gross_grams_per_unit
    if gross is not None and gross < net:
        raise Invalid(
            "an item's gross weight is at least its net weight",
            [FieldError(("gross_grams_per_unit",), f"{gross} g is less than the net {net} g")],
        )
    return crud.update(session, item, data, actor=actor, entity="item")


def list_items(
    session: Session, filters: ItemFilters, *, offset: int = 0, limit: int = 50
) -> tuple[Sequence[Item], int]:
    """One page of items."""
    return repository.list_items(session, filters, offset=offset, limit=limit)


def require_kit(session: Session, kit_id: int) -> Kit:
    """The kit with this id; ``NotFound`` if there is none."""
    return crud.require(session, Kit, kit_id, label="kit")


def _kit_lines(session: Session, lines: Sequence[KitLineIn]) -> list[KitLine]:
    items = repository.items_by_sku(session, [line.item_sku for line in lines])
    errors = [
        FieldError(("lines", i, "item_sku"), f"no item with SKU {line.item_sku!r}")
        for i, line in enumerate(lines)
        if line.item_sku not in items
    ]
    seen: set[str] = set()
    for i, line in enumerate(lines):
        if line.item_sku in seen:
            errors.append(FieldError(("lines", i, "item_sku"), "the same item is listed twice"))
        seen.add(line.item_sku)
    if errors:
        raise Invalid("the kit's lines are not valid", errors)
    return [KitLine(item=items[line.item_sku], quantity=line.quantity) for line in lines]


def create_kit(session: Session, data: KitCreate, *, actor: User | None) -> Kit:
    """Add a kit with its bill of items."""
    lines = _kit_lines(session, data.lines)
    kit = crud.create(
        session, Kit, data, actor=actor, entity="kit", code_field="sku", exclude={"lines"}
    )
    kit.lines.extend(lines)
    session.flush()
    return kit


def update_kit(session: Session, kit_id: int, data: KitUpdate, *, actor: User | None) -> Kit:
    """Change a kit; new ``lines`` replace the old bill."""
    kit = require_kit(session, kit_id)
    if data.lines is not None:
        new_lines = _kit_lines(session, data.lines)
        kit.lines.clear()
        session.flush()  # delete the old lines before the unique (kit, item) rows come back
        kit.lines.extend(new_lines)
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="update",
            entity="kit",
            entity_id=kit.id,
            detail={"lines": [line.model_dump() for line in data.lines]},
        )
    return crud.update(session, kit, data, actor=actor, entity="kit", exclude={"lines"})


def list_kits(
    session: Session, filters: KitFilters, *, offset: int = 0, limit: int = 50
) -> tuple[Sequence[Kit], int]:
    """One page of kits."""
    return repository.list_kits(session, filters, offset=offset, limit=limit)


def kit_to_read(kit: Kit) -> KitRead:
    """The API view of a kit, with its lines' SKUs and names and its total weight."""
    return KitRead(
        id=kit.id,
        sku=kit.sku,
        name=kit.name,
        name_zh=kit.name_zh,
        purpose=kit.purpose,
        persons=kit.persons,
        days=kit.days,
        hs_code=kit.hs_code,
        lines=[
            KitLineRead(
                item_id=line.item.id,
                item_sku=line.item.sku,
                item_name=line.item.name,
                item_name_zh=line.item.name_zh,
                quantity=line.quantity,
            )
            for line in kit.lines
        ],
        grams=kit_size(kit)[0],
    )


def kit_size(kit: Kit) -> tuple[int, int]:
    """(grams, millilitres) of one pack of a kit: its items' sizes times their quantities."""
    return _per_pack(kit, "grams_per_unit"), _per_pack(kit, "ml_per_unit")


def _per_pack(kit: Kit, per_unit: str) -> Any:
    """One pack's total of an item figure (``grams_per_unit``, ``kcal_per_unit``, ...)."""
    return sum(getattr(line.item, per_unit) * line.quantity for line in kit.lines)


def kit_nutrition(kit: Kit) -> Nutrition:
    """Energy, protein and fat per person-day of a kit, against the Sphere minimum."""
    person_days = kit.persons * kit.days
    kcal = _per_pack(kit, "kcal_per_unit") / person_days
    protein = _per_pack(kit, "protein_g_per_unit") / person_days
    fat = _per_pack(kit, "fat_g_per_unit") / person_days
    return Nutrition(
        kit_sku=kit.sku,
        persons=kit.persons,
        days=kit.days,
        kcal_per_person_day=round(kcal, 1),
        protein_g_per_person_day=round(protein, 1),
        fat_g_per_person_day=round(fat, 1),
        kcal_share_of_sphere=round(kcal / SPHERE_KCAL, 3),
        protein_share_of_sphere=round(protein / SPHERE_PROTEIN_G, 3),
        fat_share_of_sphere=round(fat / SPHERE_FAT_G, 3),
        meets_sphere_energy=kcal >= SPHERE_KCAL,
    )


@dataclass(frozen=True)
class SeedResult:
    items_created: int
    items_existing: int
    kits_created: int
    kits_existing: int


def load_reference_catalog() -> dict[str, Any]:
    """The reference catalog shipped with the package, as parsed YAML."""
    text = (
        resources.files("relieflink.catalog")
        .joinpath("data/reference_catalog.yaml")
        .read_text("utf-8")
    )
    data: dict[str, Any] = yaml.safe_load(text)
    return data


def seed_catalog(session: Session, *, actor: User | None) -> SeedResult:
    """Add the reference items and kits that are missing; existing SKUs are left as they are."""
    data = load_reference_catalog()
    items = [ItemCreate.model_validate(row) for row in data["items"]]
    kits = [KitCreate.model_validate(row) for row in data["kits"]]
    have_items = repository.items_by_sku(session, [i.sku for i in items])
    have_kits = repository.kits_by_sku(session, [k.sku for k in kits])
    for item in items:
        if item.sku not in have_items:
            create_item(session, item, actor=actor)
    for kit in kits:
        if kit.sku not in have_kits:
            create_kit(session, kit, actor=actor)
    return SeedResult(
        items_created=len(items) - len(have_items),
        items_existing=len(have_items),
        kits_created=len(kits) - len(have_kits),
        kits_existing=len(have_kits),
    )
