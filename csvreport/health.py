"""What in the status facts needs an operator: one line per problem, saying what to do.

Each check reads the facts csvreport.status gathered and returns its lines; CHECKS runs
them in the order `status --check` prints them. A new judgement is one more function here
and one more entry in CHECKS.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

from csvreport import db

if TYPE_CHECKING:
    from csvreport.config import Settings
    from csvreport.status import DueWorkbook, Facts

Check = Callable[["Facts", "Settings", float], list[str]]


def problems(facts: Facts, settings: Settings, now: float) -> list[str]:
    """Every problem in the facts; with a database that cannot be read or is empty, only the folders and that."""
    database = facts.database
    found = folder_problems(facts)
    if not database.reachable:
        return [*found, f"database unreachable: {database.error}"]
    damage = database_file_problem(settings)
    if damage:
        return [*found, damage]
    return found + [line for check in CHECKS for line in check(facts, settings, now)]


def folder_problems(facts: Facts) -> list[str]:
    """A pattern whose folder is missing or unreadable: nothing will ever arrive, and nothing else says so."""
    return [f"source {s.name}: the folder {u['folder']} of its pattern {u['problem']}; create it, fix its "
            "permissions, or fix the pattern in the configuration"
            for s in facts.sources for u in s.unreadable_folders]


def database_file_problem(settings: Settings) -> Optional[str]:
    """An empty database file, which SQLite opens without complaint as an empty database (a truncated or
    foreign one it refuses itself, and `status` reports it unreachable)."""
    path = settings.paths.database
    if db.file_size(path) == 0 and path.is_file():
        return (f"database {path} is empty (0 bytes): it holds none of csvreport's tables; restore it from a "
                "backup (docs/operations.md, 'Backups while cron runs')")
    return None


def unknown_migrations(facts: Facts, settings: Settings, now: float) -> list[str]:
    database = facts.database
    if not database.unknown_migrations:
        return []
    return [f"database schema version {database.schema_version} is newer than this csvreport knows "
            f"({database.expected_schema_version}; unknown migrations: {', '.join(database.unknown_migrations)}): "
            "install the csvreport version that wrote it, or restore the backup taken before the upgrade"]


def failed_runs(facts: Facts, settings: Settings, now: float) -> list[str]:
    found = []
    for run in facts.runs:
        last = run.last_completed if run.status == "skipped" else run
        if last and last.status in ("failed", "interrupted"):
            how = f"failed: {last.error}" if last.status == "failed" else \
                f"was interrupted (pid {last.pid} is gone without recording an outcome)"
            found.append(f"last {run.command} run {how} (run {last.id}, started {last.started_at}); "
                         f"see logs/csvreport.log and docs/operations.md")
    return found


def quarantine(facts: Facts, settings: Settings, now: float) -> list[str]:
    return [f"quarantine not empty: {source.files_quarantined} file(s) of source {source.name} "
            f"in {settings.paths.quarantine / source.name}; see `csvreport recover list`"
            for source in facts.sources if source.files_quarantined]


def overdue_workbooks(facts: Facts, settings: Settings, now: float) -> list[str]:
    overdue: dict[tuple[str, str], list[DueWorkbook]] = {}
    for due in facts.due_workbooks or []:
        if due.overdue:
            overdue.setdefault((due.kind, due.state), []).append(due)
    found = []
    for (kind, state), books in overdue.items():
        # One line per kind of trouble: a cron line that never ran leaves 24 hourly windows behind.
        what = {"new": "not written", "missing": "missing", "stale": "stale", "layout": "out of date"}.get(state, state)
        first = books[0]
        if len(books) == 1:
            detail = f": {first.detail}" if first.detail else ""
            head = f"{kind} workbook {Path(first.path).name} is {what}{detail} (window {first.window}"
        else:
            head = (f"{len(books)} {kind} workbooks are {what}, {Path(first.path).name} to "
                    f"{Path(books[-1].path).name} (first window {first.window}")
        found.append(f"{head}, due since {first.due_since}); check that cron runs `csvreport {kind}`, or run it")
    return found


def ingest_age(facts: Facts, settings: Settings, now: float) -> list[str]:
    if settings.max_ingest_age_hours is None:
        return []
    limit = settings.max_ingest_age_hours * 3600
    found = []
    for source in facts.sources:
        if not source.enabled:
            continue
        last = db.utc_epoch(source.last_ingested_at)
        if last is None:
            found.append(f"no file ever ingested for source {source.name} "
                         f"([monitor] max_ingest_age_hours = {settings.max_ingest_age_hours:g}); "
                         "check that the exporter delivers into its pattern")
        elif now - last > limit:
            found.append(f"no file ingested for source {source.name} for {(now - last) / 3600:.1f} hours "
                         f"(last at {source.last_ingested_at}; [monitor] max_ingest_age_hours = "
                         f"{settings.max_ingest_age_hours:g}); check that the exporter still delivers")
    return found


def unsent_workbooks(facts: Facts, settings: Settings, now: float) -> list[str]:
    late = [u for u in facts.unsent_workbooks or [] if u.overdue]
    if not late:
        return []
    first = late[0]
    what = f"workbook {Path(first.path).name}" if len(late) == 1 else \
        f"{len(late)} workbooks ({Path(first.path).name} to {Path(late[-1].path).name})"
    return [f"{what} unsent by email since {first.queued_at} ({first.attempts} attempts, last error: "
            f"{late[-1].last_error}); fix [email] and run `csvreport send` (see docs/email.md)"]


def sync_age(facts: Facts, settings: Settings, now: float) -> list[str]:
    """A SharePoint remote that has not synced successfully within [monitor] max_sync_age_hours (default 6)."""
    found = []
    limit = settings.max_sync_age_hours
    for remote in facts.remotes:
        last = db.utc_epoch(remote.last_success_at)
        why = f" (last attempt {remote.last_attempt_at}: {remote.last_status}: {remote.last_error})" \
            if remote.last_attempt_at and remote.last_status != "ok" else ""
        if last is None:
            found.append(f"SharePoint remote {remote.name} has never synced successfully{why}; run "
                         f"`csvreport sync --remote {remote.name}` and see docs/sharepoint.md")
        elif now - last > limit * 3600:
            found.append(f"SharePoint remote {remote.name} has not synced successfully since "
                         f"{remote.last_success_at} ([monitor] max_sync_age_hours = {limit:g}){why}; check that "
                         "cron runs `csvreport ingest --sync` or `csvreport sync`, and see docs/sharepoint.md")
    return found


CHECKS: tuple[Check, ...] = (unknown_migrations, failed_runs, quarantine, overdue_workbooks, ingest_age,
                             unsent_workbooks, sync_age)
