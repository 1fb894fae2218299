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
import functools
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
# "MM:SS" -> seconds into the hour, for every valid minute and second, and "MM" for a time
# without seconds (nothing else).
MINUTE_SECOND: dict[str, int] = {f"{m:02d}:{s:02d}": m * 60 + s for m in range(60) for s in range(60)}
MINUTE_SECOND.update({f"{m:02d}": m * 60 for m in range(60)})
# An ISO value's zone: "Z", "+HH", "+HHMM" or "+HH:MM" (or "-") -> seconds to subtract from the
# value read as UTC, for every offset ISO_RE takes (hours 00-23, minutes 00-59).
OFFSETS: dict[str, int] = {"Z": 0}
for _sign in (1, -1):
    for _h in range(24):
        OFFSETS[f"{'+' if _sign > 0 else '-'}{_h:02d}"] = _sign * _h * 3600
        for _m in range(60):
            for _sep in ("", ":"):
                OFFSETS[f"{'+' if _sign > 0 else '-'}{_h:02d}{_sep}{_m:02d}"] = _sign * (_h * 3600 + _m * 60)
# A fraction of a second to the millisecond (".5", ",25", ".123"): dropped, as the SPEC's ISO reading drops it.
FRACTIONS: dict[str, int] = {f"{sep}{n:0{width}d}": 0
                              for sep in ".," for width in (1, 2, 3) for n in range(10 ** width)}
_ASCII_DIGITS = frozenset("0123456789")
_DIGITS = "0123456789"


