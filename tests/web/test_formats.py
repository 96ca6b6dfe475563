"""How pages show dates, numbers, money and quantities (``relieflink.web.formats``): per language,
whole units only, and a re-plan's released parcels counted where the dashboard shows them."""

from __future__ import annotations

from datetime import UTC, date, datetime
from fractions import Fraction

from relieflink.reports.schemas import group_counts
from relieflink.web import formats


def test_dates_and_numbers_follow_the_language() -> None:
    assert formats.day(date(2026, 12, 7), "en") == "7 Dec 2026"  # never 12/07/2026
    assert formats.day(date(2026, 12, 7), "zh_CN") == "2026年12月7日"
    assert formats.number(12345, "en") == "12,345"
    assert formats.number(Fraction(179, 20), "zh_CN", decimals=1) == "9.0"
    assert formats.money(123456, "en") == "1,234.56"
    assert formats.money(Fraction(3751, 3), "en") == "12.50"
    assert formats.day(None, "en") == formats.moment(None, "zh_CN") == "–"
    noon_utc = datetime(2026, 12, 7, 4, 5, tzinfo=UTC)  # Asia/Shanghai by default: 12:05
    assert formats.time(noon_utc, "en") == "12:05"
    assert formats.moment(noon_utc, "zh_CN") == "2026年12月7日 12:05"


def test_whole_units_only_a_share_in_words() -> None:
    assert formats.units(28, "en") == "28"
    assert formats.units(Fraction(193, 2), "en") == "part of 97"  # not 96.50 or 193/2
    assert formats.units(Fraction(155, 393), "zh_CN") == "1 件中的一部分"
    assert formats.days(Fraction(35, 4), "en") == "8.8"
    assert formats.days(Fraction(28, 592), "en") == "under 0.1"  # not "0.0" for 28 packs
    assert formats.days(Fraction(0), "en") == "0.0"
    assert formats.days(None, "en") == "–"


def test_parcels_a_re_plan_released_count_as_without_a_route() -> None:
    counts = group_counts({"released": 6, "planned": 2})
    assert counts["unrouted"] == 6 and counts["waiting"] == 2 and sum(counts.values()) == 8
