"""`csvreport hourly` and `csvreport daily`: which workbooks are due, and writing them.

A plain run looks at a bounded set of windows (the complete hours of the last
`catch_up_hours`; the daily slots of today and yesterday whose time has passed) and writes
those that have no workbook yet, whose file is gone, or that are stale. A workbook is
stale when, after it was written, a load with rows in its window arrived or an earlier
load covering it was superseded or purged. The `workbooks` table keeps, per window, the
newest `ingestion_log` id and `changed_at` seen at writing time; the check reads only the
loads above those marks (primary key and `ingestion_log_changed` index), so its cost
follows the number of new loads and windows, never the size of the tables.

Every workbook goes through `publish`, which returns a `Written` record: the one place
where whatever must follow a written workbook (delivery, metrics) hooks in.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Callable, Optional, TypeVar
from zoneinfo import ZoneInfo

from csvreport import db, freshness, log
from csvreport.aggregate import (MAX_LINES, Window, aggregate, daily_slot, day_before, day_window, hour_totals,
                                 hours_between, hours_of_day, local_text, overall_only, parse_hour, report_sources,
                                 source_summary)
from csvreport.config import SLOT_RE, Settings
from csvreport.errors import ConfigError
from csvreport.runs import Run

KINDS = ("hourly", "daily")
# Bump when the layout of the workbooks changes: windows still in the catch-up range are rewritten.
LAYOUT_VERSION = 2


@dataclass(frozen=True)
class Job:
    kind: str  # hourly, daily
    window: Window
    path: Path
    reason: str  # new, missing, stale, layout, requested
    detail: str = ""
    by_hour: tuple[Window, ...] = ()


@dataclass(frozen=True)
class Written:
    """What `publish` wrote: the record every later step (mail, status) works from."""

    kind: str
    path: Path
    window: Window
    rewritten: bool  # a workbook for this window had been written before
    reason: str
    sha256: str
    rows: int
    record_id: int


@dataclass(frozen=True)
class Record:
    id: int
    kind: str
    start: int
    end: int
    path: str
    data_mark: int
    change_mark: Optional[str]
    layout: str


# -- naming ----------------------------------------------------------------------------------


def hourly_path(settings: Settings, window: Window) -> Path:
    """reports/hourly_YYYYMMDD_HHMM.xlsx; the second of a repeated hour gets `_2`."""
    local = window.local_start
    suffix = "_2" if window.repeated else ""
    return settings.paths.reports / f"hourly_{local:%Y%m%d_%H%M}{suffix}.xlsx"


def daily_path(settings: Settings, day: date, until: str) -> Path:
    return settings.paths.reports / f"daily_{day:%Y%m%d}_{until.replace(':', '')}.xlsx"


def hourly_job(settings: Settings, window: Window, reason: str, detail: str = "") -> Job:
    return Job("hourly", window, hourly_path(settings, window), reason, detail)


def daily_job(settings: Settings, day: date, until: str, reason: str, detail: str = "") -> Job:
    window = day_window(settings.timezone, day, until)
    hours = tuple(Window(h.start, min(h.end, window.end), h.zone)
                  for h in hours_of_day(settings.timezone, day) if h.start < window.end)
    return Job("daily", window, daily_path(settings, day, until), reason, detail, hours)


# -- requests on the command line --------------------------------------------------------------


def hour_request(settings: Settings, text: str, now: Optional[float] = None) -> Job:
    """The job for `--hour`; a usage error (exit 2) when the hour is not a complete local hour."""
    try:
        window = parse_hour(text, settings.timezone)
    except (ValueError, OverflowError) as exc:  # a year the calendar arithmetic cannot reach, such as 0001
        raise ConfigError(f"--hour {text!r}: out of range ({exc}); give an hour such as \"2026-03-29 14:00\""
                          ) from None
    now = time.time() if now is None else now
    if window.end > now:
        raise ConfigError(f"--hour {text!r}: the hour {local_text(window.local_start)} has not ended yet; "
                          f"its workbook can be written from {local_text(window.local_end)}")
    return hourly_job(settings, window, "requested")


def day_request(settings: Settings, day_text: Optional[str], until: Optional[str],
                now: Optional[float] = None) -> Job:
    """The job for `--date` / `--until` (default: today, the whole day)."""
    now = time.time() if now is None else now
    zone = settings.timezone
    if day_text is None:
        day = datetime.fromtimestamp(now, ZoneInfo(zone)).date()
    else:
        try:
            day = date.fromisoformat(day_text.strip())
        except ValueError:
            raise ConfigError(f"--date {day_text!r}: not a date such as 2026-03-29 (YYYY-MM-DD)") from None
    until = "24:00" if until is None else until.strip()
    if not SLOT_RE.match(until) or until > "24:00" or until == "00:00":
        raise ConfigError(f"--until {until!r}: not a time from 00:01 to 24:00 (HH:MM), such as 18:00")
    try:
        job = daily_job(settings, day, until, "requested")
    except (ValueError, OverflowError) as exc:  # a day the calendar arithmetic cannot reach, such as 9999-12-31
        raise ConfigError(f"--date {day_text!r}: out of range ({exc}); give a day such as 2026-03-29"
                          ) from None
    if job.window.end > now:
        raise ConfigError(f"--date {day:%Y-%m-%d} --until {until}: that period has not ended yet; its workbook "
                          f"can be written from {local_text(job.window.local_end)}")
    return job


# -- what is due -------------------------------------------------------------------------------


def layout_fingerprint(settings: Settings) -> str:
    """What the workbooks' layout depends on: the zone and the [[reports]] entries."""
    reports = [[r.name, r.source, list(r.group_by), [[m.label, m.func, m.column] for m in r.measures], r.title,
                r.chart, r.total, r.decimals, sorted(r.measure_decimals.items()),
                sorted((k, v.below, v.above) for k, v in r.limits.items())] for r in settings.reports]
    text = json.dumps([LAYOUT_VERSION, settings.timezone, sorted(s.name for s in settings.sources), reports])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def records(conn: sqlite3.Connection, kind: str, first_start: int, last_start: int) -> dict[tuple[int, int], Record]:
    rows = conn.execute(
        "SELECT id, kind, window_start, window_end, path, data_mark, change_mark, layout FROM workbooks "
        "WHERE kind = ? AND window_start BETWEEN ? AND ?", (kind, first_start, last_start))
    return {(r[2], r[3]): Record(*r) for r in rows}


