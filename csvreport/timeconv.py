"""Event times: CSV text -> UTC epoch seconds, fast, with the SPEC's DST rules.

Naive times are wall-clock times in the source's zone. At a fall-back the first
occurrence is taken; a time inside a spring-forward gap is read with the offset before
the change, so it lands in the next hour. These are exactly Python's `fold=0` rules, and
zoneinfo is the reference; the fast path only caches what zoneinfo says per local hour.

Parsing a million timestamps with a datetime round trip each costs more than loading
them, so the common ISO shape `YYYY-MM-DD HH:MM:SS` is cut by position: the epoch of
each local hour `YYYY-MM-DD HH:` is computed once (`HourTable`) and `MM:SS` is looked up
in a table of its 3,600 valid values, so a timestamp costs two slices and two dict
look-ups, and the look-ups validate as they go. An hour whose offset changes inside it
(zones that shift at :30, such as Australia/Lord_Howe) is cached as None and goes
through zoneinfo; anything else goes through the full parser.
"""

from __future__ import annotations

import calendar
import re
from datetime import datetime, timedelta, timezone
from typing import Callable, Optional
from zoneinfo import ZoneInfo

ISO_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2})(?::(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?)?"
    r"\s*(Z|[+-]\d{2}(?::?\d{2})?)?\Z"
)
# "MM:SS" -> seconds into the hour, for every valid minute and second (and nothing else).
MINUTE_SECOND: dict[str, int] = {f"{m:02d}:{s:02d}": m * 60 + s for m in range(60) for s in range(60)}
_ASCII_DIGITS = frozenset("0123456789")


def local_to_epoch(local: datetime, zone: ZoneInfo) -> int:
    """Reference conversion of a naive wall-clock time (fold=0)."""
    return int(local.replace(tzinfo=zone, fold=0).timestamp() // 1)


class HourTable(dict):
    """`"YYYY-MM-DD HH:"` (or with T) -> epoch of that local hour's :00:00, computed on first use.

    The value is None when the offset does not hold for the whole hour (a shift at :30);
    a key that is not a valid local hour raises KeyError and is not stored.
    """

    limit = 50_000  # hours (5.7 years) kept at most: a file of scattered dates cannot grow it without bound

    def __init__(self, zone: ZoneInfo):
        super().__init__()
        self.zone = zone

    def __missing__(self, key: str) -> Optional[int]:
        if not (len(key) == 14 and key[4] == "-" and key[7] == "-" and key[10] in " T" and key[13] == ":"
                and _ASCII_DIGITS.issuperset(key[0:4] + key[5:7] + key[8:10] + key[11:13])):
            raise KeyError(key)
        try:
            start = datetime(int(key[0:4]), int(key[5:7]), int(key[8:10]), int(key[11:13]))
        except ValueError:
            raise KeyError(key) from None
        first = local_to_epoch(start, self.zone)
        last = local_to_epoch(start + timedelta(minutes=59, seconds=59), self.zone)
        if len(self) >= self.limit:
            self.clear()
        base = self[key] = first if last - first == 3599 else None
        return base


class TimestampParser:
    """Callable: text -> int epoch seconds (UTC); raises ValueError with a readable reason."""

    def __init__(self, zone: str, fmt: Optional[str] = None):
        self.zone = ZoneInfo(zone)
        self.fmt = fmt
        self.hours = HourTable(self.zone)
        self.parse: Callable[[str], int] = self._parse_format if fmt else self._parse_iso

    def __call__(self, text: str) -> int:
        return self.parse(text)

    def _parse_iso(self, text: str) -> int:
        # Fast path: exactly "YYYY-MM-DD HH:MM:SS" (or with T), the shape of most exports.
        try:
            return self.hours[text[:14]] + MINUTE_SECOND[text[14:]]
        except (KeyError, TypeError):
            return self._parse_iso_slow(text)

    def _parse_iso_slow(self, text: str) -> int:
        match = ISO_RE.match(text.strip())
        if not match:
            raise ValueError(f"timestamp {text!r} is not ISO 8601 (YYYY-MM-DD HH:MM:SS); "
                             f"set timestamp_format for another shape")
        year, month, day, hour, minute, second, _fraction, offset = match.groups()
        try:
            local = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0))
        except ValueError as exc:
            raise ValueError(f"timestamp {text!r}: {exc}") from None
        return self._to_epoch(local, _offset(offset) if offset else None)

    def _parse_format(self, text: str) -> int:
        assert self.fmt is not None  # chosen in __init__ only when there is a format
        try:
            parsed = datetime.strptime(text.strip(), self.fmt)
        except ValueError:
            raise ValueError(f"timestamp {text!r} does not match timestamp_format {self.fmt!r}") from None
        offset = parsed.utcoffset()
        return self._to_epoch(parsed.replace(tzinfo=None, microsecond=0),
                              int(offset.total_seconds()) if offset is not None else None)

    def _to_epoch(self, local: datetime, offset_seconds: Optional[int]) -> int:
        if offset_seconds is None:
            return local_to_epoch(local, self.zone)
        return calendar.timegm(local.timetuple()) - offset_seconds


def _offset(text: str) -> int:
    if text == "Z":
        return 0
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    if hours > 23 or minutes > 59:
        raise ValueError(f"UTC offset {text!r} is out of range")
    return sign * (hours * 3600 + minutes * 60)


def epoch_to_local(epoch: int, zone: str) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc).astimezone(ZoneInfo(zone))
