"""Property tests: each fast path against the slow, obvious way, on generated inputs.

- the timestamp parser, with and without a timestamp_format, against `datetime.strptime`
  (or `fromisoformat`) plus zoneinfo's fold=0 rules, on every minute's neighbourhood of
  the DST days and on mangled texts;
- the compiled row loop against the reference row check on generated fields (quotes,
  spaces, signs, exponents, NULL texts, decimal commas, digits of other scripts);
- the helper's line count across read-chunk boundaries against a plain count.

Bounded for CI and reproducible: `derandomize=True` draws the same examples on every run.
"""

from __future__ import annotations

import csv
import io
import math
import re
from datetime import datetime, timedelta
from typing import Callable
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import CORPUS, write_config
from csvreport import helper
from csvreport import rows as rowcheck
from csvreport.config import load_settings
from csvreport import rowloop, timeconv
from csvreport.rowloop import compile_loop
from csvreport.timeconv import TimestampParser, fixed_layout
from test_fast_paths import SOURCE

BOUNDED = settings(derandomize=True, max_examples=100, deadline=None, database=None,
                   suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]
# Every spelling the fast path takes, and some it must leave to strptime.
FORMATS = ["%Y-%m-%d %H:%M:%S", "%d.%m.%Y %H:%M:%S", "%m/%d/%Y %I:%M:%S %p", "%d.%m.%Y %H:%M", "%Y%m%d%H%M%S",
           "%Y-%m-%dT%H:%M:%S", "%H:%M:%S %d/%m/%y", "%I:%M %p, %d.%m.%Y", "%Y-%m-%d", "%d/%m/%Y %H",
           "%d-%b-%Y %H:%M:%S", "%Y-%m-%d %H:%M:%S%z", " %d.%m.%Y %H:%M", "%m/%d/%Y %H:%M", "%d/%m/%Y"]
# The days of both changes in each zone in 2026, where the offset before and after differ.
DST_DAYS = [datetime(2026, 3, 29), datetime(2026, 10, 25), datetime(2026, 3, 8), datetime(2026, 11, 1),
            datetime(2026, 4, 5), datetime(2026, 10, 4)]


# The ISO shapes of the SPEC that fromisoformat reads alike: a date, or a date and a time to the
# minute or second, with a fraction of 1-9 digits, and an offset or Z.
ISO_SHAPES = r"\d{4}-\d\d-\d\d|\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d([.,]\d{1,9})?)?(Z|[+-]\d\d(:?\d\d)?)?"


def reference(text: str, fmt: str | None, zone: ZoneInfo) -> int | str:
    """strptime (or ISO) plus the SPEC's zone rules, or the kind of error: what the parser must give."""
    try:
        if fmt is None:
            if not (text.isascii() and re.fullmatch(ISO_SHAPES, text.strip())):
                # fromisoformat takes other shapes than the SPEC's (and refuses some it takes, such as a
                # space before the offset): those are tested in test_ingest_timestamps.py
                return "skip"
            local = datetime.fromisoformat(text.strip())
        else:
            local = datetime.strptime(text.strip(), fmt)
    except ValueError:
        return "error"
    if local.tzinfo is not None:
        return int(local.timestamp())
    return int(local.replace(tzinfo=zone, fold=0).timestamp() // 1)


def parsed(parser: Callable[[str], int], text: str) -> int | str:
    try:
        return parser(text)
    except ValueError:
        return "error"


moments = st.one_of(
    st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2037, 12, 31)),
    st.builds(lambda day, seconds: day + timedelta(seconds=seconds), st.sampled_from(DST_DAYS),
              st.integers(0, 86399) | st.integers(3600, 4 * 3600)),  # the DST days; every change is 01:00-04:00
)


