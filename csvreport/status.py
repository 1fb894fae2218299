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

The facts are gathered once, into one JSON-ready dict, and rendered four ways: a rich
table on a terminal, plain text otherwise, `--json`, `--prometheus`; `--check` turns
them into one line per problem.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from csvreport import db
from csvreport.collect import find_files
from csvreport.config import Settings
from csvreport.errors import CsvReportError

# Workbook kinds status knows; a due one missing or stale is a problem for --check.
WORKBOOK_KINDS = ("hourly", "daily")
LIVE_LOAD_STATES = ("loaded", "superseded", "purged")  # a file that was ingested at some point
# Cron writes a due workbook within minutes; --check complains only when one stays due for longer.
DUE_GRACE_SECONDS = 3600
UNSENT_GRACE_SECONDS = 3600  # the SPEC: status --check flags any unsent for more than an hour


def gather(settings: Settings, now: Optional[float] = None) -> dict[str, Any]:
    """Every fact status reports, as one JSON-ready dict (with its `problems`)."""
    now = time.time() if now is None else now
    facts: dict[str, Any] = {
        "generated_at": _iso(now),
        "home": str(settings.home),
        "database": {"path": str(settings.paths.database), "reachable": False, "error": None,
                     "schema_version": None, "expected_schema_version": _shipped_version(),
                     "pending_migrations": [], "unknown_migrations": []},
        "sources": [],
        "runs": [],
        "workbooks": {kind: None for kind in WORKBOOK_KINDS},
        "due_workbooks": None,
        "unsent_workbooks": None,
        "remotes": [],
        "problems": [],
    }
    conn = _open(settings, facts["database"])
    try:
        if conn is not None:
            _schema(conn, facts["database"])
            facts["runs"] = _runs(conn)
            facts["workbooks"] = _newest_workbooks(conn, settings)
            facts["due_workbooks"] = _due_workbooks(conn, settings, now)
            facts["unsent_workbooks"] = _unsent(conn, now)
        facts["sources"] = _sources(conn, settings)
        facts["remotes"] = remote_facts(conn, settings)
    finally:
        if conn is not None:
            conn.close()
    facts["problems"] = problems(facts, settings, now) + remote_problems(facts["remotes"], settings, now)
    return facts


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _epoch(iso: Optional[str]) -> Optional[float]:
    if not iso:
        return None
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _shipped_version() -> int:
    shipped = db.migrations()
    return shipped[-1].version if shipped else 0


def open_readonly(settings: Settings) -> sqlite3.Connection:
    """A read-only connection that has read once; CsvReportError saying why when there is none.

    A WAL database needs its -shm file, which SQLite creates on open. In a folder this user
    may only read, and with no writer about (no -wal file: the last writer closed cleanly),
    the file is opened as immutable instead, which needs neither.
    """
    path = settings.paths.database
    conn = db.connect(settings, readonly=True)
    try:
        # Opening is lazy: the first read finds a file that is not a database, or one we cannot open.
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.Error as exc:
        conn.close()
        if "unable to open" not in str(exc) or path.with_name(path.name + "-wal").exists():
            raise CsvReportError(f"cannot read {path}: {exc}") from None
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro&immutable=1", uri=True, isolation_level=None)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as exc:
        conn.close()
        raise CsvReportError(f"cannot read {path}: {exc}") from None
    return conn


def _open(settings: Settings, database: dict[str, Any]) -> Optional[sqlite3.Connection]:
    try:
        conn = open_readonly(settings)
    except CsvReportError as exc:
        database["error"] = str(exc)
        return None
    except sqlite3.Error as exc:
        database["error"] = f"cannot open {settings.paths.database}: {exc}"
        return None
    database["reachable"] = True
    return conn


def _schema(conn: sqlite3.Connection, database: dict[str, Any]) -> None:
    database["schema_version"] = db.schema_version(conn)
    database["pending_migrations"] = [m.name for m in db.pending(conn)]
    if db.has_table(conn, "schema_migrations"):
        shipped = {m.version for m in db.migrations()}
        database["unknown_migrations"] = [
            name for version, name in conn.execute("SELECT version, name FROM schema_migrations ORDER BY version")
            if version not in shipped]


