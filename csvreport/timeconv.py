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
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Optional
from zoneinfo import ZoneInfo

ISO_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2})(?::(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?)?"
    r"\s*(Z|[+-]\d{2}(?::?\d{2})?)?\Z",
    re.ASCII,  # \d is 0-9 only: other scripts' digits are not a date
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


# Directives a fixed-width layout may hold, with their width in the texts it takes.
_FIXED_WIDTH = {"Y": 4, "y": 2, "m": 2, "d": 2, "H": 2, "I": 2, "M": 2, "S": 2, "p": 2}


@dataclass(frozen=True)
class Layout:
    """Where a fixed-width strptime format puts its fields: the text is cut by position.

    `minute` is where %M starts and `end` where the minute (and second) part ends; the hour
    key is the text without that part. A format without %M has no part: the whole text is
    the key. `zero` is the part at :00:00, put back into a key to parse it.
    """

    fmt: str
    width: int
    minute: Optional[int]
    end: int
    zero: str
    minute_second: dict[str, int]

    @property
    def span(self) -> int:
        """Seconds from the hour's first to its last value in this layout (3599 with %S, 3540 without)."""
        return max(self.minute_second.values()) if self.minute_second else 0


def fixed_layout(fmt: str) -> Optional[Layout]:
    """The layout of `fmt` when every directive has a fixed width (digits, %p, literals), else None.

    `%Y-%m-%d %H:%M:%S`, `%d.%m.%Y %H:%M`, `%m/%d/%Y %I:%M:%S %p` qualify; a format with
    %b, %z, %f, %j or a directive twice does not, and is parsed by strptime row by row.
    """
    starts: dict[str, int] = {}
    literals: list[tuple[int, str]] = []
    position = i = 0
    while i < len(fmt):
        if fmt[i] != "%":
            literals.append((position, fmt[i]))
            position, i = position + 1, i + 1
            continue
        directive = fmt[i + 1:i + 2]
        if directive == "%":
            literals.append((position, "%"))
            position, i = position + 1, i + 2
            continue
        if directive not in _FIXED_WIDTH or directive in starts:
            return None
        starts[directive] = position
        position, i = position + _FIXED_WIDTH[directive], i + 2
    if "M" not in starts:
        return None if "S" in starts else Layout(fmt, position, None, position, "", {})
    minute = starts["M"]
    if "S" not in starts:
        return Layout(fmt, position, minute, minute + 2, "00", {f"{m:02d}": m * 60 for m in range(60)})
    second = starts["S"]
    between = [c for at, c in literals if minute + 2 <= at < second]
    if second < minute or len(between) != second - minute - 2:
        return None  # %S before %M, or a directive between them: the part is not one slice
    sep = "".join(between)
    return Layout(fmt, position, minute, second + 2, f"00{sep}00",
                  {f"{m:02d}{sep}{s:02d}": m * 60 + s for m in range(60) for s in range(60)})


class LayoutHourTable(dict):
    """The hour key of a fixed-width layout (the text without its minute and second) -> epoch.

    A key is parsed once, with its minute part put back at zero, by `datetime.strptime`
    itself; it is taken only when formatting the result with the same format gives the key
    back (so every field was read at its fixed place, in ASCII digits), and cached as None
    when the offset does not hold for the whole hour. Any other key raises KeyError and is
    not stored: the caller parses that text with strptime.
    """

    limit = HourTable.limit

    def __init__(self, zone: ZoneInfo, layout: Layout):
        super().__init__()
        self.zone, self.layout = zone, layout
        self.key_width = layout.width - (layout.end - (layout.minute or layout.end))

    def __missing__(self, key: str) -> Optional[int]:
        layout = self.layout
        if len(key) != self.key_width:
            raise KeyError(key)
        at = layout.minute if layout.minute is not None else len(key)
        text = key[:at] + layout.zero + key[at:]
        try:
            local = datetime.strptime(text, layout.fmt)
            same = local.strftime(layout.fmt).lower() == text.lower()
        except ValueError:
            raise KeyError(key) from None
        if not same:
            raise KeyError(key)
        first = local_to_epoch(local, self.zone)
        last = local_to_epoch(local + timedelta(seconds=layout.span), self.zone)
        if len(self) >= self.limit:
            self.clear()
        base = self[key] = first if last - first == layout.span else None
        return base


class TimestampParser:
    """Callable: text -> int epoch seconds (UTC); raises ValueError with a readable reason."""

    def __init__(self, zone: str, fmt: Optional[str] = None):
        self.zone = ZoneInfo(zone)
        self.fmt = fmt
        self.layout = fixed_layout(fmt) if fmt else None
        self.hours: dict[str, Optional[int]] = \
            HourTable(self.zone) if self.layout is None else LayoutHourTable(self.zone, self.layout)
        self.minute_second = MINUTE_SECOND if self.layout is None else self.layout.minute_second
        self.full: Callable[[str], int] = self._parse_format if fmt else self._parse_iso_slow
        self.parse: Callable[[str], int] = self._parse_format
        if fmt is None or self.layout is not None:
            self.parse = self._parse_fast

    def fast_expression(self, text: str) -> Optional[str]:
        """Python code for the cut-and-look-up of `text` (a name), with HOURS and MINUTE_SECOND bound to
        `hours` and `minute_second`; it raises KeyError or TypeError for a text it does not take,
        which `full` then parses. None when the format has no fixed-width layout."""
        if self.fmt is None:
            return f"HOURS[{text}[:14]] + MINUTE_SECOND[{text}[14:]]"
        layout = self.layout
        if layout is None:
            return None
        if layout.minute is None:
            return f"HOURS[{text}] + 0"  # + 0: never None here, but keeps the TypeError contract
        a, b = layout.minute, layout.end
        if b == layout.width:
            return f"HOURS[{text}[:{a}]] + MINUTE_SECOND[{text}[{a}:]]"
        return f"HOURS[{text}[:{a}] + {text}[{b}:]] + MINUTE_SECOND[{text}[{a}:{b}]]"

    def __call__(self, text: str) -> int:
        return self.parse(text)

    def _parse_fast(self, text: str) -> int:
        # Exactly "YYYY-MM-DD HH:MM:SS" (or with T) without a format, or the format's fixed
        # layout: the hour by its key, minute and second by table; anything else, the full parser.
        # The same cut as `fast_expression`, which the compiled row loop inlines.
        layout = self.layout
        try:
            if layout is None:
                return self.hours[text[:14]] + MINUTE_SECOND[text[14:]]  # type: ignore[operator]
            if layout.minute is None:
                return self.hours[text] + 0  # type: ignore[operator]
            a, b = layout.minute, layout.end
            return self.hours[text[:a] + text[b:]] + self.minute_second[text[a:b]]  # type: ignore[operator]
        except (KeyError, TypeError):
            return self.full(text)

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