def mangle(text: str, how: int, where: int) -> str:
    """A near miss: a character dropped, doubled, swapped for a space, another script's digit, a case."""
    if not text:
        return text
    at = where % len(text)
    return [
        text,
        text[:at] + text[at + 1:],
        text[:at] + text[at] + text[at:],
        text[:at] + " " + text[at + 1:],
        text[:at] + chr(0x0660 + int(text[at])) + text[at + 1:] if text[at].isdigit() else text + " ",
        text.lower(),
        " " + text,
        text[:at] + "9" + text[at + 1:],
        text.replace("0", "", 1),
        (text[:at] + text[at + 1:])[:(at * 7) % len(text)] + " " + (text[:at] + text[at + 1:])[(at * 7) % len(text):],
    ][how % 10]


@pytest.mark.parametrize("fmt", FORMATS)
@settings(BOUNDED, max_examples=70)
@given(moment=moments, zone=st.sampled_from(ZONES), how=st.integers(0, 9), where=st.integers(0, 40))
@example(moment=datetime(2026, 3, 29, 2, 30), zone="Europe/Berlin", how=0, where=0)  # in the gap
@example(moment=datetime(2026, 10, 25, 2, 30), zone="Europe/Berlin", how=0, where=0)  # repeated: first
@example(moment=datetime(2026, 10, 4, 2, 45), zone="Australia/Lord_Howe", how=0, where=0)  # 30-minute gap
@example(moment=datetime(2026, 4, 5, 1, 45), zone="Australia/Lord_Howe", how=0, where=0)  # 30 minutes twice
@example(moment=datetime(2026, 11, 1, 0, 0), zone="America/New_York", how=5, where=0)  # "am"
def test_timestamp_format_fast_path_gives_what_strptime_and_zoneinfo_give(fmt, moment, zone, how, where):
    text = mangle(moment.strftime(fmt.replace("%z", "+0100")), how, where)
    parser = TimestampParser(zone, fmt)
    for _ in range(2):  # the second time from the hour table
        assert parsed(parser, text) == reference(text, fmt, ZoneInfo(zone)), text
    if fixed_layout(fmt) is not None and how == 0:
        assert parser.hours  # a well-formed value of a fixed-width format went through the table


@pytest.mark.parametrize("fmt", ["%m/%d/%Y %I:%M:%S %p", "%d.%m.%Y %I:%M %p"])
def test_a_12_hour_key_is_its_morning_and_its_afternoon_and_holds_on_the_dst_days(fmt, monkeypatch):
    # "01:" is the key of 01 AM and 01 PM (the part "MM:SS PM" adds 12 hours). A key whose two hours
    # have different offsets (the DST days) is cached as None, and its values are cut as "01: PM"
    # and "MM:SS" instead. Every hour of those days, both halves, four minutes, both casings, in
    # every zone; twice, the second from the tables. strptime reads only what the cuts cannot take.
    by_strptime: list[str] = []

    class Counted(datetime):
        @classmethod
        def strptime(cls, text, form):  # type: ignore[override]
            by_strptime.append(text)
            return datetime.strptime(text, form)
    monkeypatch.setattr(timeconv, "datetime", Counted)
    for zone in ZONES:
        parser = TimestampParser(zone, fmt)
        by_strptime.clear()
        for day in DST_DAYS:
            for seconds in range(0, 86400, 3600):
                for extra in (0, 29 * 60 + 59, 30 * 60, 59 * 60 + 59):
                    text = (day + timedelta(seconds=seconds + extra)).strftime(fmt)
                    for spelled in (text, text.lower()):
                        for _ in range(2):
                            assert parsed(parser, spelled) == reference(spelled, fmt, ZoneInfo(zone)), (zone, spelled)
        assert len(parser.hours) == 12 * len(DST_DAYS)  # one key for both halves of a day
        assert (None in parser.hours.values()) == (zone != "Asia/Kolkata")  # the only one without DST
        assert sum(v is not None for v in parser.hours.values()) > 6 * len(DST_DAYS)
        # strptime once per key of each table (a None key has four in the other: AM, am, PM, pm), and per
        # value only in the hours whose offset changes inside them (Lord Howe's half hour: 16 values)
        nones = sum(v is None for v in parser.hours.values())
        assert len(by_strptime) <= 12 * len(DST_DAYS) + 4 * nones + 16, (zone, by_strptime[-5:])


