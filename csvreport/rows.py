"""Reading and checking the rows of one CSV file: encoding, dialect, header, the reference row check.

`check_row` is the reference: it decides every row and words every reason. The compiled
row loop (`csvreport.rowloop`) takes only rows this check would take with the same values,
and hands it everything else. `FileRejected` means the file as a whole cannot be loaded
(the caller rolls it back and puts it in quarantine).
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, Optional, Protocol

from csvreport.config import Source
from csvreport.timeconv import TimestampParser

SAMPLE_BYTES = 64 * 1024
CANDIDATE_DELIMITERS = (",", ";", "\t", "|")
DECIMAL_COMMA_RE = re.compile(r"[+-]?(?:\d{1,3}(?:\.\d{3})+|\d+)(?:,\d+)?\Z")
INTEGER_GROUPED_RE = re.compile(r"[+-]?\d{1,3}(?:\.\d{3})+\Z")

# A quoted field may legitimately be long (notes, JSON); the stdlib default is 128 KiB.
csv.field_size_limit(16 * 2**20)

# What a NULL value is bound as. SQLite stores no NaN: a NaN bound to any column is stored
# as NULL. Binding None instead costs eight times as much in Python's sqlite3 (it looks for
# an adapter for None on every value), which is 0.06 s per million rows with one empty value.
NULL = math.nan


class FileRejected(Exception):
    """The file as a whole cannot be loaded; the message is the reason an operator reads."""

    def __init__(self, reason: str, first_bad_line: Optional[int] = None, rows_read: Optional[int] = None):
        super().__init__(reason)
        self.reason = reason
        self.first_bad_line = first_bad_line
        self.rows_read = rows_read

class RecordReader(Protocol):
    """A csv reader: records, and the physical line it has read up to."""

    @property
    def line_num(self) -> int: ...

    def __iter__(self) -> Iterator[list[str]]: ...

    def __next__(self) -> list[str]: ...


TEXT_CHUNK = 1 << 15  # bytes decoded at a time by `text_lines`: 32 KB measured best (16: +0.01 s, 128: +0.1 s)


def text_lines(raw: BinaryIO, encoding: str) -> Iterator[str]:
    """The lines of a binary stream from where it stands, decoded, with their line ends, split exactly
    as `open(newline="")` splits them: at "\n", "\r\n" and a lone "\r", nothing else.

    The csv reader takes them from lists, with no call into the text layer or a generator per line:
    0.07 of its 0.7 s per million lines. `str.splitlines` does the splitting; a chunk holding one of
    the other characters it ends lines at ("\x1c", "\x85", "\u2028" ...) is split by the text layer
    instead. Undecodable bytes raise UnicodeDecodeError, and a "utf-16" or "utf-32" stream without a
    byte order mark UnicodeError, as a text file does.
    """
    return itertools.chain.from_iterable(_line_lists(raw, encoding))


def _line_lists(raw: BinaryIO, encoding: str) -> Iterator[list[str]]:
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    pending: list[str] = []  # the start of a line that goes on in the next chunk, in pieces
    while True:
        data = raw.read(TEXT_CHUNK)
        text = decoder.decode(data, final=not data)
        if not data:
            last = "".join(pending) + text
            if last:
                yield [last]
            return
        if pending:
            if "\n" not in text and "\r" not in text and pending[-1][-1:] != "\r":
                pending.append(text)  # a long line: joined once where it ends, not again with every chunk
                continue
            text = "".join(pending) + text
            pending = []
        if any(c in text for c in _OTHER_LINE_ENDS):  # under 1 µs each for 32 KB
            lines = io.StringIO(text, newline="").readlines()
        else:
            lines = text.splitlines(True)
        # The last line waits for the next chunk unless it ends with "\n": it may go on there, or end
        # with a "\r" whose "\n" is there.
        if lines and lines[-1][-1] != "\n":
            pending.append(lines.pop())
        yield lines


# Where str.splitlines ends a line and open(newline="") does not.
_OTHER_LINE_ENDS = "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


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


class TooManyBadRows(Exception):
    """More bad rows than max_bad_rows: the file goes to quarantine."""


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


def read_sample(path: Path, source: Source) -> str:
    with open(path, "rb") as handle:
        raw = handle.read(SAMPLE_BYTES)
    if not raw:
        raise FileRejected("the file is empty (0 bytes): there is no header", rows_read=0)
    encoding = python_encoding(source.encoding)
    if b"\x00" in raw and not encoding.startswith(("utf-16", "utf-32", "utf_16", "utf_32")):
        hint = " it looks like UTF-16: set encoding = \"utf-16\"" if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else \
            " it is binary (compressed or not a CSV at all)"
        raise FileRejected(f"the file contains NUL bytes, so it is not {source.encoding} text;{hint}")
    return raw.decode(encoding, errors="replace")


def converter(kind: str, decimal: str) -> Callable[[str], object]:
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


def record_start(line_num: int, fields: list[str]) -> int:
    """The physical line a record began on, from the reader's `line_num` after reading it.

    Lines end at "\n", "\r\n" or a lone "\r" (`open(newline="")`); a line end inside a record
    is inside a quoted field, where the csv module keeps it as it was, so the record began
    that many lines before the one it ended on.
    """
    return line_num - sum(f.count("\n") + f.count("\r") - f.count("\r\n") for f in fields)


def first_event_time(sample: str, delimiter: str, header: list[str], plan: Plan) -> Optional[str]:
    """The event time of the first row in the file's first bytes, as the row loop reads it (fields
    joined with a space); None when there is none."""
    try:
        reader = csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter)
        if header_of(reader) is None:
            return None
        for record in reader:
            if len(record) == len(header):
                return " ".join(record[i] for i in plan.ts_indexes)
            if not is_blank(record):
                return None
    except csv.Error:
        return None
    return None


def header_of(reader: Iterator[list[str]]) -> Optional[list[str]]:
    for record in reader:
        if not is_blank(record):
            return record
    return None


@dataclass
class Plan:
    indexes: list[int]
    converters: list[Optional[Callable[[str], object]]]
    ts_indexes: list[int]


def plan_columns(source: Source, header: list[str]) -> Plan:
    positions: dict[str, list[int]] = {}
    for i, name in enumerate(header):
        positions.setdefault(name.strip().casefold(), []).append(i)

    def find(column: str) -> int:
        found = positions.get(column.strip().casefold())
        if not found:
            shown = ", ".join(repr(h) for h in header[:20]) + (" …" if len(header) > 20 else "")
            raise FileRejected(f"the header lacks column {column!r} (header: {shown}); "
                             f"fix the export or sources.{source.name}.columns")
        if len(found) > 1:
            raise FileRejected(f"column {column!r} appears {len(found)} times in the header, so its values are "
                               "ambiguous")
        return found[0]

    indexes = [find(c) for c in source.columns]
    ts_indexes = [find(c) for c in source.timestamp]
    converters = [None if source.type_of(c) == "text" else converter(source.type_of(c), source.decimal)
                  for c in source.columns]
    return Plan(indexes, converters, ts_indexes)


@dataclass(frozen=True)
class Checks:
    """What every row of one file is checked against: its source, header and plan, and this load's values."""

    source: Source
    header: list[str]
    plan: Plan
    ingestion_id: int
    parser: Optional[TimestampParser]
    fallback_ts: int  # the event time of every row when the source has no timestamp column
    max_bad_rows: int
    batch_rows: int  # rows per INSERT statement
    example: Optional[str] = None  # the first row's event time, which picks the cut of the times (timeconv)

    @property
    def width(self) -> int:
        """Values per row of a batch: the event time and the allowlisted columns. The ingestion id is
        the same for every row of a load: the INSERT statement holds it, no row carries it."""
        return len(self.source.columns) + 1


