"""`csvreport recover`: the operator's repairs, each one recorded and logged.

- `list`: the quarantined files and why (read-only, like `status`).
- `replay`: load quarantined files again, after the file or the configuration was fixed,
  through the very same `ingest_file` as a normal run, under the path the file first
  arrived under. A file that loads leaves quarantine (its `ingestion_log` row becomes
  'replayed', the new load has its own row); a file that fails again stays, with its
  `reason.json` brought up to date.
- `loads`: the loads (ingestion ids) with file, rows, event-time span and status: what
  `purge` takes (read-only, like `list`).
- `purge`: remove exactly the rows one ingestion loaded and mark it 'purged'. Its content
  is then no longer "known": if the file is still in the drop folder, the next `ingest`
  loads it again (which is what you want after fixing the configuration, and what you must
  prevent, by moving the file away, when the load was a duplicate). `purge --dry-run`
  reads only: it says what would go, takes no lock and records no run.
- `reports`: find workbooks that are missing or differ from their recorded checksum and
  write them again, through the reports code.

A target that does not exist, or is in no state to be acted on, is refused before the run
starts (exit 2), so a typo never shows up as a failed run in `status --check`.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Optional
from zoneinfo import ZoneInfo

from csvreport import db, log
from csvreport.collect import Candidate
from csvreport.config import Settings
from csvreport.errors import ConfigError, CsvReportError
from csvreport.quarantine import reason_path, still_there
from csvreport.runs import Run
from csvreport.timeconv import epoch_to_local

LIST_HINT = "`csvreport recover list` shows the quarantined files"


@dataclass(frozen=True)
class QuarantinedFile:
    ingestion_ids: tuple[int, ...]  # more than one only if an earlier replay was cut short
    source: str
    original_path: str
    quarantine_path: str
    reason: str
    first_bad_line: Optional[int]
    rows_read: Optional[int]
    since: str

    @property
    def id(self) -> int:
        return self.ingestion_ids[-1]


@dataclass
class ReplayResult:
    loaded: list[tuple[QuarantinedFile, Optional[int], int]] = field(default_factory=list)  # file, ingestion, rows
    already_loaded: list[tuple[QuarantinedFile, Optional[int]]] = field(default_factory=list)
    still_quarantined: list[tuple[QuarantinedFile, str]] = field(default_factory=list)

    @property
    def rows_loaded(self) -> int:
        return sum(rows for _, _, rows in self.loaded)

    def summary(self) -> str:
        parts = [f"{len(self.loaded)} file(s) replayed, {self.rows_loaded} rows loaded"]
        if self.already_loaded:
            parts.append(f"{len(self.already_loaded)} already loaded before (removed from quarantine)")
        parts.append(f"{len(self.still_quarantined)} still quarantined")
        return "; ".join(parts)


@dataclass(frozen=True)
class PurgeResult:
    ingestion_id: int
    source: str
    path: str
    rows_deleted: int
    rows_loaded: int
    still_in_drop_folder: bool


def quarantined_files(conn: sqlite3.Connection) -> list[QuarantinedFile]:
    """The files waiting in quarantine, oldest first (rows whose file an operator deleted are left out)."""
    if not db.has_table(conn, "ingestion_log"):
        return []
    grouped: dict[str, list[tuple]] = {}
    for row in conn.execute(
            "SELECT id, source, path, quarantine_path, reason, first_bad_line, rows_read, finished_at "
            "FROM ingestion_log WHERE status = 'quarantined' ORDER BY id"):
        if row[3] and still_there(row[3]):
            grouped.setdefault(row[3], []).append(row)
    files = []
    for rows in grouped.values():
        last = rows[-1]
        files.append(QuarantinedFile(tuple(r[0] for r in rows), last[1], last[2], last[3], last[4] or "",
                                     last[5], last[6], rows[0][7]))
    return sorted(files, key=lambda f: f.ingestion_ids[0])


def list_text(settings: Settings, files: list[QuarantinedFile]) -> str:
    if not files:
        return "No quarantined files.\n"
    lines = [f"{len(files)} quarantined file(s); fix the file (in place) or the configuration, then "
             "`csvreport recover replay PATH` (or --all):", ""]
    for f in files:
        lines.append(f"{settings.stored_path(f.quarantine_path)}")
        lines.append(f"    ingestion {f.id}, source {f.source}, since {f.since}")
        lines.append(f"    arrived as {f.original_path}")
        where = f" (first bad line {f.first_bad_line})" if f.first_bad_line else ""
        lines.append(f"    reason: {f.reason}{where}")
        if f.rows_read is not None:
            lines.append(f"    rows in the file: {f.rows_read}")
    return "\n".join(lines) + "\n"


def select_for_replay(conn: sqlite3.Connection, settings: Settings, paths: list[Path],
                      everything: bool) -> list[QuarantinedFile]:
    """The quarantined files the arguments name; refuses (exit 2) a name that is not one."""
    if everything == bool(paths):
        raise ConfigError("recover replay: give the quarantined files (PATH...) or --all, not both and not neither; "
                          + LIST_HINT)
    files = quarantined_files(conn)
    if everything:
        return files
    chosen: list[QuarantinedFile] = []
    unknown: list[str] = []
    for path in paths:
        match = _match(settings, files, path)
        if match is None:
            unknown.append(str(path))
        elif match not in chosen:
            chosen.append(match)
    if unknown:
        raise ConfigError(f"recover replay: not a quarantined file: {', '.join(unknown)}; {LIST_HINT}")
    return chosen


def _match(settings: Settings, files: list[QuarantinedFile], given: Path) -> Optional[QuarantinedFile]:
    given = given.expanduser()
    tries = [given] if given.is_absolute() else [Path.cwd() / given, settings.home / given]
    wanted = {os.path.normpath(p) for p in tries}
    for f in files:
        if os.path.normpath(f.quarantine_path) in wanted or os.path.normpath(f.original_path) in wanted:
            return f
    return None


def replay(settings: Settings, conn: sqlite3.Connection, run: Run, files: list[QuarantinedFile]) -> ReplayResult:
    """Load each file again under its original path; on success it leaves quarantine."""
    from csvreport.ingest import ingest_file, timestamp_parser

    result = ReplayResult()
    for f in files:
        try:
            source = settings.source(f.source)
        except ConfigError:
            reason = f"source {f.source!r} is no longer in {settings.config_path}; add it back to replay this file"
            log.warning("recover", f"not replayed: {reason}", source=f.source, file=f.quarantine_path)
            run.warn("file not replayed")
            result.still_quarantined.append((f, reason))
            continue
        newer = conn.execute(
            "SELECT id FROM ingestion_log WHERE source = ? AND path = ? AND status = 'loaded' AND id > ? "
            "ORDER BY id DESC LIMIT 1", (f.source, f.original_path, f.id)).fetchone()
        if newer:
            # Replaying would make this older version replace the rows of the newer one.
            reason = (f"a newer version of {f.original_path} was loaded after this one was quarantined (ingestion "
                      f"{newer[0]}); to load this one's rows as well, copy it into the drop folder under a new name")
            log.warning("recover", f"not replayed: {reason}", source=f.source, file=f.quarantine_path)
            run.warn("file not replayed")
            result.still_quarantined.append((f, reason))
            continue
        with db.transaction(conn):
            db.ensure_source_table(conn, source)
        path = Path(f.quarantine_path)
        info = path.stat()
        run.add(files_seen=1)
        outcome = ingest_file(settings, conn, run, source, Candidate(path, info.st_size, info.st_mtime_ns),
                              timestamp_parser(source), origin=Path(f.original_path))
        if outcome.status == "quarantined":
            _mark_replayed(conn, f)
            _update_reason(conn, path, outcome.ingestion_id)
            run.add(files_quarantined=1, rows_quarantined=outcome.rows_read or 0)
            run.warn("replayed file quarantined again")
            log.warning("recover", f"still quarantined: {outcome.reason}; stays in {path}", source=f.source,
                        file=f.original_path, ingestion=outcome.ingestion_id)
            result.still_quarantined.append((f, outcome.reason or ""))
            continue
        _mark_replayed(conn, f)
        _remove(path)
        if outcome.status == "loaded":
            run.add(files_loaded=1, rows_loaded=outcome.rows_loaded, rows_rejected=outcome.rows_rejected)
            if outcome.rows_rejected:
                run.warn(f"{outcome.rows_rejected} rows rejected")
            log.info("recover", f"replayed: {outcome.rows_loaded} rows loaded as ingestion {outcome.ingestion_id}"
                     f"; removed {settings.stored_path(path)} from quarantine", source=f.source,
                     file=f.original_path, rows=outcome.rows_loaded)
            result.loaded.append((f, outcome.ingestion_id, outcome.rows_loaded))
        else:
            run.add(files_skipped=1)
            log.info("recover", f"this content was loaded before (ingestion {outcome.ingestion_id}): nothing "
                     f"loaded; removed {settings.stored_path(path)} from quarantine", source=f.source,
                     file=f.original_path, rows=0)
            result.already_loaded.append((f, outcome.ingestion_id))
    log.info("recover", f"replay done: {result.summary()}", rows=result.rows_loaded)
    return result


def _mark_replayed(conn: sqlite3.Connection, f: QuarantinedFile) -> None:
    """The quarantine rows of this file are handled: a later ingestion row carries on from here."""
    with db.transaction(conn):
        conn.execute(
            f"UPDATE ingestion_log SET status = 'replayed', changed_at = ? WHERE status = 'quarantined' "
            f"AND id IN ({', '.join('?' * len(f.ingestion_ids))})", (db.utcnow(), *f.ingestion_ids))


def _update_reason(conn: sqlite3.Connection, path: Path, ingestion_id: Optional[int]) -> None:
    row = conn.execute("SELECT reason, first_bad_line, finished_at FROM ingestion_log WHERE id = ?",
                       (ingestion_id,)).fetchone()
    target = reason_path(path)
    try:
        details = json.loads(target.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        details = {}
    details.setdefault("first_reason", details.get("reason"))
    details.update(reason=row[0], first_bad_line=row[1], time=row[2], replays=details.get("replays", 0) + 1,
                   ingestion_id=ingestion_id)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(details, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, target)


def _remove(path: Path) -> None:
    for leftover in (path, reason_path(path)):
        try:
            leftover.unlink()
        except FileNotFoundError:
            pass


def check_purge(conn: sqlite3.Connection, ingestion_id: int) -> tuple:
    """The ingestion_log row to purge; refuses (exit 2) one that does not exist or loaded nothing live."""
    row = conn.execute("SELECT id, source, path, status, rows_loaded, changed_at FROM ingestion_log WHERE id = ?",
                       (ingestion_id,)).fetchone() if db.has_table(conn, "ingestion_log") else None
    if row is None:
        raise ConfigError(f"recover purge: ingestion {ingestion_id} does not exist; "
                          "`csvreport recover loads` lists the ingestion ids")
    status, when = row[3], row[5]
    refusals = {
        "purged": f"was purged already (at {when})",
        "superseded": f"was superseded by a later version of {row[2]} (at {when}); its rows are already gone",
        "quarantined": "is a quarantined file and loaded no rows: fix it and `csvreport recover replay` it, or "
                       "delete it and its .reason.json from the quarantine folder",
        "replayed": "is a quarantined file that was replayed; purge the ingestion that loaded it instead",
    }
    if status != "loaded":
        raise ConfigError(f"recover purge: ingestion {ingestion_id} ({row[1]}, {row[2]}) "
                          f"{refusals.get(status, f'has status {status!r}')}; nothing purged")
    return row


def purge(settings: Settings, conn: sqlite3.Connection, run: Run, ingestion_id: int) -> PurgeResult:
    """Delete exactly the rows of one load, mark it purged, and forget its file so it may load again."""
    from csvreport.ingest import delete_ingestion_rows

    with db.transaction(conn):
        _, source, path, _, rows_loaded, _ = check_purge(conn, ingestion_id)
        deleted = delete_ingestion_rows(conn, source, ingestion_id, why="purged")
        conn.execute("UPDATE ingestion_log SET status = 'purged', changed_at = ? WHERE id = ?",
                     (db.utcnow(), ingestion_id))
        # Forget the file: the same content under that path counts as new again.
        sha = conn.execute("SELECT sha256 FROM ingestion_log WHERE id = ?", (ingestion_id,)).fetchone()[0]
        conn.execute("DELETE FROM seen_files WHERE source = ? AND (ingestion_id = ? OR (path = ? AND sha256 = ?))",
                     (source, ingestion_id, path, sha))
        # run_history.rows_deleted (migration 0003): what a purge removed, next to what runs loaded.
        conn.execute("UPDATE run_history SET rows_deleted = rows_deleted + ? WHERE id = ?", (deleted, run.id))
    note = "" if deleted == rows_loaded else (
        f" ({rows_loaded - deleted} of its {rows_loaded} rows had been replaced already by later rows "
        "with the same key)")
    log.info("recover", f"purged ingestion {ingestion_id}: {deleted} rows deleted{note}", source=source, file=path,
             rows=deleted)
    if any(s.name == source and s.key for s in settings.sources):
        log.info("recover", "keyed source: the older rows this load replaced are not brought back; load their "
                 "file again if you need them", source=source)
    present = Path(path).exists()
    if present:
        log.warning("recover", f"{path} is still in the drop folder: the next ingest loads it again; move it away "
                    "if its rows are unwanted", source=source, file=path)
    return PurgeResult(ingestion_id, source, path, deleted, rows_loaded, present)


@dataclass(frozen=True)
class Load:
    id: int
    source: str
    path: str
    status: str  # loaded, quarantined, superseded, purged, replayed
    rows_loaded: int
    min_ts: int | None
    max_ts: int | None
    finished_at: str


_LOAD_COLUMNS = "id, source, path, status, rows_loaded, min_ts, max_ts, finished_at"  # the fields of Load


def loads(conn: sqlite3.Connection, settings: Settings, source: str | None = None,
          since: str | None = None) -> list[Load]:
    """The loads, oldest first: every one of `source` (default: all), loaded on or after the local day `since`."""
    if source:
        settings.source(source)
    if not db.has_table(conn, "ingestion_log"):
        return []
    where, args = [], []
    if source:
        where.append("source = ?")
        args.append(source)
    if since:
        where.append("started_at >= ?")
        args.append(_day_start_utc(settings, since))
    sql = f"SELECT {_LOAD_COLUMNS} FROM ingestion_log" + (" WHERE " + " AND ".join(where) if where else "")
    return [Load(*row) for row in conn.execute(sql + " ORDER BY id", args)]


def _day_start_utc(settings: Settings, text: str) -> str:
    """Local midnight of the day YYYY-MM-DD, in the form ingestion_log keeps its times."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"recover loads: --since {text!r} is not a date; give it as YYYY-MM-DD") from None
    start = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(settings.timezone))
    return start.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _span(settings: Settings, load: Load) -> str:
    if load.min_ts is None or load.max_ts is None:
        return "-"
    zone = next((s.timezone for s in settings.sources if s.name == load.source), settings.timezone)
    first, last = (epoch_to_local(t, zone).strftime("%Y-%m-%d %H:%M:%S") for t in (load.min_ts, load.max_ts))
    return f"{first} .. {last}"


