"""Which written workbooks no longer agree with the database, of any age.

Every change to a source table's rows records, in the same transaction, the spans of event
time it touched (`window_changes`, migration 0006), in quarter hours: every zone's local
hours begin on a quarter hour, so a span says exactly which hourly and daily windows it
touched. The recorders:

- `loaded`: the rows a load inserted, and (keyed sources) the older rows its rows replaced,
  caught by a temporary trigger while the file loads (`watch`);
- `removing`: the rows of one ingestion about to be deleted (an earlier version of a file
  replaced, a purge);
- `restored`: rows brought back from the Parquet archive.

`absorb`, at the start of every `hourly`/`daily` run, reads the changes recorded since the
last run (its cursor, `change_cursor`), and marks stale in `workbook_freshness` each written
workbook whose window a change touched after the workbook was written. Its cost follows the
new changes and the windows they touch, never the size of the tables. `publish` records
which changes a workbook took in (`mark` before aggregating, `written` after) and so clears
the mark. `stale` answers read-only (for `status`): the marks plus the changes not absorbed yet.
"""

from __future__ import annotations

import sqlite3
from typing import Iterable, Optional

from csvreport import db

QUARTER = 900  # seconds; every UTC offset in use is a multiple of 15 minutes
LONGEST_WINDOW = 27 * 3600  # a daily window on a 25-hour day, with room to spare
KINDS = ("hourly", "daily")
_REPLACED = "csvreport_replaced"  # a temporary table: trigger bodies may not name its schema


def enabled(conn: sqlite3.Connection) -> bool:
    """False on a database that predates migration 0006 (a read-only `status` before `migrate`)."""
    return db.has_table(conn, "change_cursor")


# -- recording changes (inside the caller's transaction) ---------------------------------------