def _sources(conn: Optional[sqlite3.Connection], settings: Settings) -> list[dict[str, Any]]:
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
            if path and Path(path).exists():
                quarantined.setdefault(source, []).append(path)
    result = []
    for source in settings.sources:
        loaded = per_state.get((source.name, "loaded"), (0, 0, 0, None))
        last = max((per_state[(source.name, s)][3] for s in LIVE_LOAD_STATES
                    if (source.name, s) in per_state and per_state[(source.name, s)][3]), default=None)
        pending, waiting = _pending(conn, settings, source) if source.enabled else (None, None)
        result.append({
            "name": source.name,
            "enabled": source.enabled,
            "files_pending": pending,
            "files_waiting": waiting,
            "files_loaded": loaded[0],
            "files_quarantined": len(quarantined.get(source.name, [])),
            "rows": loaded[1] - archived.get(source.name, 0),
            "rows_exact": not source.key,
            "rows_archived": archived.get(source.name, 0),
            "rows_rejected": loaded[2],
            "last_ingested_at": last,
        })
    return result


def _pending(conn: Optional[sqlite3.Connection], settings: Settings, source) -> tuple[int, int]:
    """Files `ingest` would look at now (same discovery, same stat-only skip), and those still settling."""
    found = find_files(settings, source)
    if conn is None or not db.has_table(conn, "seen_files"):
        return len(found.ready), len(found.waiting)
    pending = 0
    for candidate in found.ready:
        row = conn.execute("SELECT size, mtime_ns FROM seen_files WHERE source = ? AND path = ?",
                           (source.name, str(candidate.path))).fetchone()
        if row is None or row[0] != candidate.size or row[1] != candidate.mtime_ns:
            pending += 1
    return pending, len(found.waiting)


def _commands(conn: sqlite3.Connection) -> list[str]:
    # A loose index scan over run_history(command, id): one probe per command, not per run.
    rows = conn.execute(
        "WITH RECURSIVE c(command) AS (SELECT min(command) FROM run_history UNION ALL "
        "SELECT (SELECT min(command) FROM run_history WHERE command > c.command) FROM c WHERE c.command IS NOT NULL) "
        "SELECT command FROM c WHERE command IS NOT NULL")
    return [row[0] for row in rows]


RUN_COLUMNS = ("id", "command", "arguments", "pid", "started_at", "finished_at", "status", "files_seen",
               "files_loaded", "files_skipped", "files_quarantined", "rows_loaded", "rows_rejected",
               "rows_quarantined", "workbooks_written", "rows_deleted", "files_marked", "error")


