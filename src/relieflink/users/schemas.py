from __future__ import annotations

from datetime import datetime

from pydantic import Field

from relieflink.common.fields import Id
from relieflink.common.schemas import ListQuery, ReadModel, StrictModel
from relieflink.models import Role


class UserCreate(StrictModel):
    username: str = Field(min_length=3, max_length=80, pattern=r"^[A-Za-z0-9_.@-]+$")
    full_name: str = Field(min_length=1, max_length=200)
    role: Role
    organization_id: int | None = None
    household_id: int | None = None
    password: str = Field(min_length=10, max_length=200)


class UserUpdate(StrictModel):
    full_name: str | None = Field(default=None, min_length=1, max_length=200)
    role: Role | None = None
    organization_id: int | None = None
    household_id: int | None = None
    is_active: bool | None = None
    password: str | None = Field(default=None, min_length=10, max_length=200)


class UserRead(ReadModel):
    id: int
    username: str
    full_name: str
    role: Role
    organization_id: int | None
    household_id: int | None
    is_active: bool


class UserFilters(ListQuery):
    role: Role | None = None
    organization_id: Id | None = None


class SignIn(StrictModel):
    username: str = Field(min_length=1, max_length=80)
    password: str = Field(min_length=1, max_length=200)


class SessionToken(ReadModel):
    access_token: str
    token_type: str = "bearer"
    expires_at: datetime
    user: UserRead
