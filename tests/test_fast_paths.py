"""Every fast path gives the same answer as the slow, obvious way it replaces.

- the compiled row loop (`rowloop.py`) and multi-row INSERTs (`insert.py`) against the reference
  row check (`rows.check_row`) with one INSERT per row, on rows built to hit every branch;
- the per-hour cache of `timeconv.py` against zoneinfo, every hour of a year with DST
  changes, in zones with whole-hour, 30-minute offsets and a 30-minute DST shift;
- the stat-only skip of `ingest` never skips a changed file, and skips an unchanged one
  without reading it;
- a command that writes no workbook does not import openpyxl.
"""

from __future__ import annotations

import csv
import os
import sqlite3
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from conftest import REPO, write_config, write_csv
from csvreport import db, insert, load, rowloop
from csvreport import rows as rowcheck
from csvreport.config import load_settings
from csvreport.timeconv import TimestampParser, local_to_epoch


# ---------------------------------------------------------------- rows: compiled loop vs reference

SOURCE = """
    timezone = "Europe/Berlin"
    [ingest]
    settle_seconds = 0
    max_bad_rows = 1000
    [[sources]]
    name = "data"
    pattern = "inbox/data/*.csv"
"""

TRICKY = [
    # timestamp shapes: common, T, Z, offset, fraction, gap, fall-back, invalid, out of range, padded
    "2026-03-28 10:00:00", "2026-03-28T10:00:01", "2026-03-28 10:00:02Z", "2026-03-28 10:00:03+05:30",
    "2026-03-28 10:00:04.75", "2026-03-29 02:30:00", "2026-10-25 02:30:00", "2026-02-30 10:00:00",
    "2026-03-28 24:00:00", "2026-03-28 10:60:00", "2026-03-28 10:00:60", " 2026-03-28 10:00:05 ",
    "2026-03-28 10:00", "2026-03-28", "+202-03-28 10:00:00", "2026-03-28 1a:00:00", "2026-03-28x10:00:00",
    "",
]
NUMBERS = ["1", "1.5", "-2.25", " 12 ", "+5", "1_000", "inf", "-Infinity", "nan", "1e400", "1e3", "12.0", "",
           "   ", "NA", "-200", "0x10", "١٢", "1.234,75", "3,75", "1.234", "abc"]
TEXTS = ["x", "", "  ", "\u00a0", "NA", "-200", ' "quoted" ', "Zeile 1\nZeile 2", "=SUM(A1)", "Köln"]