def stale(conn: sqlite3.Connection, settings: Settings, recs: list[Record]) -> dict[int, str]:
    """Record id -> why it is stale, for the records whose window data changed after writing."""
    if not recs:
        return {}
    names = {s.name for s in settings.sources}
    low_mark = min(r.data_mark for r in recs)
    low_change = min(r.change_mark or "" for r in recs)
    # Since migration 0006 the changes are recorded per quarter hour (csvreport.freshness); this
    # check covers only the loads and status changes from before it.
    last_mark, last_change = freshness.legacy_marks(conn)
    columns = "id, source, status, min_ts, max_ts, changed_at"
    changes = {}
    for row in conn.execute(f"SELECT {columns} FROM ingestion_log WHERE id > ? AND id <= ? AND min_ts IS NOT NULL",
                            (low_mark, last_mark if last_mark is not None else 2**62)):
        changes[row[0]] = row
    if last_change is None or last_change > low_change:
        for row in conn.execute(f"SELECT {columns} FROM ingestion_log WHERE changed_at > ? AND changed_at <= ? "
                                "AND min_ts IS NOT NULL",
                                (low_change, last_change if last_change is not None else "~")):
            changes[row[0]] = row
    result: dict[int, str] = {}
    for rec in recs:
        why = []
        for ident, source, status, min_ts, max_ts, changed_at in changes.values():
            if source not in names or min_ts >= rec.end or max_ts < rec.start:
                continue
            new = ident > rec.data_mark
            changed = changed_at is not None and changed_at > (rec.change_mark or "") and \
                (last_change is None or changed_at <= last_change)
            if not (new or changed):
                continue  # seen already when the workbook was written
            if new and not changed and status == "loaded" and \
                    not _has_rows_in(conn, source, ident, rec.start, rec.end):
                continue  # its span covers the window, but none of its rows fall inside it
            if changed and not new:
                why.append(f"ingestion {ident} {status}")
            else:
                why.append(f"ingestion {ident} arrived")
        if why:
            result[rec.id] = "; ".join(why[:5]) + (f" and {len(why) - 5} more" if len(why) > 5 else "")
    return result