@BOUNDED
@given(moment=moments, zone=st.sampled_from(ZONES), how=st.integers(0, 9), where=st.integers(0, 40),
       sep=st.sampled_from([" ", "T"]))
def test_iso_parser_gives_what_zoneinfo_gives(moment, zone, how, where, sep):
    text = mangle(moment.strftime(f"%Y-%m-%d{sep}%H:%M:%S"), how, where)
    expected = reference(text, None, ZoneInfo(zone))
    if expected != "skip":
        assert parsed(TimestampParser(zone), text) == expected, text


def iso_text(moment: datetime, sep: str, seconds: bool, fraction: str, zone: str) -> str:
    if not sep:
        return moment.strftime("%Y-%m-%d")
    return moment.strftime(f"%Y-%m-%d{sep}%H:%M" + (":%S" + fraction if seconds else "")) + zone


ISO_TAILS = {
    "sep": st.sampled_from(["", " ", "T"]), "seconds": st.booleans(),
    "fraction": st.sampled_from(["", ".5", ",25", ".123", ".123456", ".123456789", ".1234567890", "."]),
    "zone": st.sampled_from(["", "Z", "+01:00", "-0530", "+05", "-00:00", "+14:00", "+24:00", " +01:00", "z"]),
}


@BOUNDED
@given(moment=moments, zone_name=st.sampled_from(ZONES), how=st.integers(0, 12), where=st.integers(0, 40), **ISO_TAILS)
@example(moment=datetime(2026, 10, 25, 2, 30), zone_name="Europe/Berlin", how=0, where=0, sep="T", seconds=True,
         fraction=".5", zone="")  # repeated hour: the first
@example(moment=datetime(2026, 10, 25, 2, 30), zone_name="Europe/Berlin", how=0, where=0, sep="T", seconds=True,
         fraction="", zone="+01:00")  # the second, by its offset
def test_iso_values_with_a_fraction_an_offset_or_no_time_give_what_fromisoformat_gives(
        moment, zone_name, how, where, sep, seconds, fraction, zone):
    text = mangle(iso_text(moment, sep, seconds, fraction, zone), how, where) if how < 10 else \
        iso_text(moment, sep, seconds, fraction, zone)
    expected = reference(text, None, ZoneInfo(zone_name))
    for example_text in (None, iso_text(moment, sep, seconds, fraction, zone), "2026-01-01T00:00:00Z",
                         "2026-01-01 00:00:00.123", "2026-01-01 00:00:00.5+01:00"):  # every cut a file can pick
        parser = TimestampParser(zone_name)
        code, names = parser.fast_expression("t", example_text)  # type: ignore[misc]
        cut = eval(f"lambda t: {code}", dict(names))
        for _ in range(2):  # the second time from the hour tables
            try:
                got: int | str = cut(text)
            except (KeyError, TypeError):  # what the row loop then does
                got = parsed(parser.full, text)
            except ValueError:  # the cut of a fraction or a date alone reads what it cannot cut itself
                got = "error"
            if expected != "skip":
                assert got == expected, (text, example_text)


UNPADDED = ["%m/%d/%Y %H:%M", "%m/%d/%Y %I:%M:%S %p", "%d.%m.%Y %H:%M:%S", "%d/%m/%Y", "%Y-%m-%d %H:%M:%S",
            "%d-%b-%Y %H:%M"]


@pytest.mark.parametrize("fmt", UNPADDED)
@settings(BOUNDED, max_examples=60)
@given(moment=moments, zone=st.sampled_from(ZONES), how=st.integers(0, 12), where=st.integers(0, 40))
def test_values_without_leading_zeros_take_the_fast_path_and_give_what_strptime_gives(fmt, moment, zone, how, where):
    # "1/5/2026 7:05": what spreadsheets write. The minute and second keep their two digits.
    unpadded = re.sub(r"(?<![\d:])0(\d)", r"\1", moment.strftime(fmt))
    text = mangle(unpadded, how, where) if how < 10 else unpadded
    parser = TimestampParser(zone, fmt)
    for _ in range(2):
        assert parsed(parser, text) == reference(text, fmt, ZoneInfo(zone)), text
    if how >= 10:
        assert parser.hours, unpadded  # taken by the table, not by strptime row by row


