"""Business hours (FF_BUSINESS_HOURS): days, a time range and an IANA time zone, such as
`Mon-Fri 08:00-18:00 Europe/Paris`. The start is inside the hours, the end is not, and
local time follows the zone's rules (daylight saving included) through zoneinfo."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import zoneinfo

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_SPEC = re.compile(r"([A-Za-z,-]+) ([0-9]{2}):([0-9]{2})-([0-9]{2}):([0-9]{2}) ([A-Za-z0-9_+/-]{1,64})")


@dataclasses.dataclass(frozen=True)
class BusinessHours:
    days: frozenset[int]  # 0 = Monday
    start: dt.time
    end: dt.time
    zone: zoneinfo.ZoneInfo
    text: str

    def contains(self, utc: dt.datetime) -> bool:
        """Is this naive UTC time (the store's kind) within business hours?"""
        local = utc.replace(tzinfo=dt.UTC).astimezone(self.zone)
        return local.weekday() in self.days and self.start <= local.time().replace(tzinfo=None) < self.end

    def local(self, utc: dt.datetime) -> str:
        return utc.replace(tzinfo=dt.UTC).astimezone(self.zone).isoformat(timespec="seconds")


def _days(text: str) -> frozenset[int]:
    chosen: set[int] = set()
    for part in text.split(","):
        first, _, last = part.partition("-")
        if first not in DAYS or (last and last not in DAYS):
            raise ValueError
        low, high = DAYS.index(first), DAYS.index(last or first)
        if high < low:
            raise ValueError
        chosen.update(range(low, high + 1))
    return frozenset(chosen)


def parse_business_hours(raw: str) -> BusinessHours | None:
    """None for empty (the off-hours rule is off); ValueError for anything malformed."""
    if not raw:
        return None
    match = _SPEC.fullmatch(raw)
    if not match:
        raise ValueError
    days, h1, m1, h2, m2, zone = match.groups()
    start, end = dt.time(int(h1), int(m1)), dt.time(int(h2), int(m2))
    if not start < end:
        raise ValueError
    try:
        tz = zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError from None
    return BusinessHours(_days(days), start, end, tz, raw)
