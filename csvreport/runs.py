"""One writing run, start to end: ping, lock, database, `run_history` row, outcome.

Every command that changes something goes through `recorded_run`, so none of them can
forget the lock, the migrations or its `run_history` row.
"""

from __future__ import annotations

import json
import os
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from csvreport import db, log, monitor
from csvreport.config import Settings
from csvreport.errors import CsvReportError, LockHeld
from csvreport.lock import exclusive

COUNTERS = ("files_seen", "files_loaded", "files_skipped", "files_quarantined", "rows_loaded",
            "rows_rejected", "rows_quarantined", "workbooks_written", "files_marked")
SKIPPED_ROW_WAIT_MS = 15000
INTERRUPTED = "interrupted: the process ended before finishing (killed, or the machine stopped)"


@dataclass
class Run:
    id: int
    command: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    warnings: list[str] = field(default_factory=list)

    def add(self, **counts: int) -> None:
        for key, value in counts.items():
            self.counts[key] += value

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    @property
    def status(self) -> str:
        return "warn" if self.warnings else "ok"


def _insert(conn: sqlite3.Connection, command: str, arguments: dict[str, Any], status: str = "running",
            error: str | None = None) -> int:
    now = db.utcnow()
    return db.insert(
        conn,
        "INSERT INTO run_history (command, arguments, pid, started_at, finished_at, status, error) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (command, json.dumps(arguments, default=str, sort_keys=True), os.getpid(), now,
         None if status == "running" else now, status, error),
    )


def _finish(conn: sqlite3.Connection, run: Run, status: str, error: str | None) -> None:
    sets = ", ".join(f"{k} = ?" for k in COUNTERS)
    conn.execute(
        f"UPDATE run_history SET finished_at = ?, status = ?, error = ?, {sets} WHERE id = ?",
        (db.utcnow(), status, error, *(run.counts[k] for k in COUNTERS), run.id),
    )


@contextmanager
def recorded_run(settings: Settings, command: str, arguments: dict[str, Any], wait: float = 0.0) -> Iterator[
        tuple[sqlite3.Connection, Run]]:
    """Ping, take the lock, open (and migrate) the database, record the run and its outcome."""
    try:
        with exclusive(settings.paths.database, f"csvreport {command}", wait):
            # Pinged only once the lock is ours: a skipped run must not look like a hung one.
            monitor.ping(settings.ping_url, "start", settings.ping_timeout)
            conn = db.connect(settings)
            try:
                _close_interrupted(conn, command)
                run = Run(_insert(conn, command, arguments), command)
                log.info(command, "run started", run=run.id)
                try:
                    yield conn, run
                except BaseException as exc:
                    db.rollback(conn)
                    known = exc if isinstance(exc, CsvReportError) else db.fault(exc, settings)
                    message = str(known) if known is not None else f"{type(exc).__name__}: {exc}"
                    _record_failure(conn, run, message)
                    raise
                _finish(conn, run, run.status, "; ".join(run.warnings)[:2000] or None)
                log.info(command, f"run finished: {run.status}", run=run.id,
                         **{k: v for k, v in run.counts.items() if v})
            finally:
                conn.close()
    except LockHeld as exc:
        _record_skipped(settings, command, arguments, str(exc))
        raise
    except BaseException as exc:
        monitor.ping(settings.ping_url, "fail", settings.ping_timeout)
        known = None if isinstance(exc, CsvReportError) else db.fault(exc, settings)
        if known is not None:
            raise known from None  # the fault itself, in one line, not as an unexpected error
        raise
    monitor.ping(settings.ping_url, "", settings.ping_timeout)


def _record_failure(conn: sqlite3.Connection, run: Run, message: str) -> None:
    """Mark the run failed; when even that cannot be written (the disk is full), say so and let the
    original error through: it, not this follow-on one, is what the operator must see."""
    try:
        _finish(conn, run, "failed", message)
    except sqlite3.Error as exc:
        log.warning(run.command, f"could not record the failure in run_history ({exc}); the next run marks this "
                    "one as interrupted", run=run.id)


def _close_interrupted(conn: sqlite3.Connection, command: str) -> None:
    """Runs still marked running died (killed, machine stopped): we hold the lock, so none is alive."""
    stale = conn.execute("SELECT id, command, pid, started_at FROM run_history WHERE status = 'running'").fetchall()
    for run_id, other, pid, started in stale:
        conn.execute("UPDATE run_history SET status = 'failed', finished_at = ?, error = ? WHERE id = ?",
                     (db.utcnow(), INTERRUPTED, run_id))
        log.warning(command, f"run {run_id} ({other}, pid {pid}, started {started}) ended without finishing; "
                    "marked failed (its work was rolled back to its last finished file)", run=run_id)


def _record_skipped(settings: Settings, command: str, arguments: dict[str, Any], reason: str) -> None:
    """A run that found the lock held is recorded as skipped.

    The holder may be inside one long file transaction, so the row waits a while for SQLite's
    write lock (never for the run lock). Migrations are applied here too: on a fresh database
    the holder may not have created run_history yet, and migrating is safe without the run
    lock (each migration checks, under SQLite's write lock, that it is still pending).
    """
    try:
        conn = db.connect(settings, busy_ms=SKIPPED_ROW_WAIT_MS)
        try:
            _insert(conn, command, arguments, status="skipped", error=reason)
        finally:
            conn.close()
    except (sqlite3.Error, CsvReportError) as exc:
        log.warning(command, f"could not record the skipped run: {exc}")


@contextmanager
def dry_run(settings: Settings, command: str, wait: float = 0.0) -> Iterator[tuple[sqlite3.Connection, Run]]:
    """Lock and database as for a real run, but nothing recorded: the caller rolls back its work.

    A dry run writes nothing at all: without a database it works on an empty one in memory
    (and needs no lock); with migrations pending it works on a migrated copy in memory.
    """
    run = Run(0, command)
    if not settings.paths.database.exists():
        conn = _in_memory(home=settings.home)
        try:
            yield conn, run
        finally:
            conn.close()
    else:
        with exclusive(settings.paths.database, f"csvreport {command} --dry-run", wait):
            conn = db.connect(settings, apply_migrations=False)
            try:
                if db.pending(conn):
                    conn = _in_memory(copy_of=conn, home=settings.home)
                yield conn, run
            finally:
                conn.close()


def _in_memory(copy_of: sqlite3.Connection | None = None, home: Path | None = None) -> sqlite3.Connection:
    """A migrated scratch database: empty, or a copy of `copy_of` (which is closed)."""
    scratch = sqlite3.connect(":memory:", isolation_level=None)
    if copy_of is not None:
        copy_of.backup(scratch)
        copy_of.close()
    db.migrate(scratch, home)
    return scratch