def tricky_csv(path: Path, header: list[str], rows: int = 700) -> Path:
    """Rows that walk every branch, interleaved so each falls in a different batch position."""
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for i in range(rows):
            if i % 97 == 13:
                handle.write("\n")  # a blank line
            if i % 89 == 7:
                writer.writerow([""] * len(header))  # all fields empty: not a row
            if i % 83 == 5:
                writer.writerow(["too", "few"])
            ts = f"2026-03-28 {10 + i // 3600 % 12:02d}:{i // 60 % 60:02d}:{i % 60:02d}" if i % 3 else \
                TRICKY[i // 3 % len(TRICKY)]
            writer.writerow([ts, f"2026-03-{28 + i % 2}", f"{i % 24:02d}:{i % 60:02d}:00",
                             TEXTS[i % len(TEXTS)], NUMBERS[i // 4 % len(NUMBERS)] if i % 4 == 1 else f"{i}",
                             NUMBERS[i // 4 % len(NUMBERS)] if i % 4 == 2 else f"{i}", f"k{i % 50}"])
    return path


def reference_load(conn: sqlite3.Connection, source, path: Path, parser, fallback_ts: int) -> rowcheck.LoadResult:
    """The obvious way: each record through the reference check, one INSERT per row."""
    result = rowcheck.LoadResult()
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter=",")
        header = rowcheck.header_of(reader)
        plan = rowcheck.plan_columns(source, header)
        checks = rowcheck.Checks(source, header, plan, 99, parser, fallback_ts, 10**6, 1)
        width = checks.width
        check = rowcheck.check_row(checks, result)
        names = ", ".join(["_ingestion_id", "_ts", *(db.quote(c) for c in source.columns)])
        verb = "INSERT OR REPLACE" if source.key else "INSERT"
        statement = f"{verb} INTO data ({names}) VALUES (99, {', '.join('?' * width)})"
        last = reader.line_num
        for fields in reader:
            row = check(fields, last + 1, 0)
            last = reader.line_num
            if row is not None:
                result.rows_loaded += 1
                conn.execute(statement, row)
    result.rows_read = result.rows_loaded + result.bad_count
    return result


def both_ways(tmp_path: Path, home: Path, source_text: str, header: list[str], rows: int = 700):
    write_config(home, text=SOURCE + source_text)
    settings = load_settings(home, None)
    source = settings.sources[0]
    path = tricky_csv(tmp_path / "tricky.csv", header, rows)
    parser = TimestampParser(source.timezone, source.timestamp_format) if source.timestamp else None
    fallback = 1774688400
    out = []
    for way in ("fast", "reference"):
        conn = sqlite3.connect(tmp_path / f"{way}.sqlite3", isolation_level=None)
        db.ensure_source_table(conn, source)
        conn.execute("BEGIN")
        if way == "fast":
            result = load.load_rows(conn, source, path, 99, parser, fallback, 10**6)
        else:
            result = reference_load(conn, source, path, parser, fallback)
        conn.execute("COMMIT")
        stored = conn.execute("SELECT * FROM data ORDER BY _id").fetchall()
        kinds = conn.execute(f"SELECT {', '.join(f'typeof({db.quote(c)})' for c in source.columns)} "
                             "FROM data ORDER BY _id").fetchall()
        out.append((result, stored, kinds))
    (fast, fast_rows, fast_kinds), (ref, ref_rows, ref_kinds) = out
    assert fast_rows == ref_rows
    assert fast_kinds == ref_kinds
    assert [(b.line, b.reason, b.fields) for b in fast.bad_rows] == [(b.line, b.reason, b.fields) for b in ref.bad_rows]
    assert (fast.rows_read, fast.rows_loaded, fast.bad_count) == (ref.rows_read, ref.rows_loaded, ref.bad_count)
    if fast_rows and not source.key:
        stamps = [r[2] for r in fast_rows]
        assert (fast.min_ts, fast.max_ts) == (min(stamps), max(stamps))
        assert (fast.first_row_id, fast.last_row_id) == (fast_rows[0][0], fast_rows[-1][0])
    return fast, fast_rows


HEADER = ["ts", "day", "time", "note", "value", "qty", "k"]


def test_fast_loop_matches_reference_with_default_nulls(tmp_path, home):
    fast, stored = both_ways(tmp_path, home, """
        timestamp = "ts"
        columns = ["ts", "note", "value", "qty", "k"]
        types = { value = "real", qty = "integer" }
    """, HEADER)
    # The file really walks the branches: good rows, every kind of bad row, NULLs, a 64-row batch and a tail.
    reasons = {b.reason.split(":")[0].split(" ")[0] for b in fast.bad_rows}
    assert {"timestamp", "column", "2"} <= reasons, reasons
    assert fast.rows_loaded > 300 and fast.rows_loaded % insert.BATCH_ROWS
    assert any(r[4] is None for r in stored) and any(r[5] is None for r in stored)


def test_fast_loop_matches_reference_with_null_values_and_two_timestamp_columns(tmp_path, home):
    both_ways(tmp_path, home, """
        timestamp = ["day", "time"]
        columns = ["day", "time", "ts", "note", "value", "qty"]
        types = { value = "real", qty = "integer" }
        null_values = ["", "NA", "-200"]
        timezone = "America/New_York"
    """, HEADER)


def test_fast_loop_matches_reference_with_decimal_comma(tmp_path, home):
    both_ways(tmp_path, home, """
        timestamp = "ts"
        columns = ["ts", "note", "value", "qty"]
        types = { value = "real", qty = "integer" }
        decimal = ","
    """, HEADER)


def test_fast_loop_matches_reference_with_timestamp_format(tmp_path, home):
    both_ways(tmp_path, home, """
        timestamp = ["day", "time"]
        timestamp_format = "%Y-%m-%d %H:%M:%S"
        columns = ["day", "time", "note", "value"]
        types = { value = "real" }
    """, HEADER)


def test_fast_loop_matches_reference_without_timestamp_and_text_only(tmp_path, home):
    both_ways(tmp_path, home, """
        columns = ["ts", "note", "k"]
    """, HEADER)


def test_multi_row_insert_with_key_keeps_the_last_row_like_single_inserts(tmp_path, home):
    # 50 keys over 700 rows: duplicates inside one multi-row statement and across statements.
    _fast, stored = both_ways(tmp_path, home, """
        timestamp = "ts"
        columns = ["ts", "k", "note", "value"]
        types = { value = "real" }
        key = ["k"]
    """, HEADER)
    assert len(stored) == 50


def test_wide_rows_use_smaller_batches(tmp_path, home):
    # A build that allows only 999 parameters per statement (older SQLite): 64 rows of 42 values
    # would not fit, so the statements carry fewer rows.
    columns = ["ts"] + [f"c{i}" for i in range(1, 40)]  # 40 columns and 2 of csvreport's: 42 values a row
    write_config(home, text=SOURCE + f"""
        timestamp = "ts"
        columns = {columns!r}
        types = {{ c39 = "integer" }}
    """.replace("'", '"'))
    source = load_settings(home, None).sources[0]
    conn = sqlite3.connect(tmp_path / "wide.sqlite3", isolation_level=None)
    conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
    rows_per_statement = insert.batch_rows(conn, 42)
    assert rows_per_statement == 999 // 42 < insert.BATCH_ROWS
    count = rows_per_statement * 2 + 5  # two full statements and a tail
    lines = [",".join(columns)] + [
        f"2026-03-28 10:{i // 60:02d}:{i % 60:02d}," + ",".join(["v"] * 38) + f",{i}" for i in range(count)]
    path = write_csv(tmp_path / "wide.csv", "\n".join(lines) + "\n")
    db.ensure_source_table(conn, source)
    conn.execute("BEGIN")
    result = load.load_rows(conn, source, path, 1, TimestampParser("Europe/Berlin"), 0, 0)
    conn.execute("COMMIT")
    assert (result.rows_loaded, result.first_row_id, result.last_row_id) == (count, 1, count)
    assert conn.execute("SELECT count(*), min(c1), sum(c39) FROM data").fetchone() == \
        (count, "v", count * (count - 1) // 2)


def test_too_many_bad_rows_counts_every_row_of_a_large_file(tmp_path, home, cli):
    write_config(home, text=SOURCE.replace("max_bad_rows = 1000", "max_bad_rows = 2") + """
        timestamp = "ts"
        columns = ["ts", "value"]
        types = { value = "real" }
    """)
    lines = ["ts,value"] + [f"2026-03-28 10:{i // 60 % 60:02d}:{i % 60:02d},{'x' if i in (100, 200, 300) else i}"
                            for i in range(1000)]
    write_csv(home / "inbox/data/a.csv", "\n".join(lines) + "\n")
    result = cli("ingest")
    assert result.exit_code == 0, result.output
    with sqlite3.connect(home / "data" / "csvreport.sqlite3") as conn:
        assert conn.execute("SELECT status, rows_read, first_bad_line FROM ingestion_log").fetchone() == \
            ("quarantined", 1000, 102)
        assert conn.execute("SELECT count(*) FROM data").fetchone() == (0,)
    assert "more than max_bad_rows=2 bad rows (3 or more, 1000 rows in all); first at line 102" in result.output


# ---------------------------------------------------------------- time zones: cache vs zoneinfo

ZONES = ["Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]


@pytest.mark.parametrize("zone", ZONES)
def test_cached_conversion_agrees_with_zoneinfo_every_hour_of_a_year(zone):
    parser = TimestampParser(zone)
    tz = ZoneInfo(zone)
    hour = datetime(2026, 1, 1)
    checked = 0
    while hour.year == 2026:
        for minute, second in ((0, 0), (0, 1), (14, 59), (29, 59), (30, 0), (30, 1), (45, 30), (59, 59)):
            local = hour.replace(minute=minute, second=second)
            text = local.strftime("%Y-%m-%d %H:%M:%S")
            assert parser(text) == local_to_epoch(local, tz) == int(local.replace(tzinfo=tz).timestamp()), text
            checked += 1
        if hour.hour == 12:  # the T form shares the cache logic under its own key
            text = hour.strftime("%Y-%m-%dT%H:%M:%S")
            assert parser(text) == local_to_epoch(hour, tz), text
        hour += timedelta(hours=1)
    assert checked == 8760 * 8
    uncached = [key for key, base in parser.hours.items() if base is None]
    # Lord Howe springs forward by 30 minutes at 02:00, so that hour is left to zoneinfo (at the fall-back
    # the first 01:xx, fold=0, holds one offset for the whole hour); whole-hour zones cache every hour.
    assert uncached == (["2026-10-04 02:"] if zone == "Australia/Lord_Howe" else []), uncached


def test_dst_rules_of_the_spec_in_the_fast_path():
    parser = TimestampParser("Europe/Berlin")
    utc = lambda text: int(datetime.fromisoformat(text + "+00:00").timestamp())  # noqa: E731
    # Spring forward: 02:30 does not exist and is read with the offset before (+01:00).
    assert parser("2026-03-29 02:30:00") == utc("2026-03-29 01:30:00")
    assert parser("2026-03-29 03:00:00") == utc("2026-03-29 01:00:00")
    # Fall back: 02:30 happens twice; the first (+02:00) is taken.
    assert parser("2026-10-25 02:30:00") == utc("2026-10-25 00:30:00")
    assert parser("2026-10-25 03:00:00") == utc("2026-10-25 02:00:00")
    kolkata = TimestampParser("Asia/Kolkata")
    assert kolkata("2026-06-01 00:00:00") == utc("2026-05-31 18:30:00")


@pytest.mark.parametrize("text", ["2026-03-28 24:00:00", "2026-02-30 10:00:00", "2026-03-28 10:60:00",
                                  "2026-03-28 10:00:60", "+202-03-28 10:00:00", "2026-03-28 1a:00:00",
                                  "2026-03-28x10:00:00", "2026-03-28 10:00:00x", "2026-03-28 10:00:0",
                                  "２０２６-03-28 10:00:05", "٢٠٢٦-٠٣-٢٨ ١٠:٠٠:٠٠"])  # only ASCII digits are a date
def test_fast_path_refuses_what_the_full_parser_refuses(text):
    parser = TimestampParser("Europe/Berlin")
    with pytest.raises(ValueError) as raised:
        parser(text)
    assert repr(text) in str(raised.value)
    assert set(parser.hours) <= {"2026-03-28 10:"}  # an invalid hour is never cached


def test_fast_path_accepts_what_the_full_parser_accepts():
    parser = TimestampParser("Europe/Berlin")
    reference = local_to_epoch(datetime(2026, 3, 28, 10, 0, 5), ZoneInfo("Europe/Berlin"))
    for text in ("2026-03-28 10:00:05", "2026-03-28T10:00:05", " 2026-03-28 10:00:05 ", "2026-03-28 10:00:05.9",
                 "2026-03-28 09:00:05Z", "2026-03-28 10:00:05+01:00"):
        assert parser(text) == reference, text


# ---------------------------------------------------------------- stat-only skip

def _log(home: Path) -> list[tuple]:
    with sqlite3.connect(home / "data" / "csvreport.sqlite3") as conn:
        return conn.execute("SELECT path, status, rows_loaded FROM ingestion_log ORDER BY id").fetchall()


def _rows(home: Path) -> list[tuple]:
    with sqlite3.connect(home / "data" / "csvreport.sqlite3") as conn:
        return conn.execute("SELECT site, value FROM sensors ORDER BY _id").fetchall()


def _set_mtime(path: Path, mtime_ns: int) -> None:
    os.utime(path, ns=(mtime_ns, mtime_ns))


CSV_A = "ts,site,metric,value\n2026-03-28 10:00:00,a,t,1.0\n"
CSV_B = "ts,site,metric,value\n2026-03-28 10:00:00,b,t,2.0\n"  # same size as CSV_A


def test_same_size_new_mtime_is_hashed_and_reloaded(home, cli):
    path = write_csv(home / "inbox/sensors/x.csv", CSV_A)
    assert cli("ingest").exit_code == 0
    before = path.stat().st_mtime_ns
    path.write_text(CSV_B, encoding="utf-8")
    _set_mtime(path, before + 1_000_000_000)
    assert path.stat().st_size == len(CSV_A)
    result = cli("ingest")
    assert result.exit_code == 0, result.output
    assert _rows(home) == [("b", 2.0)]
    assert [s for _, s, _ in _log(home)] == ["superseded", "loaded"]


def test_touched_file_with_same_content_is_hashed_but_not_reloaded(home, cli):
    path = write_csv(home / "inbox/sensors/x.csv", CSV_A)
    assert cli("ingest").exit_code == 0
    _set_mtime(path, path.stat().st_mtime_ns + 5_000_000_000)
    result = cli("ingest")
    assert result.exit_code == 0, result.output
    assert "this content was loaded before" in result.output
    assert [s for _, s, _ in _log(home)] == ["loaded"]
    # Remembered under the new mtime: the next run skips it by stat alone.
    result = cli("ingest")
    assert "this content was loaded before" not in result.output


def test_same_mtime_restored_with_new_content_needs_rehash(home, cli):
    path = write_csv(home / "inbox/sensors/x.csv", CSV_A)
    assert cli("ingest").exit_code == 0
    mtime = path.stat().st_mtime_ns
    path.write_text(CSV_B, encoding="utf-8")
    _set_mtime(path, mtime)  # e.g. rsync -t or a restore from backup
    assert cli("ingest").exit_code == 0
    assert _rows(home) == [("a", 1.0)]  # path, size and mtime unchanged: skipped without reading
    result = cli("ingest", "--rehash")
    assert result.exit_code == 0, result.output
    assert _rows(home) == [("b", 2.0)]
    assert [s for _, s, _ in _log(home)] == ["superseded", "loaded"]


def test_size_change_with_same_mtime_is_reloaded(home, cli):
    path = write_csv(home / "inbox/sensors/x.csv", CSV_A)
    assert cli("ingest").exit_code == 0
    mtime = path.stat().st_mtime_ns
    path.write_text(CSV_A + "2026-03-28 11:00:00,c,t,3.0\n", encoding="utf-8")
    _set_mtime(path, mtime)
    assert cli("ingest").exit_code == 0
    assert _rows(home) == [("a", 1.0), ("c", 3.0)]


def test_replaced_file_with_new_inode_same_size_and_mtime_is_skipped_only_by_stat(home, cli):
    # The skip key is (path, size, mtime): a same-size rewrite that keeps the mtime is invisible
    # without --rehash; a rename to a new path is hashed and recognised as known content.
    path = write_csv(home / "inbox/sensors/x.csv", CSV_A)
    assert cli("ingest").exit_code == 0
    moved = path.with_name("y.csv")
    path.rename(moved)
    result = cli("ingest")
    assert result.exit_code == 0, result.output
    assert "this content was loaded before" in result.output
    assert _rows(home) == [("a", 1.0)]


def test_unchanged_files_are_skipped_without_reading_them(home, cli):
    for i in range(5):
        write_csv(home / f"inbox/sensors/f{i}.csv", f"ts,site,metric,value\n2026-03-28 10:00:0{i},s{i},t,{i}\n")
    assert cli("ingest").exit_code == 0
    changed = home / "inbox/sensors/f3.csv"
    changed.write_text("ts,site,metric,value\n2026-03-28 10:00:03,s3,t,33\n", encoding="utf-8")
    _set_mtime(changed, changed.stat().st_mtime_ns - 3600 * 10**9)
    opened = _opened_csvs(home, "ingest")
    assert opened == [str(changed)] * len(opened) and opened, opened
    assert _opened_csvs(home, "ingest") == []
    assert _opened_csvs(home, "ingest", "--rehash").count(str(changed)) == 1  # hashed, known: not loaded again


def _opened_csvs(home: Path, *args: str) -> list[str]:
    """Run csvreport in a child process and list the .csv files it opened (an audit hook sees every open)."""
    code = textwrap.dedent("""
        import sys
        opened = []
        sys.addaudithook(lambda event, a: opened.append(str(a[0])) if event == "open" and str(a[0]).endswith(".csv")
                         else None)
        from csvreport.cli import main
        try:
            main()
        except SystemExit as exc:
            code = exc.code
        print("OPENED", *opened, sep="\\n", file=sys.stderr)
        sys.exit(code)
    """)
    env = dict(os.environ, CSVREPORT_HOME=str(home), PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-c", code, "--quiet", *args], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return [line for line in done.stderr.split("OPENED\n", 1)[1].splitlines() if line]


# ---------------------------------------------------------------- start-up

@pytest.mark.parametrize("command", [["status"], ["status", "--check"]])
def test_commands_that_write_no_workbook_import_neither_openpyxl_nor_pydantic(home, command):
    # openpyxl only writes workbooks; Typer would import Pydantic to coerce the options (cli._PlainValues)
    write_csv(home / "inbox/sensors/x.csv", CSV_A)
    code = textwrap.dedent("""
        import sys
        from csvreport.cli import main
        try:
            main()
        except SystemExit as exc:
            code = exc.code
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("openpyxl", "pyarrow", "pandas", "pydantic"))
        print("HEAVY", loaded, file=sys.stderr)
        sys.exit(code)
    """)
    env = dict(os.environ, CSVREPORT_HOME=str(home), PYTHONPATH=str(REPO))
    for args in (["--home", str(home), "ingest", "--wait", "5", "--source", "sensors"], command):
        done = subprocess.run([sys.executable, "-c", code, "--quiet", *args], env=env, capture_output=True,
                              text=True)
        # --check exits 1 here: the hour's workbooks are owed
        assert done.returncode in ((0, 1) if "--check" in args else (0,)), done.stdout + done.stderr
        assert "HEAVY []" in done.stderr, done.stderr


def test_own_folders_are_never_inputs_but_look_alike_siblings_are(home, cli):
    # find_files compares string prefixes (with the separator) instead of Path.is_relative_to. Such a
    # pattern is refused by the configuration check; discovery keeps out of the own folders all the same.
    import dataclasses

    from csvreport.collect import find_files
    from csvreport.config import load_settings

    text = (home / "config" / "settings.toml").read_text(encoding="utf-8")
    write_config(home, text=text.replace('pattern = "inbox/sensors/*.csv"', 'pattern = "**/*.csv"'))
    result = cli("ingest")
    assert result.exit_code == 2
    assert "sources.sensors.pattern: '**/*.csv': can match files inside" in result.stderr
    write_config(home, text=text)
    write_csv(home / "inbox/sensors/a.csv", CSV_A)
    write_csv(home / "quarantine/sensors/q.csv", CSV_B)
    write_csv(home / "reports/r.csv", CSV_B)
    write_csv(home / "logs/l.csv", CSV_B)
    write_csv(home / "quarantine2/b.csv", "ts,site,metric,value\n2026-03-28 10:00:00,sibling,t,3.0\n")
    settings = load_settings(home)
    source = dataclasses.replace(settings.sources[0], patterns=("**/*.csv",))
    found = find_files(settings, source)
    assert sorted(str(c.path.relative_to(home)) for c in found.ready) == ["inbox/sensors/a.csv", "quarantine2/b.csv"]


def test_row_loop_is_compiled_once_per_layout_and_keeps_each_files_ingestion_id(home, cli):
    for i in range(3):
        write_csv(home / f"inbox/sensors/f{i}.csv", f"ts,site,metric,value\n2026-03-28 10:00:0{i},s{i},t,{i}\n",
                  age=3600 - i)
    rowloop._compiled.cache_clear()
    result = cli("ingest")
    assert result.exit_code == 0, result.output
    assert rowloop._compiled.cache_info().misses == 1 and rowloop._compiled.cache_info().hits == 2
    with sqlite3.connect(home / "data" / "csvreport.sqlite3") as conn:
        assert conn.execute("SELECT s.site, l.path FROM sensors s JOIN ingestion_log l ON l.id = s._ingestion_id "
                            "ORDER BY s._id").fetchall() == \
            [(f"s{i}", str(home / f"inbox/sensors/f{i}.csv")) for i in range(3)]


def test_hour_cache_stays_bounded_and_right_after_it_is_cleared():
    parser = TimestampParser("America/New_York")
    parser.hours.limit = 100
    tz = ZoneInfo("America/New_York")
    hour = datetime(2026, 1, 1)
    for _ in range(1000):
        assert parser(hour.strftime("%Y-%m-%d %H:07:09")) == local_to_epoch(hour.replace(minute=7, second=9), tz)
        assert len(parser.hours) <= 100
        hour += timedelta(hours=7)


def test_empty_and_null_values_are_stored_as_sql_null_in_every_column_type(tmp_path, home):
    # Nulls are bound as NaN (rowcheck.NULL), which SQLite stores as NULL; this pins that down.
    write_config(home, text=SOURCE + 'timestamp = "ts"\ncolumns = ["ts", "note", "value", "qty"]\n'
                 'types = { value = "real", qty = "integer" }\nnull_values = ["", "NA"]\n')
    source = load_settings(home, None).sources[0]
    path = tmp_path / "nulls.csv"
    path.write_text("ts,note,value,qty\n2026-03-28 10:00:00,,NA,\n2026-03-28 10:00:01,NA, ,NA\n"
                    "2026-03-28 10:00:02,x,1.5,2\n", encoding="utf-8")
    conn = sqlite3.connect(tmp_path / "nulls.sqlite3", isolation_level=None)
    db.ensure_source_table(conn, source)
    load.load_rows(conn, source, path, 1, TimestampParser(source.timezone), 0, 0)
    stored = conn.execute("SELECT typeof(note), typeof(value), typeof(qty), note IS NULL FROM data ORDER BY _id")
    assert stored.fetchall() == [("null", "null", "null", 1), ("null", "null", "null", 1),
                                 ("text", "real", "integer", 0)]
