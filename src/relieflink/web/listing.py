"""Paged, searchable tables: what every list page (registry, households, later domains) shows.

A list page builds a ``Listing`` (columns, one page of rows, the filters) and renders
``list.html``. Searching and paging are plain GET links and forms (they work without JavaScript);
htmx swaps only the ``#results`` part while typing (``hx-select``), and keeps the URL in step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlencode

from pydantic import BaseModel

from relieflink.common.schemas import validate_as

PAGE_SIZE = 50
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Column:
    """A table column: a header (message id) and how to show a row's cell in a language."""

    label: str
    value: Callable[[Any, str], Any]
    numeric: bool = False
    link: Callable[[Any], str] | None = None  # the cell links to this page
    translate: bool = False  # the value is a message id (a status, yes/no) to translate


@dataclass(frozen=True)
class Filter:
    """A filter field of the search form: free text, or a choice among ``options``."""

    name: str
    label: str  # message id
    options: Sequence[tuple[str, str]] = ()  # (value, message id); empty = a text box
    translate: bool = True  # False: the options' labels are names (data), not message ids


@dataclass
class Listing:
    title: str  # message id
    columns: Sequence[Column]
    rows: Sequence[Any]
    total: int
    offset: int
    params: dict[str, str]  # the current filters (without offset), for links and the form
    filters: Sequence[Filter] = ()
    limit: int = PAGE_SIZE
    actions: Sequence[tuple[str, str]] = field(default_factory=list)  # (href, message id)

    @property
    def first(self) -> int:
        return self.offset + 1 if self.rows else 0

    @property
    def last(self) -> int:
        return self.offset + len(self.rows)

    def href(self, offset: int) -> str:
        query = {**self.params, **({"offset": str(offset)} if offset else {})}
        return "?" + urlencode(query) if query else "?"

    @property
    def previous(self) -> str | None:
        return self.href(max(self.offset - self.limit, 0)) if self.offset > 0 else None

    @property
    def next(self) -> str | None:
        return self.href(self.offset + self.limit) if self.last < self.total else None


def clean_params(raw: Mapping[str, str | None], names: Sequence[str]) -> dict[str, str]:
    """The named, non-empty query parameters (an empty select or text box means "any")."""
    return {n: v.strip() for n in names if (v := raw.get(n)) is not None and v.strip()}


def parse_filters(schema: type[M], params: dict[str, str]) -> M:
    """The domain's filter schema from the page's parameters; ``Invalid`` (a 422 page) if bad."""
    return validate_as(schema, dict(params))


def parse_offset(raw: str | None) -> int:
    try:
        return max(int(raw or 0), 0)
    except ValueError:
        return 0


def localized(row: Any, lang: str) -> str:
    """A record's name in the page's language (Chinese name for zh_CN when it has one)."""
    if lang == "zh_CN" and getattr(row, "name_zh", None):
        return str(row.name_zh)
    return str(row.name)


def other_name(row: Any, lang: str) -> str:
    """The name in the other language, shown under the first."""
    zh = getattr(row, "name_zh", None)
    if lang == "zh_CN":
        return str(row.name) if zh else ""
    return str(zh or "")
