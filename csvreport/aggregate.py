"""Local report windows and the SQL that aggregates a source table over one of them.

A window is a half-open UTC range [start, end) built from wall-clock times in the
configured zone, so a DST day has 23 or 25 hour windows and a repeated hour is two
windows with the same local label and different offsets. Every query asks for
`_ts >= ? AND _ts < ?`, which the `<source>__ts` index serves: one hour of a large table
reads only that hour's rows.
"""

from __future__ import annotations

import itertools
import math
import re
import sqlite3
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, Optional, Sequence
from zoneinfo import ZoneInfo

from csvreport.config import Measure, Report, Settings, Source
from csvreport import db
from csvreport.db import quote
from csvreport.errors import ConfigError


@dataclass(frozen=True)
class Window:
    """[start, end) in UTC epoch seconds, shown in `zone`."""

    start: int
    end: int
    zone: str

    @property
    def local_start(self) -> datetime:
        return datetime.fromtimestamp(self.start, ZoneInfo(self.zone))

    @property
    def local_end(self) -> datetime:
        return datetime.fromtimestamp(self.end, ZoneInfo(self.zone))

    @property
    def repeated(self) -> bool:
        """True for the second of a repeated wall-clock hour (after clocks went back)."""
        return bool(self.local_start.fold)

    def label(self) -> str:
        return f"{local_text(self.local_start)} to {local_text(self.local_end)} ({self.zone})"

    def wall_clock(self) -> tuple[str, str]:
        """Start and end as wall-clock HH:MM, the day's end as 24:00; an hour ends one wall-clock hour
        after it starts, also when the clock jumps at its end."""
        start = self.local_start
        if self.end - self.start == 3600:
            end = (start.replace(tzinfo=None) + timedelta(hours=1)).strftime("%H:%M")
        else:
            end = self.local_end.strftime("%H:%M")
        return f"{start:%H:%M}", "24:00" if end == "00:00" else end


def offset_text(moment: datetime) -> str:
    """`+01:00`: the UTC offset of an aware time."""
    text = moment.strftime("%z")
    return f"{text[:3]}:{text[3:]}"


def local_text(moment: datetime) -> str:
    """`2026-10-25 02:00 +01:00`: wall clock with its offset, unambiguous at a DST change."""
    return f"{moment:%Y-%m-%d %H:%M} {offset_text(moment)}"


@lru_cache(maxsize=512)
def hour_starts(zone: str, day: date) -> tuple[int, ...]:
    """Every instant at which a local hour HH:00 of `day` begins (23, 24 or 25 of them)."""
    tz = ZoneInfo(zone)
    starts: set[int] = set()
    for hour in range(24):
        for fold in (0, 1):
            local = datetime(day.year, day.month, day.day, hour, tzinfo=tz, fold=fold)
            epoch = int(local.timestamp())
            back = datetime.fromtimestamp(epoch, tz)
            # A time in a spring-forward gap maps to another wall-clock time: that hour does not exist.
            if back.replace(tzinfo=None) == local.replace(tzinfo=None):
                starts.add(epoch)
    return tuple(sorted(starts))


def day_start(zone: str, day: date) -> int:
    return hour_starts(zone, day)[0]


def hours_of_day(zone: str, day: date) -> list[Window]:
    """The local hour windows of one day, in order; the last ends where the next day begins."""
    starts = list(hour_starts(zone, day)) + [day_start(zone, day + timedelta(days=1))]
    return [Window(a, b, zone) for a, b in itertools.pairwise(starts)]


def hours_between(zone: str, start: int, end: int) -> list[Window]:
    """Hour windows lying wholly inside [start, end)."""
    tz = ZoneInfo(zone)
    first = datetime.fromtimestamp(start, tz).date() - timedelta(days=1)
    last = datetime.fromtimestamp(end, tz).date()
    windows: list[Window] = []
    day = first
    while day <= last:
        windows.extend(w for w in hours_of_day(zone, day) if w.start >= start and w.end <= end)
        day += timedelta(days=1)
    return windows


def slot_end(zone: str, day: date, until: str) -> int:
    """The instant local `until` (HH:MM, 24:00 = end of day) of `day` is reached."""
    hours, minutes = int(until[:2]), int(until[3:])
    if (hours, minutes) == (24, 0):
        return day_start(zone, day + timedelta(days=1))
    local = datetime(day.year, day.month, day.day, hours, minutes, tzinfo=ZoneInfo(zone), fold=0)
    return int(local.timestamp())


