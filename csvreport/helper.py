"""A second process for the second part of a large file: both cores parse and check at once.

Python parses and checks CSV rows on one core. For a large file, `load.load_rows` forks a helper
that parses and checks the file's last part into a scratch SQLite database beside the main
one, while the parent does the first part; the parent then copies the helper's rows with
`INSERT … SELECT` (in C) into the source table, inside the file's transaction. The helper
hands its rows over in two steps: those before the last TAIL_SHARE of its part as soon as
they are stored, so the parent copies them while the helper still reads the tail (into a
second scratch file), then the tail's. The first copy is made inside a savepoint, rolled
back when the tail fails.

Nothing here decides anything about rows. The helper runs the very same row loop; the
parent uses its work only when everything lines up: the parent's own part ended exactly
where the helper began (a record boundary, not the middle of a quoted field), the helper
finished without error, and together they stayed within max_bad_rows. Otherwise the parent
stops the helper and reads on itself, so every outcome (bad rows, quarantine, line numbers)
is exactly that of the one-process load.
"""

from __future__ import annotations

import codecs
import csv
import glob
import io
import itertools
import os
import pickle
import re
import signal
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from csvreport.config import Source
from csvreport.db import PAGE_SIZE, SQL_TYPES, quote
from csvreport.errors import ConfigError
from csvreport.insert import column_names, insert_batches, insert_verb
from csvreport.rowloop import Rows
from csvreport.rows import LoadResult, text_lines

MIN_BYTES = 8 * 2**20  # below this, forking and copying cost more than the second core saves
MIN_BYTES_VARIABLE = "CSVREPORT_HELPER_MIN_BYTES"  # operators: a huge value keeps every load in one process
HELPER_SHARE = 0.55  # of the file's bytes, for the helper (measured best: the parent also copies its rows)
TAIL_SHARE = 0.15  # of the helper's part: its rows are copied last; the others while the helper reads these
SCHEMA = "csvreport_load"  # the scratch database's name on the main connection
TAIL_SCHEMA = "csvreport_load_tail"  # a second file: the parent reads the first while the helper writes this
READ_CHUNK = 1 << 20
CANDIDATE_WINDOW = 256 * 1024  # line starts tried after the target; none fits: one process reads the file
PROBE_BYTES = 16 * 1024
PROBE_RECORDS = 8
_LONE_CR = re.compile(rb"\r(?!\n)")  # a carriage return that is a line end by itself


def min_bytes() -> int:
    """The size from which a file is shared: MIN_BYTES, or the environment's CSVREPORT_HELPER_MIN_BYTES."""
    value = os.environ.get(MIN_BYTES_VARIABLE, "").strip()
    if not value:
        return MIN_BYTES
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise ConfigError(f"{MIN_BYTES_VARIABLE}={value!r} in the environment: give a size in bytes, e.g. "
                          f"{MIN_BYTES} (the default), or 1000000000000 to load every file in one process")
    return number


def usable() -> bool:
    """True on a Linux machine where this process may run on two cores or more."""
    if not sys.platform.startswith("linux") or not hasattr(os, "fork"):
        return False
    try:
        return len(os.sched_getaffinity(0)) >= 2
    except OSError:
        return False


def part_encoding(encoding: str) -> Optional[str]:
    """How the helper decodes its part, or None when a file in `encoding` cannot be split.

    A newline byte is always a newline character in UTF-8 and the single-byte codecs; a
    byte order mark can only be at the start of the file, so "utf-8-sig" becomes "utf-8".
    In UTF-16 a newline is two bytes, and stateful or multibyte codecs cannot be decoded
    from the middle of the file; those files are read by one process.
    """
    name = codecs.lookup(encoding).name
    if name in ("utf-8", "utf-8-sig"):
        return "utf-8"
    return encoding if name == "ascii" or name.startswith(("iso8859-", "cp125")) else None


@dataclass(frozen=True)
class Split:
    offset: int  # the helper starts here: just after a newline byte
    lines: int  # physical lines before `offset`, counted as the csv reader counts them


