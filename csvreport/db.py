"""The one place that opens the database: WAL mode, migrations, source tables.

Bookkeeping tables change only through the numbered SQL files in `migrations/`, each
applied in its own transaction together with the row that records it. Source tables
follow the configuration: a new allowlisted column is added, an incompatible change
is refused with a message that says what to do.
"""

from __future__ import annotations

import errno
import os
import re
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

from csvreport.config import Settings, Source
from csvreport.errors import ConfigError, CsvReportError

MIGRATION_RE = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql\Z")
SQL_TYPES = {"text": "TEXT", "integer": "INTEGER", "real": "REAL"}
# The page size of a database created from now on (one created before keeps its own: SQLite
# changes it only while the file is empty). A load writes every page twice, into the WAL and at
# the checkpoint into the database, with a system call or two per page: 16 KB pages need a
# quarter of those of SQLite's 4 KB (docs/performance.md).
PAGE_SIZE = 16384
# A writer's page cache. Rows that do not come in time order (an export grouped by device)
# insert all over the index on `_ts`; each of its leaves that no longer fits in the cache is
# written out to the WAL and read back on the next row that lands there. SQLite's 2 MB made
# such a load twice as slow as one in time order; 8 MB keeps the index of a million rows
# mostly in memory. Readers keep SQLite's default.
CACHE_KIB = 8192


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def utcnow() -> str:
    """Bookkeeping times: UTC, ISO 8601, readable in the sqlite3 shell."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utc_epoch(text: Optional[str]) -> Optional[float]:
    """Unix seconds of a bookkeeping time as utcnow() writes it; None when there is none or it does not parse."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def quote(name: str) -> str:
    """Quote an identifier for SQL; names come from the configuration, never raw from a CSV."""
    if "\x00" in name:
        raise ValueError(f"identifier {name!r} contains NUL")
    return '"' + name.replace('"', '""') + '"'


def migrations() -> list[Migration]:
    found: dict[int, Migration] = {}
    for entry in resources.files("csvreport.migrations").iterdir():
        match = MIGRATION_RE.match(entry.name)
        if not match:
            continue
        version = int(match.group(1))
        if version in found:
            raise CsvReportError(f"two migrations share number {version:04d}: {found[version].name} and {entry.name}")
        found[version] = Migration(version, entry.name, entry.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


def schema_version(conn: sqlite3.Connection) -> int:
    if not has_table(conn, "schema_migrations"):
        return 0
    return conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0]


def pending(conn: sqlite3.Connection) -> list[Migration]:
    """Migrations not yet applied; never writes, so `status` can use it on a read-only database."""
    applied: set[int] = set()
    if has_table(conn, "schema_migrations"):
        applied = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    return [m for m in migrations() if m.version not in applied]


def migrate(conn: sqlite3.Connection, home: Path | None = None) -> list[Migration]:
    """Apply pending migrations in order, each with the row that records it in one transaction.

    The SQL function csvreport_home() gives a migration the home folder (NULL when unknown),
    for paths that are stored relative to it.
    """
    conn.create_function("csvreport_home", 0, lambda: str(home) if home is not None else None, deterministic=True)
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    done = []
    for migration in pending(conn):
        with transaction(conn):
            # Another process may have applied it since we looked: check under the write lock.
            if conn.execute("SELECT 1 FROM schema_migrations WHERE version=?", (migration.version,)).fetchone():
                continue
            try:
                for statement in _statements(migration.sql):
                    conn.execute(statement)
            except sqlite3.Error as exc:
                raise CsvReportError(f"migration {migration.name} failed and was rolled back: {exc}") from exc
            conn.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                         (migration.version, migration.name, utcnow()))
        done.append(migration)
    return done


