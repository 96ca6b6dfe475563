from __future__ import annotations

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from relieflink.db import Base, TimestampMixin


class Household(TimestampMixin, Base):
    """A household and its vulnerable members. ``phone`` is personal data: never listed, masked."""

    __tablename__ = "households"
    __table_args__ = (
        CheckConstraint("size >= 1", name="size_positive"),
        CheckConstraint(
            "infants >= 0 AND pregnant >= 0 AND chronic >= 0 AND elderly_80 >= 0 AND disabled >= 0",
            name="counts_nonneg",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"), index=True)
    building: Mapped[str | None] = mapped_column(String(40))
    unit: Mapped[str | None] = mapped_column(String(40))
    size: Mapped[int]
    infants: Mapped[int] = mapped_column(default=0)
    pregnant: Mapped[int] = mapped_column(default=0)
    chronic: Mapped[int] = mapped_column(default=0)
    elderly_80: Mapped[int] = mapped_column(default=0)
    disabled: Mapped[int] = mapped_column(default=0)
    phone: Mapped[str | None] = mapped_column(String(40))