def find_split(path: Path, size: int, encoding: str, delimiter: str, width: int) -> Optional[Split]:
    """Where the helper starts: a line start near (1 - HELPER_SHARE) of the file that begins a record.

    A newline may sit inside a quoted field, so each line start after the target is tried
    in turn: it is taken when the next records, parsed from there, have the header's number
    of fields. This only makes a good guess likely; the parent checks that its own part
    really ended there (`take_helper_rows`). Lines end at "\n", "\r\n" or a lone
    "\r", as `open(newline="")` splits them, so `lines` equals the csv reader's `line_num`
    once it has read everything before `offset`.
    """
    target = int(size * (1 - HELPER_SHARE))
    with open(path, "rb") as handle:
        lines = _count_lines(handle, target)
        window = handle.read(CANDIDATE_WINDOW)
    for start in (i + 1 for i in _positions(window, b"\n")):
        if target + start >= size:
            break
        if _looks_like_records(window[start:start + PROBE_BYTES], encoding, delimiter, width):
            return Split(target + start, lines + _line_ends(window[:start]))
    return None


def _count_lines(handle, limit: int) -> int:
    """Line ends in the first `limit` bytes of `handle`, which is left at `limit`."""
    count = 0
    last = b""
    remaining = limit
    while remaining > 0:
        chunk = handle.read(min(READ_CHUNK, remaining))
        if not chunk:
            break
        remaining -= len(chunk)
        count += _line_ends(chunk) - (last == b"\r" and chunk[:1] == b"\n")  # a "\r\n" cut in two is one end
        last = chunk[-1:]
    return count


def _line_ends(data: bytes) -> int:
    lf = data.count(b"\n")
    if b"\r" not in data or _LONE_CR.search(data) is None:
        return lf  # every "\r" is part of a "\r\n": one search instead of two counts (0.02 s for 40 MB)
    return lf + data.count(b"\r") - data.count(b"\r\n")


def _positions(data: bytes, needle: bytes):
    at = data.find(needle)
    while at >= 0:
        yield at
        at = data.find(needle, at + 1)


def _looks_like_records(probe: bytes, encoding: str, delimiter: str, width: int) -> bool:
    text = probe.decode(encoding, errors="replace")
    try:
        records = list(itertools.islice(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter),
                                        PROBE_RECORDS + 1))[:-1]  # the last may be cut off by the probe's end
    except csv.Error:
        return False
    return len(records) >= 2 and all(len(r) == width or not any(r) for r in records)


class Scratch:
    """The scratch databases of one run, attached to the main connection on first use.

    They live beside the database (`<database>-load-<pid>` and `…-tail`), hold one table per
    file being shared (the helper's rows, and the rows of the last part of its part), and are
    removed when the run ends; files left by a killed run are removed by the next run, which
    holds the lock.
    """

    def __init__(self, conn: sqlite3.Connection, database: Path):
        self.conn = conn
        self.path = database.with_name(f"{database.name}-load-{os.getpid()}")
        self.tail_path = Path(f"{self.path}-tail")
        self.attached = False
        for stale in database.parent.glob(f"{glob.escape(database.name)}-load-*"):
            stale.unlink(missing_ok=True)

    def attach(self) -> tuple[str, str]:
        if not self.attached:
            self.conn.execute(f"ATTACH DATABASE ? AS {SCHEMA}", (str(self.path),))
            self.attached = True
            self.conn.execute(f"ATTACH DATABASE ? AS {TAIL_SCHEMA}", (str(self.tail_path),))
        return SCHEMA, TAIL_SCHEMA

    def __enter__(self) -> "Scratch":
        return self

    def __exit__(self, *exc) -> None:
        if self.attached:
            for schema in (SCHEMA, TAIL_SCHEMA):
                try:
                    self.conn.execute(f"DETACH DATABASE {schema}")
                except sqlite3.Error:
                    pass  # still inside a transaction after a failure: the file is removed all the same
        for path in (self.path, self.tail_path):
            for suffix in ("", "-journal"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)


