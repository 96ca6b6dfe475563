"""Notice templates: what each event may say, and the texts that say it, per language.

The events and their placeholders are declared here, in code; the texts live in a YAML file
(``notices/templates.yaml``, or ``RELIEFLINK_NOTICES_TEMPLATES``) that an operation may
translate or reword. :func:`check` is what ``relieflink notify check`` runs: a text that drops a
required placeholder (a pickup code, say) or names one its event does not give is refused
before any notice is sent.
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from relieflink.config import get_settings
from relieflink.errors import FieldError, Invalid

LANGUAGES = ("zh", "en")

# event → (placeholders every text must use, placeholders a text may use as well)
EVENTS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "request_received": (frozenset({"request"}), frozenset()),
    "request_merged": (frozenset({"request"}), frozenset()),
    "allocated": (frozenset({"request", "packs"}), frozenset()),
    "on_the_way": (frozenset({"parcel", "code"}), frozenset()),
    "delivered": (frozenset({"parcel"}), frozenset()),
    "failed": (frozenset({"parcel", "next_try"}), frozenset({"reason"})),
    "consultation_answered": (frozenset({"consultation"}), frozenset()),
}

Texts = dict[str, dict[str, str]]  # event → language → text


def _placeholders(text: str) -> set[str]:
    """The names in ``text``'s braces; a malformed brace raises ValueError."""
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def check(texts: object, *, source: str) -> Texts:
    """The texts, checked against :data:`EVENTS`; every problem at once, by path."""
    if not isinstance(texts, dict):
        raise Invalid(f"{source}: give a mapping of event → language → text")
    errors: list[FieldError] = []
    for event in texts:
        if event not in EVENTS:
            errors.append(FieldError((str(event),), f"unknown event; known: {', '.join(EVENTS)}"))
    for event, (required, optional) in EVENTS.items():
        by_language = texts.get(event)
        if not isinstance(by_language, dict):
            errors.append(FieldError((event,), "missing: give a text per language"))
            continue
        for language in LANGUAGES:
            text = by_language.get(language)
            where = (event, language)
            if not isinstance(text, str) or not text.strip():
                errors.append(FieldError(where, "missing text"))
                continue
            try:
                used = _placeholders(text)
            except ValueError as exc:
                errors.append(FieldError(where, f"malformed braces: {exc}"))
                continue
            if missing := required - used:
                errors.append(FieldError(where, f"drops {_braced(missing)}"))
            if unknown := used - required - optional:
                errors.append(
                    FieldError(where, f"names {_braced(unknown)}, which the event does not give")
                )
    if errors:
        raise Invalid(f"{source}: the notice templates are not usable", errors)
    return {event: dict(texts[event]) for event in EVENTS}


def _braced(names: Iterable[str]) -> str:
    return ", ".join("{" + name + "}" for name in sorted(names))


def load(path: Path | None) -> Texts:
    """The texts of ``path`` (the packaged file when None), checked."""
    if path is None:
        source, raw = (
            "notices/templates.yaml",
            (resources.files("relieflink.notices").joinpath("templates.yaml").read_text("utf-8")),
        )
    else:
        source = str(path)
        try:
            raw = path.read_text("utf-8")
        except OSError as exc:
            raise Invalid(f"{source}: cannot be read ({exc.strerror})") from None
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise Invalid(f"{source}: not valid YAML{where}") from None
    return check(data, source=source)


@lru_cache
def _configured(path: Path | None) -> Texts:
    return load(path)


def render(event: str, language: str, params: dict[str, Any]) -> str:
    """The text of ``event`` in ``language`` (Chinese when the language has none), filled in."""
    texts = _configured(get_settings().notices_templates)[event]
    return texts.get(language, texts["zh"]).format_map(params)