def loads_text(settings: Settings, found: list[Load]) -> str:
    if not found:
        return "No loads.\n"
    rows = [("ID", "STATUS", "ROWS", "EVENTS (local time)", "LOADED (UTC)", "SOURCE", "FILE")]
    rows += [(str(f.id), f.status, str(f.rows_loaded), _span(settings, f), f.finished_at[:19].replace("T", " "),
              f.source, settings.stored_path(f.path)) for f in found]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join([r[0].rjust(widths[0]), *(c.ljust(w) for c, w in zip(r[1:-1], widths[1:])), r[-1]])
             for r in rows]
    return (f"{len(found)} load(s); `csvreport recover purge ID --dry-run` shows what purging one would "
            "remove:\n\n" + "\n".join(line.rstrip() for line in lines) + "\n")


def purge_preview(settings: Settings, conn: sqlite3.Connection, ingestion_id: int) -> str:
    """What `recover purge ID` would do, read without changing anything (the same checks refuse the same ids)."""
    from csvreport.ingest import delete_ingestion_rows

    _, source, path, _, rows_loaded, _ = check_purge(conn, ingestion_id)
    rows = delete_ingestion_rows(conn, source, ingestion_id, count_only=True)
    # Read by id: the load's source may have left the configuration since, and purge needs none.
    load = Load(*conn.execute(f"SELECT {_LOAD_COLUMNS} FROM ingestion_log WHERE id = ?", (ingestion_id,)).fetchone())
    lines = [(f"dry run, nothing was changed: purging ingestion {ingestion_id} would delete {rows} rows of "
              f"{source} loaded from {settings.stored_path(path)} (events {_span(settings, load)}) "
              "and mark it purged.")]
    if rows != rows_loaded:
        lines.append(f"{rows_loaded - rows} of its {rows_loaded} rows were replaced already by later rows with "
                     "the same key.")
    if Path(path).exists():
        lines.append(f"{settings.stored_path(path)} is still in the drop folder: the next ingest would load it again; "
                     "move it away first if its rows are unwanted.")
    return "\n".join(lines) + "\n"