class Helper:
    """A forked process running `work(send)`; what it sends, then its return value, come back pickled
    through a pipe. `work` may call `send(value)` to hand over a value before it ends (`part`)."""

    def __init__(self, pid: int, fd: int):
        self.pid = pid
        self.pipe: Optional[io.BufferedReader] = os.fdopen(fd, "rb")
        self.status: Optional[int] = None  # the helper's exit code, once reaped

    @classmethod
    def start(cls, work: Callable[..., object], sends: bool = False) -> "Helper":
        parent = os.getpid()
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the helper: never returns
            code = 1
            try:
                os.close(read_fd)
                out = os.fdopen(write_fd, "wb")
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                _die_with(parent)

                def send(value: object) -> None:
                    pickle.dump(("part", value), out, protocol=pickle.HIGHEST_PROTOCOL)
                    out.flush()

                payload: object = ("ok", work(send) if sends else work())
                code = 0
            except BaseException as exc:  # noqa: BLE001 - reported to the parent, which reads on itself
                payload = ("failed", f"{type(exc).__name__}: {exc}")
            try:
                with out:
                    pickle.dump(payload, out, protocol=pickle.HIGHEST_PROTOCOL)
            finally:
                # Skip the interpreter's exit: the parent's connections, logs and locks are not ours.
                os._exit(code)
        os.close(write_fd)
        return cls(pid, read_fd)

    def _receive(self) -> Optional[tuple]:
        if self.pipe is None:
            return None
        try:
            message = pickle.load(self.pipe)
        except (EOFError, pickle.UnpicklingError):
            return None
        return message if isinstance(message, tuple) and len(message) == 2 else None

    def part(self) -> Optional[object]:
        """Wait for the next value the helper sends; None when it ended (or failed) instead."""
        message = self._receive()
        if message is None or message[0] != "part":
            self._reap(kill=True)
            return None
        return message[1]

    def result(self) -> Optional[object]:
        """Wait for the helper; its work's value, or None when it failed."""
        message = self._receive()
        while message is not None and message[0] == "part":
            message = self._receive()
        self._reap(kill=False)  # it ends once it has written its last message, or has ended already
        return message[1] if message is not None and message[0] == "ok" and self.status == 0 else None

    def cancel(self) -> None:
        """Stop the helper, if it still runs, and reap it."""
        self._reap(kill=True)

    def _reap(self, kill: bool) -> None:
        if self.pipe is None:
            return
        self.pipe.close()
        self.pipe = None
        if kill:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _, status = os.waitpid(self.pid, 0)
        self.status = os.waitstatus_to_exitcode(status)