def local_to_epoch(local: datetime, zone: ZoneInfo) -> int:
    """Reference conversion of a naive wall-clock time (fold=0)."""
    return int(local.replace(tzinfo=zone, fold=0).timestamp() // 1)


class _Table(dict):
    """A table filled on first use (`__missing__`), emptied when it holds `limit` keys: a file of
    scattered values cannot grow it without bound."""

    limit = 50_000  # hours: 5.7 years

    def keep(self, key: str, value: Optional[int]) -> Optional[int]:
        if len(self) >= self.limit:
            self.clear()
        self[key] = value
        return value


class HourTable(_Table):
    """`"YYYY-MM-DD HH:"` (or with T) -> epoch of that local hour's :00:00, computed on first use.

    The value is None when the offset does not hold for the whole hour (a shift at :30);
    a key that is not a valid local hour raises KeyError and is not stored.
    """

    def __init__(self, zone: ZoneInfo):
        super().__init__()
        self.zone = zone

    def __missing__(self, key: str) -> Optional[int]:
        start = _iso_hour(key)
        first = local_to_epoch(start, self.zone)
        last = local_to_epoch(start + timedelta(minutes=59, seconds=59), self.zone)
        return self.keep(key, first if last - first == 3599 else None)


class JoinedHourTable(_Table):
    """A date and a time in two columns, cut without joining them: `"YYYY-MM-DD" + "HH:"` -> what the
    hour table gives for `"YYYY-MM-DD HH:"`. Any other text raises KeyError and is not stored."""

    def __init__(self, hours: HourTable):
        super().__init__()
        self.hours = hours

    def __missing__(self, key: str) -> Optional[int]:
        if len(key) != 13:
            raise KeyError(key)
        return self.keep(key, self.hours[key[:10] + " " + key[10:]])


class UtcHourTable(_Table):
    """`"YYYY-MM-DD HH:"` (or with T) -> epoch of that hour read as UTC: the base of a value with an offset."""

    def __missing__(self, key: str) -> Optional[int]:
        return self.keep(key, calendar.timegm(_iso_hour(key).timetuple()))


class ZonedMinuteSecond(_Table):
    """`"MM:SS"` and a zone (`"Z"`, `"+01:00"` ...) -> seconds into the hour, less the offset: the
    rest of an ISO value with an offset after its UTC hour, in one look-up. Filled on first use
    (3,600 keys per offset a file uses); any other text raises KeyError and is not stored."""

    def __missing__(self, key: str) -> Optional[int]:
        return self.keep(key, MINUTE_SECOND[key[:5]] - OFFSETS[key[5:]])  # "MM" alone leaves no zone: KeyError


def _iso_hour(key: str) -> datetime:
    """The hour `"YYYY-MM-DD HH:"` (or with T) names, in ASCII digits; KeyError for any other text."""
    if not (len(key) == 14 and key[4] == "-" and key[7] == "-" and key[10] in " T" and key[13] == ":"
            and _ASCII_DIGITS.issuperset(key[0:4] + key[5:7] + key[8:10] + key[11:13])):
        raise KeyError(key)
    try:
        return datetime(int(key[0:4]), int(key[5:7]), int(key[8:10]), int(key[11:13]))
    except ValueError:
        raise KeyError(key) from None


# Directives a fixed-width layout may hold, with their width in the texts it takes.
_FIXED_WIDTH = {"Y": 4, "y": 2, "m": 2, "d": 2, "H": 2, "I": 2, "M": 2, "S": 2, "p": 2}
# Directives whose value is not a naive wall-clock time to the second: strptime reads each value.
_NOT_WALL_CLOCK = set("zZfGuVcxX")


@dataclass(frozen=True)
class Layout:
    """Where a strptime format puts its minute and second: the text is cut by position.

    The hour key is the text without its minute-second part, which a table gives in seconds.
    Positions count from the start when every field has a fixed width (`from_end` false):
    `minute` is where %M starts, `end` where the part ends. When the part is at the end of the
    format (`%H:%M:%S`, `%I:%M:%S %p`) and follows a literal, they count from the end
    (`from_end`: `minute` and `end` are the characters from those places to the end), so
    fields before it may be one digit or two (`1/5/2026 7:05:00`). A format without %M has no
    part: the whole text is the key. `zero` is the part at :00:00, put back into a key to parse it.
    """

    fmt: str
    width: int
    minute: Optional[int]
    end: int
    zero: str
    minute_second: dict[str, int]
    from_end: bool = False
    half_days: bool = False  # the part ends with %p: "MM:SS PM" is 12 hours more than "MM:SS AM"

    @property
    def span(self) -> int:
        """Seconds from the hour's first to its last value in this layout (3599 with %S, 3540 without)."""
        if not self.minute_second:
            return 0
        return max(self.minute_second.values()) - (HALF_DAY if self.half_days else 0)

    def parts(self, text: str) -> tuple[str, Optional[str]]:
        """Python expressions for the hour key and the minute-second part of `text` (a name); no part
        without %M."""
        a, b = self.minute, self.end
        if a is None:
            return text, None
        if self.from_end:
            return f"{text}[:-{a}]" + (f" + {text}[-{b}:]" if b else ""), f"{text}[-{a}:{-b if b else ''}]"
        whole = b == self.width
        return f"{text}[:{a}]" + ("" if whole else f" + {text}[{b}:]"), f"{text}[{a}:{'' if whole else b}]"


def fixed_layout(fmt: str, half_days: bool = True) -> Optional[Layout]:
    """The layout of `fmt` when its values can be cut by position, else None (strptime reads each value).

    `%d.%m.%Y %H:%M:%S`, `%m/%d/%Y %I:%M:%S %p`, `%d-%b-%Y %H:%M` are cut from the end; `%Y%m%d%H%M%S`
    and `%H:%M %d.%m.%Y` (every field of a fixed width) from the start; a format without %M
    (`%d.%m.%Y`) is its own key. A format with an offset, a fraction or a week (%z %f %G ...), with
    %S but no %M, with a directive twice, or with spaces around it is not cut.
    """
    if fmt != fmt.strip():
        return None  # values are stripped before strptime reads them: such a format never matches as cut
    starts: dict[str, int] = {}
    literals: list[tuple[int, str]] = []
    order: list[str] = []
    position = i = 0
    fixed = True
    while i < len(fmt):
        if fmt[i] != "%":
            literals.append((position, fmt[i]))
            order.append("")
            position, i = position + 1, i + 1
            continue
        directive = fmt[i + 1:i + 2]
        if directive == "%":
            literals.append((position, "%"))
            order.append("")
            position, i = position + 1, i + 2
            continue
        if directive in _NOT_WALL_CLOCK or directive in starts or not directive:
            return None
        starts[directive] = position
        order.append(directive)
        fixed = fixed and directive in _FIXED_WIDTH
        position, i = position + _FIXED_WIDTH.get(directive, 0), i + 2
    if "M" not in starts:
        return None if "S" in starts else Layout(fmt, position, None, position, "", {})
    minute = starts["M"]
    if "S" in starts:
        second = starts["S"]
        between = [c for at, c in literals if minute + 2 <= at < second]
        if second < minute or len(between) != second - minute - 2:
            return None  # %S before %M, or a directive between them: the part is not one slice
        sep = "".join(between)
        part_end, zero = second + 2, f"00{sep}00"
        table = {f"{m:02d}{sep}{s:02d}": m * 60 + s for m in range(60) for s in range(60)}
    else:
        part_end, zero, table = minute + 2, "00", {f"{m:02d}": m * 60 for m in range(60)}
    at_m = order.index("M")
    tail = [d for d in order[at_m:] if d]
    if at_m > 0 and order[at_m - 1] == "" and set(tail) <= {"M", "S", "p"}:
        # The part and everything after it have a fixed width, and a literal comes before it.
        if half_days and "p" in tail and "I" in starts and "H" not in starts:
            halves = _to_the_end(table, dict(literals), part_end, starts["p"], position)
            if halves is not None:
                # "11/01/2026 01:" is the key of 01 AM and 01 PM, "00:00 PM" the seconds of the afternoon.
                return Layout(fmt, position - minute, position - minute, 0, zero + halves[0], halves[1],
                              from_end=True, half_days=True)
        return Layout(fmt, position - minute, position - minute, position - part_end, zero, table, from_end=True)
    return Layout(fmt, position, minute, part_end, zero, table) if fixed else None


HALF_DAY = 12 * 3600


def _to_the_end(table: dict[str, int], literals: dict[int, str], part_end: int, at_p: int,
                width: int) -> Optional[tuple[str, dict[str, int]]]:
    """The minute-second table of a layout whose tail is literals and %p, with that tail in its keys:
    "MM:SS AM" and "am" -> seconds, "MM:SS PM" and "pm" -> seconds + 12 hours; and the tail of the
    AM spelling, for a key's zero. One slice and one look-up instead of two slices and a join. None
    when strptime does not read the four spellings so (another locale's %p)."""
    if len(literals.keys() & set(range(part_end, width))) != width - part_end - 2:
        return None
    before = "".join(literals.get(at, "") for at in range(part_end, at_p))
    after = "".join(literals.get(at, "") for at in range(at_p + 2, width))
    tails: dict[str, int] = {}
    for meridiem, hour in (("AM", 1), ("am", 1), ("PM", 13), ("pm", 13)):
        try:
            if datetime.strptime(f"01{meridiem}", "%I%p").hour != hour:
                return None
        except ValueError:
            return None
        tails[before + meridiem + after] = HALF_DAY if hour > 12 else 0
    extended = {part + tail: seconds + more for part, seconds in table.items() for tail, more in tails.items()}
    return before + "AM" + after, extended


class LayoutHourTable(_Table):
    """The hour key of a layout (the text without its minute and second) -> epoch.

    A key is parsed once, with its minute part put back at zero, by `datetime.strptime`
    itself, and cached as None when the offset does not hold for the whole hour. A layout cut
    from the start takes a key only when formatting the result gives the key back (so every
    field was read at its fixed place, in ASCII digits); one cut from the end, or a whole text
    without %M, takes what strptime takes, as the key is then exactly what strptime reads
    before a literal (or the whole value). A key with spaces around it is not taken: values
    are stripped before strptime reads them. Any other key raises KeyError and is not stored:
    the caller parses that text with strptime.
    """

    def __init__(self, zone: ZoneInfo, layout: Layout):
        super().__init__()
        self.zone, self.layout = zone, layout
        self.key_width = layout.width - (layout.end - (layout.end if layout.minute is None else layout.minute))

    def __missing__(self, key: str) -> Optional[int]:
        layout = self.layout
        if layout.minute is None:
            text = key
        elif layout.from_end:
            at = len(key) - layout.end
            text = key[:at] + layout.zero + key[at:]
        elif len(key) != self.key_width:
            raise KeyError(key)
        else:
            text = key[:layout.minute] + layout.zero + key[layout.minute:]
        if text != text.strip():
            raise KeyError(key)
        try:
            local = datetime.strptime(text, layout.fmt)
        except ValueError:
            raise KeyError(key) from None
        if layout.minute is not None and not layout.from_end and local.strftime(layout.fmt).lower() != text.lower():
            raise KeyError(key)
        return self.keep(key, self._start(local) if layout.half_days else self._start(local, 0))

    def _start(self, local: datetime, more: int = HALF_DAY) -> Optional[int]:
        """Epoch of `local`, when the offset holds from it for the layout's span, and `more` seconds
        later (the afternoon's hour of a key with %p) for the span again; else None."""
        span, zone = self.layout.span, self.zone
        first = local_to_epoch(local, zone)
        if local_to_epoch(local + timedelta(seconds=span), zone) - first != span:
            return None
        if more:
            later = local + timedelta(seconds=more)
            if local_to_epoch(later, zone) - first != more or \
                    local_to_epoch(later + timedelta(seconds=span), zone) - first != more + span:
                return None
        return first


class TimestampParser:
    """Callable: text -> int epoch seconds (UTC); raises ValueError with a readable reason."""

    def __init__(self, zone: str, fmt: Optional[str] = None):
        self.zone = ZoneInfo(zone)
        self.fmt = fmt
        self.layout = fixed_layout(fmt) if fmt else None
        self.hours: dict[str, Optional[int]] = \
            HourTable(self.zone) if self.layout is None else LayoutHourTable(self.zone, self.layout)
        self.utc_hours = UtcHourTable()
        self.zoned = ZonedMinuteSecond()
        self.full: Callable[[str], int] = self._parse_format if fmt else self._parse_iso_tail
        if self.layout is not None and self.layout.half_days:
            # A key whose morning and afternoon have different offsets (the DST days) is cached as None:
            # its values are cut as "key AM" and "MM:SS", the layout without half days, before strptime.
            split = fixed_layout(self.layout.fmt, half_days=False)
            assert split is not None
            self.full = _cut_first(*_layout_cut(split, LayoutHourTable(self.zone, split), "t"), self._parse_format)
        self.parse: Callable[[str], int] = self._parse_format
        fast = self.fast_expression("t")
        if fast is not None:
            self.parse = _cut_first(*fast, self.full)

    def fast_expression(self, text: str, example: Optional[str] = None) -> Optional[tuple[str, dict[str, object]]]:
        """Python code for the cut-and-look-up of `text` (a name), and the names it uses; it raises
        KeyError or TypeError for a text it does not take, which `full` then parses. None when the
        format cannot be cut by position.

        Without a format, `example` (a value from the start of the file) picks the cut: ISO values
        with an offset or `Z`, or with milliseconds, are cut as such; other fractions, a fraction and
        an offset, or a date alone go to `_parse_iso_tail`, which takes them all; the common shape
        otherwise. A value of another shape than the example's goes to `full`, which reads any.
        """
        if self.fmt is None:
            names: dict[str, object] = {"HOURS": self.hours, "MINUTE_SECOND": MINUTE_SECOND}
            if example is not None and example[19:] in OFFSETS:
                names.update(UTC_HOURS=self.utc_hours, ZONED=self.zoned)
                return f"UTC_HOURS[{text}[:14]] + ZONED[{text}[14:]]", names
            if example is not None and example[19:] in FRACTIONS:
                names["FRACTIONS"] = FRACTIONS
                return f"HOURS[{text}[:14]] + MINUTE_SECOND[{text}[14:19]] + FRACTIONS[{text}[19:]]", names
            if not _common_shape(example):
                return f"ISO_TAIL({text})", {"ISO_TAIL": self._parse_iso_tail}
            return f"HOURS[{text}[:14]] + MINUTE_SECOND[{text}[14:]]", names
        if self.layout is None:
            return None
        return _layout_cut(self.layout, self.hours, text)

    def joined_expression(self, date: str, time: str,
                          example: Optional[str] = None) -> Optional[tuple[str, dict[str, object]]]:
        """The cut of a date and a time in two columns (names), as `fast_expression` cuts `date + " " +
        time`, without joining them: `"YYYY-MM-DD" + "HH:"` is the hour's key. For ISO values of the
        common shape; None otherwise (the joined text is cut). A date of another width makes a key
        of another length, or leaves no minute: KeyError, as for the joined text.
        """
        if self.fmt is not None or not _common_shape(example):
            return None
        names: dict[str, object] = {"JOINED_HOURS": self.joined_hours, "MINUTE_SECOND": MINUTE_SECOND}
        return f"JOINED_HOURS[{date} + {time}[:3]] + MINUTE_SECOND[{time}[3:]]", names

    @functools.cached_property
    def joined_hours(self) -> JoinedHourTable:
        assert isinstance(self.hours, HourTable)
        return JoinedHourTable(self.hours)

    def __call__(self, text: str) -> int:
        return self.parse(text)

    def _parse_iso_tail(self, text: str) -> int:
        """An ISO value with a fraction, an offset or `Z`, or a date alone, cut as the common shape is
        (the hour by table, the offset by table, the fraction dropped); anything else, the regex."""
        try:
            if len(text) == 10:
                return self.hours[text + " 00:"] + 0  # type: ignore[operator]
            rest = text[19:]
            if rest[:1] in (".", ","):
                zone = rest[1:].lstrip(_DIGITS)
                if not 0 < len(rest) - 1 - len(zone) <= 9:
                    raise KeyError(text)
            else:
                zone = rest
            seconds = MINUTE_SECOND[text[14:19]]
            if not zone:
                return self.hours[text[:14]] + seconds  # type: ignore[operator]
            return self.utc_hours[text[:14]] + seconds - OFFSETS[zone]
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


def _common_shape(example: Optional[str]) -> bool:
    """An ISO value to the second or the minute, no fraction, no offset (or no example): cut at `HH:`."""
    return example is None or not (len(example) > 19 or len(example) == 10)


def _layout_cut(layout: Layout, hours: dict[str, Optional[int]], text: str) -> tuple[str, dict[str, object]]:
    """The cut of `text` (a name) in a fixed layout: its hour key in `hours`, its minute and second by table."""
    key, part = layout.parts(text)
    names: dict[str, object] = {"HOURS": hours, "MINUTE_SECOND": layout.minute_second}
    # + 0: a key cached as None (the offset changes inside its hour) raises TypeError, as with a part
    return (f"HOURS[{key}] + 0" if part is None else f"HOURS[{key}] + MINUTE_SECOND[{part}]"), names


def _cut_first(code: str, names: dict[str, object], fallback: Callable[[str], int]) -> Callable[[str], int]:
    """A parser that cuts a text as `code` says (an expression of `t`: positions and names only, never text
    from a file) and hands a text the cut does not take (KeyError, TypeError) to `fallback`."""
    cut = eval(compile(f"lambda t: {code}", "<timestamp cut>", "eval"), names)

    def parse(text: str) -> int:
        try:
            return cut(text)
        except (KeyError, TypeError):
            return fallback(text)
    return parse


def _offset(text: str) -> int:
    try:
        return OFFSETS[text]  # every offset ISO_RE takes whose hours and minutes are in range
    except KeyError:
        raise ValueError(f"UTC offset {text!r} is out of range") from None


def epoch_to_local(epoch: int, zone: str) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc).astimezone(ZoneInfo(zone))
