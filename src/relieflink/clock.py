"""The one clock. Every "now" and "today" in RelieFlink comes from here.

Domain code never reads the wall clock itself (``datetime.now``, ``date.today``): a service that
mixed a date it was given with the system time broke every test with a fixed date once the
calendar passed it. Production reads the system time; tests and the simulation move the clock
with :func:`frozen` or :func:`use`. "Today" is the local date in the configured time zone, as
ration periods, expiry dates and dispatch days are local days.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, tzinfo
from functools import cache
from zoneinfo import ZoneInfo

from relieflink.config import get_settings

Source = Callable[[], datetime]


def system() -> datetime:
    """The system's time, in UTC."""
    return datetime.now(UTC)


_source: Source = system


def now() -> datetime:
    """The current moment, timezone-aware in UTC."""
    moment = _source()
    if moment.tzinfo is None:
        raise ValueError("the clock gave a naive datetime; give an aware one")
    return moment.astimezone(UTC)


def today() -> date:
    """Today's date where the operation runs (the configured time zone)."""
    return now().astimezone(zone()).date()


def local(moment: datetime) -> datetime:
    """``moment`` in the operation's time zone."""
    return moment.astimezone(zone())


def day_start(day: date) -> datetime:
    """The first moment of a local day, in UTC."""
    return datetime.combine(day, time(), zone()).astimezone(UTC)


def zone() -> tzinfo:
    """The operation's time zone (``RELIEFLINK_TIMEZONE``)."""
    return _zone(get_settings().timezone)


@cache
def _zone(name: str) -> tzinfo:
    return ZoneInfo(name)


def use(source: Source) -> Source:
    """Read the time from ``source`` from now on; returns the previous source."""
    global _source
    previous, _source = _source, source
    return previous


@contextmanager
def frozen(at: datetime | date) -> Iterator[None]:
    """Stop the clock at ``at`` (a date means local midday of that day) within the block."""
    moment = at if isinstance(at, datetime) else datetime.combine(at, time(12), zone())
    previous = use(lambda: moment)
    try:
        yield
    finally:
        use(previous)
