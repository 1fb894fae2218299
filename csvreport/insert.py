"""Storing checked rows: multi-row INSERTs, in file order, into a source table (or the helper's scratch table)."""

from __future__ import annotations

import sqlite3
from typing import Iterator, Optional

from csvreport.config import Source
from csvreport.db import quote
from csvreport.rowloop import Rows

BATCH_ROWS = 64  # rows per INSERT statement; measured best between 16 and 256 (docs/performance.md)


def batch_rows(conn: sqlite3.Connection, width: int) -> int:
    """Rows per INSERT statement: BATCH_ROWS, fewer when the row is wide (SQLite's limit on parameters)."""
    getlimit = getattr(conn, "getlimit", None)  # Python 3.11+; older builds allow at least 999
    limit = getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) if getlimit else 999
    return max(1, min(BATCH_ROWS, limit // width))


def column_names(source: Source) -> str:
    return ", ".join(["_ingestion_id", "_ts", *(quote(c) for c in source.columns)])


def insert_verb(source: Source) -> str:
    """How rows are stored: a keyed source replaces the older row with the same key; OR FAIL, the statement
    journal is not needed (a failing statement fails the whole file anyway)."""
    return "INSERT OR REPLACE" if source.key else "INSERT OR FAIL"


def insert_batches(conn: sqlite3.Connection, rows: Rows, batches: Iterator[list],
                    table: Optional[str] = None, verb: Optional[str] = None) -> None:
    """Insert flat batches of rows with multi-row INSERTs, in file order.

    One statement per BATCH_ROWS rows instead of one per row: SQLite then updates the
    AUTOINCREMENT counter and runs the statement's setup once per batch. A shorter batch
    (the end of a part) gets a statement of its own before the next full one.
    """
    source, width = rows.source, rows.width
    table = table or quote(source.name)
    names = column_names(source)
    # The load's ingestion id is written into the statement (an int, never text from a file):
    # a million rows bind a million values fewer.
    row = f"({int(rows.checks.ingestion_id)}, " + ", ".join("?" * width) + ")"
    verb = verb or insert_verb(source)
    full = rows.batch_rows * width
    batches = iter(batches)
    short: list[list] = []

    def full_batches() -> Iterator[list]:
        for batch in batches:
            if len(batch) != full:
                short.append(batch)
                return
            yield batch

    while True:
        conn.executemany(f"{verb} INTO {table} ({names}) VALUES {', '.join([row] * rows.batch_rows)}",
                         full_batches())
        if not short:
            return
        batch = short.pop()
        conn.execute(f"{verb} INTO {table} ({names}) VALUES {', '.join([row] * (len(batch) // width))}", batch)


def sequence(conn: sqlite3.Connection, table: str) -> int:
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).fetchone()
    return row[0] if row else 0
