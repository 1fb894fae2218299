"""Move whole months of rows out of SQLite into Parquet files, and back, never losing one.

`archive --before YYYY-MM` writes each month of each source (months in the configured
zone) to `archive/<source>/year=YYYY/month=M/part-<id>.parquet` (hive partitioning, month 1-12),
in this order, each step recorded in `archive_parts.state` before the next begins:

1. `writing`: a row for the part is committed; the file is written under a hidden
   temporary name in the partition folder, flushed to disk, and renamed into place.
2. `written`: the file is read back; its row count, `_id`/`_ts` sums and per-column counts
   and sums must equal those of the rows in the database. Only then, in one transaction,
   the rows are deleted and the part becomes `archived`.

`archive restore --month` hides the file under a temporary name (`restoring`), loads its
rows back with their original `_id`, `_ingestion_id` and `_ts` in one transaction that
also marks the part `restored`, then deletes the file: every row lives in exactly one place.

A crash anywhere leaves a part in one of these states, and the next archive command
finishes it (a `written` part that verifies) or undoes it (anything else): the rows stay
in the database until a verified file holds them, and a file is removed only when its rows
are committed back. pyarrow is imported only here, and only when needed.
"""

from __future__ import annotations

import json
import math
import os
import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Optional
from zoneinfo import ZoneInfo

from csvreport import db, freshness, log
from csvreport.config import Settings
from csvreport.errors import ConfigError, CsvReportError
from csvreport.files import fsync_dir, replace_durably, sha256_and_size, sha256_of
from csvreport.runs import Run

MONTH_RE = re.compile(r"(\d{4})-(\d{2})\Z")
BATCH_ROWS = 100_000
BOOKKEEPING = ("_id", "_ingestion_id", "_ts")
INSTALL_HINT = "pip install 'csvreport[archive]'"


@dataclass(frozen=True)
class Part:
    id: int
    source: str
    month: str
    start_ts: int
    end_ts: int
    path: str  # relative to the archive folder
    state: str
    rows: Optional[int] = None
    checks: Optional[str] = None
    sha256: Optional[str] = None


# --- public entry points ------------------------------------------------------------------------

def archive(settings: Settings, conn: sqlite3.Connection, run: Run, before: str,
            only: Optional[str] = None) -> list[Part]:
    """Archive every whole month before `before` (YYYY-MM) of every source (or just `only`)."""
    year, month = check_archive_request(settings, before, only)
    recover(settings, conn)
    sources = [settings.source(only)] if only else list(settings.sources)
    done: list[Part] = []
    for source in sources:
        if not db.table_columns(conn, source.name):
            continue
        for y, m in _months_with_rows(settings, conn, source.name, (year, month)):
            part = archive_month(settings, conn, run, source.name, y, m)
            if part is not None:
                done.append(part)
    if not done:
        log.info("archive", f"nothing to archive before {before}")
    return done


def restore(settings: Settings, conn: sqlite3.Connection, run: Run, month: str,
            only: Optional[str] = None) -> list[Part]:
    """Load the archived rows of `month` back into the database, then remove their files."""
    check_restore_request(settings, month, only)
    recover(settings, conn)
    parts = [p for p in _parts(conn, "state = 'archived' AND month = ?", (month,)) if not only or p.source == only]
    if not parts:
        known = sorted({f"{p.source} {p.month}" for p in _parts(conn, "state = 'archived'", ())})
        what = f"month {month}" + (f" of source {only}" if only else "")
        listing = f"archived: {', '.join(known)}" if known else "nothing is archived"
        raise CsvReportError(f"{what} is not archived ({listing}); nothing to restore")
    for part in parts:
        _check_file(settings, part)
    for part in parts:
        restore_part(settings, conn, run, part)
    return parts


def check_archive_request(settings: Settings, before: str, only: Optional[str] = None) -> tuple[int, int]:
    """The month of `--before`, or a usage error (exit 2) raised before any run is recorded."""
    _pyarrow()
    year, month = parse_month(before, "--before")
    current = datetime.now(ZoneInfo(settings.timezone))
    if (year, month) > (current.year, current.month):
        raise ConfigError(f"--before {before}: {current:%Y-%m} is not over yet, so months up to {before} are not "
                          f"whole; use --before {current:%Y-%m} or earlier")
    if only:
        settings.source(only)
    return year, month


