"""Load one CSV file into its source table: the rows read and checked (`rows`), by the compiled
loop (`rowloop`), stored with multi-row INSERTs (`insert`), a large file shared with a helper
process (`helper`).

The file is streamed: rows go from the csv reader through the checks straight into
`executemany`, so memory stays flat whatever the file's size. The caller owns the
transaction; a `FileRejected` raised here means the whole file must be rolled back.
"""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path
from typing import Callable, Optional

from csvreport import helper
from csvreport.config import Source
from csvreport.insert import batch_rows, insert_batches, sequence
from csvreport.rowloop import Rows
from csvreport.rows import (Checks, FileRejected, LoadResult, TooManyBadRows, count_rows, first_event_time,
                            first_undecodable, header_of, is_blank, plan_columns, python_encoding, read_sample,
                            sniff_delimiter, text_lines)
from csvreport.timeconv import TimestampParser


def load_rows(conn: sqlite3.Connection, source: Source, path: Path, ingestion_id: int,
              parser: Optional[TimestampParser], fallback_ts: int, max_bad_rows: int,
              on_progress: Optional[Callable[[int], None]] = None,
              scratch: Optional[helper.Scratch] = None) -> LoadResult:
    """Insert the rows of one file under `ingestion_id`; raise FileRejected when it cannot load.

    With a `scratch` database, a large file is shared with a helper process (`csvreport.helper`).
    """
    sample = read_sample(path, source)
    delimiter = source.delimiter or sniff_delimiter(sample)
    encoding = python_encoding(source.encoding)
    result = LoadResult()
    reader = None
    shared = None
    try:
        with open(path, "rb") as handle:
            reader = csv.reader(text_lines(handle, encoding), delimiter=delimiter)
            header = header_of(reader)
            if header is None:
                raise FileRejected("the file has no header line (it holds only blank lines)")
            result.header = header
            plan = plan_columns(source, header)
            example = first_event_time(sample, delimiter, header, plan)
            checks = Checks(source, header, plan, ingestion_id, parser, fallback_ts, max_bad_rows,
                            batch_rows(conn, len(source.columns) + 1), example)
            rows = Rows(reader, checks, result, on_progress)
            before = sequence(conn, source.name)
            try:
                if scratch is not None:
                    shared = helper.share(scratch, path, source, delimiter, rows)
                helped = False
                if shared is not None:
                    insert_batches(conn, rows, rows.batches(stop=shared.split.lines))
                    helped = helper.take_helper_rows(conn, rows, shared)
                    shared.process.cancel()
                if not helped:  # no helper, or the parent reads on where the helper would have begun
                    insert_batches(conn, rows, rows.batches())
            except TooManyBadRows:
                result.rows_read += sum(1 for r in reader if not is_blank(r))
                first = result.bad_rows[0]
                raise FileRejected(
                    f"more than max_bad_rows={max_bad_rows} bad rows ({result.bad_count} or more, "
                    f"{result.rows_read} rows in all); first at line {first.line}: {first.reason}",
                    first_bad_line=first.line, rows_read=result.rows_read) from None
            result.rows_read = result.rows_loaded + result.bad_count
            after = sequence(conn, source.name)
            if after > before:
                result.first_row_id, result.last_row_id = before + 1, after
    except UnicodeDecodeError:
        line, byte = first_undecodable(path, encoding)
        raise FileRejected(
            f"cannot be decoded as {source.encoding}: line {line} holds byte 0x{byte:02x}; set encoding for "
            f"source {source.name!r}, e.g. \"cp1252\" or \"latin-1\"",
            first_bad_line=line, rows_read=count_rows(path, encoding, delimiter)) from None
    except UnicodeError as exc:  # not a byte that fails: "utf-16" or "utf-32" on a file without a byte order mark
        raise FileRejected(
            f"cannot be decoded as {source.encoding} ({exc}): without a byte order mark at its start the byte "
            f"order is unknown; set encoding for source {source.name!r} to one that names it, e.g. \"utf-16-le\" "
            f"or \"utf-16-be\"", first_bad_line=1, rows_read=count_rows(path, encoding, delimiter)) from None
    except csv.Error as exc:
        at = reader.line_num if reader is not None else None
        raise FileRejected(f"not readable as CSV (line {at}): {exc}", first_bad_line=at,
                           rows_read=count_rows(path, encoding, delimiter)) from None
    except FileRejected as exc:
        if exc.rows_read is None:
            exc.rows_read = count_rows(path, encoding, delimiter)
        raise
    finally:
        if shared is not None:
            shared.process.cancel()
    return result
