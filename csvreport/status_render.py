"""The renderings of `csvreport status`: plain text, a rich table, JSON, Prometheus, --check.

Each takes the facts csvreport.status gathered (with their problems) and only formats them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from csvreport import db
from csvreport.status import DatabaseFacts, Facts

if TYPE_CHECKING:  # rich is imported only for the terminal table
    from rich.table import Table

ALL_WELL = "OK: nothing needs an operator"


def to_json(facts: Facts) -> str:
    return json.dumps(facts.to_dict(), indent=2, ensure_ascii=False, default=str)


def to_check(facts: Facts) -> str:
    """One line per problem, or one line saying there is none."""
    return "\n".join(facts.problems) if facts.problems else ALL_WELL


def to_text(facts: Facts) -> str:
    """Plain text for a pipe, a mail or a log: the same facts as the table."""
    lines = [f"csvreport status of {facts.home} at {facts.generated_at}", ""]
    lines.append(f"database  {_database_line(facts.database)}")
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
    if facts.unsent_workbooks is not None:
        lines.append(f"  unsent: {len(facts.unsent_workbooks)}")
    if facts.remotes:
        lines.append("")
        lines.append("sharepoint remotes")
        lines.extend("  " + "  ".join(row) for row in _remote_rows(facts))
    lines.append("")
    lines.append(_problems_title(facts))
    lines.extend(f"  - {p}" for p in facts.problems)
    return "\n".join(lines) + "\n"


def _database_line(database: DatabaseFacts) -> str:
    if not database.reachable:
        return f"UNREACHABLE: {database.error}"
    pending = database.pending_migrations
    note = (f"{len(pending)} pending migrations ({', '.join(pending)}), applied by the next ingest/hourly/daily"
            if pending else "no pending migrations")
    return f"{database.path}: reachable, schema version {database.schema_version}, {note}"


def _source_rows(facts: Facts) -> list[list[str]]:
    rows = []
    for s in facts.sources:
        pending = "disabled" if s.files_pending is None else \
            f"pending {s.files_pending}" + (f" (+{s.files_waiting} settling)" if s.files_waiting else "")
        rows_text = f"rows {s.rows}" + ("" if s.rows_exact else " (at most: keyed source)") + (
            f" (+{s.rows_archived} archived)" if s.rows_archived else "")
        rows.append([s.name, pending, f"loaded {s.files_loaded}", f"quarantined {s.files_quarantined}",
                     rows_text, f"last file {s.last_ingested_at or 'never'}"])
    return rows


def _run_rows(facts: Facts) -> list[list[str]]:
    rows = []
    for r in facts.runs:
        counts = ", ".join(f"{k} {getattr(r, k)}" for k in ("files_loaded", "files_quarantined", "rows_loaded",
                                                             "rows_deleted", "workbooks_written") if getattr(r, k))
        state = r.status
        if state == "skipped" and r.last_completed:
            state += f" (last completed: {r.last_completed.status})"
        rows.append([r.command, state, str(r.started_at), f"{r.duration_seconds}s"
                     if r.duration_seconds is not None else "-", counts or "-", (r.error or "")[:120]])
    return rows


def _workbook_rows(facts: Facts) -> list[list[str]]:
    rows = []
    for kind, book in facts.workbooks.items():
        if not book:
            rows.append([kind, "none yet", "", ""])
            continue
        name = Path(book.path).name + ("" if book.exists else " (FILE MISSING)")
        rows.append([kind, name, f"{book.window_start} to {book.window_end}", f"written {book.written_at}"])
    due = facts.due_workbooks
    if due:
        rows.append(["due", f"{len(due)} workbook(s) missing or stale", "", ""])
    return rows


def _remote_rows(facts: Facts) -> list[list[str]]:
    return [[r.name, f"last sync {r.last_attempt_at or 'never'}", f"last success {r.last_success_at or 'never'}",
             (f"{r.last_status or '-'}: {r.files_seen} seen, {r.files_downloaded} downloaded, "
              f"{r.files_marked} marked"),
             f"{r.files_unmarked} not yet marked", (r.last_error or "")[:120]] for r in facts.remotes]


def _problems_title(facts: Facts) -> str:
    count = len(facts.problems)
    return "problems: none" if not count else f"problems: {count}"


def _add_row(table: Table, *cells: str, style: str | None = None) -> None:
    """Cells are data, never markup: an error naming `[email]` keeps its brackets."""
    from rich.text import Text

    table.add_row(*(Text(cell) for cell in cells), style=style)


def print_table(facts: Facts) -> None:
    """The same facts as `to_text`, as rich tables for a terminal."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    console.print(f"[bold]csvreport status[/] of {escape(facts.home)} at {facts.generated_at}")
    console.print(f"database: {_database_line(facts.database)}", markup=False, highlight=False,
                  style=None if facts.database.reachable else "bold red")
    sources = Table("source", "pending", "loaded", "quarantined", "rows", "last file", title="sources")
    for s, row in zip(facts.sources, _source_rows(facts)):
        _add_row(sources, row[0], row[1].removeprefix("pending "), str(s.files_loaded),
                        str(s.files_quarantined), row[4].removeprefix("rows "), row[5].removeprefix("last file "),
                        style="yellow" if s.files_quarantined else None)
    console.print(sources)
    runs = Table("command", "status", "started", "took", "counts", "error", title="last runs")
    for row in _run_rows(facts):
        _add_row(runs, *row, style="red" if row[1].startswith(("failed", "interrupted")) else None)
    console.print(runs)
    books = Table("kind", "newest", "window", "written", title="workbooks")
    for row in _workbook_rows(facts):
        _add_row(books, *row[:3], row[3].removeprefix("written "))  # the column's title says it already
    console.print(books)
    if facts.remotes:
        remotes = Table("remote", "last sync", "last success", "last run", "not yet marked", "error",
                        title="sharepoint remotes")
        for remote, row in zip(facts.remotes, _remote_rows(facts)):
            _add_row(remotes, row[0], remote.last_attempt_at or "never", remote.last_success_at or "never",
                            row[3], str(remote.files_unmarked), row[5],
                            style=None if remote.last_status == "ok" else "yellow")
        console.print(remotes)
    if facts.problems:
        console.print(f"[bold red]{_problems_title(facts)}[/]")
        for problem in facts.problems:
            console.print(f"  - {problem}", markup=False, highlight=False)
    else:
        console.print("[green]problems: none[/]")