def require_database(settings: Settings) -> sqlite3.Connection:
    """A read-only connection for `recover list` and the checks made before a run starts."""
    try:
        return db.open_readonly(settings)
    except CsvReportError as exc:
        if str(exc).startswith("cannot read "):
            raise CsvReportError(f"{exc}; restore it from a backup (docs/operations.md, "
                                 "'Backups while cron runs')") from None
        raise
    except sqlite3.Error as exc:
        raise CsvReportError(f"cannot open {settings.paths.database}: {exc}") from None


@dataclass(frozen=True)
class DamagedWorkbook:
    record_id: int
    kind: str
    path: Path
    state: str  # missing, changed
    start: int
    end: int
    zone: str


def damaged_workbooks(conn: sqlite3.Connection, settings: Settings) -> list[DamagedWorkbook]:
    """Recorded workbooks whose file is gone or no longer has the checksum it was written with."""
    from csvreport.files import sha256_of

    if not db.has_table(conn, "workbooks"):
        return []
    damaged = []
    for ident, kind, path, sha256, size, start, end, zone in conn.execute(
            "SELECT id, kind, path, sha256, size, window_start, window_end, zone FROM workbooks "
            "ORDER BY kind, window_start"):
        file = settings.from_stored(path)
        try:
            info = file.stat()
        except FileNotFoundError:
            damaged.append(DamagedWorkbook(ident, kind, file, "missing", start, end, zone))
            continue
        # The size answers most cases without reading; the checksum settles the rest.
        if info.st_size != size or sha256_of(file) != sha256:
            damaged.append(DamagedWorkbook(ident, kind, file, "changed", start, end, zone))
    return damaged


