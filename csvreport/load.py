"""Parse one CSV file and insert its rows: encoding, dialect, header, row checks, types.

The file is streamed: rows go from the csv reader through the checks straight into
`executemany`, so memory stays flat whatever the file's size. The caller owns the
transaction; a `Quarantine` raised here means the whole file must be rolled back.
"""

from __future__ import annotations

import codecs
import csv
import functools
import io
import math
import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional

from csvreport import helper
from csvreport.config import Source
from csvreport.db import SQL_TYPES, quote
from csvreport.timeconv import MINUTE_SECOND, TimestampParser

SAMPLE_BYTES = 64 * 1024
BATCH_ROWS = 64  # rows per INSERT statement; measured best between 16 and 256 (docs/performance.md)
CANDIDATE_DELIMITERS = (",", ";", "\t", "|")
DECIMAL_COMMA_RE = re.compile(r"[+-]?(?:\d{1,3}(?:\.\d{3})+|\d+)(?:,\d+)?\Z")
INTEGER_GROUPED_RE = re.compile(r"[+-]?\d{1,3}(?:\.\d{3})+\Z")

# A quoted field may legitimately be long (notes, JSON); the stdlib default is 128 KiB.
csv.field_size_limit(16 * 2**20)

# What a NULL value is bound as. SQLite stores no NaN: a NaN bound to any column is stored
# as NULL. Binding None instead costs eight times as much in Python's sqlite3 (it looks for
# an adapter for None on every value), which is 0.06 s per million rows with one empty value.
NULL = math.nan


class Quarantine(Exception):
    """The file as a whole cannot be loaded; the message is the reason an operator reads."""

    def __init__(self, reason: str, first_bad_line: Optional[int] = None, rows_read: Optional[int] = None):
        super().__init__(reason)
        self.reason = reason
        self.first_bad_line = first_bad_line
        self.rows_read = rows_read


@dataclass
class BadRow:
    line: int
    reason: str
    fields: list[str]


@dataclass
class LoadResult:
    header: list[str] = field(default_factory=list)
    rows_read: int = 0
    rows_loaded: int = 0
    bad_count: int = 0
    bad_rows: list[BadRow] = field(default_factory=list)
    min_ts: Optional[int] = None
    max_ts: Optional[int] = None
    first_row_id: Optional[int] = None
    last_row_id: Optional[int] = None


class _TooManyBadRows(Exception):
    pass


def is_blank(record: list[str]) -> bool:
    """A blank line, or a line whose fields are all empty or spaces: not a row, not a bad row."""
    return not any(f.strip() for f in record)


def python_encoding(encoding: str) -> str:
    # A UTF-8 byte order mark is accepted (and dropped) whatever the spelling of utf-8.
    return "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding


def sniff_delimiter(sample: str) -> str:
    """Pick among , ; tab | the delimiter that splits the first lines most consistently."""
    lines = sample.splitlines()[:50]
    if len(sample) >= SAMPLE_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last line of a cut sample may be partial
    best, best_score = ",", (0, 0)
    for delimiter in CANDIDATE_DELIMITERS:
        try:
            records = [r for r in csv.reader(lines, delimiter=delimiter) if not is_blank(r)]
        except csv.Error:
            continue
        if not records or len(records[0]) < 2:
            continue
        width = len(records[0])
        consistent = sum(1 for r in records if len(r) == width)
        score = (consistent, width)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _read_sample(path: Path, source: Source) -> str:
    with open(path, "rb") as handle:
        raw = handle.read(SAMPLE_BYTES)
    if not raw:
        raise Quarantine("the file is empty (0 bytes): there is no header", rows_read=0)
    encoding = python_encoding(source.encoding)
    if b"\x00" in raw and not encoding.startswith(("utf-16", "utf-32", "utf_16", "utf_32")):
        hint = " it looks like UTF-16: set encoding = \"utf-16\"" if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else \
            " it is binary (compressed or not a CSV at all)"
        raise Quarantine(f"the file contains NUL bytes, so it is not {source.encoding} text;{hint}")
    return raw.decode(encoding, errors="replace")


