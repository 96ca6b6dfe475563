"""Languages of the web pages: Simplified Chinese and English, from Babel message catalogs.

The catalogs are the ``.po`` files under ``web/locale/<lang>/LC_MESSAGES/messages.po`` (the only
committed form). They are compiled in memory the first time a language is used, so a ``.mo`` file
can never be stale or forgotten and no build step is needed. Workflow (see the README of this
package, ``web/README.md``): ``pybabel extract`` → ``pybabel update`` → translate → run the tests.

A request's language is, in order: the ``relieflink_lang`` cookie set by the switch in the header,
then the browser's ``Accept-Language``, then English.
"""

from __future__ import annotations

from functools import cache
from gettext import GNUTranslations, NullTranslations
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "messages"
LANG_COOKIE = "relieflink_lang"
DEFAULT = "en"
# Code used in URLs and cookies → (label in its own language, BCP 47 tag for <html lang>).
LANGUAGES: dict[str, tuple[str, str]] = {"en": ("English", "en"), "zh_CN": ("简体中文", "zh-CN")}


def N_(message: str) -> str:  # noqa: N802 (the gettext convention for "mark, translate later")
    """Mark ``message`` for extraction; it is translated where it is shown."""
    return message


def po_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def translations(lang: str) -> NullTranslations:
    """The compiled catalog of ``lang`` (English falls back to the message ids)."""
    path = po_path(lang)
    if lang not in LANGUAGES or not path.exists():
        return NullTranslations()
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=lang)
    buffer = BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return GNUTranslations(buffer)


def _primary(tag: str) -> str | None:
    """Map one Accept-Language tag to a supported code: zh, zh-CN, zh-Hans → zh_CN; en-* → en."""
    tag = tag.strip().lower().replace("_", "-")
    if not tag or tag == "*":
        return None
    if tag.startswith("zh"):
        # Traditional Chinese is not offered; Simplified is closer than English for its readers.
        return "zh_CN"
    if tag == "en" or tag.startswith("en-"):
        return "en"
    return None


def negotiate(accept_language: str | None) -> str | None:
    """The supported language the browser prefers most, or None."""
    if not accept_language:
        return None
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept_language.split(",")):
        tag, _, params = part.partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        code = _primary(tag)
        if code is not None and quality > 0:
            ranked.append((-quality, position, code))
    return min(ranked)[2] if ranked else None


def choose(cookie: str | None, accept_language: str | None) -> str:
    """The language of a request: the cookie if valid, else the browser's, else English."""
    if cookie in LANGUAGES:
        return cookie
    return negotiate(accept_language) or DEFAULT
