from __future__ import annotations

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from relieflink.db import Base, TimestampMixin
from relieflink.models.enums import LockdownStatus


class District(TimestampMixin, Base):
    __tablename__ = "districts"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_zh: Mapped[str] = mapped_column(String(200))
    population: Mapped[int] = mapped_column(default=0)
    area_km2: Mapped[float] = mapped_column(default=0.0)
    lat: Mapped[float]
    lon: Mapped[float]


class Community(TimestampMixin, Base):
    """A residential compound, served at its gate. Sealed compounds admit no vehicles."""

    __tablename__ = "communities"
    __table_args__ = (
        CheckConstraint("households >= 0", name="households_nonneg"),
        CheckConstraint("residents >= 0", name="residents_nonneg"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_zh: Mapped[str] = mapped_column(String(200))
    district_id: Mapped[int] = mapped_column(ForeignKey("districts.id"), index=True)
    lat: Mapped[float]
    lon: Mapped[float]
    households: Mapped[int] = mapped_column(default=0)
    residents: Mapped[int] = mapped_column(default=0)
    lockdown_status: Mapped[LockdownStatus] = mapped_column(String(20), index=True)
    vehicles_allowed: Mapped[bool] = mapped_column(default=True)
    committee_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"), index=True)


class Warehouse(TimestampMixin, Base):
    """A warehouse or hub. Capacities in kilograms and cubic metres; outbound in kg per day."""

    __tablename__ = "warehouses"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_zh: Mapped[str] = mapped_column(String(200))
    owner_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    lat: Mapped[float]
    lon: Mapped[float]
    capacity_kg: Mapped[int] = mapped_column(default=0)
    capacity_m3: Mapped[int] = mapped_column(default=0)
    daily_outbound_kg: Mapped[int] = mapped_column(default=0)
    temporary: Mapped[bool] = mapped_column(default=False)