def _runs(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    if not db.has_table(conn, "run_history"):
        return []
    have = set(db.table_columns(conn, "run_history"))
    columns = [c for c in RUN_COLUMNS if c in have]
    select = f"SELECT {', '.join(columns)} FROM run_history WHERE command = ?"
    result = []
    for command in _commands(conn):
        last = conn.execute(select + " ORDER BY id DESC LIMIT 1", (command,)).fetchone()
        run = _run(dict(zip(columns, last)))
        if run["status"] == "skipped":
            # A run that found the lock held did nothing: how did the last real one end?
            done = conn.execute(select + " AND status != 'skipped' ORDER BY id DESC LIMIT 1", (command,)).fetchone()
            run["last_completed"] = _run(dict(zip(columns, done))) if done else None
        result.append(run)
    return result


def _run(row: dict[str, Any]) -> dict[str, Any]:
    row["arguments"] = json.loads(row.get("arguments") or "{}")
    started, finished = _epoch(row.get("started_at")), _epoch(row.get("finished_at"))
    row["duration_seconds"] = round(finished - started, 3) if started and finished else None
    if row["status"] == "running" and not _alive(row.get("pid")):
        # Killed (power loss, SIGKILL, OOM): it never wrote its outcome. Its work was rolled back.
        row["status"] = "interrupted"
    return row


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


def _newest_workbooks(conn: sqlite3.Connection, settings: Settings) -> dict[str, Any]:
    """The workbook of the latest window of each kind, as recorded when it was written."""
    newest: dict[str, Any] = {kind: None for kind in WORKBOOK_KINDS}
    if not db.has_table(conn, "workbooks"):
        return newest  # migration 0002 still pending: nothing recorded yet
    for kind in WORKBOOK_KINDS:
        # The UNIQUE (kind, window_start, window_end) index answers this with one probe.
        row = conn.execute("SELECT path, local_start, local_end, zone, written_at, rows FROM workbooks "
                           "WHERE kind = ? ORDER BY window_start DESC, window_end DESC LIMIT 1", (kind,)).fetchone()
        if row:
            newest[kind] = {"path": row[0], "window_start": row[1], "window_end": row[2], "zone": row[3],
                            "written_at": row[4], "rows": row[5], "exists": Path(row[0]).is_file()}
    return newest


def _due_workbooks(conn: sqlite3.Connection, settings: Settings, now: float) -> Optional[list[dict[str, Any]]]:
    """Workbooks a plain `hourly` / `daily` would write now (missing, stale, new); the same decision, read-only."""
    if not db.has_table(conn, "workbooks"):
        return None
    from csvreport import reports

    newest_load = conn.execute("SELECT max(finished_at) FROM (SELECT finished_at FROM ingestion_log "
                               "ORDER BY id DESC LIMIT 1)").fetchone()[0]
    newest_change = conn.execute("SELECT max(changed_at) FROM ingestion_log WHERE changed_at IS NOT NULL").fetchone()[0]
    from csvreport.freshness import latest_change

    activity = max((_epoch(t) or 0 for t in (newest_load, newest_change, latest_change(conn))), default=0)
    due = []
    for job in reports.due_hourly(settings, conn, now) + reports.due_daily(settings, conn, now):
        # Due since its window ended, or (stale) at the latest since the newest load, status change or restore.
        since = max(job.window.end, activity) if job.reason == "stale" else job.window.end
        due.append({"kind": job.kind, "path": str(job.path), "window": job.window.label(), "state": job.reason,
                    "detail": job.detail, "due_since": _iso(since), "overdue": now - since > DUE_GRACE_SECONDS})
    return due


def _unsent(conn: sqlite3.Connection, now: float) -> list[dict[str, Any]]:
    """Workbooks whose email did not go out (empty when email was never used)."""
    from csvreport import mail

    unsent = mail.unsent(conn)
    for item in unsent:
        since = _epoch(item.get("queued_at"))
        item["overdue"] = item.get("status") == "undeliverable" or (
            since is not None and now - since > UNSENT_GRACE_SECONDS)
    return unsent


def problems(facts: dict[str, Any], settings: Settings, now: float) -> list[str]:
    """What needs an operator, one line each, saying what to do."""
    found: list[str] = []
    database = facts["database"]
    if not database["reachable"]:
        found.append(f"database unreachable: {database['error']}")
        return found
    if database["unknown_migrations"]:
        found.append(
            f"database schema version {database['schema_version']} is newer than this csvreport knows "
            f"({database['expected_schema_version']}; unknown migrations: {', '.join(database['unknown_migrations'])}): "
            "install the csvreport version that wrote it, or restore the backup taken before the upgrade")
    for run in facts["runs"]:
        last = run.get("last_completed", run) if run["status"] == "skipped" else run
        if last and last["status"] in ("failed", "interrupted"):
            how = f"failed: {last['error']}" if last["status"] == "failed" else \
                f"was interrupted (pid {last['pid']} is gone without recording an outcome)"
            found.append(f"last {run['command']} run {how} (run {last['id']}, started {last['started_at']}); "
                         f"see logs/csvreport.log and docs/operations.md")
    for source in facts["sources"]:
        if source["files_quarantined"]:
            found.append(f"quarantine not empty: {source['files_quarantined']} file(s) of source {source['name']} "
                         f"in {settings.paths.quarantine / source['name']}; see `csvreport recover list`")
    overdue: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for due in facts["due_workbooks"] or []:
        if due["overdue"]:
            overdue.setdefault((due["kind"], due["state"]), []).append(due)
    for (kind, state), books in overdue.items():
        # One line per kind of trouble: a cron line that never ran leaves 24 hourly windows behind.
        what = {"new": "not written", "missing": "missing", "stale": "stale", "layout": "out of date"}.get(state, state)
        first = books[0]
        if len(books) == 1:
            detail = f": {first['detail']}" if first["detail"] else ""
            head = f"{kind} workbook {Path(first['path']).name} is {what}{detail} (window {first['window']}"
        else:
            head = (f"{len(books)} {kind} workbooks are {what}, {Path(first['path']).name} to "
                    f"{Path(books[-1]['path']).name} (first window {first['window']}")
        found.append(f"{head}, due since {first['due_since']}); check that cron runs `csvreport {kind}`, or run it")
    if settings.max_ingest_age_hours is not None:
        limit = settings.max_ingest_age_hours * 3600
        for source in facts["sources"]:
            if not source["enabled"]:
                continue
            last = _epoch(source["last_ingested_at"])
            if last is None:
                found.append(f"no file ever ingested for source {source['name']} "
                             f"([monitor] max_ingest_age_hours = {settings.max_ingest_age_hours:g}); "
                             "check that the exporter delivers into its pattern")
            elif now - last > limit:
                found.append(f"no file ingested for source {source['name']} for {(now - last) / 3600:.1f} hours "
                             f"(last at {source['last_ingested_at']}; [monitor] max_ingest_age_hours = "
                             f"{settings.max_ingest_age_hours:g}); check that the exporter still delivers")
    late = [u for u in facts["unsent_workbooks"] or [] if u["overdue"]]
    if late:
        first = late[0]
        what = f"workbook {Path(first['path']).name}" if len(late) == 1 else \
            f"{len(late)} workbooks ({Path(first['path']).name} to {Path(late[-1]['path']).name})"
        found.append(f"{what} unsent by email since {first['queued_at']} ({first['attempts']} attempts, last error: "
                     f"{late[-1]['last_error']}); fix [email] and run `csvreport send` (see docs/email.md)")
    return found


# ---------------------------------------------------------------------------------------------
# Renderings


def to_json(facts: dict[str, Any]) -> str:
    return json.dumps(facts, indent=2, ensure_ascii=False, default=str)


def to_text(facts: dict[str, Any]) -> str:
    """Plain text for a pipe, a mail or a log: the same facts as the table."""
    lines = [f"csvreport status of {facts['home']} at {facts['generated_at']}", ""]
    lines.append(f"database  {_database_line(facts['database'])}")
    lines.append("")
    lines.append("sources")
    for row in _source_rows(facts):
        lines.append("  " + "  ".join(row))
    lines.append("")
    lines.append("last runs")
    runs = _run_rows(facts)
    if not runs:
        lines.append("  none yet")
    lines.extend("  " + "  ".join(row) for row in runs)
    lines.append("")
    lines.append("newest workbooks")
    lines.extend("  " + "  ".join(row) for row in _workbook_rows(facts))
    if facts["unsent_workbooks"] is not None:
        lines.append(f"  unsent: {len(facts['unsent_workbooks'])}")
    if facts["remotes"]:
        lines.append("")
        lines.append("sharepoint remotes")
        lines.extend("  " + "  ".join(row) for row in remote_rows(facts["remotes"]))
    lines.append("")
    lines.append(_problems_title(facts))
    lines.extend(f"  - {p}" for p in facts["problems"])
    return "\n".join(lines) + "\n"


def _database_line(database: dict[str, Any]) -> str:
    if not database["reachable"]:
        return f"UNREACHABLE: {database['error']}"
    pending = database["pending_migrations"]
    note = (f"{len(pending)} pending migrations ({', '.join(pending)}), applied by the next ingest/hourly/daily"
            if pending else "no pending migrations")
    return f"{database['path']}: reachable, schema version {database['schema_version']}, {note}"


def _source_rows(facts: dict[str, Any]) -> list[list[str]]:
    rows = []
    for s in facts["sources"]:
        pending = "disabled" if s["files_pending"] is None else \
            f"pending {s['files_pending']}" + (f" (+{s['files_waiting']} settling)" if s["files_waiting"] else "")
        rows_text = f"rows {s['rows']}" + ("" if s["rows_exact"] else " (at most: keyed source)") + (
            f" (+{s['rows_archived']} archived)" if s["rows_archived"] else "")
        rows.append([s["name"], pending, f"loaded {s['files_loaded']}", f"quarantined {s['files_quarantined']}",
                     rows_text, f"last file {s['last_ingested_at'] or 'never'}"])
    return rows


def _run_rows(facts: dict[str, Any]) -> list[list[str]]:
    rows = []
    for r in facts["runs"]:
        counts = ", ".join(f"{k} {r[k]}" for k in ("files_loaded", "files_quarantined", "rows_loaded",
                                                     "rows_deleted", "workbooks_written") if r.get(k))
        state = r["status"]
        if state == "skipped" and r.get("last_completed"):
            state += f" (last completed: {r['last_completed']['status']})"
        rows.append([r["command"], state, r["started_at"], f"{r['duration_seconds']}s"
                     if r["duration_seconds"] is not None else "-", counts or "-", (r.get("error") or "")[:120]])
    return rows


def _workbook_rows(facts: dict[str, Any]) -> list[list[str]]:
    rows = []
    for kind, book in facts["workbooks"].items():
        if not book:
            rows.append([kind, "none yet", "", ""])
            continue
        name = Path(book["path"]).name + ("" if book["exists"] else " (FILE MISSING)")
        rows.append([kind, name, f"{book['window_start']} to {book['window_end']}", f"written {book['written_at']}"])
    due = facts["due_workbooks"]
    if due:
        rows.append(["due", f"{len(due)} workbook(s) missing or stale", "", ""])
    return rows


def _problems_title(facts: dict[str, Any]) -> str:
    count = len(facts["problems"])
    return "problems: none" if not count else f"problems: {count}"


def print_table(facts: dict[str, Any]) -> None:
    """The same facts as `to_text`, as rich tables for a terminal."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold]csvreport status[/] of {facts['home']} at {facts['generated_at']}")
    console.print(f"database: {_database_line(facts['database'])}",
                  style=None if facts["database"]["reachable"] else "bold red")
    sources = Table("source", "pending", "loaded", "quarantined", "rows", "last file", title="sources")
    for s, row in zip(facts["sources"], _source_rows(facts)):
        sources.add_row(row[0], row[1].removeprefix("pending "), str(s["files_loaded"]),
                        str(s["files_quarantined"]), row[4].removeprefix("rows "), row[5].removeprefix("last file "),
                        style="yellow" if s["files_quarantined"] else None)
    console.print(sources)
    runs = Table("command", "status", "started", "took", "counts", "error", title="last runs")
    for row in _run_rows(facts):
        runs.add_row(*row, style="red" if row[1].startswith(("failed", "interrupted")) else None)
    console.print(runs)
    books = Table("kind", "newest", "window", "written", title="workbooks")
    for row in _workbook_rows(facts):
        books.add_row(*row)
    console.print(books)
    if facts["remotes"]:
        remotes = Table("remote", "last sync", "last success", "last run", "not yet marked", "error",
                        title="sharepoint remotes")
        for remote, row in zip(facts["remotes"], remote_rows(facts["remotes"])):
            remotes.add_row(row[0], remote["last_attempt_at"] or "never", remote["last_success_at"] or "never",
                            row[3], str(remote["files_unmarked"]), row[5],
                            style=None if remote["last_status"] == "ok" else "yellow")
        console.print(remotes)
    if facts["problems"]:
        console.print(f"[bold red]{_problems_title(facts)}[/]")
        for problem in facts["problems"]:
            console.print(f"  - {problem}", markup=False, highlight=False)
    else:
        console.print("[green]problems: none[/]")


def to_prometheus(facts: dict[str, Any]) -> str:
    """The Prometheus text format (for node_exporter's textfile collector)."""
    out: list[str] = []

    def metric(name: str, help_text: str, samples: list[tuple[dict[str, str], float]], kind: str = "gauge") -> None:
        out.append(f"# HELP csvreport_{name} {help_text}")
        out.append(f"# TYPE csvreport_{name} {kind}")
        for labels, value in samples:
            label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
            out.append(f"csvreport_{name}{{{label_text}}} {_number(value)}" if label_text
                       else f"csvreport_{name} {_number(value)}")

    database = facts["database"]
    metric("database_up", "1 when the database could be opened and read.", [({}, int(database["reachable"]))])
    if database["reachable"]:
        metric("schema_version", "Schema version of the database.", [({}, database["schema_version"])])
        metric("pending_migrations", "Migrations the next writing command will apply.",
               [({}, len(database["pending_migrations"]))])
    sources = facts["sources"]
    metric("source_files", "Files per source and state (pending: found and not yet loaded).",
           [({"source": s["name"], "state": state}, s[f"files_{state}"]) for s in sources
            for state in ("pending", "waiting", "loaded", "quarantined") if s[f"files_{state}"] is not None])
    metric("source_rows", "Rows loaded per source (an upper bound for keyed sources, see exact).",
           [({"source": s["name"], "exact": str(s["rows_exact"]).lower()}, s["rows"]) for s in sources])
    metric("source_rows_archived", "Rows moved to the Parquet archive per source.",
           [({"source": s["name"]}, s["rows_archived"]) for s in sources])
    metric("source_rows_rejected", "Rows rejected (kept in rejects files) by the live loads of each source.",
           [({"source": s["name"]}, s["rows_rejected"]) for s in sources])
    metric("source_last_ingested_timestamp_seconds", "When a file of the source was last loaded (Unix time).",
           [({"source": s["name"]}, _epoch(s["last_ingested_at"])) for s in sources if s["last_ingested_at"]])
    runs = facts["runs"]
    metric("last_run_timestamp_seconds", "Start of the last run of each command (Unix time).",
           [({"command": r["command"]}, _epoch(r["started_at"])) for r in runs])
    metric("last_run_duration_seconds", "Duration of the last finished run of each command.",
           [({"command": r["command"]}, r["duration_seconds"]) for r in runs if r["duration_seconds"] is not None])
    metric("last_run_status", "1 for the status the last run of each command ended with.",
           [({"command": r["command"], "status": r["status"]}, 1) for r in runs])
    metric("last_run_rows_loaded", "Rows loaded by the last run of each command.",
           [({"command": r["command"]}, r.get("rows_loaded") or 0) for r in runs])
    metric("newest_workbook_timestamp_seconds", "When the newest workbook of each kind was written (Unix time).",
           [({"kind": kind}, _epoch(book["written_at"])) for kind, book in facts["workbooks"].items() if book])
    if facts["due_workbooks"] is not None:
        metric("due_workbooks", "Workbooks that are due and missing or stale.", [({}, len(facts["due_workbooks"]))])
    if facts["unsent_workbooks"] is not None:
        metric("unsent_workbooks", "Workbooks whose email has not gone out.", [({}, len(facts["unsent_workbooks"]))])
    out.extend(remote_metrics(facts["remotes"]))
    metric("problems", "Problems status --check reports (0 when all is well).", [({}, len(facts["problems"]))])
    metric("status_generated_timestamp_seconds", "When these figures were taken (Unix time).",
           [({}, _epoch(facts["generated_at"]))])
    return "\n".join(out) + "\n"


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 2**53):
        return str(int(value))
    return repr(float(value))


# ---------------------------------------------------------------------------------------------
# SharePoint remotes (csvreport sync): facts, problems and renderings, kept together


def remote_facts(conn: sqlite3.Connection | None, settings: Settings) -> list[dict[str, Any]]:
    """Per [[sharepoint]] remote: its last sync attempt and success, and files downloaded but not yet marked."""
    recorded: dict[str, dict[str, Any]] = {}
    unmarked: dict[str, int] = {}
    if conn is not None and db.has_table(conn, "sharepoint_remotes"):
        columns = ("name", "last_attempt_at", "last_status", "last_error", "last_success_at", "files_seen",
                   "files_downloaded", "files_marked")
        for row in conn.execute(f"SELECT {', '.join(columns)} FROM sharepoint_remotes"):
            recorded[row[0]] = dict(zip(columns, row))
        unmarked = dict(conn.execute("SELECT remote, count(*) FROM sharepoint_items WHERE state IN "
                                     "('placing', 'downloaded') GROUP BY remote").fetchall())
    result = []
    for remote in settings.remotes:
        known = recorded.get(remote.name, {})
        result.append({
            "name": remote.name,
            "site": remote.site,
            "library": remote.library,
            "folder": remote.folder,
            "download_to": str(remote.download_to),
            "last_attempt_at": known.get("last_attempt_at"),
            "last_status": known.get("last_status"),
            "last_error": known.get("last_error"),
            "last_success_at": known.get("last_success_at"),
            "files_seen": known.get("files_seen", 0),
            "files_downloaded": known.get("files_downloaded", 0),
            "files_marked": known.get("files_marked", 0),
            "files_unmarked": unmarked.get(remote.name, 0),
        })
    return result


def remote_problems(remotes: list[dict[str, Any]], settings: Settings, now: float) -> list[str]:
    """A remote that has not synced successfully within [monitor] max_sync_age_hours (default 6)."""
    found = []
    limit = settings.max_sync_age_hours
    for remote in remotes:
        last = _epoch(remote["last_success_at"])
        why = f" (last attempt {remote['last_attempt_at']}: {remote['last_status']}: {remote['last_error']})" \
            if remote["last_attempt_at"] and remote["last_status"] != "ok" else ""
        if last is None:
            found.append(f"SharePoint remote {remote['name']} has never synced successfully{why}; run "
                         f"`csvreport sync --remote {remote['name']}` and see docs/sharepoint.md")
        elif now - last > limit * 3600:
            found.append(f"SharePoint remote {remote['name']} has not synced successfully since "
                         f"{remote['last_success_at']} ([monitor] max_sync_age_hours = {limit:g}){why}; check that "
                         "cron runs `csvreport ingest --sync` or `csvreport sync`, and see docs/sharepoint.md")
    return found


def remote_rows(remotes: list[dict[str, Any]]) -> list[list[str]]:
    return [[r["name"], f"last sync {r['last_attempt_at'] or 'never'}",
             f"last success {r['last_success_at'] or 'never'}",
             (f"{r['last_status'] or '-'}: {r['files_seen']} seen, {r['files_downloaded']} downloaded, "
              f"{r['files_marked']} marked"),
             f"{r['files_unmarked']} not yet marked", (r["last_error"] or "")[:120]] for r in remotes]


def remote_metrics(remotes: list[dict[str, Any]]) -> list[str]:
    """Prometheus lines for the remotes, in the same shape as the other metrics."""
    if not remotes:
        return []
    out = []
    series = (
        ("sharepoint_up", "1 when the last sync of the remote reached SharePoint and finished without a warning.",
         [(r["name"], int(r["last_status"] == "ok")) for r in remotes]),
        ("sharepoint_last_success_timestamp_seconds", "When the remote last synced successfully (Unix time).",
         [(r["name"], _epoch(r["last_success_at"])) for r in remotes if r["last_success_at"]]),
        ("sharepoint_last_attempt_timestamp_seconds", "When a sync of the remote was last tried (Unix time).",
         [(r["name"], _epoch(r["last_attempt_at"])) for r in remotes if r["last_attempt_at"]]),
        ("sharepoint_files_downloaded", "Files the last sync of the remote downloaded.",
         [(r["name"], r["files_downloaded"]) for r in remotes]),
        ("sharepoint_files_unmarked", "Files downloaded but not yet marked processed in SharePoint.",
         [(r["name"], r["files_unmarked"]) for r in remotes]),
    )
    for name, help_text, samples in series:
        out.append(f"# HELP csvreport_{name} {help_text}")
        out.append(f"# TYPE csvreport_{name} gauge")
        out.extend(f'csvreport_{name}{{remote="{_escape(remote)}"}} {_number(value)}' for remote, value in samples
                   if value is not None)
    return out