def _converter(kind: str, decimal: str) -> Callable[[str], object]:
    if kind == "integer":
        def to_int(text: str) -> int:
            text = text.strip()
            if "_" in text:
                raise ValueError
            if decimal == "," and "." in text and INTEGER_GROUPED_RE.match(text):
                text = text.replace(".", "")
            return int(text)
        return to_int
    if decimal == ",":
        def to_real_comma(text: str) -> float:
            text = text.strip()
            if not DECIMAL_COMMA_RE.match(text):
                raise ValueError
            return float(text.replace(".", "").replace(",", "."))
        return to_real_comma

    def to_real(text: str) -> float:
        value = float(text)
        if "_" in text or not math.isfinite(value):
            raise ValueError
        return value
    return to_real


def load_rows(conn: sqlite3.Connection, source: Source, path: Path, ingestion_id: int,
              parser: Optional[TimestampParser], fallback_ts: int, max_bad_rows: int,
              on_progress: Optional[Callable[[int], None]] = None,
              scratch: Optional[helper.Scratch] = None) -> LoadResult:
    """Insert the rows of one file under `ingestion_id`; raise Quarantine when it cannot load.

    With a `scratch` database, a large file is shared with a helper process (`csvreport.helper`).
    """
    sample = _read_sample(path, source)
    delimiter = source.delimiter or sniff_delimiter(sample)
    encoding = python_encoding(source.encoding)
    result = LoadResult()
    reader = None
    shared = None
    try:
        with open(path, encoding=encoding, newline="", errors="strict") as handle:
            reader = csv.reader(handle, delimiter=delimiter)
            header = _header(reader)
            if header is None:
                raise Quarantine("the file has no header line (it holds only blank lines)")
            result.header = header
            plan = _plan(source, header, path)
            rows = _Rows(reader, source, header, plan, ingestion_id, parser, fallback_ts, max_bad_rows, result,
                         on_progress, _batch_rows(conn, len(source.columns) + 2))
            before = _sequence(conn, source.name)
            try:
                if scratch is not None:
                    shared = _share(scratch, path, source, delimiter, rows)
                helped = False
                if shared is not None:
                    _insert_batches(conn, rows, rows.batches(stop=shared.split.lines))
                    helped = _take_helper_rows(conn, rows, shared)
                    shared.process.cancel()
                if not helped:  # no helper, or the parent reads on where the helper would have begun
                    _insert_batches(conn, rows, rows.batches())
            except _TooManyBadRows:
                result.rows_read += sum(1 for r in reader if not is_blank(r))
                first = result.bad_rows[0]
                raise Quarantine(
                    f"more than max_bad_rows={max_bad_rows} bad rows ({result.bad_count} or more, "
                    f"{result.rows_read} rows in all); first at line {first.line}: {first.reason}",
                    first_bad_line=first.line, rows_read=result.rows_read) from None
            result.rows_read = result.rows_loaded + result.bad_count
            after = _sequence(conn, source.name)
            if after > before:
                result.first_row_id, result.last_row_id = before + 1, after
    except UnicodeDecodeError:
        line, byte = _first_undecodable(path, encoding)
        raise Quarantine(
            f"cannot be decoded as {source.encoding}: line {line} holds byte 0x{byte:02x}; set encoding for "
            f"source {source.name!r}, e.g. \"cp1252\" or \"latin-1\"",
            first_bad_line=line, rows_read=_count_rows(path, encoding, delimiter)) from None
    except csv.Error as exc:
        at = reader.line_num if reader is not None else None
        raise Quarantine(f"not readable as CSV (line {at}): {exc}", first_bad_line=at,
                         rows_read=_count_rows(path, encoding, delimiter)) from None
    except Quarantine as exc:
        if exc.rows_read is None:
            exc.rows_read = _count_rows(path, encoding, delimiter)
        raise
    finally:
        if shared is not None:
            shared.process.cancel()
    return result