def to_prometheus(facts: Facts) -> str:
    """The Prometheus text format (for node_exporter's textfile collector)."""
    out: list[str] = []

    def metric(name: str, help_text: str, samples: list[tuple[dict[str, str], Optional[float]]],
               kind: str = "gauge") -> None:
        out.append(f"# HELP csvreport_{name} {help_text}")
        out.append(f"# TYPE csvreport_{name} {kind}")
        for labels, value in samples:
            if value is None:  # a time that does not parse is left out rather than shown as 0
                continue
            label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
            out.append(f"csvreport_{name}{{{label_text}}} {_number(value)}" if label_text
                       else f"csvreport_{name} {_number(value)}")

    database = facts.database
    metric("database_up", "1 when the database could be opened and read.", [({}, int(database.reachable))])
    if database.reachable:
        metric("schema_version", "Schema version of the database.", [({}, database.schema_version)])
        metric("pending_migrations", "Migrations the next writing command will apply.",
               [({}, len(database.pending_migrations))])
    sources = facts.sources
    metric("source_files", "Files per source and state (pending: found and not yet loaded).",
           [({"source": s.name, "state": state}, count) for s in sources
            for state, count in (("pending", s.files_pending), ("waiting", s.files_waiting),
                                 ("loaded", s.files_loaded), ("quarantined", s.files_quarantined))
            if count is not None])
    metric("source_rows", "Rows loaded per source (an upper bound for keyed sources, see exact).",
           [({"source": s.name, "exact": str(s.rows_exact).lower()}, s.rows) for s in sources])
    metric("source_rows_archived", "Rows moved to the Parquet archive per source.",
           [({"source": s.name}, s.rows_archived) for s in sources])
    metric("source_rows_rejected", "Rows rejected (kept in rejects files) by the live loads of each source.",
           [({"source": s.name}, s.rows_rejected) for s in sources])
    metric("source_last_ingested_timestamp_seconds", "When a file of the source was last loaded (Unix time).",
           [({"source": s.name}, db.utc_epoch(s.last_ingested_at)) for s in sources if s.last_ingested_at])
    runs = facts.runs
    metric("last_run_timestamp_seconds", "Start of the last run of each command (Unix time).",
           [({"command": r.command}, db.utc_epoch(r.started_at)) for r in runs])
    metric("last_run_duration_seconds", "Duration of the last finished run of each command.",
           [({"command": r.command}, r.duration_seconds) for r in runs if r.duration_seconds is not None])
    metric("last_run_status", "1 for the status the last run of each command ended with.",
           [({"command": r.command, "status": r.status}, 1) for r in runs])
    metric("last_run_rows_loaded", "Rows loaded by the last run of each command.",
           [({"command": r.command}, r.rows_loaded or 0) for r in runs])
    metric("newest_workbook_timestamp_seconds", "When the newest workbook of each kind was written (Unix time).",
           [({"kind": kind}, db.utc_epoch(book.written_at)) for kind, book in facts.workbooks.items() if book])
    if facts.due_workbooks is not None:
        metric("due_workbooks", "Workbooks that are due and missing or stale.", [({}, len(facts.due_workbooks))])
    if facts.unsent_workbooks is not None:
        metric("unsent_workbooks", "Workbooks whose email has not gone out.", [({}, len(facts.unsent_workbooks))])
    remotes = facts.remotes
    if remotes:
        metric("sharepoint_up", "1 when the last sync of the remote reached SharePoint and finished without a "
               "warning.", [({"remote": r.name}, int(r.last_status == "ok")) for r in remotes])
        metric("sharepoint_last_success_timestamp_seconds", "When the remote last synced successfully (Unix time).",
               [({"remote": r.name}, db.utc_epoch(r.last_success_at)) for r in remotes if r.last_success_at])
        metric("sharepoint_last_attempt_timestamp_seconds", "When a sync of the remote was last tried (Unix time).",
               [({"remote": r.name}, db.utc_epoch(r.last_attempt_at)) for r in remotes if r.last_attempt_at])
        metric("sharepoint_files_downloaded", "Files the last sync of the remote downloaded.",
               [({"remote": r.name}, r.files_downloaded) for r in remotes])
        metric("sharepoint_files_unmarked", "Files downloaded but not yet marked processed in SharePoint.",
               [({"remote": r.name}, r.files_unmarked) for r in remotes])
    metric("problems", "Problems status --check reports (0 when all is well).", [({}, len(facts.problems))])
    metric("status_generated_timestamp_seconds", "When these figures were taken (Unix time).",
           [({}, db.utc_epoch(facts.generated_at))])
    return "\n".join(out) + "\n"


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 2**53):
        return str(int(value))
    return repr(float(value))
