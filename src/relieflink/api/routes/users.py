from __future__ import annotations

from fastapi import APIRouter

from relieflink.api.crud import registry_routes
from relieflink.models import Role
from relieflink.users import service as users
from relieflink.users.schemas import UserCreate, UserFilters, UserRead, UserUpdate

router = APIRouter(tags=["users"])
ADMIN = frozenset({Role.admin})

registry_routes(
    router,
    path="/users",
    label="user",
    read_schema=UserRead,
    create_schema=UserCreate,
    update_schema=UserUpdate,
    filters_schema=UserFilters,
    list_fn=users.list_users,
    require_fn=users.require_user,
    create_fn=users.create_user,
    update_fn=users.update_user,
    readers=ADMIN,
    writers=ADMIN,
)
