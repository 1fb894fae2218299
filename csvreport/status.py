"""`csvreport status`: health and metrics for operators and monitors, read-only and fast.

It opens the database read-only, never takes the lock, never waits and never writes;
pending migrations are reported, not applied. Nothing here scans a source table: files
and rows come from `ingestion_log` (one row per file version), runs from `run_history`
through its (command, id) index, pending files from the same discovery as `ingest`
(stat calls only). So the cost follows the number of files, not the number of rows.

Row counts are the sum of `rows_loaded` over the loads that are still live (status
'loaded'), minus the rows moved to the Parquet archive. For a source without `key` that is
exact. For a keyed source it is an upper
bound: a later row with the same key replaces an earlier one (INSERT OR REPLACE) without
the earlier load's count going down, so `rows_exact` is false there.

This module gathers the facts, typed (the dataclasses below, whose fields are the keys of
`--json`); csvreport.health judges them into problems; csvreport.status_render renders
them: a rich table on a terminal, plain text otherwise, `--json`, `--prometheus`, and
`--check` as one line per problem. A new fact is a field here (and in to_dict() when it is
not a plain field), a new judgement a function in health.CHECKS, a new rendering a line
in status_render.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Optional

from csvreport import db
from csvreport.collect import find_files, seen_unchanged
from csvreport.config import Settings, Source
from csvreport.errors import CsvReportError
from csvreport.quarantine import still_there
from csvreport.runs import COUNTERS

# Workbook kinds status knows; a due one missing or stale is a problem for --check.
WORKBOOK_KINDS = ("hourly", "daily")
LIVE_LOAD_STATES = ("loaded", "superseded", "purged")  # a file that was ingested at some point
# Cron writes a due workbook within minutes; --check complains only when one stays due for longer.
DUE_GRACE_SECONDS = 3600
UNSENT_GRACE_SECONDS = 3600  # the SPEC: status --check flags any unsent for more than an hour
# The run_history columns status shows: every counter a run keeps (runs.COUNTERS), and what purge deleted.
RUN_COLUMNS = ("id", "command", "arguments", "pid", "started_at", "finished_at", "status", *COUNTERS,
               "rows_deleted", "error")


# --- the facts ------------------------------------------------------------------------------


@dataclass
class DatabaseFacts:
    path: str
    reachable: bool = False
    error: Optional[str] = None
    schema_version: Optional[int] = None
    expected_schema_version: int = 0
    pending_migrations: list[str] = field(default_factory=list)
    unknown_migrations: list[str] = field(default_factory=list)


@dataclass
class SourceFacts:
    name: str
    enabled: bool
    files_pending: Optional[int]  # None for a disabled source
    files_waiting: Optional[int]  # still settling
    files_loaded: int
    files_quarantined: int
    rows: int  # an upper bound for a keyed source: see rows_exact
    rows_exact: bool
    rows_archived: int
    rows_rejected: int
    last_ingested_at: Optional[str]
    # Pattern folders that are missing or cannot be searched: {"folder": ..., "problem": ...}
    unreadable_folders: list[dict[str, str]] = field(default_factory=list)


@dataclass
class RunFacts:
    """The last run of one command: the run_history row (as far as the schema has its columns)."""

    id: int
    command: str
    status: str  # ok, warn, failed, skipped, running, or interrupted (running, but its process is gone)
    arguments: dict[str, Any] = field(default_factory=dict)
    pid: Optional[int] = None
    started_at: Optional[str] = None
    finished_at: Optional[str] = None
    files_seen: Optional[int] = None
    files_loaded: Optional[int] = None
    files_skipped: Optional[int] = None
    files_quarantined: Optional[int] = None
    rows_loaded: Optional[int] = None
    rows_rejected: Optional[int] = None
    rows_quarantined: Optional[int] = None
    workbooks_written: Optional[int] = None
    rows_deleted: Optional[int] = None
    files_marked: Optional[int] = None  # sync: files moved to the processed folder in SharePoint
    error: Optional[str] = None
    duration_seconds: Optional[float] = None
    last_completed: Optional[RunFacts] = None  # for a skipped run: how the last real one ended
    columns: tuple[str, ...] = RUN_COLUMNS  # the run_history columns the database has

    def to_dict(self) -> dict[str, Any]:
        row = {c: getattr(self, c) for c in self.columns}
        row["duration_seconds"] = self.duration_seconds
        if self.status == "skipped":
            row["last_completed"] = self.last_completed.to_dict() if self.last_completed else None
        return row


@dataclass
class WorkbookFacts:
    """The workbook of the latest window of one kind, as recorded when it was written."""

    path: str
    window_start: str
    window_end: str
    zone: str
    written_at: str
    rows: int
    exists: bool


@dataclass
class DueWorkbook:
    """A workbook a plain `hourly` / `daily` would write now."""

    kind: str
    path: str
    window: str
    state: str  # new, missing, stale, layout
    detail: str
    due_since: str
    overdue: bool  # due for longer than DUE_GRACE_SECONDS


@dataclass
class UnsentWorkbook:
    """A workbook whose email has not gone out (see mail.unsent)."""

    id: int
    kind: str
    path: str
    window: str
    status: str  # unsent or undeliverable
    attempts: int
    queued_at: Optional[str]
    first_failure_at: Optional[str]
    last_attempt_at: Optional[str]
    last_error: Optional[str]
    overdue: bool = False  # undeliverable, or unsent for longer than UNSENT_GRACE_SECONDS


@dataclass
class RemoteFacts:
    """A [[sharepoint]] remote (csvreport sync): its last sync attempt and success, and files downloaded
    but not yet marked processed."""

    name: str
    site: str
    library: str
    folder: str
    download_to: str
    last_attempt_at: Optional[str] = None
    last_status: Optional[str] = None
    last_error: Optional[str] = None
    last_success_at: Optional[str] = None
    files_seen: int = 0
    files_downloaded: int = 0
    files_marked: int = 0
    files_unmarked: int = 0


@dataclass
class Facts:
    """Everything status reports; to_dict() is the `--json` document."""

    generated_at: str
    home: str
    database: DatabaseFacts
    sources: list[SourceFacts] = field(default_factory=list)
    runs: list[RunFacts] = field(default_factory=list)
    workbooks: dict[str, Optional[WorkbookFacts]] = field(default_factory=lambda: dict.fromkeys(WORKBOOK_KINDS))
    due_workbooks: Optional[list[DueWorkbook]] = None  # None before migration 0002
    unsent_workbooks: Optional[list[UnsentWorkbook]] = None  # None when the database is unreachable
    remotes: list[RemoteFacts] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # filled by csvreport.health

    def to_dict(self) -> dict[str, Any]:
        row = asdict(self)
        row["runs"] = [r.to_dict() for r in self.runs]  # only the columns the database has
        return row


# --- gathering -----------------------------------------------------------------------------


def gather(settings: Settings, now: Optional[float] = None) -> Facts:
    """Every fact status reports, with the problems csvreport.health finds in them."""
    from csvreport import health

    now = time.time() if now is None else now
    facts = Facts(generated_at=_iso(now), home=str(settings.home),
                  database=DatabaseFacts(path=str(settings.paths.database),
                                         expected_schema_version=_shipped_version()))
    conn = _open(settings, facts.database)
    try:
        if conn is not None:
            _schema(conn, facts.database)
            facts.runs = _runs(conn)
            facts.workbooks = _newest_workbooks(conn, settings)
            facts.due_workbooks = _due_workbooks(conn, settings, now)
            facts.unsent_workbooks = _unsent(conn, settings, now)
        facts.sources = _sources(conn, settings)
        facts.remotes = _remotes(conn, settings)
    finally:
        if conn is not None:
            conn.close()
    facts.problems = health.problems(facts, settings, now)
    return facts


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _shipped_version() -> int:
    shipped = db.migrations()
    return shipped[-1].version if shipped else 0


def _open(settings: Settings, database: DatabaseFacts) -> Optional[sqlite3.Connection]:
    try:
        conn = db.open_readonly(settings)
    except CsvReportError as exc:
        database.error = str(exc)
        return None
    except sqlite3.Error as exc:
        database.error = f"cannot open {settings.paths.database}: {exc}"
        return None
    database.reachable = True
    return conn


def _schema(conn: sqlite3.Connection, database: DatabaseFacts) -> None:
    database.schema_version = db.schema_version(conn)
    database.pending_migrations = [m.name for m in db.pending(conn)]
    if db.has_table(conn, "schema_migrations"):
        shipped = {m.version for m in db.migrations()}
        database.unknown_migrations = [
            name for version, name in conn.execute("SELECT version, name FROM schema_migrations ORDER BY version")
            if version not in shipped]


def _sources(conn: Optional[sqlite3.Connection], settings: Settings) -> list[SourceFacts]:
    per_state: dict[tuple[str, str], tuple[int, int, int, Optional[str]]] = {}
    quarantined: dict[str, list[str]] = {}
    archived: dict[str, int] = {}
    if conn is not None and db.has_table(conn, "ingestion_log"):
        # One pass over ingestion_log (a row per file version, not per row).
        for source, state, files, rows, rejected, last in conn.execute(
                "SELECT source, status, count(*), coalesce(sum(rows_loaded), 0), coalesce(sum(rows_rejected), 0), "
                "max(finished_at) FROM ingestion_log GROUP BY source, status"):
            per_state[(source, state)] = (files, rows, rejected, last)
        if db.has_table(conn, "archive_parts"):
            # Rows moved to the Parquet archive (csvreport archive) left the table, not ingestion_log.
            archived = dict(conn.execute("SELECT source, coalesce(sum(rows), 0) FROM archive_parts "
                                         "WHERE state = 'archived' GROUP BY source").fetchall())
        for source, path in conn.execute(
                "SELECT source, quarantine_path FROM ingestion_log WHERE status = 'quarantined' ORDER BY id"):
            # A quarantined file an operator deleted is no longer waiting for anyone.
            if path and still_there(path):
                quarantined.setdefault(source, []).append(path)
    result = []
    for source in settings.sources:
        loaded = per_state.get((source.name, "loaded"), (0, 0, 0, None))
        stamps = [per_state[(source.name, s)][3] for s in LIVE_LOAD_STATES if (source.name, s) in per_state]
        pending, waiting, unreadable = _pending(conn, settings, source) if source.enabled else (None, None, [])
        result.append(SourceFacts(
            name=source.name,
            enabled=source.enabled,
            files_pending=pending,
            files_waiting=waiting,
            files_loaded=loaded[0],
            files_quarantined=len(quarantined.get(source.name, [])),
            rows=loaded[1] - archived.get(source.name, 0),
            rows_exact=not source.key,
            rows_archived=archived.get(source.name, 0),
            rows_rejected=loaded[2],
            last_ingested_at=max((t for t in stamps if t), default=None),
            unreadable_folders=unreadable,
        ))
    return result


def _pending(conn: Optional[sqlite3.Connection], settings: Settings,
             source: Source) -> tuple[int, int, list[dict[str, str]]]:
    """Files `ingest` would look at now (same discovery, same stat-only skip), those still settling, and the
    pattern folders that cannot be searched."""
    found = find_files(settings, source)
    unreadable = [{"folder": folder, "problem": problem} for folder, problem in found.missing]
    if conn is None or not db.has_table(conn, "seen_files"):
        return len(found.ready), len(found.waiting), unreadable
    pending = sum(1 for candidate in found.ready if not seen_unchanged(conn, source.name, candidate))
    return pending, len(found.waiting), unreadable


def _commands(conn: sqlite3.Connection) -> list[str]:
    # A loose index scan over run_history(command, id): one probe per command, not per run.
    rows = conn.execute(
        "WITH RECURSIVE c(command) AS (SELECT min(command) FROM run_history UNION ALL "
        "SELECT (SELECT min(command) FROM run_history WHERE command > c.command) FROM c WHERE c.command IS NOT NULL) "
        "SELECT command FROM c WHERE command IS NOT NULL")
    return [row[0] for row in rows]


def _runs(conn: sqlite3.Connection) -> list[RunFacts]:
    if not db.has_table(conn, "run_history"):
        return []
    have = set(db.table_columns(conn, "run_history"))
    columns = tuple(c for c in RUN_COLUMNS if c in have)
    select = f"SELECT {', '.join(columns)} FROM run_history WHERE command = ?"
    result = []
    for command in _commands(conn):
        last = conn.execute(select + " ORDER BY id DESC LIMIT 1", (command,)).fetchone()
        run = _run(columns, last)
        if run.status == "skipped":
            # A run that found the lock held did nothing: how did the last real one end?
            done = conn.execute(select + " AND status != 'skipped' ORDER BY id DESC LIMIT 1", (command,)).fetchone()
            run.last_completed = _run(columns, done) if done else None
        result.append(run)
    return result


def _run(columns: tuple[str, ...], values: tuple[Any, ...]) -> RunFacts:
    row = dict(zip(columns, values))
    row["arguments"] = json.loads(row.get("arguments") or "{}")
    run = RunFacts(**row, columns=columns)
    started, finished = db.utc_epoch(run.started_at), db.utc_epoch(run.finished_at)
    run.duration_seconds = round(finished - started, 3) if started and finished else None
    if run.status == "running" and not _alive(run.pid):
        # Killed (power loss, SIGKILL, OOM): it never wrote its outcome. Its work was rolled back.
        run.status = "interrupted"
    return run


def _alive(pid: Optional[int]) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _newest_workbooks(conn: sqlite3.Connection, settings: Settings) -> dict[str, Optional[WorkbookFacts]]:
    """The workbook of the latest window of each kind, as recorded when it was written."""
    newest: dict[str, Optional[WorkbookFacts]] = dict.fromkeys(WORKBOOK_KINDS)
    if not db.has_table(conn, "workbooks"):
        return newest  # migration 0002 still pending: nothing recorded yet
    for kind in WORKBOOK_KINDS:
        # The UNIQUE (kind, window_start, window_end) index answers this with one probe.
        row = conn.execute("SELECT path, local_start, local_end, zone, written_at, rows FROM workbooks "
                           "WHERE kind = ? ORDER BY window_start DESC, window_end DESC LIMIT 1", (kind,)).fetchone()
        if row:
            path = settings.from_stored(row[0])
            newest[kind] = WorkbookFacts(path=str(path), window_start=row[1], window_end=row[2], zone=row[3],
                                         written_at=row[4], rows=row[5], exists=still_there(str(path)))
    return newest


def _due_workbooks(conn: sqlite3.Connection, settings: Settings, now: float) -> Optional[list[DueWorkbook]]:
    """Workbooks a plain `hourly` / `daily` would write now (missing, stale, new); the same decision, read-only."""
    if not db.has_table(conn, "workbooks"):
        return None
    from csvreport import reports

    newest_load = conn.execute("SELECT max(finished_at) FROM (SELECT finished_at FROM ingestion_log "
                               "ORDER BY id DESC LIMIT 1)").fetchone()[0]
    newest_change = conn.execute("SELECT max(changed_at) FROM ingestion_log WHERE changed_at IS NOT NULL").fetchone()[0]
    from csvreport.freshness import latest_change

    activity = max((db.utc_epoch(t) or 0 for t in (newest_load, newest_change, latest_change(conn))), default=0)
    due = []
    for job in reports.due_hourly(settings, conn, now) + reports.due_daily(settings, conn, now):
        # Due since its window ended, or (stale) at the latest since the newest load, status change or restore.
        since = max(job.window.end, activity) if job.reason == "stale" else job.window.end
        due.append(DueWorkbook(kind=job.kind, path=str(job.path), window=job.window.label(), state=job.reason,
                               detail=job.detail, due_since=_iso(since), overdue=now - since > DUE_GRACE_SECONDS))
    return due


def _unsent(conn: sqlite3.Connection, settings: Settings, now: float) -> list[UnsentWorkbook]:
    """Workbooks whose email did not go out (empty when email was never used)."""
    from csvreport import mail

    unsent = [UnsentWorkbook(**item) for item in mail.unsent(conn, settings)]
    for item in unsent:
        since = db.utc_epoch(item.queued_at)
        item.overdue = item.status == "undeliverable" or (since is not None and now - since > UNSENT_GRACE_SECONDS)
    return unsent


def _remotes(conn: Optional[sqlite3.Connection], settings: Settings) -> list[RemoteFacts]:
    """Per [[sharepoint]] remote: its last sync attempt and success, and files downloaded but not yet marked."""
    recorded: dict[str, dict[str, Any]] = {}
    unmarked: dict[str, int] = {}
    if conn is not None and db.has_table(conn, "sharepoint_remotes"):
        columns = ("name", "last_attempt_at", "last_status", "last_error", "last_success_at", "files_seen",
                   "files_downloaded", "files_marked")
        for row in conn.execute(f"SELECT {', '.join(columns)} FROM sharepoint_remotes"):
            recorded[row[0]] = dict(zip(columns[1:], row[1:]))
        unmarked = dict(conn.execute("SELECT remote, count(*) FROM sharepoint_items WHERE state IN "
                                     "('placing', 'downloaded') GROUP BY remote").fetchall())
    return [RemoteFacts(name=remote.name, site=remote.site, library=remote.library, folder=remote.folder,
                        download_to=str(remote.download_to), files_unmarked=unmarked.get(remote.name, 0),
                        **{k: v for k, v in recorded.get(remote.name, {}).items() if v is not None})
            for remote in settings.remotes]
