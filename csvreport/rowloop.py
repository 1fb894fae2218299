"""The compiled row loop: the checked rows of one file as flat batches, at the speed of the csv module.

The reference check (`rows.check_row`) walks a list of (column, converter) pairs per row.
The loop here is generated from the file's header and the source's configuration:
positions are constants, the timestamp is a cut and two or three dict look-ups (`timeconv`,
picked by the file's first time), each type check is inlined, and records are read 64 at a
time. It takes a row only when the reference would take it with the same values; anything
else raises inside the loop and goes to the reference, which decides.
"""

from __future__ import annotations

import functools
import itertools
import math
from types import CodeType
from typing import Callable, Iterator, Optional

from csvreport.rows import NULL, Checks, LoadResult, RecordReader, check_row, record_start


class Rows:
    """The checked rows of one file (or of one part of it), as flat batches for `insert.insert_batches`.

    Each row goes through a loop compiled for this file's columns (`compile_loop`); a row it
    cannot take as it is (a bad row, a blank line, an empty or null value it does not
    handle, an unusual timestamp) goes through `rows.check_row`, the reference, which decides.
    Counts, bad rows and the span of event times are kept in `result`.
    """

    def __init__(self, reader: RecordReader, checks: Checks, result: LoadResult,
                 on_progress: Optional[Callable[[int], None]] = None, line_base: int = 0) -> None:
        self.reader, self.checks, self.result = reader, checks, result
        self.on_progress, self.line_base = on_progress, line_base
        self.source, self.width, self.batch_rows = checks.source, checks.width, checks.batch_rows
        self.check = check_row(checks, result)
        self.loop = compile_loop(checks)

    def on(self, reader: RecordReader, result: LoadResult, line_base: int) -> "Rows":
        """The same checks on another reader (the helper's part), counted in another result."""
        return Rows(reader, self.checks, result, None, line_base)

    def batches(self, stop: float = math.inf, exact: bool = True) -> Iterator[list]:
        """The good rows of the records that end before physical line `stop` + 1 (all, by default).

        Not `exact`: the records up to a whole read of BATCH_ROWS records past `stop` may come too (the
        helper's first step, whose end only has to be near its line).
        """
        result, width = self.result, self.width
        next_progress = result.rows_loaded + 10000
        for batch in self.loop(self.reader, self.check, self.batch_rows * width, stop, self.line_base, exact):
            stamps = batch[0::width]
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


def compile_loop(checks: Checks, reference: bool = False) -> Callable:
    """Compile the row loop for this file's layout: a generator, no per-column loop or call.

    It takes a row only when the reference would take it with the same values: the field
    count matches, the timestamp has the shape the file's first time picked (or parses), each
    typed value converts by the same rule. Anything else raises inside the loop and goes to `check`.
    The generated code holds only positions and names of helpers, never text from a file.
    With `reference`, the same loop hands every row to `check` (for tests and the benchmark).
    """
    source, header, plan, parser = checks.source, checks.header, checks.plan, checks.parser
    helpers: dict[str, object] = {"NULL": NULL, "FLOAT": float, "INT": int, "NULLS": source.null_values,
                                  "FALLBACK": checks.fallback_ts, "WIDTH": checks.width}
    only_empty = source.null_values == frozenset({""})
    # One unpacking of the whole record into a name per field: it checks the field count too
    # (another count raises ValueError, and the row goes to `check`), at a third of the cost of
    # a len() test and a subscript per field.
    body: list[str] = [f"{', '.join(f'h{i}' for i in range(len(header)))}, = f"]
    if parser is None:
        body += ["if not ''.join(f).strip(): raise ValueError", "ts = FALLBACK"]  # blank: let check skip it
    else:
        indexes = plan.ts_indexes
        text = f"h{indexes[0]}" if len(indexes) == 1 else ' + " " + '.join(f"h{i}" for i in indexes)
        # A date and a time in two columns are cut without joining them first; the join is for the full parser.
        joined = parser.joined_expression(f"h{indexes[0]}", f"h{indexes[1]}", checks.example) \
            if len(indexes) == 2 else None
        if joined is None:
            body.append(f"t = {text}")
        fast = joined or parser.fast_expression("t", checks.example)
        if fast is not None:
            expression, bound = fast
            helpers.update(bound, SLOW_TS=parser.full)
            # An hour cached as None (offset shift inside it) or an unusual shape: the full parser.
            slow = "t" if joined is None else text
            body += [f"try: ts = {expression}", f"except (KeyError, TypeError): ts = SLOW_TS({slow})"]
        else:
            helpers["PARSE"] = parser.parse
            body.append("ts = PARSE(t)")
    # With the default null values, the field the row's time was read from alone is not blank: it
    # parsed. (A configured null value might be a time, so the test stays then.)
    time_field = plan.ts_indexes[0] if parser is not None and only_empty and len(plan.ts_indexes) == 1 else None
    names: list[str] = []
    for k, (column, index, convert) in enumerate(zip(source.columns, plan.indexes, plan.converters)):
        # The field's own name: no two columns share a field (names are unique, ignoring case), and
        # the time was read from it above, so converting it in place changes nothing else.
        v = f"h{index}"
        names.append(v)
        kind = source.type_of(column)
        if kind == "text":
            if index != time_field:
                body.append(f"if not {v}.strip(): {v} = NULL" if only_empty
                            else f"if {v}.strip() in NULLS: {v} = NULL")
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
    body.append(f"batch += (ts, {', '.join(names)},)")
    helpers.update(ISLICE=itertools.islice, START=record_start, INF=math.inf, CHAIN=itertools.chain,
                   EXACT_LINES=EXACT_LINES)
    if reference:
        code = _TO_LINE.replace("PER_ROW", _REFERENCE_ROW) + _DISPATCH.replace("to_end(", "to_line(")
    else:
        code = _TO_END.replace("BODY", _indented(body, 16)) + \
            _TO_LINE.replace("PER_ROW", _PER_ROW.replace("BODY", _indented(body, 12))) + _DISPATCH
    namespace: dict[str, object] = dict(helpers)
    exec(_compiled(code, f"<row loop of source {source.name}>"), namespace)  # noqa: S102 - positions only
    return namespace["loop"]  # type: ignore[return-value]