@BOUNDED
@given(moment=moments, digits=st.sampled_from(["٠١٢٣٤٥٦٧٨٩", "۰۱۲۳۴۵۶۷۸۹", "０１２３４５６７８９", "०१२३४५६७८९"]),
       sep=st.sampled_from([" ", "T"]), at=st.integers(0, 30))
def test_digits_of_other_scripts_are_never_an_iso_date(moment, digits, sep, at):
    # With a timestamp_format, strptime decides (it reads any script's digits, and so does the
    # fast path's fallback: the test above); without one, the SPEC's ISO shape is ASCII only.
    text = moment.strftime(f"%Y-%m-%d{sep}%H:%M:%S")
    positions = [i for i, c in enumerate(text) if c.isdigit()]
    i = positions[at % len(positions)]
    text = text[:i] + digits[int(text[i])] + text[i + 1:]
    with pytest.raises(ValueError):
        TimestampParser("Europe/Berlin")(text)


# ---------------------------------------------------------------- compiled row loop vs reference

NUMBER_TEXT = st.one_of(
    st.integers(-10**20, 10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.builds(lambda sign, mantissa, exponent: f"{sign}{mantissa}e{exponent}", st.sampled_from(["", "+", "-"]),
              st.integers(0, 999), st.integers(-400, 400)),
    st.builds(lambda a, b: f"{a:,}".replace(",", ".") + f",{b}", st.integers(0, 10**7), st.integers(0, 99)),
    st.sampled_from(["", " ", "NA", "-200", "1_000", "inf", "nan", "0x10", "١٢", "1.234,75", "3,75", "1.234",
                     " 12 ", "+5", "- 5", "1e", ".5", "5.", "\u00a0"]),
    st.text(alphabet="0123456789+-.,eE _\u0663", max_size=8),
)
# Line ends of every kind inside quoted fields: a bad row after them must still get its first line.
TEXT = st.one_of(st.text(max_size=12), st.sampled_from(["", "  ", "NA", "-200", '"quoted"', "a,b", "Zeile 1\nZeile 2",
                                                        "cr\ronly", "crlf\r\nend", "\r\n\n\r"]))
STAMP = st.one_of(
    moments.map(lambda m: m.strftime("%Y-%m-%d %H:%M:%S")),
    moments.map(lambda m: m.strftime("%d.%m.%Y %H:%M:%S")),
    moments.map(lambda m: m.strftime("%m/%d/%Y %I:%M:%S %p")),
    st.builds(mangle, moments.map(lambda m: m.strftime("%Y-%m-%d %H:%M:%S")), st.integers(0, 8), st.integers(0, 40)),
    st.sampled_from(["", " ", "2026-03-29 02:30:00", "2026-10-25 02:30:00Z", "2026-03-28", "NA"]),
    st.builds(iso_text, moments, **ISO_TAILS),
)
ROW = st.tuples(STAMP, TEXT, NUMBER_TEXT, NUMBER_TEXT)

COLUMNS = """
    columns = ["ts", "note", "value", "qty"]
    types = { value = "real", qty = "integer" }
"""
CONFIGURATIONS = {
    "iso": 'timestamp = "ts"',
    "format": 'timestamp = "ts"\n    timestamp_format = "%d.%m.%Y %H:%M:%S"',
    "us-12h": 'timestamp = "ts"\n    timestamp_format = "%m/%d/%Y %I:%M:%S %p"',
    "nulls and decimal comma": 'timestamp = "ts"\n    decimal = ","\n    null_values = ["", "NA", "-200"]',
    "no timestamp": "",
}


def comparable(row: tuple) -> tuple:
    """NaN (a NULL) equals NaN here; 1 and 1.0 differ, as they do in SQLite."""
    return tuple(("NULL",) if isinstance(v, float) and math.isnan(v) else (type(v).__name__, v) for v in row)


@pytest.mark.parametrize("configuration", CONFIGURATIONS)
@settings(BOUNDED, max_examples=60)
@given(records=st.lists(ROW, min_size=1, max_size=70),
       lead=st.sampled_from(["", "2026-03-29T01:59:59Z", "2026-10-25T02:30:00+01:00", "2026-10-25 02:30:00.25",
                             "2026-03-28", "28.03.2026 02:30:00", "3/8/2026 2:30:00 AM", "2026-10-25 02:30:00,5+01"]))
def test_compiled_loop_takes_exactly_what_the_reference_takes(home, configuration, records, lead):
    if lead:  # the first row's time picks the cut of the times: each kind leads some files
        records = [(lead, "first", "1", "1"), *records]
    write_config(home, text=SOURCE + COLUMNS + "    " + CONFIGURATIONS[configuration] + "\n")
    source = load_settings(home, None).sources[0]
    header = ["ts", "note", "value", "qty"]
    parser = TimestampParser(source.timezone, source.timestamp_format) if source.timestamp else None
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(records)
    plan = rowcheck.plan_columns(source, header)
    # The first row's time picks the cut of the times (with an offset, a fraction, a date alone...).
    checks = rowcheck.Checks(source, header, plan, 7, parser, 1774688400, 10**6, 4, example=records[0][0])

    def run(way: str) -> tuple[list, rowcheck.LoadResult]:
        result = rowcheck.LoadResult()
        reader = csv.reader(io.StringIO(buffer.getvalue(), newline=""))
        next(reader)
        loop = compile_loop(checks, reference=way == "reference")
        batches = loop(reader, rowcheck.check_row(checks, result), 4 * checks.width, math.inf, 0)
        flat = [v for batch in batches for v in batch]
        width = checks.width
        return [comparable(tuple(flat[i:i + width])) for i in range(0, len(flat), width)], result

    (fast, fast_result), (slow, slow_result) = run("compiled"), run("reference")
    assert fast == slow
    assert [(b.line, b.reason, b.fields) for b in fast_result.bad_rows] == \
        [(b.line, b.reason, b.fields) for b in slow_result.bad_rows]


# ---------------------------------------------------------------- lines as the text layer splits them

PIECES = ["a", ",", '"', "\r", "\n", "\r\n", "ä", "€", "\ufeff", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85",
          "\u2028", "\u2029"]


def text_layer(data: bytes, encoding: str) -> list[str] | str:
    try:
        return io.TextIOWrapper(io.BytesIO(data), encoding=encoding, newline="", errors="strict").readlines()
    except UnicodeError as exc:  # or UnicodeDecodeError: "utf-16" without its byte order mark at the start
        return f"error: {type(exc).__name__}"


def our_lines(data: bytes, encoding: str) -> list[str] | str:
    try:
        return list(rowcheck.text_lines(io.BytesIO(data), encoding))
    except UnicodeError as exc:
        return f"error: {type(exc).__name__}"


@BOUNDED
@given(text=st.lists(st.sampled_from(PIECES), max_size=120).map("".join), chunk=st.integers(1, 9),
       encoding=st.sampled_from(["utf-8-sig", "utf-8", "utf-16", "cp1252", "latin-1"]),
       damage=st.sampled_from([b"", b"\xff", b"\xe2\x82", b"\x81"]), at=st.integers(0, 400))
@example(text="a\x1cb\r\nc\rd\x85e\u2028", chunk=2, encoding="utf-8-sig", damage=b"", at=0)
@example(text="a", chunk=1, encoding="utf-16", damage=b"\xff", at=0)  # no byte order mark: UnicodeError on both
def test_text_lines_are_the_lines_of_the_text_layer(monkeypatch, text, chunk, encoding, damage, at):
    # Line ends across chunk boundaries ("\r" | "\n"), the characters str.splitlines ends lines at
    # and open(newline="") does not, a byte order mark, undecodable bytes and a cut character.
    data = text.encode(encoding, errors="replace")
    data = data[:at] + damage + data[at:]
    monkeypatch.setattr(rowcheck, "TEXT_CHUNK", chunk)
    got = our_lines(data, encoding)
    assert got == text_layer(data, encoding)
    monkeypatch.setattr(rowcheck, "TEXT_CHUNK", 1 << 15)
    whole = our_lines(data, encoding)
    assert whole == got


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"the CSV corpus is not beside the checkout ({CORPUS})")
def test_text_lines_of_the_corpus_are_those_of_the_text_layer():
    # Every corpus file read through both, with the csv reader's records and line numbers.
    files = sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.name != "SOURCES.md")
    assert len(files) == 170
    for path in files:
        for encoding in ("utf-8-sig", "latin-1"):
            data = path.read_bytes()
            expected = text_layer(data, encoding)
            got = our_lines(data, encoding)
            assert got == expected, path
            if isinstance(got, str):  # the same error
                continue
            theirs = csv.reader(io.TextIOWrapper(io.BytesIO(data), encoding=encoding, newline=""))
            ours = csv.reader(rowcheck.text_lines(io.BytesIO(data), encoding))
            try:
                for expected_record in theirs:
                    assert next(ours) == expected_record and ours.line_num == theirs.line_num, path
            except csv.Error:
                continue  # the same malformed file: the records up to there were the same