def check_restore_request(settings: Settings, month: str, only: Optional[str] = None) -> None:
    """A usage error (exit 2) for `archive restore`, raised before any run is recorded."""
    _pyarrow()
    parse_month(month, "--month")
    if only:
        settings.source(only)


def archived_window(conn: sqlite3.Connection, settings: Settings, start_utc: int, end_utc: int) -> Optional[str]:
    """The first month (YYYY-MM) whose archived rows fall in [start_utc, end_utc), else None. Reads only."""
    if not db.has_table(conn, "archive_parts"):
        return None  # the database predates migration 0005
    # Any other error (a locked or failing database) must stop the report: one written now could miss rows.
    row = conn.execute(
        "SELECT month FROM archive_parts WHERE state IN ('archived', 'restoring') AND start_ts < ? "
        "AND end_ts > ? ORDER BY start_ts LIMIT 1", (end_utc, start_utc)).fetchone()
    return row[0] if row else None


def refuse_archived(conn: sqlite3.Connection, settings: Settings, start_utc: int, end_utc: int) -> None:
    """Raise (exit 1) when a workbook asked for this window would miss archived rows."""
    month = archived_window(conn, settings, start_utc, end_utc)
    if month:
        raise CsvReportError(f"the rows of {month} were moved to the Parquet archive in {settings.paths.archive}; "
                             f"load them back first: csvreport archive restore --month {month}")