def _indented(lines: list[str], spaces: int) -> str:
    return "\n".join(" " * spaces + line for line in lines)


# The loop reads BATCH_ROWS records at a time with islice and asks nothing per record: no line
# number, no batch length; it stops at the first read that would begin at or after line `stop`. A
# record that goes to `check` gets its first line from the reader's count (`rows.record_start`).
_TO_END = """
def to_end(reader, check, batch_len, stop, base):
    batch = []
    while True:
        line = reader.line_num
        if line >= stop:
            break
        for f in ISLICE(reader, (batch_len - len(batch)) // WIDTH):
            try:
BODY
            except Exception:
                row = check(f, base + START(reader.line_num, f), len(batch))
                if row is not None:
                    batch += row
        if len(batch) >= batch_len:
            yield batch
            batch = []
        elif reader.line_num == line:
            break
    if batch:
        yield batch
"""
# The loop that stops exactly after the record that ends on or after physical line `stop` (the
# parent's part of a shared file ends where the helper begins) follows the line number record by
# record, for the last EXACT_LINES lines only: the reads before those stop EXACT_LINES short of it.
_PER_ROW = """
        try:
BODY
        except Exception:
            row = check(f, base + previous + 1, len(batch))
            if row is not None:
                batch += row"""
_REFERENCE_ROW = """
        row = check(f, base + previous + 1, len(batch))
        if row is not None:
            batch += row"""
_TO_LINE = """
def to_line(reader, check, batch_len, stop, base):
    batch = []
    previous = reader.line_num
    if previous >= stop:
        return
    for f in reader:PER_ROW
        previous = reader.line_num
        if len(batch) >= batch_len:
            yield batch
            batch = []
        if previous >= stop:
            break
    if batch:
        yield batch
"""
_DISPATCH = """
def loop(reader, check, batch_len, stop, base, exact=True):
    if stop == INF or not exact:
        return to_end(reader, check, batch_len, stop, base)
    return CHAIN(to_end(reader, check, batch_len, stop - EXACT_LINES, base),
                 to_line(reader, check, batch_len, stop, base))
"""
# Lines before an exact stop that are read record by record. A read of BATCH_ROWS records that
# began before them and spans more (records of 64 lines on average) can pass the stop: the parent's
# part then does not end where the helper's begins, and the parent reads the file on by itself.
EXACT_LINES = 4096


@functools.lru_cache(maxsize=64)
def _compiled(code: str, name: str) -> CodeType:
    # Compiling costs 0.3 ms: a run over thousands of small files of one layout compiles once.
    return compile(code, name, "exec")