def _statements(script: str) -> Iterator[str]:
    """Split a migration file into complete statements (sqlite3 decides where one ends)."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                yield buffer
            buffer = ""
    if buffer.strip() and not all(line.strip().startswith("--") or not line.strip() for line in buffer.splitlines()):
        raise CsvReportError(f"migration ends with an incomplete statement: {buffer.strip()[:80]}")


def connect(settings: Settings, readonly: bool = False, busy_ms: int = 60000,
            apply_migrations: bool = True) -> sqlite3.Connection:
    """Open the database. Writers get WAL mode and every pending migration applied."""
    path = settings.paths.database
    if readonly:
        try:
            path.stat()
        except FileNotFoundError:
            raise CsvReportError(f"database {path} does not exist yet; run `csvreport ingest` first") from None
        except OSError as exc:
            raise CsvReportError(f"cannot read {path}: {exc.strerror or exc}; user {current_user()} needs read "
                                 f"access to it and its folder {path.parent}") from None
    conn = None
    try:
        if readonly:
            conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, isolation_level=None, timeout=0.5)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, isolation_level=None, timeout=busy_ms / 1000)
            conn.execute(f"PRAGMA page_size={PAGE_SIZE}")  # before WAL mode, which fixes the size of a new file
            conn.execute("PRAGMA journal_mode=WAL")
            # WAL with synchronous=NORMAL survives a crashed process without losing a commit.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")  # negative: KiB, whatever the page size
            if apply_migrations:
                migrate(conn, settings.home)
        conn.execute(f"PRAGMA busy_timeout={500 if readonly else int(busy_ms)}")
    except (sqlite3.DatabaseError, OSError) as exc:
        if conn is not None:
            conn.close()
        if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
            raise  # busy: the caller decides what waiting means
        known = fault(exc, settings)
        if known is not None and not readonly:
            raise known from None  # a full disk or a user who may not write, not a damaged database
        raise CsvReportError(
            f"cannot open the database {path}: {exc}; check that it is a SQLite file this user may write "
            f"(sqlite3 {path} 'PRAGMA integrity_check'), or restore it from a backup") from None
    except BaseException:
        if conn is not None:
            conn.close()
        raise
    return conn


def open_readonly(settings: Settings) -> sqlite3.Connection:
    """A read-only connection that has read once; CsvReportError saying why when there is none.

    Writes nothing, ever. A WAL database needs its -shm file, which SQLite creates on open;
    a user who may only read the folder (a monitoring user) cannot create it, and SQLite
    says "unable to open" or, since 3.40, "attempt to write a readonly database". With no
    writer about (no -wal file, or an empty one: the last writer closed cleanly), the file
    is then opened as immutable, which needs neither -wal nor -shm.
    """
    path = settings.paths.database
    conn = connect(settings, readonly=True)
    try:
        # Opening is lazy: the first read finds a file that is not a database, or one we cannot open.
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.Error as exc:
        conn.close()
        if not _needs_shared_memory(exc):
            raise CsvReportError(f"cannot read {path}: {exc}") from None
        wal = path.with_name(path.name + "-wal")
        if file_size(wal):
            raise CsvReportError(
                f"cannot read {path}: {exc}: a writer is at work or stopped without closing the database "
                f"(non-empty {wal.name}), and user {current_user()} may not create {path.name}-shm beside it; "
                f"run this as the user who owns the home, or again once the writer is done") from None
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro&immutable=1", uri=True, isolation_level=None)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as exc:
        conn.close()
        raise CsvReportError(f"cannot read {path}: {exc}") from None
    return conn


def _needs_shared_memory(exc: sqlite3.Error) -> bool:
    text = str(exc)
    return "unable to open" in text or "readonly database" in text


def file_size(path: Path) -> int:
    """The size of a file, 0 when it is missing or cannot be looked at."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


def current_user() -> str:
    """The name of the user this process runs as (for messages about permissions)."""
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError):
        return str(os.geteuid())


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        rollback(conn)
        raise
    conn.execute("COMMIT")


def rollback(conn: sqlite3.Connection) -> None:
    """Undo the open transaction, if SQLite still has one, without hiding the error that led here.

    After a full disk or an I/O error SQLite may already have rolled back by itself; a ROLLBACK
    then fails with "no transaction is active", and that follow-on error must not replace the
    real one, which the caller is about to raise.
    """
    if not conn.in_transaction:
        return
    try:
        conn.execute("ROLLBACK")
    except sqlite3.Error:
        pass


def fault(exc: BaseException, settings: Optional[Settings]) -> Optional[CsvReportError]:
    """A fault of the machine (full disk, no permission, failing disk) as one line naming the path, or None.

    SQLite names no path in its messages, so the database's is added here (from `settings`); an
    OSError names its own.
    """
    if settings is None:
        return _os_fault(exc, None) if isinstance(exc, OSError) else None
    database = settings.paths.database
    if isinstance(exc, sqlite3.Error):
        text = str(exc)
        code = getattr(exc, "sqlite_errorcode", None)
        if "disk is full" in text or code == 13:  # SQLITE_FULL
            return CsvReportError(f"the disk is full: cannot write the database {database} ({text}); free space "
                                  f"on the file system of {database.parent}, then run the command again "
                                  "(nothing half-done was kept)")
        if "readonly database" in text:
            return CsvReportError(f"cannot write the database {database} ({text}): user {current_user()} may not write "
                                  f"it or its folder {database.parent}; run csvreport as the user who owns the home")
        if "disk I/O error" in text:
            return CsvReportError(f"the disk failed while csvreport used the database {database} ({text}); check "
                                  "the system log (dmesg) and the free space, then run the command again")
        return None
    return _os_fault(exc, database.parent) if isinstance(exc, OSError) else None