def _has_rows_in(conn: sqlite3.Connection, source: str, ingestion_id: int, start: int, end: int) -> bool:
    if not db.has_table(conn, source):
        return False
    return conn.execute(f"SELECT 1 FROM {db.quote(source)} WHERE _ts >= ? AND _ts < ? AND _ingestion_id = ? LIMIT 1",
                        (start, end, ingestion_id)).fetchone() is not None


_Key = TypeVar("_Key")


def _decide(settings: Settings, conn: sqlite3.Connection, kind: str, candidates: list[tuple[Window, Path, _Key]],
            marked: dict[int, tuple[str, str]]) -> list[tuple[_Key, str, str]]:
    """(key, reason, detail) for each candidate window that must be written; `marked` is `freshness.stale`."""
    if not candidates:
        return []
    known = records(conn, kind, min(w.start for w, _, _ in candidates), max(w.start for w, _, _ in candidates))
    layout = layout_fingerprint(settings)
    reasons = stale(conn, settings, [r for r in known.values() if r.layout == layout])
    for book, (cause, _) in marked.items():
        reasons.setdefault(book, cause)
    due: list[tuple[_Key, str, str]] = []
    for window, path, key in candidates:
        rec = known.get((window.start, window.end))
        if rec is None:
            due.append((key, "new", ""))
        elif settings.from_stored(rec.path) != path:
            due.append((key, "missing", f"the reports folder is now {path.parent}"))
        elif not path.is_file():
            due.append((key, "missing", f"{path} is gone"))
        elif rec.layout != layout:
            due.append((key, "layout", "the [[reports]] configuration or the time zone changed"))
        elif rec.id in reasons:
            due.append((key, "stale", reasons[rec.id]))
    return due


def due_hourly(settings: Settings, conn: sqlite3.Connection, now: float) -> list[Job]:
    """Complete hours of the catch-up window that have no workbook, lost it, or are stale; older stale ones."""
    windows = hours_between(settings.timezone, int(now) - settings.catch_up_hours * 3600, int(now))
    candidates = [(w, hourly_path(settings, w), w) for w in windows]
    marked = freshness.stale(conn, "hourly", {s.name for s in settings.sources})
    return stale_beyond(settings, conn, "hourly", {(w.start, w.end) for w in windows}, marked) + [
        hourly_job(settings, w, reason, detail)
        for w, reason, detail in _decide(settings, conn, "hourly", candidates, marked)]


def stale_beyond(settings: Settings, conn: sqlite3.Connection, kind: str, candidates: set[tuple[int, int]],
                 marked: dict[int, tuple[str, str]]) -> list[Job]:
    """Stale workbooks (`marked`, from `freshness.stale`) of windows outside `candidates` (older than the
    catch-up range), oldest first.

    Skipped: a window laid out for another zone or [[reports]] configuration (its window may
    not exist any more), and a window whose rows are archived (never rewritten)."""
    from csvreport.archive import archived_window

    if not marked:
        return []
    layout = layout_fingerprint(settings)
    jobs = []
    for book, start, end, zone, book_layout in conn.execute(
            "SELECT id, window_start, window_end, zone, layout FROM workbooks WHERE id IN "
            f"({', '.join('?' * len(marked))}) ORDER BY window_start, window_end", list(marked)):
        if (start, end) in candidates or book_layout != layout or zone != settings.timezone or \
                archived_window(conn, settings, start, end):
            continue
        jobs.append(job_for_window(settings, kind, Window(start, end, zone), "stale", marked[book][0]))
    return jobs


def job_for_window(settings: Settings, kind: str, window: Window, reason: str, detail: str = "") -> Job:
    """The job that writes a recorded window again (its daily slot read back from the window's end)."""
    if kind == "hourly":
        return hourly_job(settings, window, reason, detail)
    return daily_job(settings, *daily_slot(window), reason, detail)


def due_daily(settings: Settings, conn: sqlite3.Connection, now: float) -> list[Job]:
    """Slots of today and yesterday whose time has passed and that are missing or stale."""
    zone = settings.timezone
    today = datetime.fromtimestamp(now, ZoneInfo(zone)).date()
    candidates = []
    for day in (date.fromordinal(today.toordinal() - 1), today):
        for slot in settings.daily_slots:
            window = day_window(zone, day, slot)
            if window.end <= now:
                candidates.append((window, daily_path(settings, day, slot), (day, slot)))
    marked = freshness.stale(conn, "daily", {s.name for s in settings.sources})
    return stale_beyond(settings, conn, "daily", {(w.start, w.end) for w, _, _ in candidates}, marked) + [
        daily_job(settings, day, slot, reason, detail)
        for (day, slot), reason, detail in _decide(settings, conn, "daily", candidates, marked)]


