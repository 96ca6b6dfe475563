"""SQL for registry files: bulk updates, streamed exports, the communities a committee manages."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Row, inspect, select, update
from sqlalchemy.orm import Session

from relieflink.db import Base
from relieflink.models import Community, Household

CHUNK = 20_000


def managed_communities(session: Session, organization_id: int | None) -> set[int]:
    """The ids of the communities a committee manages."""
    stmt = select(Community.id).where(Community.committee_id == organization_id)
    return set(session.scalars(stmt))


def household_communities(session: Session, codes: Sequence[str]) -> dict[str, int]:
    """The community of each existing household among ``codes``."""
    out: dict[str, int] = {}
    unique = sorted(set(codes))
    for start in range(0, len(unique), CHUNK):
        stmt = select(Household.code, Household.community_id).where(
            Household.code.in_(unique[start : start + CHUNK])
        )
        out.update((code, community) for code, community in session.execute(stmt))
    return out


def update_rows(session: Session, model: type[Base], rows: Sequence[dict[str, Any]]) -> None:
    """Update rows by primary key (each dict holds ``id``), in chunks."""
    for start in range(0, len(rows), CHUNK):
        session.execute(update(model), rows[start : start + CHUNK])


def stream(session: Session, model: type[Base], fields: Sequence[str]) -> Iterator[Row[Any]]:
    """``fields`` of every row of ``model`` by primary key, read in chunks."""
    primary_key = inspect(model).primary_key[0]
    columns = [getattr(model, name) for name in fields]
    stmt = select(*columns).order_by(primary_key).execution_options(yield_per=CHUNK)
    yield from session.execute(stmt)