def rewrite_reports(settings: Settings, conn: sqlite3.Connection, run: Run) -> list[DamagedWorkbook]:
    """Write every missing or changed workbook again, through the same code as hourly and daily."""
    from csvreport import reports
    from csvreport.aggregate import Window
    from csvreport.archive import archived_window

    found = damaged_workbooks(conn, settings)
    if found:
        reports.prepare(settings, conn)  # as hourly and daily do, so what publish records is absorbed
    done = []
    for book in found:
        window = Window(book.start, book.end, book.zone)
        why = "its file is gone" if book.state == "missing" else "its file differs from the checksum recorded"
        if book.zone != settings.timezone:
            log.warning("recover", f"not rewritten: it was written for zone {book.zone}, the configuration now says "
                        f"{settings.timezone}; run `csvreport {book.kind}` for the windows you need",
                        file=str(book.path))
            run.warn("workbook not rewritten")
            continue
        month = archived_window(conn, settings, book.start, book.end)
        if month:
            log.warning("recover", f"not rewritten: the rows of {month} are in the Parquet archive; load them back "
                        f"first (csvreport archive restore --month {month}), then run recover reports again",
                        file=str(book.path))
            run.warn("workbook not rewritten")
            continue
        job = reports.job_for_window(settings, book.kind, window, book.state, why)
        log.info("recover", f"{book.kind} workbook {book.path.name}: {why}; writing it again", file=str(book.path))
        reports.publish(settings, conn, run, job)
        done.append(book)
    log.info("recover", f"reports done: {len(done)} workbook(s) written again"
             + ("" if found else "; every recorded workbook is in place and unchanged"))
    return done
