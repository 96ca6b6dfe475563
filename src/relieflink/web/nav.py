"""The navigation registry: every page's path, roles and header label, filled by ``routes``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from relieflink.models import Role


@dataclass(frozen=True)
class PageSpec:
    """One page or action: where, who may use it, and (``nav``) its label in the header."""

    path: str
    roles: frozenset[Role]
    nav: str | None = None  # a message id (marked with N_), translated when shown
    order: int = 100
    method: str = "GET"


_SPECS: list[PageSpec] = []


def register(specs: Iterable[PageSpec]) -> None:
    """Add pages (called once per route module when the web router is built)."""
    for spec in specs:
        if spec not in _SPECS:
            _SPECS.append(spec)


def all_pages() -> list[PageSpec]:
    return list(_SPECS)


def for_role(role: Role) -> list[PageSpec]:
    """The header links ``role`` sees, in order."""
    return sorted(
        (s for s in _SPECS if s.nav and s.method == "GET" and role in s.roles),
        key=lambda s: (s.order, s.path),
    )


def home_for(role: Role) -> str:
    """Where a user lands after signing in: the first page of their navigation."""
    entries = for_role(role)
    return entries[0].path if entries else "/home"