def day_window(zone: str, day: date, until: str) -> Window:
    return Window(day_start(zone, day), slot_end(zone, day, until), zone)


def daily_slot(window: Window) -> tuple[date, str]:
    """The day and the slot (`HH:MM`, 24:00 for the day's end) of a daily window, read back from its end."""
    local, end = window.local_start, window.local_end
    return local.date(), "24:00" if end.date() > local.date() else f"{end:%H:%M}"


_HOUR_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})[ T](\d{1,2}):(\d{2})(?::(\d{2}))?\s*(Z|[+-]\d{2}:?\d{2})?\Z")


def parse_hour(text: str, zone: str) -> Window:
    """`YYYY-MM-DD HH:00` (local; the first of a repeated hour) or an ISO time with an offset."""
    match = _HOUR_RE.match(text.strip())
    example = "\"2026-03-29 14:00\" or \"2026-10-25T02:00+01:00\""
    if not match:
        raise ConfigError(f"--hour {text!r}: not a time such as {example}")
    year, month, day, hour, minute, second, offset = match.groups()
    if int(minute) or int(second or 0):
        raise ConfigError(f"--hour {text!r}: an hour starts at minute 00; use {year}-{month}-{day} {int(hour):02d}:00")
    try:
        naive = datetime(int(year), int(month), int(day), int(hour))
    except ValueError as exc:
        raise ConfigError(f"--hour {text!r}: {exc}") from None
    tz = ZoneInfo(zone)
    if offset is None:
        epoch = int(naive.replace(tzinfo=tz, fold=0).timestamp())
        if datetime.fromtimestamp(epoch, tz).replace(tzinfo=None) != naive:
            raise ConfigError(
                f"--hour {text!r}: {naive:%Y-%m-%d %H:00} does not exist in {zone} (the clocks skip it at the "
                f"change to summer time); ask for the hour after it")
    else:
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "") if offset != "Z" else "0000"
        seconds = sign * (int(digits[:2]) * 3600 + int(digits[2:4]) * 60)
        epoch = int(naive.replace(tzinfo=timezone(timedelta(seconds=seconds))).timestamp())
    local = datetime.fromtimestamp(epoch, tz)
    for window in hours_of_day(zone, local.date()):
        if window.start == epoch:
            return window
    raise ConfigError(f"--hour {text!r} is {local_text(local)} in {zone}, not the start of a local hour; "
                      f"give the local time, such as {local:%Y-%m-%d %H}:00")


# -- aggregation ---------------------------------------------------------------------------


MAX_LINES = 8  # a chart draws one line per group up to this many groups


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # text, integer, real (a source column's type), count, average


@dataclass(frozen=True)
class ReportTable:
    """One report over one window: the header, one row per group, a totals row (or None)."""

    report: Report
    columns: tuple[Column, ...]
    rows: tuple[tuple[Any, ...], ...]
    total: Optional[tuple[Any, ...]]
    row_count: int  # source rows in the window
    overall: tuple[Any, ...] = ()  # each measure over the whole window (all groups), None when it has no rows

    @property
    def group_width(self) -> int:
        return len(self.report.group_by)


def measure_kind(source: Source, measure: Measure) -> str:
    if measure.func == "count" or measure.column is None:  # only count goes without a column
        return "count"
    if measure.func == "avg":
        return "average"
    return source.type_of(measure.column)


def _measure_sql(measure: Measure) -> list[str]:
    """SQL for one measure; avg is kept as sum and count so a totals row can weigh it."""
    if measure.column is None:  # only count goes without a column
        return ["count(*)"]
    column = quote(measure.column)
    if measure.func == "count":
        return [f"count(NULLIF({column}, ''))"]
    if measure.func == "avg":
        return [f"sum({column})", f"count({column})"]
    return [f"{measure.func}({column})"]