# ---------------------------------------------------------------- line counts across read chunks

@BOUNDED
@given(data=st.lists(st.sampled_from([b"a", b",", b'"', b"\r", b"\n", b"\r\n", b"\xc3\xa4"]), max_size=200)
       .map(b"".join), limit=st.integers(0, 250), chunk=st.integers(1, 9))
def test_line_count_is_the_same_across_read_chunk_boundaries(tmp_path, data, limit, chunk):
    path = tmp_path / "lines.csv"
    path.write_bytes(data)
    expected = len(re.findall(rb"\r\n|\r|\n", data[:limit]))
    saved = helper.READ_CHUNK
    helper.READ_CHUNK = chunk
    try:
        with open(path, "rb") as handle:
            assert helper._count_lines(handle, limit) == expected
            assert handle.tell() == min(limit, len(data))
    finally:
        helper.READ_CHUNK = saved
    assert helper._line_ends(data[:limit]) == expected


@settings(BOUNDED, max_examples=80)
@given(records=st.lists(st.lists(st.sampled_from(["a", "b c", "", 'q"uote', "x\ny", "r\r\nn", "ä"]), min_size=3,
                                 max_size=3), min_size=4, max_size=40),
       ending=st.sampled_from(["\n", "\r\n", "\r"]), target=st.floats(0.0, 1.0))