@dataclass
class _Shared:
    split: helper.Split
    table: str  # in the scratch database
    process: helper.Helper


def _share(scratch: helper.Scratch, path: Path, source: Source, delimiter: str, rows: "_Rows") -> Optional[_Shared]:
    """Start a helper on the last part of a large file, or None when the file is read by one process."""
    size = path.stat().st_size
    encoding = helper.part_encoding(source.encoding)
    if size < helper.min_bytes() or encoding is None or not helper.usable():
        return None
    table = f"part_{rows.ingestion_id}"
    try:
        split = helper.find_split(path, size, encoding, delimiter, len(rows.header))
        if split is None or split.lines <= rows.reader.line_num:
            return None
        schema = scratch.attach()

        def work() -> LoadResult:
            return _load_part(scratch.path, table, path, split, encoding, delimiter, rows)

        return _Shared(split, f"{schema}.{quote(table)}", helper.Helper.start(work))
    except (OSError, sqlite3.Error):
        return None  # no second process today (no fork, no scratch file): one process reads it all


def _load_part(database: Path, table: str, path: Path, split: helper.Split, encoding: str, delimiter: str,
               rows: "_Rows") -> LoadResult:
    """In the helper: check the rows after `split` and store the good ones in a table of the scratch database."""
    source = rows.source
    conn = sqlite3.connect(database, isolation_level=None)
    conn.execute("PRAGMA journal_mode=OFF")  # scratch: its content is worthless once the parent has copied it
    conn.execute("PRAGMA synchronous=OFF")
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
        conn.execute(f"DROP TABLE {quote(name)}")  # an earlier file's rows, already copied
    columns = ", ".join(f"{quote(c)} {SQL_TYPES[source.type_of(c)]}" for c in source.columns)
    conn.execute(f"CREATE TABLE {quote(table)} (_ingestion_id INTEGER, _ts INTEGER, {columns})")
    result = LoadResult(header=rows.result.header)
    with open(path, "rb") as raw:
        raw.seek(split.offset)
        with io.TextIOWrapper(raw, encoding=encoding, newline="", errors="strict") as text:
            part = rows.on(csv.reader(text, delimiter=delimiter), result, line_base=split.lines)
            conn.execute("BEGIN")
            _insert_batches(conn, part, part.batches(), table=quote(table), verb="INSERT")
            conn.execute("COMMIT")
    conn.close()
    result.rows_read = result.rows_loaded + result.bad_count
    return result


def _take_helper_rows(conn: sqlite3.Connection, rows: "_Rows", shared: _Shared) -> bool:
    """Copy the helper's rows when its part starts exactly where the parent's ended; False: read on instead."""
    source, result = rows.source, rows.result
    if rows.reader.line_num != shared.split.lines:
        return False  # a record runs across the split (a quoted field with a line break): the helper started wrong
    part = shared.process.result()
    if not isinstance(part, LoadResult) or result.bad_count + part.bad_count > rows.max_bad_rows:
        return False  # the helper failed (bad encoding, broken CSV, too many bad rows): the parent judges
    names = _column_names(source)
    verb = "INSERT OR REPLACE" if source.key else "INSERT OR FAIL"
    copied = conn.execute(f"{verb} INTO main.{quote(source.name)} ({names}) SELECT {names} FROM {shared.table} "
                          "ORDER BY rowid").rowcount
    if copied != part.rows_loaded:
        raise RuntimeError(f"the helper stored {part.rows_loaded} rows but {copied} were copied")
    result.rows_loaded += part.rows_loaded
    result.bad_count += part.bad_count
    result.bad_rows += part.bad_rows[:max(0, rows.max_bad_rows + 1 - len(result.bad_rows))]
    rows.merge_span(part.min_ts, part.max_ts)
    if rows.on_progress is not None:
        rows.on_progress(result.rows_loaded + result.bad_count)
    return True


def _first_undecodable(path: Path, encoding: str) -> tuple[int, int]:
    """Line number (1-based, physical) and value of the first byte that does not decode."""
    decoder = codecs.getincrementaldecoder(encoding)()
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                decoder.decode(raw)
            except UnicodeDecodeError as exc:
                return number, exc.object[exc.start]
    return number, 0