def check_row(checks: Checks, result: LoadResult) -> Callable[[list[str], int, int], Optional[tuple]]:
    """The reference check of one row: its values, or None for a blank line or a bad row (recorded)."""
    source, plan, parser = checks.source, checks.plan, checks.parser
    fallback_ts, max_bad_rows, width_out = checks.fallback_ts, checks.max_bad_rows, checks.width
    width = len(checks.header)
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
            raise TooManyBadRows

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
        values: list[object] = [ts]
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


def first_undecodable(path: Path, encoding: str) -> tuple[int, int]:
    """Line number (1-based, physical) and value of the first byte that does not decode."""
    decoder = codecs.getincrementaldecoder(encoding)()
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                decoder.decode(raw)
            except UnicodeDecodeError as exc:
                return number, exc.object[exc.start]
    return number, 0


def count_rows(path: Path, encoding: str, delimiter: str) -> Optional[int]:
    """Data rows of a file that cannot be loaded, read leniently, so its rows are accounted for in quarantine."""
    try:
        with open(path, encoding=encoding, newline="", errors="replace") as handle:
            reader = csv.reader(handle, delimiter=delimiter)
            if header_of(reader) is None:
                return 0
            return sum(1 for record in reader if not is_blank(record))
    except (csv.Error, OSError, UnicodeError):  # UnicodeError: a UTF-16 file without its byte order mark
        return None
