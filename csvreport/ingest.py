"""`csvreport ingest`: every new file of every enabled source, loaded exactly once.

Per file: skip it when its path, size and mtime are unchanged (no read at all); hash it;
skip it when that content was loaded or quarantined before under any name; otherwise
load it in one transaction together with its `ingestion_log` row, after removing the
rows of an earlier version of the same path. A crash anywhere leaves the file either
wholly loaded or not at all, and the next run finishes the job.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from csvreport import db, freshness, helper, log
from csvreport.collect import Candidate, find_files, seen_unchanged
from csvreport.config import Settings, Source
from csvreport.files import sha256_of
from csvreport.load import load_rows
from csvreport.rows import FileRejected, LoadResult
from csvreport.quarantine import quarantine_file, rejects_path, remove_original, write_rejects
from csvreport.runs import Run
from csvreport.timeconv import TimestampParser

@dataclass(frozen=True)
class Outcome:
    status: str  # loaded, skipped, quarantined, waiting (changed while read), unreadable, vanished
    ingestion_id: Optional[int] = None
    rows_loaded: int = 0
    rows_rejected: int = 0
    rows_read: Optional[int] = None
    reason: Optional[str] = None


def timestamp_parser(source: Source) -> Optional[TimestampParser]:
    return TimestampParser(source.timezone, source.timestamp_format) if source.timestamp else None


def ingest(settings: Settings, conn: sqlite3.Connection, run: Run, only: Optional[str] = None,
           dry_run: bool = False, rehash: bool = False,
           progress: Optional[Callable[[str, int], None]] = None) -> None:
    """Load every new file of every enabled source (or just `only`)."""
    sources = [settings.source(only)] if only else [s for s in settings.sources if s.enabled]
    if only and not sources[0].enabled:
        log.warning("ingest", "source is disabled in the configuration; loading it because --source asked",
                    source=only)
    if not sources:
        log.warning("ingest", f"no enabled source in {settings.config_path}: nothing to load; add a [[sources]] "
                    "table or set enabled = true")
        run.warn("no enabled source")
    # A dry run writes nothing at all, not even the scratch database of a shared large file.
    with contextlib.nullcontext() if dry_run else helper.Scratch(conn, settings.paths.database) as scratch:
        for source in sources:
            _ingest_source(settings, conn, run, source, scratch, dry_run, rehash, progress)


def _ingest_source(settings: Settings, conn: sqlite3.Connection, run: Run, source: Source,
                   scratch: Optional[helper.Scratch], dry_run: bool, rehash: bool,
                   progress: Optional[Callable[[str, int], None]]) -> None:
    # A dry run checks the table against the configuration but must not create or alter it.
    conn.execute("BEGIN IMMEDIATE")
    try:
        db.ensure_source_table(conn, source)
    except BaseException:
        db.rollback(conn)
        raise
    conn.execute("ROLLBACK" if dry_run else "COMMIT")
    found = find_files(settings, source)
    for folder, problem in found.missing:
        log.warning("ingest", f"the folder {folder} of the source's pattern {problem}: nothing can arrive there; "
                    "create it, fix its permissions, or fix the pattern", source=source.name, file=folder)
        run.warn("a pattern's folder cannot be read")
    for path in found.links:
        log.warning("ingest", "skipped: a symbolic link (its target is not read); put the file itself in the drop "
                    "folder, or set follow_symlinks = true for this source if the links are trusted",
                    source=source.name, file=str(path))
        run.warn("symbolic links skipped")
    for path in found.waiting:
        log.info("ingest", f"modified less than {settings.settle_seconds:g}s ago; waiting for the next run",
                 source=source.name, file=str(path))
    parser = timestamp_parser(source)
    for candidate in found.ready:
        run.add(files_seen=1)
        outcome = ingest_file(settings, conn, run, source, candidate, parser, dry_run=dry_run, rehash=rehash,
                              scratch=scratch)
        if progress is not None:
            progress(source.name, candidate.size)
        _count(run, outcome)


def _count(run: Run, outcome: Outcome) -> None:
    if outcome.status == "skipped":
        run.add(files_skipped=1)
    elif outcome.status == "loaded":
        run.add(files_loaded=1, rows_loaded=outcome.rows_loaded, rows_rejected=outcome.rows_rejected)
        if outcome.rows_rejected:
            run.warn(f"{outcome.rows_rejected} rows rejected")
    elif outcome.status == "quarantined":
        run.add(files_quarantined=1, rows_quarantined=outcome.rows_read or 0)
        run.warn("files quarantined")
    elif outcome.status == "waiting":
        run.warn("a file changed while it was read")
    elif outcome.status == "unreadable":
        run.warn("a file could not be read")


def _remember(conn: sqlite3.Connection, source: Source, candidate: Candidate, sha256: str,
              ingestion_id: Optional[int]) -> None:
    conn.execute(
        "INSERT INTO seen_files (source, path, size, mtime_ns, sha256, ingestion_id) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (source, path) DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns, "
        "sha256 = excluded.sha256, ingestion_id = coalesce(excluded.ingestion_id, seen_files.ingestion_id)",
        (source.name, str(candidate.path), candidate.size, candidate.mtime_ns, sha256, ingestion_id),
    )


def ingest_file(settings: Settings, conn: sqlite3.Connection, run: Run, source: Source, candidate: Candidate,
                parser: Optional[TimestampParser], *, dry_run: bool = False, rehash: bool = False,
                origin: Optional[Path] = None, scratch: Optional[helper.Scratch] = None) -> Outcome:
    """Load one file. `origin` is set by a replay: the path the file first arrived under."""
    path = candidate.path
    shown = str(origin or path)
    if origin is None and not rehash and seen_unchanged(conn, source.name, candidate):
        return Outcome("skipped")
    try:
        sha256 = sha256_of(path)
    except FileNotFoundError:
        log.info("ingest", "the file vanished before it was read (moved away by someone else?)",
                 source=source.name, file=shown)
        return Outcome("vanished")
    except OSError as exc:
        # One unreadable file must not stop the others; it stays where it is and is tried again.
        log.warning("ingest", f"cannot read the file: {exc.strerror or exc}; check its owner and permissions "
                    "(the user running csvreport must be able to read it); it is tried again on the next run",
                    source=source.name, file=shown)
        return Outcome("unreadable")
    known = conn.execute(
        "SELECT id, path, status FROM ingestion_log WHERE source = ? AND sha256 = ? "
        "AND status IN ('loaded', 'quarantined') ORDER BY id DESC LIMIT 1",
        (source.name, sha256),
    ).fetchone()
    if known and not (origin is not None and known[2] == "quarantined"):
        if not dry_run:
            with db.transaction(conn):
                _remember(conn, source, candidate, sha256, None)
        what = "loaded" if known[2] == "loaded" else "quarantined"
        log.info("ingest", f"skipped: this content was {what} before (ingestion {known[0]}, {known[1]})",
                 source=source.name, file=shown)
        return Outcome("skipped", ingestion_id=known[0])

    started = db.utcnow()
    fallback_ts = int(candidate.mtime_ns // 1_000_000_000)
    conn.execute("BEGIN IMMEDIATE")
    try:
        if dry_run:
            db.ensure_source_table(conn, source)  # rolled back with everything else
        previous = [row[0] for row in conn.execute(
            "SELECT id FROM ingestion_log WHERE source = ? AND path = ? AND status = 'loaded'",
            (source.name, shown))]
        for old in previous:
            delete_ingestion_rows(conn, source.name, old, why="superseded")
            conn.execute("UPDATE ingestion_log SET status = 'superseded', changed_at = ? WHERE id = ?",
                         (started, old))
        if source.key:
            freshness.watch(conn, source.name)  # the older rows its keys replace change their windows too
        ingestion_id = db.insert(
            conn,
            "INSERT INTO ingestion_log (source, path, sha256, size, mtime_ns, status, started_at, finished_at, run_id)"
            " VALUES (?, ?, ?, ?, ?, 'loaded', ?, ?, ?)",
            (source.name, shown, sha256, candidate.size, candidate.mtime_ns, started, started, run.id),
        )
        result = load_rows(conn, source, path, ingestion_id, parser, fallback_ts, settings.max_bad_rows,
                           scratch=scratch)
        if not _still_as_found(candidate):
            conn.execute("ROLLBACK")
            return _changed_while_read(source, shown)
        freshness.loaded(conn, source.name, ingestion_id, result.first_row_id, result.last_row_id, result.min_ts,
                         result.max_ts, result.rows_loaded)
        rejects = None
        if result.bad_rows and not dry_run:
            taken = {row[0] for row in conn.execute(
                "SELECT rejects_path FROM ingestion_log WHERE source = ? AND rejects_path IS NOT NULL "
                "AND sha256 != ?", (source.name, sha256))}
            rejects = rejects_path(settings, source.name, path.name, sha256, taken)
            write_rejects(rejects, result.header, result.bad_rows)
        conn.execute(
            "UPDATE ingestion_log SET rows_read = ?, rows_loaded = ?, rows_rejected = ?, first_row_id = ?, "
            "last_row_id = ?, min_ts = ?, max_ts = ?, rejects_path = ?, first_bad_line = ?, finished_at = ? "
            "WHERE id = ?",
            (result.rows_read, result.rows_loaded, result.bad_count, result.first_row_id, result.last_row_id,
             result.min_ts, result.max_ts, str(rejects) if rejects else None,
             result.bad_rows[0].line if result.bad_rows else None, db.utcnow(), ingestion_id),
        )
        if not dry_run:
            _remember(conn, source, candidate, sha256, ingestion_id)
    except FileRejected as exc:
        db.rollback(conn)
        if not _still_as_found(candidate):
            return _changed_while_read(source, shown)
        return _quarantine(settings, conn, run, source, candidate, sha256, exc, started, dry_run, origin)
    except BaseException:
        db.rollback(conn)
        raise
    conn.execute("ROLLBACK" if dry_run else "COMMIT")
    _log_loaded(source, shown, result, previous, rejects, dry_run)
    return Outcome("loaded", ingestion_id=ingestion_id, rows_loaded=result.rows_loaded,
                   rows_rejected=result.bad_count, rows_read=result.rows_read)


def log_dry_run(run: Run) -> None:
    """What a dry run of ingest would have done, in one line, once its lock is released."""
    c = run.counts
    log.info("ingest", f"dry run: nothing was changed; {c['files_seen']} files seen, {c['files_skipped']} known "
             f"already, {c['files_loaded']} would load ({c['rows_loaded']} rows, {c['rows_rejected']} rejected), "
             f"{c['files_quarantined']} would be quarantined ({c['rows_quarantined']} rows)",
             **{k: v for k, v in c.items() if v})


def inside_home(settings: Settings, path: Path) -> bool:
    """Whether the file really lives in the home folder (links resolved): only there may csvreport delete it."""
    home = os.path.realpath(settings.home)
    return os.path.realpath(path).startswith(home.rstrip(os.sep) + os.sep)


def _still_as_found(candidate: Candidate) -> bool:
    """False when the file changed while it was read: an exporter is still writing it."""
    try:
        info = candidate.path.stat()
    except OSError:
        return False
    return info.st_size == candidate.size and info.st_mtime_ns == candidate.mtime_ns


def _changed_while_read(source: Source, shown: str) -> Outcome:
    # Neither loaded nor quarantined: half a file must not be judged. The next run reads it again.
    log.warning("ingest", "the file changed while it was read (is an exporter still writing it? raise "
                "ingest.settle_seconds); nothing loaded, it is read again on the next run",
                source=source.name, file=shown)
    return Outcome("waiting")


def _log_loaded(source: Source, shown: str, result: LoadResult, previous: list[int], rejects: Optional[Path],
                dry_run: bool) -> None:
    verb = "would load" if dry_run else "loaded"
    note = f"; replaces the rows of ingestion {', '.join(map(str, previous))}" if previous else ""
    log.info("ingest", f"{verb} {result.rows_loaded} rows{note}", source=source.name, file=shown,
             rows=result.rows_loaded)
    if result.bad_count:
        first = result.bad_rows[0]
        log.warning("ingest", f"{result.bad_count} bad rows {'would be ' if dry_run else ''}rejected; first at line "
                    f"{first.line}: {first.reason}", source=source.name, file=shown, rows=result.bad_count,
                    rejects=str(rejects) if rejects else None)


def _quarantine(settings: Settings, conn: sqlite3.Connection, run: Run, source: Source, candidate: Candidate,
                sha256: str, exc: FileRejected, started: str, dry_run: bool, origin: Optional[Path]) -> Outcome:
    shown = str(origin or candidate.path)
    if dry_run:
        log.warning("ingest", f"would be quarantined: {exc.reason}", source=source.name, file=shown)
        return Outcome("quarantined", rows_read=exc.rows_read, reason=exc.reason)
    # A replay that fails again stays where it is, with its reason brought up to date.
    ours = source.move_bad_files or inside_home(settings, candidate.path)
    placed = candidate.path if origin is not None else \
        quarantine_file(settings, source.name, candidate.path, sha256, exc.reason, exc.first_bad_line, move=ours)
    # Recorded before the original is removed: a run killed in between leaves the original in the
    # drop folder, which the next run skips as known quarantined content, never an unrecorded file.
    with db.transaction(conn):
        ingestion_id = db.insert(
            conn,
            "INSERT INTO ingestion_log (source, path, sha256, size, mtime_ns, status, rows_read, reason, "
            "first_bad_line, quarantine_path, started_at, finished_at, run_id) "
            "VALUES (?, ?, ?, ?, ?, 'quarantined', ?, ?, ?, ?, ?, ?, ?)",
            (source.name, shown, sha256, candidate.size, candidate.mtime_ns, exc.rows_read, exc.reason,
             exc.first_bad_line, str(placed), started, db.utcnow(), run.id),
        )
    moved = origin is not None or (ours and remove_original(placed, candidate.path, source.name, sha256, exc.reason,
                                                            exc.first_bad_line))
    if not moved:
        # Remembered by content: not tried again until replayed, and the original stays where it is.
        with db.transaction(conn):
            _remember(conn, source, candidate, sha256, ingestion_id)
    where = f"moved to {placed}" if moved else f"copied to {placed} (" + (
        "the drop folder is read-only)" if ours else
        "the original, outside the home, stays where it is; set move_bad_files = true to move such files)")
    log.warning("ingest", f"quarantined: {exc.reason}; {where}", source=source.name, file=shown,
                rows=exc.rows_read)
    return Outcome("quarantined", ingestion_id=ingestion_id, rows_read=exc.rows_read, reason=exc.reason)


def delete_ingestion_rows(conn: sqlite3.Connection, table: str, ingestion_id: int, why: str = "removed",
                          count_only: bool = False) -> int:
    """Delete exactly the rows one ingestion inserted (its rowid range, checked by id); `why` says so to the
    workbooks of their windows, which become stale. With `count_only`, count the rows that would go and
    delete nothing."""
    first, last, low, high, rows = conn.execute(
        "SELECT first_row_id, last_row_id, min_ts, max_ts, rows_loaded FROM ingestion_log WHERE id = ?",
        (ingestion_id,)).fetchone()
    if first is None:
        return 0
    where = f"FROM {db.quote(table)} WHERE _id BETWEEN ? AND ? AND _ingestion_id = ?"
    if count_only:
        return int(conn.execute(f"SELECT count(*) {where}", (first, last, ingestion_id)).fetchone()[0])
    freshness.removing(conn, table, ingestion_id, why, first, last, low, high, rows)
    return conn.execute(f"DELETE {where}", (first, last, ingestion_id)).rowcount