def _os_fault(exc: OSError, near: Optional[Path]) -> Optional[CsvReportError]:
    where = exc.filename or near
    if where is None:
        return None
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return CsvReportError(f"the disk is full: cannot write {where} ({exc.strerror}); free space there, then "
                              "run the command again")
    if isinstance(exc, PermissionError):
        return CsvReportError(f"permission denied: user {current_user()} may not use {where} ({exc.strerror}); run "
                              "csvreport as the user who owns the home, or fix the permissions of that path")
    if exc.errno == errno.EROFS:
        return CsvReportError(f"cannot write {where}: the file system is read-only; remount it read-write or point "
                              "[paths] elsewhere")
    return None


def insert(conn: sqlite3.Connection, sql: str, parameters: Sequence[Any]) -> int:
    """Run one INSERT and return the id of the row it added."""
    row_id = conn.execute(sql, parameters).lastrowid
    if row_id is None:  # sqlite3 sets it after every INSERT; None means the statement was not one
        raise TypeError(f"not an INSERT: {sql}")
    return row_id


def has_table(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)).fetchone()
    return row is not None


def table_columns(conn: sqlite3.Connection, table: str) -> dict[str, str]:
    """Column name -> declared type of a table ({} when it does not exist)."""
    return {row[1]: row[2].upper() for row in conn.execute(f"PRAGMA table_info({quote(table)})")}


def ensure_source_table(conn: sqlite3.Connection, source: Source) -> None:
    """Create the source's table, or bring it in line with the configuration."""
    table = quote(source.name)
    existing = table_columns(conn, source.name)
    if not existing:
        columns = ",\n  ".join(f"{quote(c)} {SQL_TYPES[source.type_of(c)]}" for c in source.columns)
        conn.execute(
            f"CREATE TABLE {table} (\n  _id INTEGER PRIMARY KEY AUTOINCREMENT,\n  _ingestion_id INTEGER NOT NULL,\n"
            f"  _ts INTEGER NOT NULL,\n  {columns}\n)"
        )
        conn.execute(f"CREATE INDEX {quote(source.name + '__ts')} ON {table} (_ts)")
    else:
        if "_ingestion_id" not in existing or "_ts" not in existing:
            raise ConfigError(
                f"sources.{source.name}.name: the database already has a table {source.name!r} that is not a "
                f"source table (it lacks _ingestion_id and _ts); choose another name for the source")
        lowered = {name.casefold(): (name, kind) for name, kind in existing.items()}
        for column in source.columns:
            want = SQL_TYPES[source.type_of(column)]
            have = lowered.get(column.casefold())
            if have is None:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {quote(column)} {want}")
            elif have[1] != want:
                raise ConfigError(
                    f"sources.{source.name}.types.{column}: the table {source.name!r} stores {have[0]!r} as "
                    f"{have[1]}, the configuration now says {want}; change it back, or move the old rows "
                    f"away (see docs/operations.md, 'Changing a column type')"
                )
    _ensure_key_index(conn, source)


def _ensure_key_index(conn: sqlite3.Connection, source: Source) -> None:
    index = source.name + "__key"
    row = conn.execute("SELECT sql FROM sqlite_master WHERE type='index' AND name=?", (index,)).fetchone()
    wanted = None
    if source.key:
        wanted = (f"CREATE UNIQUE INDEX {quote(index)} ON {quote(source.name)} "
                  f"({', '.join(quote(c) for c in source.key)})")
    if (row[0] if row else None) == wanted:
        return
    if row:
        conn.execute(f"DROP INDEX {quote(index)}")
    if wanted:
        try:
            conn.execute(wanted)
        except sqlite3.IntegrityError:
            raise ConfigError(
                f"sources.{source.name}.key: the table {source.name!r} already holds several rows with the "
                f"same {', '.join(source.key)}; remove the duplicates or keep the old key"
            ) from None