# -- the commands ----------------------------------------------------------------------------


def hourly(settings: Settings, conn: sqlite3.Connection, run: Run, request: Optional[Job] = None,
           now: Optional[float] = None) -> list[Written]:
    """Write the requested hour, or every hour that is due."""
    return _write(settings, conn, run, request, due_hourly, now,
                  f"nothing to write: every complete hour of the last {settings.catch_up_hours} has an "
                  "up-to-date workbook")


def daily(settings: Settings, conn: sqlite3.Connection, run: Run, request: Optional[Job] = None,
          now: Optional[float] = None) -> list[Written]:
    """Write the requested day-to-date workbook, or every slot that is due."""
    return _write(settings, conn, run, request, due_daily, now,
                  "nothing to write: every slot of today and yesterday that is due has an up-to-date workbook")


def _write(settings: Settings, conn: sqlite3.Connection, run: Run, request: Optional[Job],
           due: Callable[[Settings, sqlite3.Connection, float], list[Job]], now: Optional[float],
           nothing_due: str) -> list[Written]:
    prepare(settings, conn)
    jobs = [request] if request else _not_archived(settings, conn, due(settings, conn,
                                                                         time.time() if now is None else now))
    if not jobs:
        log.info(run.command, nothing_due)
    return _mailed(settings, conn, run, [publish(settings, conn, run, job) for job in jobs])


def _not_archived(settings: Settings, conn: sqlite3.Connection, jobs: list[Job]) -> list[Job]:
    """A plain run never rewrites a window whose rows were moved to the Parquet archive."""
    from csvreport.archive import archived_window

    kept = []
    for job in jobs:
        month = archived_window(conn, settings, job.window.start, job.window.end)
        if month:
            log.info(job.kind, f"not written: the rows of {month} are archived (csvreport archive restore --month "
                     f"{month} brings them back)", file=str(job.path))
        else:
            kept.append(job)
    return kept


def _mailed(settings: Settings, conn: sqlite3.Connection, run: Run, written: list[Written]) -> list[Written]:
    """Mail what this run wrote and retry what earlier runs could not send (a failure only warns)."""
    from csvreport import mail

    mail.send_unsent(settings, conn, run)
    return written


def prepare(settings: Settings, conn: sqlite3.Connection) -> None:
    """Before writing any workbook: no leftover temporary files, every source table has its configured
    columns, and the changes recorded since the last run are absorbed (see csvreport.freshness)."""
    from csvreport.workbook import remove_leftovers

    remove_leftovers(settings.paths.reports)
    # A column added to the configuration since the last ingest must exist before we select it.
    with db.transaction(conn):
        for source in settings.sources:
            db.ensure_source_table(conn, source)
    freshness.absorb(conn, {s.name for s in settings.sources})


def corrected(conn: sqlite3.Connection, settings: Settings, kind: str, window: Window) -> bool:
    """Whether this window's data changed after its first workbook was written: its Summary says Correction.

    Decided from the database alone (the first writing time and the loads touching the
    window), so writing the window again from the same rows gives the same bytes.
    """
    first = conn.execute("SELECT first_written_at FROM workbooks WHERE kind = ? AND window_start = ? AND "
                         "window_end = ?", (kind, window.start, window.end)).fetchone()
    if first is None:
        return False
    if freshness.corrected(conn, kind, window.start, window.end):
        return True  # any change since migration 0006, a keyed row moved out of the window included
    # The loads and status changes from before migration 0006, checked the older way; a database
    # made since has none, and no ingestion_log to scan for every workbook written.
    last_mark, last_change = freshness.legacy_marks(conn)
    if last_mark == 0 and not last_change:
        return False
    names = {s.name for s in settings.sources}
    loads = conn.execute(
        "SELECT id, source, status, finished_at, changed_at FROM ingestion_log WHERE min_ts IS NOT NULL AND "
        "min_ts < ? AND max_ts >= ? AND (finished_at > ?3 OR changed_at > ?3)", (window.end, window.start, first[0]))
    for ident, source, status, _finished_at, changed_at in loads:
        if source not in names:
            continue
        if (changed_at or "") > first[0]:
            return True  # superseded, purged or replayed after the first workbook
        if status == "loaded" and _has_rows_in(conn, source, ident, window.start, window.end):
            return True  # a late file with rows inside the window
    return False


