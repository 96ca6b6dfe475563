from __future__ import annotations

from sqlalchemy import CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from relieflink.db import Base, TimestampMixin
from relieflink.models.enums import ItemCategory, KitPurpose


class Item(TimestampMixin, Base):
    """A stock-keeping unit. Nutrition figures are per unit, in whole kcal and grams."""

    __tablename__ = "items"
    __table_args__ = (
        CheckConstraint("grams_per_unit >= 0", name="grams_nonneg"),
        CheckConstraint("ml_per_unit >= 0", name="ml_nonneg"),
        CheckConstraint("gross_grams_per_unit >= grams_per_unit", name="gross_at_least_net"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_zh: Mapped[str] = mapped_column(String(200))
    category: Mapped[ItemCategory] = mapped_column(String(20), index=True)
    unit: Mapped[str] = mapped_column(String(20))
    grams_per_unit: Mapped[int] = mapped_column(default=0)
    ml_per_unit: Mapped[int] = mapped_column(default=0)
    kcal_per_unit: Mapped[int] = mapped_column(default=0)
    protein_g_per_unit: Mapped[int] = mapped_column(default=0)
    fat_g_per_unit: Mapped[int] = mapped_column(default=0)
    shelf_life_days: Mapped[int | None]
    cold_chain: Mapped[bool] = mapped_column(default=False)
    prescription_only: Mapped[bool] = mapped_column(default=False)
    # For customs (the gift declaration): the Harmonized System code (6 digits, "1006.30") and
    # the weight of one unit with its packaging; ``grams_per_unit`` is the net weight.
    hs_code: Mapped[str | None] = mapped_column(String(12))
    gross_grams_per_unit: Mapped[int | None]


class Kit(TimestampMixin, Base):
    """A bill of items packed together for a purpose, sized for ``persons`` over ``days``."""

    __tablename__ = "kits"

    id: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_zh: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[KitPurpose] = mapped_column(String(30), index=True)
    persons: Mapped[int] = mapped_column(default=1)
    days: Mapped[int] = mapped_column(default=7)
    # A kit crosses a border as one set under one HS code (its main item's unless given).
    hs_code: Mapped[str | None] = mapped_column(String(12))
    # Lines are always shown with their kit, and a kit is small: load them with it.
    lines: Mapped[list[KitLine]] = relationship(
        back_populates="kit", cascade="all, delete-orphan", lazy="selectin", order_by="KitLine.id"
    )


class KitLine(Base):
    __tablename__ = "kit_lines"
    __table_args__ = (
        UniqueConstraint("kit_id", "item_id"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kit_id: Mapped[int] = mapped_column(ForeignKey("kits.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    quantity: Mapped[int]
    kit: Mapped[Kit] = relationship(back_populates="lines", lazy="raise")
    # The item's SKU and names travel with the line in every kit response.
    item: Mapped[Item] = relationship(lazy="joined")
