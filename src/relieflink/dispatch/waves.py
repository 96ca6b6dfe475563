"""Dispatch waves: the hours of the day (``RELIEFLINK_DISPATCH_WAVES``, local time) at which
allocation runs and routes are planned."""

from __future__ import annotations

from datetime import datetime, timedelta

from relieflink import clock
from relieflink.config import get_settings


def next_wave(after: datetime) -> datetime:
    """The first wave strictly after ``after``, in local time (tomorrow's first if today's are
    over)."""
    moment = clock.local(after)
    hours = get_settings().dispatch_waves
    for day in (moment.date(), moment.date() + timedelta(days=1)):
        for hour in hours:
            start = clock.local(clock.day_start(day)) + timedelta(hours=hour)
            if start > moment:
                return start
    raise AssertionError("unreachable: tomorrow always has a first wave")