def _count_rows(path: Path, encoding: str, delimiter: str) -> Optional[int]:
    """Data rows of a file that cannot be loaded, read leniently, so its rows are accounted for in quarantine."""
    try:
        with open(path, encoding=encoding, newline="", errors="replace") as handle:
            reader = csv.reader(handle, delimiter=delimiter)
            if _header(reader) is None:
                return 0
            return sum(1 for record in reader if not is_blank(record))
    except (csv.Error, OSError):
        return None


def _batch_rows(conn: sqlite3.Connection, width: int) -> int:
    """Rows per INSERT statement: BATCH_ROWS, fewer when the row is wide (SQLite's limit on parameters)."""
    getlimit = getattr(conn, "getlimit", None)  # Python 3.11+; older builds allow at least 999
    limit = getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) if getlimit else 999
    return max(1, min(BATCH_ROWS, limit // width))


def _column_names(source: Source) -> str:
    return ", ".join(["_ingestion_id", "_ts", *(quote(c) for c in source.columns)])


def _insert_batches(conn: sqlite3.Connection, rows: "_Rows", batches: Iterator[list],
                    table: Optional[str] = None, verb: Optional[str] = None) -> None:
    """Insert flat batches of rows with multi-row INSERTs, in file order.

    One statement per BATCH_ROWS rows instead of one per row: SQLite then updates the
    AUTOINCREMENT counter and runs the statement's setup once per batch. A shorter batch
    (the end of a part) gets a statement of its own before the next full one.
    """
    source, width = rows.source, rows.width
    table = table or quote(source.name)
    names = _column_names(source)
    row = "(" + ", ".join("?" * width) + ")"
    # OR FAIL: the statement journal is not needed; a failing statement fails the whole file anyway.
    verb = verb or ("INSERT OR REPLACE" if source.key else "INSERT OR FAIL")
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


def _sequence(conn: sqlite3.Connection, table: str) -> int:
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).fetchone()
    return row[0] if row else 0


def _header(reader: Iterator[list[str]]) -> Optional[list[str]]:
    for record in reader:
        if not is_blank(record):
            return record
    return None


@dataclass
class _Plan:
    indexes: list[int]
    converters: list[Optional[Callable[[str], object]]]
    ts_indexes: list[int]


def _plan(source: Source, header: list[str], path: Path) -> _Plan:
    positions: dict[str, list[int]] = {}
    for i, name in enumerate(header):
        positions.setdefault(name.strip().casefold(), []).append(i)

    def find(column: str) -> int:
        found = positions.get(column.strip().casefold())
        if not found:
            shown = ", ".join(repr(h) for h in header[:20]) + (" …" if len(header) > 20 else "")
            raise Quarantine(f"the header lacks column {column!r} (header: {shown}); "
                             f"fix the export or sources.{source.name}.columns")
        if len(found) > 1:
            raise Quarantine(f"column {column!r} appears {len(found)} times in the header, so its values are ambiguous")
        return found[0]

    indexes = [find(c) for c in source.columns]
    ts_indexes = [find(c) for c in source.timestamp]
    converters = [None if source.type_of(c) == "text" else _converter(source.type_of(c), source.decimal)
                  for c in source.columns]
    return _Plan(indexes, converters, ts_indexes)


class _Rows:
    """The checked rows of one file (or of one part of it), as flat batches for `_insert_batches`.

    Each row goes through a loop compiled for this file's columns (`_fast_loop`); a row it
    cannot take as it is (a bad row, a blank line, an empty or null value it does not
    handle, an unusual timestamp) goes through `_check_row`, the reference, which decides.
    Counts, bad rows and the span of event times are kept in `result`.
    """

    def __init__(self, reader, source: Source, header: list[str], plan: _Plan, ingestion_id: int,
                 parser: Optional[TimestampParser], fallback_ts: int, max_bad_rows: int, result: LoadResult,
                 on_progress: Optional[Callable[[int], None]], batch_rows: int, line_base: int = 0):
        self.reader, self.source, self.header, self.plan = reader, source, header, plan
        self.ingestion_id, self.parser, self.fallback_ts = ingestion_id, parser, fallback_ts
        self.max_bad_rows, self.result, self.on_progress = max_bad_rows, result, on_progress
        self.batch_rows, self.line_base = batch_rows, line_base
        self.width = len(source.columns) + 2
        self.check = _check_row(source, header, plan, ingestion_id, parser, fallback_ts, max_bad_rows, result,
                                self.width)
        self.loop = _fast_loop(source, header, plan, ingestion_id, parser, fallback_ts)

    def on(self, reader, result: LoadResult, line_base: int) -> "_Rows":
        """The same checks on another reader (the helper's part), counted in another result."""
        return _Rows(reader, self.source, self.header, self.plan, self.ingestion_id, self.parser, self.fallback_ts,
                     self.max_bad_rows, result, None, self.batch_rows, line_base)

    def batches(self, stop: float = math.inf) -> Iterator[list]:
        """The good rows of the records that end before physical line `stop` + 1 (all, by default)."""
        result, width = self.result, self.width
        next_progress = result.rows_loaded + 10000
        for batch in self.loop(self.reader, self.check, self.batch_rows * width, stop, self.line_base):
            stamps = batch[1::width]
            self.merge_span(min(stamps), max(stamps))
            result.rows_loaded += len(stamps)
            if self.on_progress is not None and result.rows_loaded >= next_progress:
                self.on_progress(result.rows_loaded + result.bad_count)
                next_progress = result.rows_loaded + 10000
            yield batch

    def merge_span(self, low: Optional[int], high: Optional[int]) -> None:
        result = self.result
        if low is not None and (result.min_ts is None or low < result.min_ts):
            result.min_ts = low
        if high is not None and (result.max_ts is None or high > result.max_ts):
            result.max_ts = high


def _check_row(source: Source, header: list[str], plan: _Plan, ingestion_id: int,
               parser: Optional[TimestampParser], fallback_ts: int, max_bad_rows: int, result: LoadResult,
               width_out: int) -> Callable[[list[str], int, int], Optional[tuple]]:
    """The reference check of one row: its values, or None for a blank line or a bad row (recorded)."""
    width = len(header)
    nulls = source.null_values
    columns = list(zip(source.columns, plan.indexes, plan.converters))
    ts_indexes = plan.ts_indexes
    single_ts = ts_indexes[0] if len(ts_indexes) == 1 else None

    def bad(line: int, reason: str, fields: list[str], pending: int) -> None:
        result.bad_count += 1
        if len(result.bad_rows) <= max_bad_rows:
            result.bad_rows.append(BadRow(line, reason, fields))
        if result.bad_count > max_bad_rows:
            result.rows_read = result.rows_loaded + pending // width_out + result.bad_count
            raise _TooManyBadRows

    def check(fields: list[str], line: int, pending: int) -> Optional[tuple]:
        if is_blank(fields):
            return None  # blank line, or a line of empty fields: not a row
        if len(fields) != width:
            bad(line, f"{len(fields)} fields where the header has {width}", fields, pending)
            return None
        try:
            if parser is None:
                ts = fallback_ts
            else:
                text = fields[single_ts] if single_ts is not None else " ".join(fields[i] for i in ts_indexes)
                ts = parser(text)
        except ValueError as exc:
            bad(line, str(exc), fields, pending)
            return None
        values: list[object] = [ingestion_id, ts]
        for name, index, convert in columns:
            text = fields[index]
            if text.strip() in nulls:
                values.append(NULL)
            elif convert is None:
                values.append(text)
            else:
                try:
                    values.append(convert(text))
                except ValueError:
                    integer = convert.__name__ == "to_int"
                    bad(line, f"column {name!r}: {text!r} is not {'an integer' if integer else 'a number'}"
                        + (" with decimal ','" if source.decimal == "," else ""), fields, pending)
                    return None
        return tuple(values)

    return check


def _fast_loop(source: Source, header: list[str], plan: _Plan, ingestion_id: int,
               parser: Optional[TimestampParser], fallback_ts: int) -> Callable:
    """Compile the row loop for this file's layout: one generator, no per-column loop or call.

    It takes a row only when the reference would take it with the same values: the field
    count matches, the timestamp has the common ISO shape (or parses), each typed value
    converts by the same rule. Anything else raises inside the loop and goes to `check`.
    The generated code holds only positions and names of helpers, never text from a file.
    """
    helpers: dict[str, object] = {"NULL": NULL, "FLOAT": float, "INT": int, "NULLS": source.null_values,
                                  "IID": ingestion_id, "FALLBACK": fallback_ts}
    only_empty = source.null_values == frozenset({""})
    body: list[str] = [f"if len(f) != {len(header)}: raise IndexError"]
    if parser is None:
        body += ["if not ''.join(f).strip(): raise ValueError", "ts = FALLBACK"]  # blank: let check skip it
    else:
        indexes = plan.ts_indexes
        text = f"f[{indexes[0]}]" if len(indexes) == 1 else ' + " " + '.join(f"f[{i}]" for i in indexes)
        body.append(f"t = {text}")
        if parser.fmt is None:
            helpers.update(HOURS=parser.hours, MINUTE_SECOND=MINUTE_SECOND, SLOW_TS=parser.parse)
            # An hour cached as None (offset shift inside it) or an unusual shape: the full parser.
            body += ["try: ts = HOURS[t[:14]] + MINUTE_SECOND[t[14:]]",
                     "except (KeyError, TypeError): ts = SLOW_TS(t)"]
        else:
            helpers["PARSE"] = parser.parse
            body.append("ts = PARSE(t)")
    names = []
    for k, (column, index, convert) in enumerate(zip(source.columns, plan.indexes, plan.converters)):
        v = f"c{k}"
        names.append(v)
        body.append(f"{v} = f[{index}]")
        kind = source.type_of(column)
        if kind == "text":
            body.append(f"if not {v}.strip(): {v} = NULL" if only_empty else f"if {v}.strip() in NULLS: {v} = NULL")
            continue
        # Typed: an empty value is NULL; whitespace-only or other null texts make the conversion fail -> check.
        null_test = f"not {v}" if only_empty else f"{v}.strip() in NULLS"
        if source.decimal != ".":
            helpers[f"CONVERT{k}"] = convert
            convert_lines = [f"{v} = CONVERT{k}({v})"]
        elif kind == "integer":
            convert_lines = [f'if "_" in {v}: raise ValueError', f"{v} = INT({v})"]
        else:  # x - x is NaN (true) for inf and nan, 0.0 (false) for every finite float
            convert_lines = [f'if "_" in {v}: raise ValueError', f"{v} = FLOAT({v})", f"if {v} - {v}: raise ValueError"]
        body.append(f"if {null_test}: {v} = NULL")
        body.append("else:")
        body += ["    " + line for line in convert_lines]
    body.append(f"batch += (IID, ts, {', '.join(names)},)")
    inner = "\n".join("            " + line for line in body)
    code = f"""
def loop(reader, check, batch_len, stop, base):
    batch = []
    previous = reader.line_num
    for f in reader:
        try:
{inner}
        except Exception:
            row = check(f, base + previous + 1, len(batch))
            if row is not None:
                batch += row
        previous = reader.line_num
        if len(batch) >= batch_len:
            yield batch
            batch = []
        if previous >= stop:
            break
    if batch:
        yield batch
"""
    namespace: dict[str, object] = dict(helpers)
    exec(_compiled(code, f"<row loop of source {source.name}>"), namespace)  # noqa: S102 - positions only
    return namespace["loop"]  # type: ignore[return-value]


@functools.lru_cache(maxsize=64)
def _compiled(code: str, name: str):
    # Compiling costs 0.3 ms: a run over thousands of small files of one layout compiles once.
    return compile(code, name, "exec")