def publish(settings: Settings, conn: sqlite3.Connection, run: Run, job: Job) -> Written:
    """Aggregate, write the workbook atomically, record it: every workbook passes here."""
    from csvreport import archive, mail, workbook

    # Archived rows are not in the tables: a workbook of their window would be wrong, so refuse (exit 1).
    archive.refuse_archived(conn, settings, job.window.start, job.window.end)
    data_mark = conn.execute("SELECT coalesce(max(id), 0) FROM ingestion_log").fetchone()[0]
    seen = freshness.mark(conn)
    change_mark = conn.execute("SELECT max(changed_at) FROM ingestion_log WHERE changed_at IS NOT NULL").fetchone()[0]
    sources = {s.name: s for s in settings.sources}
    tables = [aggregate(conn, r, sources[r.source], job.window) for r in settings.reports]
    by_hour = [workbook.HourSeries(t, hour_totals(conn, t.report, sources[t.report.source], job.by_hour,
                                                  per_group=len(t.rows) <= MAX_LINES))
               for t in tables] if job.kind == "daily" else []
    # The same window a day earlier, for the Summary's comparison: one query per report over its time index,
    # without GROUP BY unless the Summary lists the groups (a report without a total).
    earlier = day_before(job.window)
    previous = [aggregate(conn, r if not r.total else overall_only(r), sources[r.source], earlier) if earlier
                else None for r in settings.reports]
    summaries = [source_summary(conn, s, job.window) for s in report_sources(settings)]
    content = workbook.Content(job.kind, job.window, summaries, tables, by_hour, previous, earlier,
                               correction=corrected(conn, settings, job.kind, job.window))
    saved = workbook.save(job.path, content)
    stamp = db.utcnow()
    rows = sum(s.rows for s in summaries)
    files = sum(s.files for s in summaries)
    with db.transaction(conn):
        before = conn.execute("SELECT id FROM workbooks WHERE kind = ? AND window_start = ? AND window_end = ?",
                              (job.kind, job.window.start, job.window.end)).fetchone()
        record_id = conn.execute(
            "INSERT INTO workbooks (kind, window_start, window_end, local_start, local_end, zone, path, sha256, size, "
            "rows, files, data_mark, change_mark, layout, reason, first_written_at, written_at, run_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (kind, window_start, window_end) DO UPDATE SET local_start = excluded.local_start, "
            "local_end = excluded.local_end, zone = excluded.zone, path = excluded.path, sha256 = excluded.sha256, "
            "size = excluded.size, rows = excluded.rows, files = excluded.files, data_mark = excluded.data_mark, "
            "change_mark = excluded.change_mark, layout = excluded.layout, reason = excluded.reason, "
            "writes = writes + 1, written_at = excluded.written_at, run_id = excluded.run_id "
            "RETURNING id",
            (job.kind, job.window.start, job.window.end, job.window.local_start.isoformat(),
             job.window.local_end.isoformat(), job.window.zone, settings.stored_path(saved.path), saved.sha256,
             saved.size, rows, files, data_mark, change_mark, layout_fingerprint(settings), job.reason, stamp, stamp,
             run.id),
        ).fetchone()[0]
        freshness.written(conn, record_id, seen)
    run.add(workbooks_written=1)
    because = {"new": "", "requested": " on request"}.get(job.reason, f" again ({job.reason}: "
                                                                     f"{job.detail})" if job.detail else " again")
    log.info(job.kind, f"wrote the {job.kind} workbook for {job.window.label()}{because}", file=str(saved.path),
             rows=rows, reason=job.reason)
    if rows == 0 and job.reason == "requested":
        log.warning(job.kind, f"the {job.kind} workbook for {job.window.label()} holds no rows: no loaded row falls "
                    "in that window; check the date, or see what was loaded with `csvreport recover loads`",
                    file=str(saved.path), rows=0)
    # Queued for email here, sent by _mailed; a repaired file (same data) is not mailed a second time.
    mail.queue(settings, conn, job.kind, saved.path, job.window.start, job.window.end, rewritten=before is not None,
               run_id=run.id, sha256=saved.sha256)
    return Written(job.kind, saved.path, job.window, before is not None, job.reason, saved.sha256, rows, record_id)