def summary(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Archived months per source with their rows and files (reads only, for `status`)."""
    if not db.has_table(conn, "archive_parts"):
        return []  # the database predates migration 0005
    rows = conn.execute(
        "SELECT source, month, count(*), sum(rows), sum(bytes), max(archived_at) FROM archive_parts "
        "WHERE state = 'archived' GROUP BY source, month ORDER BY source, month").fetchall()
    keys = ("source", "month", "files", "rows", "bytes", "archived_at")
    return [dict(zip(keys, r)) for r in rows]


def parse_month(text: str, option: str) -> tuple[int, int]:
    match = MONTH_RE.match(text or "")
    if not match or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 1:
        raise ConfigError(f"{option} {text}: not a month; write it as YYYY-MM, for example 2026-03")
    return int(match.group(1)), int(match.group(2))


def month_bounds(year: int, month: int, zone: str) -> tuple[int, int]:
    """UTC epoch seconds of the local start of the month and of the next one."""
    tz = ZoneInfo(zone)
    nxt = (year + 1, 1) if month == 12 else (year, month + 1)
    return (int(datetime(year, month, 1, tzinfo=tz).timestamp()),
            int(datetime(nxt[0], nxt[1], 1, tzinfo=tz).timestamp()))


# --- archiving one month ------------------------------------------------------------------------

def partition_path(source: str, year: int, month: int, part_id: int) -> str:
    """`<source>/year=2026/month=3/part-<id>.parquet`: numbers without leading zeros.

    Readers type hive partition values themselves: pyarrow and Spark read `month=03` and
    `month=3` alike as integers, but DuckDB reads `03` as text (its value would not survive
    a cast to a number and back). Without the zero every engine reads both as integers, so
    `month = 3` filters the same way everywhere. Parts written earlier as `month=03` keep
    their recorded path and restore from there.
    """
    return f"{source}/year={year}/month={month}/part-{part_id}.parquet"


def archive_month(settings: Settings, conn: sqlite3.Connection, run: Run, source: str, year: int,
                  month: int) -> Optional[Part]:
    start, end = month_bounds(year, month, settings.timezone)
    label = f"{year:04d}-{month:02d}"
    columns = _columns(conn, source)
    with db.transaction(conn):
        if not conn.execute(f"SELECT 1 FROM {db.quote(source)} WHERE _ts >= ? AND _ts < ? LIMIT 1",
                            (start, end)).fetchone():
            return None
        part_id = db.insert(
            conn, "INSERT INTO archive_parts (source, month, start_ts, end_ts, path, state, created_at, run_id) "
            "VALUES (?, ?, ?, ?, '', 'writing', ?, ?)", (source, label, start, end, db.utcnow(), run.id))
        relative = partition_path(source, year, month, part_id)
        conn.execute("UPDATE archive_parts SET path = ? WHERE id = ?", (relative, part_id))
    part = _part(conn, part_id)
    final = settings.paths.archive / relative
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = _temp_name(final)
    try:
        _write_temp(conn, source, columns, start, end, temp)
        replace_durably(temp, final)
    except Exception:
        _undo_on_failure(settings, conn, part)  # e.g. a full disk: nothing was deleted, nothing is left behind
        raise
    _set_state(conn, part_id, "written")
    return _finish(settings, conn, _part(conn, part_id))


def _write_temp(conn: sqlite3.Connection, source: str, columns: dict[str, str], start: int, end: int,
                temp: Path) -> None:
    pa, pq = _pyarrow()
    schema = _schema(pa, columns)
    names = ", ".join(db.quote(c) for c in schema.names)
    cursor = conn.execute(f"SELECT {names} FROM {db.quote(source)} WHERE _ts >= ? AND _ts < ? ORDER BY _ts, _id",
                          (start, end))
    with pq.ParquetWriter(temp, schema) as writer:
        while rows := cursor.fetchmany(BATCH_ROWS):
            values = list(zip(*rows))
            arrays = [pa.array(list(values[i]), type=schema.field(i).type) for i in range(len(schema.names))]
            writer.write_batch(pa.record_batch(arrays, schema=schema))
    with open(temp, "rb+") as handle:
        os.fsync(handle.fileno())


def _finish(settings: Settings, conn: sqlite3.Connection, part: Part) -> Part:
    """Compare the file on disk with the rows; only when they agree delete the rows (one transaction)."""
    final = settings.paths.archive / part.path
    columns = _columns(conn, part.source)
    try:
        on_disk = _read_back(final, columns)
        with open(final, "rb") as handle:
            sha256, size = sha256_and_size(handle)
    except Exception as exc:  # noqa: BLE001 - a missing or unreadable file: undo, the rows are all here
        _undo_on_failure(settings, conn, part)
        raise CsvReportError(f"the archive file {final} cannot be read back ({type(exc).__name__}: {exc}); it was "
                             "removed and no row was deleted; run the same command again") from None
    conn.execute("BEGIN IMMEDIATE")
    try:
        in_db = _db_checks(conn, part.source, columns, part.start_ts, part.end_ts)
        problem = _differs(in_db, on_disk)
        if problem is None:
            deleted = _delete_rows(conn, part.source, part.start_ts, part.end_ts)
            if deleted != in_db["rows"]:
                problem = f"{deleted} rows matched for deletion, {in_db['rows']} were verified"
        if problem is not None:
            conn.execute("ROLLBACK")
            _undo_on_failure(settings, conn, part)
            raise CsvReportError(f"the archive file {final} does not match the database ({problem}); it was removed "
                                 f"and no row was deleted; run the same command again")
        conn.execute(
            "UPDATE archive_parts SET state = 'archived', rows = ?, first_row_id = ?, last_row_id = ?, checks = ?, "
            "sha256 = ?, bytes = ?, archived_at = ? WHERE id = ?",
            (in_db["rows"], in_db["_id"]["min"], in_db["_id"]["max"], json.dumps(on_disk, sort_keys=True), sha256,
             size, db.utcnow(), part.id))
    except BaseException:
        db.rollback(conn)
        raise
    conn.execute("COMMIT")
    log.info("archive", f"archived {in_db['rows']} rows of {part.month} to {final} (verified, removed from the "
             "database)", source=part.source, file=str(final), rows=in_db["rows"])
    return _part(conn, part.id)


def _delete_rows(conn: sqlite3.Connection, source: str, start: int, end: int) -> int:
    return conn.execute(f"DELETE FROM {db.quote(source)} WHERE _ts >= ? AND _ts < ?", (start, end)).rowcount


# --- restoring one part -------------------------------------------------------------------------

def restore_part(settings: Settings, conn: sqlite3.Connection, run: Run, part: Part) -> int:
    final = settings.paths.archive / part.path
    hidden = _hidden_name(final)
    _set_state(conn, part.id, "restoring")
    replace_durably(final, hidden)  # hidden beside it: restorable until the rows are committed
    source = settings.source(part.source)
    conn.execute("BEGIN IMMEDIATE")
    try:
        db.ensure_source_table(conn, source)
        inserted, skipped = _insert_rows(conn, part, hidden, bool(source.key))
        freshness.restored(conn, part.source, part.id)
        conn.execute("UPDATE archive_parts SET state = 'restored', restored_at = ? WHERE id = ?",
                     (db.utcnow(), part.id))
    except BaseException:
        db.rollback(conn)
        try:
            _unhide(conn, part, final, hidden)
        except (OSError, sqlite3.Error) as exc:  # the first error is the one to report
            log.warning("archive", f"could not put {final} back ({exc}); the next archive command does",
                        source=part.source, file=str(final))
        raise
    conn.execute("COMMIT")
    _remove_files(final, hidden)
    note = f"; {skipped} rows not restored: their load was purged or replaced since" if skipped else ""
    log.info("archive", f"restored {inserted} rows of {part.month} from {final}{note}", source=part.source,
             file=str(final), rows=inserted)
    return inserted


def _insert_rows(conn: sqlite3.Connection, part: Part, path: Path, keyed: bool) -> tuple[int, int]:
    _pa, pq = _pyarrow()
    gone = {r[0] for r in conn.execute(
        "SELECT id FROM ingestion_log WHERE source = ? AND status IN ('superseded', 'purged')", (part.source,))}
    parquet = pq.ParquetFile(path)
    names = parquet.schema_arrow.names
    missing = [n for n in names if n not in db.table_columns(conn, part.source)]
    if missing:
        raise CsvReportError(f"{path}: the table {part.source!r} has no column {', '.join(missing)}; add it back to "
                             f"sources.{part.source}.columns and run the restore again")
    verb = "INSERT OR IGNORE" if keyed else "INSERT"
    sql = (f"{verb} INTO {db.quote(part.source)} ({', '.join(db.quote(n) for n in names)}) "
           f"VALUES ({', '.join('?' * len(names))})")
    ts_at, ingestion_at = names.index("_ts"), names.index("_ingestion_id")
    inserted = skipped = 0
    for batch in parquet.iter_batches(batch_size=BATCH_ROWS):
        columns = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
        columns[ts_at] = [_unix_seconds(v) for v in columns[ts_at]]
        rows = [r for r in zip(*columns) if r[ingestion_at] not in gone]
        skipped += batch.num_rows - len(rows)
        before = conn.total_changes
        conn.executemany(sql, rows)
        inserted += conn.total_changes - before
        skipped += len(rows) - (conn.total_changes - before)
    if inserted + skipped != part.rows:
        raise CsvReportError(f"{path} holds {inserted + skipped} rows, the archive recorded {part.rows}; nothing "
                             "was restored")
    return inserted, skipped


def _remove_files(*paths: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
    folder = paths[0].parent
    fsync_dir(folder)
    for empty in (folder, folder.parent, folder.parent.parent):  # month=M, year=YYYY, then the source's folder
        try:
            empty.rmdir()
        except OSError:
            break


def _unhide(conn: sqlite3.Connection, part: Part, final: Path, hidden: Path) -> None:
    if hidden.exists():
        replace_durably(hidden, final)
    _set_state(conn, part.id, "archived")


# --- the next run finishes or undoes what a crash left ---------------------------------------

def recover(settings: Settings, conn: sqlite3.Connection) -> None:
    """Bring every part left between two steps by a crash to a settled state."""
    for part in _parts(conn, "state IN ('writing', 'written', 'restoring', 'restored')", ()):
        final = settings.paths.archive / part.path if part.path else None
        if part.state == "writing":
            log.warning("archive", f"an earlier run stopped while writing {part.month}; its file is removed, "
                        "the rows never left the database", source=part.source, file=str(final))
            _undo(settings, conn, part)
        elif part.state == "written":
            log.warning("archive", f"an earlier run stopped before verifying {part.month}; verifying it now",
                        source=part.source, file=str(final))
            try:
                _finish(settings, conn, part)
            except CsvReportError as exc:
                log.warning("archive", str(exc), source=part.source, file=str(final))
        elif part.state == "restoring" and final is not None:  # a part has its path from 'writing' on
            # Not committed (else the state would say restored): the rows are still only in the file.
            log.warning("archive", f"an earlier restore of {part.month} stopped before loading the rows; the file "
                        "is back in the archive", source=part.source, file=str(final))
            _unhide(conn, part, final, _hidden_name(final))
        elif final is not None and (final.exists() or _hidden_name(final).exists()):
            log.warning("archive", f"an earlier restore of {part.month} stopped before removing the file; its rows "
                        "are in the database, so the file is removed now", source=part.source, file=str(final))
            _remove_files(final, _hidden_name(final))


def _undo(settings: Settings, conn: sqlite3.Connection, part: Part) -> None:
    if part.path:
        final = settings.paths.archive / part.path
        for path in (_temp_name(final), final):
            path.unlink(missing_ok=True)
        if final.parent.exists():
            fsync_dir(final.parent)
    _set_state(conn, part.id, "undone")


def _undo_on_failure(settings: Settings, conn: sqlite3.Connection, part: Part) -> None:
    """Undo a part on the way out of a failure; if undoing fails too (the disk is still full), the part
    keeps its state for the next archive command to undo, and the first error is the one reported."""
    try:
        _undo(settings, conn, part)
    except (OSError, sqlite3.Error) as exc:
        log.warning("archive", f"could not undo the unfinished part of {part.month} ({exc}); the next archive "
                    "command undoes it", source=part.source)


# --- checks: what the database holds and what the file holds -----------------------------------

def _db_checks(conn: sqlite3.Connection, source: str, columns: dict[str, str], start: int, end: int
               ) -> dict[str, Any]:
    parts = ["count(*)", "count(_id)", "sum(_id)", "min(_id)", "max(_id)", "sum(_ingestion_id)",
             "sum(_ts)", "min(_ts)", "max(_ts)"]
    for name, kind in columns.items():
        q = db.quote(name)
        value = f"length({q})" if kind == "TEXT" else q
        parts += [f"count({q})", f"total({value})" if kind == "REAL" else f"sum({value})", f"total(abs({value}))"]
    row = conn.execute(f"SELECT {', '.join(parts)} FROM {db.quote(source)} WHERE _ts >= ? AND _ts < ?",
                       (start, end)).fetchone()
    checks: dict[str, Any] = {
        "rows": row[0],
        "_id": {"count": row[1], "sum": row[2] or 0, "min": row[3], "max": row[4]},
        "_ingestion_id": {"sum": row[5] or 0},
        "_ts": {"sum": row[6] or 0, "min": row[7], "max": row[8]},
    }
    for i, name in enumerate(columns):
        count, total, magnitude = row[9 + 3 * i: 12 + 3 * i]
        checks[name] = {"count": count, "sum": total or 0, "abs": magnitude or 0.0}
    return checks


def _read_back(path: Path, columns: dict[str, str]) -> dict[str, Any]:
    pa, pq = _pyarrow()
    import pyarrow.compute as pc

    parquet = pq.ParquetFile(path)
    expected = list(BOOKKEEPING) + list(columns)
    if parquet.schema_arrow.names != expected:
        raise CsvReportError(f"{path}: columns {parquet.schema_arrow.names} instead of {expected}")
    checks: dict[str, Any] = {"rows": 0, "_id": {"count": 0, "sum": 0, "min": None, "max": None},
                              "_ingestion_id": {"sum": 0}, "_ts": {"sum": 0, "min": None, "max": None}}
    for name in columns:
        checks[name] = {"count": 0, "sum": 0, "abs": 0.0}
    for batch in parquet.iter_batches(batch_size=BATCH_ROWS):
        checks["rows"] += batch.num_rows
        ids = batch.column(0)
        ts = pc.divide(pc.cast(batch.column(2), pa.int64()), _ts_divisor(batch.column(2).type))
        checks["_id"]["count"] += pc.count(ids).as_py()
        checks["_id"]["sum"] += pc.sum(ids).as_py() or 0
        checks["_ingestion_id"]["sum"] += pc.sum(batch.column(1)).as_py() or 0
        checks["_ts"]["sum"] += pc.sum(ts).as_py() or 0
        for key, array in (("_id", ids), ("_ts", ts)):
            low, high = pc.min_max(array).values()
            checks[key]["min"] = _pick(min, checks[key]["min"], low.as_py())
            checks[key]["max"] = _pick(max, checks[key]["max"], high.as_py())
        for i, (name, kind) in enumerate(columns.items(), start=3):
            array = batch.column(i)
            value = pc.utf8_length(array) if kind == "TEXT" else array
            checks[name]["count"] += pc.count(array).as_py()
            checks[name]["sum"] += pc.sum(value).as_py() or 0
            checks[name]["abs"] += float(pc.sum(pc.abs(value)).as_py() or 0)
    return checks


def _differs(in_db: dict[str, Any], on_disk: dict[str, Any]) -> Optional[str]:
    if in_db["rows"] != on_disk["rows"]:
        return f"{on_disk['rows']} rows in the file, {in_db['rows']} in the database"
    for name, wanted in in_db.items():
        if name == "rows":
            continue
        for key, value in wanted.items():
            got = on_disk[name][key]
            if isinstance(value, float) or isinstance(got, float):
                # Float sums depend on the order of addition: allow rounding, relative to the magnitudes added.
                scale = max(wanted.get("abs", 0.0), abs(value), 1.0)
                if not math.isclose(float(value), float(got), rel_tol=0, abs_tol=1e-9 * scale):
                    return f"column {name}: {key} {got!r} in the file, {value!r} in the database"
            elif value != got:
                return f"column {name}: {key} {got!r} in the file, {value!r} in the database"
    return None


# --- small helpers ------------------------------------------------------------------------------

def _pyarrow() -> tuple[ModuleType, ModuleType]:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise ConfigError(f"the archive needs pyarrow, which is not installed; install it with: {INSTALL_HINT}"
                          ) from None
    return pyarrow, pyarrow.parquet


def _schema(pa: ModuleType, columns: dict[str, str]) -> Any:  # a pyarrow.Schema
    types = {"INTEGER": pa.int64(), "REAL": pa.float64(), "TEXT": pa.string()}
    fields = [pa.field("_id", pa.int64(), nullable=False), pa.field("_ingestion_id", pa.int64(), nullable=False),
              pa.field("_ts", pa.timestamp("s", tz="UTC"), nullable=False)]
    fields += [pa.field(name, types.get(kind, pa.string())) for name, kind in columns.items()]
    return pa.schema(fields)


def _columns(conn: sqlite3.Connection, source: str) -> dict[str, str]:
    """Every data column of the table (also ones no longer configured), so a restore is exact."""
    return {name: (kind if kind in ("INTEGER", "REAL") else "TEXT")
            for name, kind in db.table_columns(conn, source).items() if name not in BOOKKEEPING}


def _months_with_rows(settings: Settings, conn: sqlite3.Connection, source: str, before: tuple[int, int]
                      ) -> list[tuple[int, int]]:
    first = conn.execute(f"SELECT min(_ts) FROM {db.quote(source)}").fetchone()[0]
    if first is None:
        return []
    local = datetime.fromtimestamp(first, ZoneInfo(settings.timezone))
    months, (y, m) = [], (local.year, local.month)
    while (y, m) < before:
        months.append((y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return months


def _parts(conn: sqlite3.Connection, where: str, args: tuple) -> list[Part]:
    rows = conn.execute(f"SELECT id, source, month, start_ts, end_ts, path, state, rows, checks, sha256 "
                        f"FROM archive_parts WHERE {where} ORDER BY source, start_ts, id", args).fetchall()
    return [Part(*r) for r in rows]


def _part(conn: sqlite3.Connection, part_id: int) -> Part:
    return _parts(conn, "id = ?", (part_id,))[0]


def _set_state(conn: sqlite3.Connection, part_id: int, state: str) -> None:
    with db.transaction(conn):
        conn.execute("UPDATE archive_parts SET state = ? WHERE id = ?", (state, part_id))


def _check_file(settings: Settings, part: Part) -> None:
    path = settings.paths.archive / part.path
    if not path.is_file():
        raise CsvReportError(f"{path} is missing: the archived rows of {part.source} {part.month} cannot be "
                             "restored; put the file back (from a backup) and run the restore again")
    if part.sha256 and sha256_of(path) != part.sha256:
        raise CsvReportError(f"{path} changed since it was archived (sha256 differs); put the original back "
                             "and run the restore again")


def _temp_name(final: Path) -> Path:
    return final.with_name(f".{final.name}.tmp")


def _hidden_name(final: Path) -> Path:
    return final.with_name(f".{final.name}.restoring")


def _unix_seconds(value: Any) -> Optional[int]:
    """A timestamp read back from Parquet as whole Unix seconds."""
    return None if value is None else int(value.timestamp())


def _ts_divisor(kind: Any) -> int:  # a pyarrow.TimestampType
    return {"s": 1, "ms": 1000, "us": 1_000_000, "ns": 1_000_000_000}[kind.unit]


def _pick(func: Callable[[Any, Any], Any], current: Any, new: Any) -> Any:
    if new is None:
        return current
    return new if current is None else func(current, new)