def test_a_split_line_number_is_the_csv_readers_line_number_there(tmp_path, records, ending, target):
    """Where the helper would begin, the line count equals the csv reader's line_num after the records before it."""
    path = tmp_path / "split.csv"
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator=ending).writerows([["h1", "h2", "h3"], *records])
    path.write_bytes(buffer.getvalue().encode("utf-8"))
    data = path.read_bytes()
    offsets, reader = [], csv.reader(io.StringIO(buffer.getvalue(), newline=""))
    consumed = 0
    for record in reader:
        consumed += len(csv_line(record, ending).encode("utf-8"))
        offsets.append((consumed, reader.line_num))
    at, line_num = offsets[int(target * (len(offsets) - 1))]
    with open(path, "rb") as handle:
        assert helper._count_lines(handle, at) == line_num
    assert at <= len(data)


def csv_line(record: list[str], ending: str) -> str:
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator=ending).writerow(record)
    return out.getvalue()


DATE = st.one_of(moments.map(lambda m: m.strftime("%Y-%m-%d")),
                 st.builds(mangle, moments.map(lambda m: m.strftime("%Y-%m-%d")), st.integers(0, 9),
                           st.integers(0, 12)))
TIME = st.one_of(moments.map(lambda m: m.strftime("%H:%M:%S")), moments.map(lambda m: m.strftime("%H:%M")),
                 st.builds(mangle, moments.map(lambda m: m.strftime("%H:%M:%S")), st.integers(0, 9), st.integers(0, 9)),
                 st.sampled_from(["24:00:00", "", "02:30:00Z", "02:30:00.5", "02:30:00+01:00", "2", "02"]))