def _spans(quarters: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted quarter-hour starts -> [start, end) spans of consecutive quarters."""
    spans: list[tuple[int, int]] = []
    for quarter in quarters:
        if spans and spans[-1][1] == quarter:
            spans[-1] = (spans[-1][0], quarter + QUARTER)
        else:
            spans.append((quarter, quarter + QUARTER))
    return spans


def _record(conn: sqlite3.Connection, source: str, quarters: Iterable[int], cause: str) -> None:
    if not enabled(conn):
        return
    now = db.utcnow()
    conn.executemany("INSERT INTO window_changes (source, start_ts, end_ts, cause, recorded_at) VALUES (?, ?, ?, ?, ?)",
                     [(source, start, end, cause, now) for start, end in _spans(quarters)])


def _quarters(conn: sqlite3.Connection, table: str, where: str, args: tuple) -> list[int]:
    # _ts - (_ts % 900 + 900) % 900 rounds down for event times before 1970 as well.
    return [row[0] for row in conn.execute(
        f"SELECT DISTINCT _ts - ((_ts % {QUARTER}) + {QUARTER}) % {QUARTER} AS q FROM {db.quote(table)} "
        f"WHERE {where} ORDER BY q", args)]


def watch(conn: sqlite3.Connection, table: str) -> None:
    """Before a keyed load: note the event time of every row a `REPLACE` removes from `table`.

    A temporary trigger (this connection only) fires for rows deleted by `INSERT OR REPLACE`
    when recursive triggers are on; `loaded` reads what it noted.
    """
    conn.execute("PRAGMA recursive_triggers = ON")
    conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {_REPLACED} (source TEXT, quarter INTEGER, "
                 "ingestion_id INTEGER, PRIMARY KEY (source, quarter, ingestion_id)) WITHOUT ROWID")
    conn.execute(f"CREATE TEMP TRIGGER IF NOT EXISTS {_trigger(table)} AFTER DELETE ON main.{db.quote(table)} BEGIN "
                 f"INSERT OR IGNORE INTO {_REPLACED} VALUES ({_literal(table)}, "
                 f"old._ts - ((old._ts % {QUARTER}) + {QUARTER}) % {QUARTER}, old._ingestion_id); END")
    conn.execute(f"DELETE FROM temp.{_REPLACED} WHERE source = ?", (table,))


def _trigger(table: str) -> str:
    return db.quote(f"csvreport_replaced_{table}")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _quarters_of_load(conn: sqlite3.Connection, table: str, ingestion_id: int, first_row_id: Optional[int],
                      last_row_id: Optional[int], min_ts: Optional[int], max_ts: Optional[int], rows: int) -> list[int]:
    """The quarters holding rows of one load, whose rowids are [first_row_id, last_row_id] (no other
    load's). A dense load (many rows per quarter of its span) is probed quarter by quarter through the
    time index, which holds the rowid: a few index seeks instead of a pass over millions of rows."""
    if first_row_id is None or last_row_id is None or min_ts is None or max_ts is None:
        return []
    low, high = min_ts - min_ts % QUARTER, max_ts - max_ts % QUARTER
    index = table + "__ts"
    if (high - low) // QUARTER + 1 > rows // 8 or not conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?", (index,)).fetchone():
        return _quarters(conn, table, "_id BETWEEN ? AND ? AND _ingestion_id = ?",
                         (first_row_id, last_row_id, ingestion_id))
    probe = (f"SELECT 1 FROM {db.quote(table)} INDEXED BY {db.quote(index)} "
             "WHERE _ts >= ? AND _ts < ? AND _id BETWEEN ? AND ? LIMIT 1")
    return [q for q in range(low, high + QUARTER, QUARTER)
            if conn.execute(probe, (q, q + QUARTER, first_row_id, last_row_id)).fetchone()]


def loaded(conn: sqlite3.Connection, table: str, ingestion_id: int, first_row_id: Optional[int],
           last_row_id: Optional[int], min_ts: Optional[int], max_ts: Optional[int], rows: int) -> None:
    """After a load: record the quarters of the rows it inserted and of the older rows it replaced."""
    quarters = set(_quarters_of_load(conn, table, ingestion_id, first_row_id, last_row_id, min_ts, max_ts, rows))
    replaced: list[int] = []
    if conn.execute("SELECT 1 FROM temp.sqlite_master WHERE name = ?", (_REPLACED,)).fetchone():
        # Rows of the same load replaced by a later line of the same file were never visible.
        replaced = [row[0] for row in conn.execute(
            f"SELECT DISTINCT quarter FROM temp.{_REPLACED} WHERE source = ? AND ingestion_id != ?",
            (table, ingestion_id))]
        conn.execute(f"DELETE FROM temp.{_REPLACED} WHERE source = ?", (table,))
        # Watched for this load only: a later purge or superseded version deletes rows with no one noting them.
        conn.execute(f"DROP TRIGGER IF EXISTS temp.{_trigger(table)}")
        conn.execute("PRAGMA recursive_triggers = OFF")
    if replaced:
        _record(conn, table, sorted(replaced), f"ingestion {ingestion_id} replaced rows of earlier loads by key")
        quarters.difference_update(replaced)
    if quarters:
        _record(conn, table, sorted(quarters), f"ingestion {ingestion_id} arrived")


def removing(conn: sqlite3.Connection, table: str, ingestion_id: int, why: str, first_row_id: int,
             last_row_id: int, min_ts: Optional[int], max_ts: Optional[int], rows: int) -> None:
    """Before the rows of one ingestion (its ingestion_log values) are deleted (`why`: superseded, purged):
    record their quarters."""
    _record(conn, table, _quarters_of_load(conn, table, ingestion_id, first_row_id, last_row_id, min_ts, max_ts,
                                           rows), f"ingestion {ingestion_id} {why}")


def restored(conn: sqlite3.Connection, table: str, part_id: int) -> None:
    """After the rows of an archived part came back (archive_parts, migration 0005): record their quarters."""
    month, start, end, first, last = conn.execute(
        "SELECT month, start_ts, end_ts, first_row_id, last_row_id FROM archive_parts WHERE id = ?",
        (part_id,)).fetchone()
    if first is None or last is None:
        return
    _record(conn, table, _quarters(conn, table, "_id BETWEEN ? AND ? AND _ts >= ? AND _ts < ?",
                                   (first, last, start, end)),
            f"rows of {month} restored from the archive")


# -- finding and clearing stale workbooks ---------------------------------------------------------


def _touched(conn: sqlite3.Connection, after: int, names: set[str]) -> dict[int, tuple[str, int, str, str]]:
    """Workbook id -> (kind, change id, cause, recorded_at) of the first change after `after` touching its window."""
    found: dict[int, tuple[str, int, str, str]] = {}
    changes = conn.execute("SELECT id, source, start_ts, end_ts, cause, recorded_at FROM window_changes "
                           "WHERE id > ? ORDER BY id", (after,)).fetchall()
    for change_id, source, start, end, cause, recorded_at in changes:
        if source not in names:
            continue
        for kind in KINDS:
            # The UNIQUE (kind, window_start, window_end) index bounds this to the windows near the span.
            for (book,) in conn.execute(
                    "SELECT w.id FROM workbooks w LEFT JOIN workbook_freshness f ON f.workbook_id = w.id "
                    "WHERE w.kind = ? AND w.window_start > ? AND w.window_start < ? AND w.window_end > ? "
                    "AND coalesce(f.seen_change, 0) < ?", (kind, start - LONGEST_WINDOW, end, start, change_id)):
                found.setdefault(book, (kind, change_id, cause, recorded_at))
    return found


def absorb(conn: sqlite3.Connection, names: set[str]) -> int:
    """Mark stale the workbooks touched by the changes recorded since the last call; returns how many."""
    if not enabled(conn):
        return 0
    with db.transaction(conn):
        after = conn.execute("SELECT absorbed FROM change_cursor").fetchone()[0]
        newest = conn.execute("SELECT coalesce(max(id), 0) FROM window_changes").fetchone()[0]
        if newest <= after:
            return 0
        found = _touched(conn, after, names)
        conn.executemany(
            "INSERT INTO workbook_freshness (workbook_id, stale_change, stale_cause, stale_since, corrected) "
            "VALUES (?, ?, ?, ?, 1) ON CONFLICT (workbook_id) DO UPDATE SET stale_change = excluded.stale_change, "
            "stale_cause = excluded.stale_cause, stale_since = excluded.stale_since, corrected = 1 "
            "WHERE workbook_freshness.stale_change IS NULL",
            [(book, change, cause, since) for book, (_, change, cause, since) in found.items()])
        conn.execute("UPDATE change_cursor SET absorbed = ?", (newest,))
    return len(found)


def stale(conn: sqlite3.Connection, kind: str, names: set[str]) -> dict[int, tuple[str, str]]:
    """Workbook id -> (cause, since) of every stale `kind` workbook, any age. Reads only."""
    if not enabled(conn):
        return {}
    result = {book: (cause, since) for book, cause, since in conn.execute(
        "SELECT f.workbook_id, f.stale_cause, f.stale_since FROM workbook_freshness f CROSS JOIN workbooks w "
        "ON w.id = f.workbook_id WHERE f.stale_change IS NOT NULL AND w.kind = ?", (kind,))}
    after = conn.execute("SELECT absorbed FROM change_cursor").fetchone()[0]
    for book, (book_kind, _, cause, since) in _touched(conn, after, names).items():
        if book_kind == kind:
            result.setdefault(book, (cause, since))
    return result


def legacy_marks(conn: sqlite3.Connection) -> tuple[Optional[int], Optional[str]]:
    """The ingestion_log id and changed_at up to which the older check applies (None: no limit)."""
    if not enabled(conn):
        return None, None
    row = conn.execute("SELECT legacy_data_mark, legacy_change_mark FROM change_cursor").fetchone()
    return row[0], row[1] or ""


def corrected(conn: sqlite3.Connection, kind: str, start: int, end: int) -> bool:
    """Whether a change touched this window after its first workbook was written (sticky). Reads only."""
    if not enabled(conn):
        return False
    row = conn.execute("SELECT f.corrected FROM workbooks w JOIN workbook_freshness f ON f.workbook_id = w.id "
                       "WHERE w.kind = ? AND w.window_start = ? AND w.window_end = ?", (kind, start, end)).fetchone()
    return bool(row and row[0])


def latest_change(conn: sqlite3.Connection) -> Optional[str]:
    """When the newest change was recorded (UTC ISO 8601), or None. Reads only."""
    if not enabled(conn):
        return None
    row = conn.execute("SELECT recorded_at FROM window_changes ORDER BY id DESC LIMIT 1").fetchone()
    return row[0] if row else None


def mark(conn: sqlite3.Connection) -> int:
    """The newest change a workbook aggregated now takes in; read before aggregating."""
    if not enabled(conn):
        return 0
    return conn.execute("SELECT coalesce(max(id), 0) FROM window_changes").fetchone()[0]


def written(conn: sqlite3.Connection, workbook_id: int, seen: int) -> None:
    """A workbook was written from the data up to change `seen`: a mark by an earlier change is cleared."""
    if not enabled(conn):
        return
    conn.execute(
        "INSERT INTO workbook_freshness (workbook_id, seen_change) VALUES (?, ?) ON CONFLICT (workbook_id) DO UPDATE "
        "SET seen_change = excluded.seen_change, stale_change = CASE WHEN stale_change <= excluded.seen_change "
        "THEN NULL ELSE stale_change END, stale_cause = CASE WHEN stale_change <= excluded.seen_change THEN NULL "
        "ELSE stale_cause END, stale_since = CASE WHEN stale_change <= excluded.seen_change THEN NULL "
        "ELSE stale_since END", (workbook_id, seen))
