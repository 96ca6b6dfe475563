"""How pages show dates, times, numbers, money and quantities: once, per language, with Babel.

The templates use these as Jinja filters (``{{ day|date }}``, ``{{ n|number }}``,
``{{ q|units }}``, ``{{ d|days }}``, ``{{ fen|money }}``, ``{{ moment|datetime }}``,
``{{ moment|time }}``), installed by ``rendering.environment``. Pages show whole units only:
exact fractions (a donor's share of pooled stock) stay in the ledger and the JSON; here a share
is said in words ("part of 12 kits").
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time
from babel.numbers import format_decimal

from relieflink.config import get_settings
from relieflink.stock.service import whole_units
from relieflink.web import i18n

# The page language → the Babel locale of its dates and numbers (English dates day first, as
# "7 Dec 2026": never the ambiguous 12/07/2026).
LOCALES = {"en": "en_GB", "zh_CN": "zh_Hans_CN"}
EMPTY = "–"


def _locale(lang: str) -> str:
    return LOCALES.get(lang, LOCALES[i18n.DEFAULT])


def _local(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(ZoneInfo(get_settings().timezone))


def day(value: date | None, lang: str) -> str:
    """A date: ``7 Dec 2026`` / ``2026年12月7日``."""
    return EMPTY if value is None else format_date(value, "medium", locale=_locale(lang))


def time(value: datetime | None, lang: str) -> str:
    """A stored UTC time as the local hour and minute where the operation runs."""
    return EMPTY if value is None else format_time(_local(value), "HH:mm", locale=_locale(lang))


def moment(value: datetime | None, lang: str) -> str:
    """A stored UTC time as the local date and minute."""
    if value is None:
        return EMPTY
    return f"{day(_local(value).date(), lang)} {time(value, lang)}"


def number(value: int | float | Fraction | Decimal | None, lang: str, *, decimals: int = 0) -> str:
    """A number with the language's separators (``12,345``), rounded to ``decimals``."""
    if value is None:
        return EMPTY
    if isinstance(value, Fraction):
        value = Decimal(value.numerator) / Decimal(value.denominator)
    elif isinstance(value, float):
        value = Decimal(str(value))
    pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
    return format_decimal(value, pattern, locale=_locale(lang))


def units(value: int | Fraction | None, lang: str) -> str:
    """Whole units as a number; a share of pooled units (a fraction) in words, over the whole
    units it is part of (``part of 77``): never a fractional bag on a page."""
    if value is None:
        return EMPTY
    n, share = whole_units(value)
    if not share:
        return number(n, lang)
    return i18n.translations(lang).gettext("part of %(n)s") % {"n": number(n, lang)}


def days(value: Fraction | None, lang: str) -> str:
    """Days of stock: one decimal, ``under 0.1`` for a sliver, ``–`` when nobody needs it."""
    if value is None:
        return EMPTY
    if 0 < value < Fraction(1, 20):
        return i18n.translations(lang).gettext("under %(n)s") % {"n": number(0.1, lang, decimals=1)}
    return number(value, lang, decimals=1)


def money(fen: int | float | Fraction | Decimal | None, lang: str) -> str:
    """Fen as yuan with two decimals (``1,234.50``)."""
    if fen is None:
        return EMPTY
    return number(Fraction(str(fen)) / 100, lang, decimals=2)


FILTERS: dict[str, Callable[..., str]] = {
    "date": day,
    "time": time,
    "datetime": moment,
    "number": number,
    "units": units,
    "days": days,
    "money": money,
}