def aggregate(conn: sqlite3.Connection, report: Report, source: Source, window: Window) -> ReportTable:
    """The report's measures per group over the window, sorted by the group columns."""
    columns = tuple(Column(c, source.type_of(c)) for c in report.group_by) + tuple(
        Column(m.label, measure_kind(source, m)) for m in report.measures)
    parts = [_measure_sql(m) for m in report.measures]
    groups = ", ".join(quote(c) for c in report.group_by)
    select = ", ".join(([groups] if groups else []) + [s for p in parts for s in p])
    sql = f"SELECT {select}, count(*) FROM {quote(source.name)} WHERE _ts >= ? AND _ts < ?"
    if groups:
        sql += f" GROUP BY {groups} ORDER BY {groups}"
    raw = conn.execute(sql, (window.start, window.end)).fetchall() if db.has_table(conn, source.name) else []
    width = len(report.group_by)
    rows: list[tuple[Any, ...]] = []
    sums: list[list[Any]] = []
    row_count = 0
    for record in raw:
        if record[-1] == 0:
            continue  # the one row of an ungrouped query over an empty window
        row_count += record[-1]
        values, flat, i = list(record[:width]), [], width
        for measure, sql_parts in zip(report.measures, parts):
            if measure.func == "avg":
                total, count = record[i], record[i + 1]
                values.append(total / count if count else None)
                flat.append((total, count))
            else:
                values.append(record[i])
                flat.append(record[i])
            i += len(sql_parts)
        rows.append(tuple(values))
        sums.append(flat)
    overall = _totals(report, sums) if rows else tuple(None for _ in report.measures)
    total = ("Total",) + (None,) * (width - 1) + overall if rows and width and report.total else None
    return ReportTable(report, columns, tuple(rows), total, row_count, overall)


def _totals(report: Report, per_group: list[list[Any]]) -> tuple[Any, ...]:
    """Counts and sums add up, avg is over all rows (not an average of averages), min of mins."""
    values: list[Any] = []
    for i, measure in enumerate(report.measures):
        column = [g[i] for g in per_group]
        present = [v for v in column if v is not None] if measure.func != "avg" else column
        if measure.func == "count":
            values.append(sum(column))
        elif measure.func == "sum":
            values.append(math.fsum(present) if any(isinstance(v, float) for v in present) else
                          (sum(present) if present else None))
        elif measure.func == "avg":
            total = math.fsum(s for s, c in column if s is not None)
            count = sum(c for s, c in column)
            values.append(total / count if count else None)
        elif measure.func == "min":
            values.append(min(present) if present else None)
        else:
            values.append(max(present) if present else None)
    return tuple(values)


def hour_totals(conn: sqlite3.Connection, report: Report, source: Source, hours: Sequence[Window],
                per_group: bool = True) -> list[tuple[Window, ReportTable]]:
    """The report hour by hour (the `<name> by hour` sheet and its chart): overall, and per group if asked.

    Without `per_group` each hour is one ungrouped query (no GROUP BY to sort), which is all
    a report with more groups than a chart draws lines for needs.
    """
    wanted = report if per_group else overall_only(report)
    return [(hour, aggregate(conn, wanted, source, hour)) for hour in hours]


def overall_only(report: Report) -> Report:
    """The report without its groups: one row over the whole window, its `overall` values."""
    return replace(report, group_by=())


def day_before(window: Window) -> Optional[Window]:
    """The same wall-clock window one day earlier, or None when that day has no such hour.

    A window of one hour maps to the same local hour of the day before (the first of a
    repeated hour); a longer window (a day up to a slot) to the same span of that day.
    """
    start = window.local_start
    day = start.date() - timedelta(days=1)
    if window.end - window.start == 3600:
        for hour in hours_of_day(window.zone, day):
            if hour.local_start.replace(tzinfo=None) == (start.replace(tzinfo=None) - timedelta(days=1)):
                return hour
        return None
    return day_window(window.zone, day, daily_slot(window)[1])


@dataclass(frozen=True)
class SourceSummary:
    name: str
    rows: int
    files: int
    data_as_of: Optional[str] = None  # finished_at (UTC ISO) of the newest load with rows in the window


def source_summary(conn: sqlite3.Connection, source: Source, window: Window) -> SourceSummary:
    """Rows of the source inside the window, how many loads (files) they came from, the newest load's time."""
    if not db.has_table(conn, source.name):
        return SourceSummary(source.name, 0, 0)
    # One pass over the window's rows: the rows per load, then the loads' newest finishing time.
    rows, files, newest = conn.execute(
        f"WITH per_load AS (SELECT _ingestion_id AS id, count(*) AS n FROM {quote(source.name)} "
        "WHERE _ts >= ? AND _ts < ? GROUP BY _ingestion_id) "
        "SELECT coalesce(sum(n), 0), count(*), (SELECT max(finished_at) FROM ingestion_log "
        "WHERE id IN (SELECT id FROM per_load)) FROM per_load",
        (window.start, window.end)).fetchone()
    return SourceSummary(source.name, rows, files, newest)


def report_sources(settings: Settings) -> list[Source]:
    """The sources a workbook speaks of: every configured source, those with reports first."""
    used = {r.source for r in settings.reports}
    return sorted(settings.sources, key=lambda s: (s.name not in used, s.name))