def _die_with(parent: int) -> None:
    """Have the kernel kill this helper when the parent dies (Linux), so no orphan keeps working."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)


# -- sharing one file's load: start the helper, its work, taking its rows -------------------------


@dataclass
class Shared:
    split: Split
    tables: tuple[str, str]  # the helper's rows, in the scratch database and (the last part's) its tail file
    process: Helper


def share(scratch: Scratch, path: Path, source: Source, delimiter: str, rows: Rows) -> Optional[Shared]:
    """Start a helper on the last part of a large file, or None when the file is read by one process."""
    size = path.stat().st_size
    encoding = part_encoding(source.encoding)
    if size < min_bytes() or encoding is None or not usable():
        return None
    table = f"part_{rows.checks.ingestion_id}"
    try:
        split = find_split(path, size, encoding, delimiter, len(rows.checks.header))
        if split is None or split.lines <= rows.reader.line_num:
            return None
        schemas = scratch.attach()

        def work(send: Callable[[object], None]) -> LoadResult:
            return load_part((scratch.path, scratch.tail_path), table, path, split, encoding, delimiter, rows, send)

        tables = (f"{schemas[0]}.{quote(table)}", f"{schemas[1]}.{quote(table)}")
        return Shared(split, tables, Helper.start(work, sends=True))
    except (OSError, sqlite3.Error):
        return None  # no second process today (no fork, no scratch file): one process reads it all


def load_part(databases: tuple[Path, Path], table: str, path: Path, split: Split, encoding: str, delimiter: str,
              rows: Rows, send: Callable[[object], None]) -> LoadResult:
    """In the helper: check the rows after `split` and store the good ones in a table of the scratch database.

    The rows of the last TAIL_SHARE of the part go to a table of the second scratch file; what
    came before is committed and its counts sent first, so the parent copies those rows while
    the helper still reads the tail. The value returned counts the whole part.
    """
    with open(path, "rb") as raw:
        size = raw.seek(0, os.SEEK_END)
        raw.seek(split.offset)
        head_lines = _count_lines(raw, int((size - split.offset) * (1 - TAIL_SHARE)))
        raw.seek(split.offset)
        result = LoadResult(header=rows.checks.header)
        part = rows.on(csv.reader(text_lines(raw, encoding), delimiter=delimiter), result, line_base=split.lines)
        for database, stop in zip(databases, (head_lines, None)):
            conn = _scratch_table(database, table, rows.source)
            conn.execute("BEGIN")
            insert_batches(conn, part, part.batches() if stop is None else part.batches(stop=stop, exact=False),
                           table=quote(table), verb="INSERT")
            conn.execute("COMMIT")
            conn.close()
            if stop is not None:
                send(result)  # pickled now: what follows does not change what the parent gets
    result.rows_read = result.rows_loaded + result.bad_count
    return result


def _scratch_table(database: Path, table: str, source: Source) -> sqlite3.Connection:
    conn = sqlite3.connect(database, isolation_level=None)
    conn.execute(f"PRAGMA page_size={PAGE_SIZE}")  # as the database its rows are copied into
    conn.execute("PRAGMA journal_mode=OFF")  # scratch: its content is worthless once the parent has copied it
    conn.execute("PRAGMA synchronous=OFF")
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
        conn.execute(f"DROP TABLE {quote(name)}")  # an earlier file's rows, already copied
    columns = ", ".join(f"{quote(c)} {SQL_TYPES[source.type_of(c)]}" for c in source.columns)
    conn.execute(f"CREATE TABLE {quote(table)} (_ingestion_id INTEGER, _ts INTEGER, {columns})")
    return conn


def take_helper_rows(conn: sqlite3.Connection, rows: Rows, shared: Shared) -> bool:
    """Copy the helper's rows when its part starts exactly where the parent's ended; False: read on instead.

    The rows before the helper's tail are copied as soon as it sends their counts, inside a
    savepoint; when the tail then fails (or brings too many bad rows), the copy is rolled back
    and the parent reads on, exactly as if nothing had been copied.
    """
    source, result, max_bad_rows = rows.source, rows.result, rows.checks.max_bad_rows
    if rows.reader.line_num != shared.split.lines:
        return False  # a record runs across the split (a quoted field with a line break): the helper started wrong
    head = shared.process.part()
    if not isinstance(head, LoadResult) or result.bad_count + head.bad_count > max_bad_rows:
        return False  # the helper failed (bad encoding, broken CSV, too many bad rows): the parent judges
    conn.execute("SAVEPOINT csvreport_helper_rows")
    _copy(conn, source, shared.tables[0], head.rows_loaded)
    part = shared.process.result()
    if not isinstance(part, LoadResult) or result.bad_count + part.bad_count > max_bad_rows:
        conn.execute("ROLLBACK TO csvreport_helper_rows")
        conn.execute("RELEASE csvreport_helper_rows")
        return False
    _copy(conn, source, shared.tables[1], part.rows_loaded - head.rows_loaded)
    conn.execute("RELEASE csvreport_helper_rows")
    result.rows_loaded += part.rows_loaded
    result.bad_count += part.bad_count
    result.bad_rows += part.bad_rows[:max(0, max_bad_rows + 1 - len(result.bad_rows))]
    rows.merge_span(part.min_ts, part.max_ts)
    if rows.on_progress is not None:
        rows.on_progress(result.rows_loaded + result.bad_count)
    return True


def _copy(conn: sqlite3.Connection, source: Source, table: str, expected: int) -> None:
    names = column_names(source)
    verb = insert_verb(source)
    copied = conn.execute(f"{verb} INTO main.{quote(source.name)} ({names}) SELECT {names} FROM {table} "
                          "ORDER BY rowid").rowcount
    if copied != expected:
        raise RuntimeError(f"the helper stored {expected} rows but {copied} were copied")