@pytest.mark.parametrize("zone", ["Europe/Berlin", "Australia/Lord_Howe", "America/St_Johns"])
@settings(BOUNDED, max_examples=50)
@given(records=st.lists(st.tuples(DATE, TIME), min_size=1, max_size=60), lead=st.sampled_from([
    None, ("2026-03-29", "02:30:00"), ("2026-10-25", "02:30"), ("2026-04-05", "01:45:00"), ("2026-11-01", "01:30:00"),
    ("2026-11-011", "2:"), ("2026-11-0", "112:30:00")]))  # a date one longer or shorter: a key of 13 or 12
def test_a_date_and_a_time_in_two_columns_give_what_their_joined_text_gives(home, zone, records, lead):
    """The compiled loop cuts the two fields (`"YYYY-MM-DD" + "HH:"`, then `MM:SS`) and takes what the
    reference takes from their joined text, on the DST days of each zone too."""
    if lead is not None:
        records = [lead, *records]
    write_config(home, text=SOURCE.replace('timezone = "Europe/Berlin"', f'timezone = "{zone}"') + """
    columns = ["d", "t", "n"]
    timestamp = ["d", "t"]
    types = { n = "integer" }
""")
    source = load_settings(home, None).sources[0]
    header = ["d", "t", "n"]
    parser = TimestampParser(source.timezone)
    plan = rowcheck.plan_columns(source, header)
    checks = rowcheck.Checks(source, header, plan, 7, parser, 0, 10**6, 4, example=" ".join(records[0]))
    text = "d,t,n\n" + "".join(f'"{d}","{t}",{n}\n' for n, (d, t) in enumerate(records))

    def run(way: str) -> tuple[list, list]:
        result = rowcheck.LoadResult()
        reader = csv.reader(io.StringIO(text, newline=""))
        next(reader)
        loop = compile_loop(checks, reference=way == "reference")
        flat = [v for batch in loop(reader, rowcheck.check_row(checks, result), 4 * checks.width, math.inf, 0)
                for v in batch]
        return flat, [(b.line, b.reason) for b in result.bad_rows]

    assert run("compiled") == run("reference")


@pytest.mark.parametrize("exact_lines", [2, 4096])
@settings(BOUNDED, max_examples=60)
@given(records=st.lists(st.lists(st.sampled_from(["1", "x", "", "a\nb", "c\r\nd\ne", "bad,"]), min_size=2, max_size=2),
                        min_size=1, max_size=40), at=st.floats(0.0, 1.0))
def test_a_part_that_must_end_at_a_line_ends_where_the_reference_ends(home, monkeypatch, exact_lines, records, at):
    """The parent's part of a shared file: read in chunks, then record by record for the last lines.
    It ends on the same record as the reference, with the same rows and bad rows, or has passed the
    line (only when chunks are read that close to it), so the parent then reads the file on itself."""
    monkeypatch.setattr(rowloop, "EXACT_LINES", exact_lines)
    write_config(home, text=SOURCE + """
    columns = ["n", "v"]
    types = { n = "integer" }
""")
    source = load_settings(home, None).sources[0]
    header = ["n", "v"]
    plan = rowcheck.plan_columns(source, header)
    checks = rowcheck.Checks(source, header, plan, 7, None, 1774688400, 10**6, 4)
    buffer = io.StringIO(newline="")
    csv.writer(buffer).writerows([header, *records])
    text = buffer.getvalue()
    stop = 1 + int(at * (len(text.splitlines()) + 1))

    def run(way: str) -> tuple:
        result = rowcheck.LoadResult()
        reader = csv.reader(io.StringIO(text, newline=""))
        next(reader)
        loop = compile_loop(checks, reference=way == "reference")
        flat = [v for batch in loop(reader, rowcheck.check_row(checks, result), 4 * checks.width, stop, 0)
                for v in batch]
        return reader.line_num, flat, [(b.line, b.reason) for b in result.bad_rows]

    fast, slow = run("compiled"), run("reference")
    if exact_lines == 4096:
        assert fast == slow
    else:
        assert fast == slow or fast[0] > max(stop, slow[0])
