"""Organizations, places and the catalog: the registry every other domain refers to."""

from __future__ import annotations

from fastapi import APIRouter

from relieflink.api.crud import registry_routes
from relieflink.api.deps import CurrentUser, SessionDep
from relieflink.catalog import service as catalog
from relieflink.catalog.schemas import Nutrition
from relieflink.common.fields import Id
from relieflink.registry import REGISTRY

router = APIRouter(tags=["registry"])

for name, kind in REGISTRY.items():
    registry_routes(
        router,
        path=f"/{name}",
        label=kind.label,
        read_schema=kind.read,
        create_schema=kind.create,
        update_schema=kind.update,
        filters_schema=kind.filters,
        list_fn=kind.list_fn,
        require_fn=kind.require_fn,
        create_fn=kind.create_fn,
        update_fn=kind.update_fn,
        readers=kind.readers,
        writers=kind.writers,
        to_read=kind.to_read,
    )


@router.get("/kits/{kit_id}/nutrition", response_model=Nutrition)
def kit_nutrition(kit_id: Id, session: SessionDep, user: CurrentUser) -> Nutrition:
    """Energy, protein and fat per person-day of a kit, against the Sphere minimum."""
    return catalog.kit_nutrition(catalog.require_kit(session, kit_id))
