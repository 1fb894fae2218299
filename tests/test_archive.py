"""The Parquet archive: whole months out of SQLite and back, every row and value identical,
and a process killed between any two steps leaves no row lost and none doubled.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, write_config, write_csv

pa = pytest.importorskip("pyarrow", reason="needs the archive extra: pip install -e '.[dev]'")
import pyarrow.dataset as ds  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from csvreport import archive, db  # noqa: E402
from csvreport.config import load_settings  # noqa: E402
from csvreport.errors import CsvReportError  # noqa: E402

CONFIG = """
timezone = "Europe/Berlin"

[ingest]
settle_seconds = 0

[[sources]]
name = "sensors"
pattern = "inbox/sensors/*.csv"
timestamp = "ts"
columns = ["ts", "site", "metric", "value", "count"]
types = { value = "real", count = "integer" }
null_values = ["", "NA"]

[[sources]]
name = "meters"
pattern = "inbox/meters/*.csv"
timestamp = "ts"
columns = ["ts", "meter", "kwh"]
types = { kwh = "real" }

[[reports]]
name = "sensor_summary"
source = "sensors"
group_by = ["site"]
[reports.measures]
readings = "count"
value_sum = "sum:value"
"""

SITES = ["a", "Köln", "b,c", '"quoted"', "=HYPERLINK(1)", "NA"]


def sensor_rows(year: int, month: int, n: int, seed: int) -> list[str]:
    lines = []
    for i in range(n):
        day, hour, minute = 1 + i % 27, (i * 7) % 24, (i * 13) % 60
        site = SITES[(i + seed) % len(SITES)]
        value = "" if i % 11 == 0 else f"{((i * 37 + seed) % 1000 - 500) / 7:.6f}"
        count = "NA" if i % 13 == 0 else str((i * 91 + seed) % 100000 - 5000)
        quoted = '"' + site.replace('"', '""') + '"'
        lines.append(f"{year:04d}-{month:02d}-{day:02d} {hour:02d}:{minute:02d}:{i % 60:02d},{quoted},temp,"
                     f"{value},{count}")
    return lines


@pytest.fixture
def loaded(home, cli) -> Path:
    """Sensors in Dec 2025 .. Mar 2026 (with rows on the local month borders), meters in Jan and Feb."""
    write_config(home, CONFIG)
    header = "ts,site,metric,value,count\n"
    borders = ["2026-01-31 23:59:59,edge,temp,1.25,1", "2026-02-01 00:00:00,edge,temp,2.5,2",
               "2025-12-31 23:00:00,edge,temp,-0.1,3", "2026-03-01 00:00:00,edge,temp,0.1,4"]
    for i, (y, m) in enumerate([(2025, 12), (2026, 1), (2026, 2), (2026, 3)]):
        body = "\n".join(sensor_rows(y, m, 40, i) + (borders if i == 1 else [])) + "\n"
        write_csv(home / "inbox" / "sensors" / f"s{y}{m:02d}.csv", header + body)
    write_csv(home / "inbox" / "meters" / "m.csv", "ts,meter,kwh\n" + "".join(
        f"2026-0{1 + i % 2}-{1 + i % 28:02d} 12:00:00,m{i % 3},{i * 0.3:.1f}\n" for i in range(30)))
    result = cli("ingest")
    assert result.exit_code == 0, result.output
    return home


def table_rows(home: Path, table: str = "sensors") -> list[tuple]:
    conn = sqlite3.connect(home / "data" / "csvreport.sqlite3")
    try:
        return conn.execute(f'SELECT * FROM "{table}" ORDER BY _id').fetchall()
    finally:
        conn.close()


def table_types(home: Path, table: str = "sensors") -> list[tuple]:
    conn = sqlite3.connect(home / "data" / "csvreport.sqlite3")
    try:
        names = [r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')]
        return conn.execute(f'SELECT {", ".join(f"typeof({n!r})".replace(chr(39), chr(34)) for n in names)} '
                            f'FROM "{table}" ORDER BY _id').fetchall()
    finally:
        conn.close()


def parquet_files(home: Path, table: str = "sensors", hidden: bool = False) -> list[Path]:
    """The files a reader of the archive sees (with `hidden`: also those under a temporary name)."""
    root = home / "archive" / table
    if not root.exists():
        return []
    return sorted(p for p in root.rglob("*.parquet*") if p.is_file() and (hidden or not p.name.startswith(".")))


def archived_rows(home: Path, table: str = "sensors", hidden: bool = False) -> list[tuple]:
    rows = []
    for path in parquet_files(home, table, hidden):
        data = pq.read_table(path).to_pylist()
        rows += [tuple(int(v.timestamp()) if k == "_ts" else v for k, v in r.items()) for r in data]
    return rows


def everywhere(home: Path, table: str = "sensors", hidden: bool = False) -> list[tuple]:
    """Every row wherever it lives, database and archive, sorted by _id (doubles would show twice)."""
    return sorted(table_rows(home, table) + archived_rows(home, table, hidden))


def parts(home: Path) -> list[tuple]:
    conn = sqlite3.connect(home / "data" / "csvreport.sqlite3")
    try:
        return conn.execute("SELECT source, month, state, rows FROM archive_parts ORDER BY id").fetchall()
    finally:
        conn.close()


# --- round trip ---------------------------------------------------------------------------------

def test_archive_then_restore_gives_back_every_row_and_value(loaded, cli):
    home = loaded
    before, before_types = table_rows(home), table_types(home)
    meters = table_rows(home, "meters")

    result = cli("archive", "--before", "2026-03")
    assert result.exit_code == 0, result.output

    # March stays; the local month borders decide (2026-02-01 00:00 Berlin is 2026-01-31 23:00 UTC).
    remaining = table_rows(home)
    assert remaining and all(r[2] >= 1772319600 for r in remaining)  # 2026-03-01 00:00 Berlin
    assert [p.relative_to(home / "archive").as_posix() for p in parquet_files(home)] == [
        "sensors/year=2025/month=12/part-1.parquet", "sensors/year=2026/month=1/part-2.parquet",
        "sensors/year=2026/month=2/part-3.parquet"]
    assert sorted(remaining + archived_rows(home)) == before
    assert table_rows(home, "meters") == [] and sorted(archived_rows(home, "meters")) == meters
    assert [(s, m, st) for s, m, st, _ in parts(home)] == [
        ("sensors", "2025-12", "archived"), ("sensors", "2026-01", "archived"), ("sensors", "2026-02", "archived"),
        ("meters", "2026-01", "archived"), ("meters", "2026-02", "archived")]
    assert "months archived" in result.output

    # The files carry the columns with their types, and hive partitioning as DuckDB or Spark read it.
    schema = pq.read_schema(parquet_files(home)[0])
    assert [(f.name, str(f.type)) for f in schema] == [
        ("_id", "int64"), ("_ingestion_id", "int64"), ("_ts", "timestamp[ms, tz=UTC]"), ("ts", "string"),
        ("site", "string"), ("metric", "string"), ("value", "double"), ("count", "int64")]
    dataset = ds.dataset(home / "archive" / "sensors", format="parquet", partitioning="hive")
    table = dataset.to_table(filter=(ds.field("year") == 2026) & (ds.field("month") == 2))
    assert table.num_rows == sum(1 for r in before if 1769900400 <= r[2] < 1772319600)

    for month in ("2026-01", "2025-12", "2026-02"):
        result = cli("archive", "restore", "--month", month)
        assert result.exit_code == 0, result.output
    assert table_rows(home) == before
    assert table_types(home) == before_types
    assert table_rows(home, "meters") == meters  # without --source a restore takes every source's month
    assert parquet_files(home) == [] and parquet_files(home, "meters") == []
    assert [st for _, _, st, _ in parts(home)] == ["restored"] * 5
    assert not (home / "archive" / "sensors").exists() and not (home / "archive" / "meters").exists()


def test_restore_source_narrows_and_a_month_not_archived_is_refused(loaded, cli):
    home = loaded
    meters = table_rows(home, "meters")
    assert cli("archive", "--before", "2026-03").exit_code == 0

    result = cli("archive", "restore", "--month", "2026-02", "--source", "meters")
    assert result.exit_code == 0, result.output
    assert list(table_rows(home, "meters")) == [r for r in meters if r[2] >= 1769900400]
    assert len(parquet_files(home)) == 3  # sensors untouched

    result = cli("archive", "restore", "--month", "2026-02", "--source", "meters")
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (
        "Error: month 2026-02 of source meters is not archived (archived: meters 2026-01, sensors 2025-12, "
        "sensors 2026-01, sensors 2026-02); nothing to restore")


def test_late_rows_for_an_archived_month_become_a_second_part_restored_together(loaded, cli):
    home = loaded
    before = table_rows(home)
    assert cli("archive", "--before", "2026-02", "--source", "sensors").exit_code == 0
    write_csv(home / "inbox" / "sensors" / "late.csv", "ts,site,metric,value,count\n2026-01-15 10:00:00,late,t,9,9\n")
    assert cli("ingest").exit_code == 0
    late = table_rows(home)[-1]

    result = cli("archive", "--before", "2026-02", "--source", "sensors")
    assert result.exit_code == 0, result.output
    assert [p.name for p in parquet_files(home) if "month=1/" in p.as_posix()] == ["part-2.parquet", "part-3.parquet"]
    assert table_rows(home, "meters")  # --source: meters untouched

    assert cli("archive", "restore", "--month", "2026-01", "--source", "sensors").exit_code == 0
    assert sorted(table_rows(home) + archived_rows(home)) == sorted(before + [late])


def test_a_file_that_does_not_match_the_database_deletes_nothing(loaded, cli, monkeypatch):
    home = loaded
    before = table_rows(home)
    real = archive._read_back

    def one_row_short(path, columns):
        checks = real(path, columns)
        checks["rows"] -= 1
        return checks

    monkeypatch.setattr(archive, "_read_back", one_row_short)
    result = cli("archive", "--before", "2026-01", "--source", "sensors")

    assert result.exit_code == 1
    path = home / "archive" / "sensors" / "year=2025" / "month=12" / "part-1.parquet"
    assert result.output.splitlines()[-1] == (
        f"Error: the archive file {path} does not match the database (40 rows in the file, 41 in the database); "
        "it was removed and no row was deleted; run the same command again")
    assert table_rows(home) == before
    assert list((home / "archive").rglob("*parquet*")) == []
    assert parts(home) == [("sensors", "2025-12", "undone", None)]


def test_a_changed_archive_file_is_not_restored(loaded, cli):
    home = loaded
    assert cli("archive", "--before", "2026-01", "--source", "sensors").exit_code == 0
    path = parquet_files(home)[0]
    table = pq.read_table(path)
    pq.write_table(table.slice(1), path)

    result = cli("archive", "restore", "--month", "2025-12")

    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (
        f"Error: {path} changed since it was archived (sha256 differs); put the original back and run the "
        "restore again")
    assert parts(home)[0][2] == "archived"


# --- usage and the workbook guard --------------------------------------------------------------

def test_without_pyarrow_the_command_says_how_to_install_it(loaded, cli, monkeypatch):
    for name in ("pyarrow", "pyarrow.parquet"):
        monkeypatch.setitem(sys.modules, name, None)
    result = cli("archive", "--before", "2026-01")
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == (
        "Error: the archive needs pyarrow, which is not installed; install it with: pip install 'csvreport[archive]'")
    assert cli("archive", "restore", "--month", "2026-01").exit_code == 2


@pytest.mark.parametrize("args, message", [
    (["--before", "2026-13"], "Error: --before 2026-13: not a month; write it as YYYY-MM, for example 2026-03"),
    (["--before", "26-01"], "Error: --before 26-01: not a month; write it as YYYY-MM, for example 2026-03"),
    ([], "Error: archive: give --before YYYY-MM to archive, or use `csvreport archive restore --month YYYY-MM` "
         "to load a month back"),
    (["restore", "--month", "March"], "Error: --month March: not a month; write it as YYYY-MM, for example 2026-03"),
])
def test_bad_months_are_usage_errors(loaded, cli, args, message):
    result = cli("archive", *args)
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == message


def test_a_month_not_over_yet_is_refused(loaded, cli):
    result = cli("archive", "--before", "2999-01")
    assert result.exit_code == 2
    assert result.output.splitlines()[-1].startswith("Error: --before 2999-01: ")
    assert "is not over yet, so months up to 2999-01 are not whole; use --before" in result.output
    assert parts(loaded) == []


def test_archived_window_names_the_month_only_while_it_is_archived(loaded, cli):
    home = loaded
    assert cli("archive", "--before", "2026-02").exit_code == 0
    settings = load_settings(home)
    conn = db.connect(settings, readonly=True)
    try:
        jan_15 = 1768471200  # 2026-01-15 10:00 UTC
        assert archive.archived_window(conn, settings, jan_15, jan_15 + 3600) == "2026-01"
        assert archive.archived_window(conn, settings, 1769900400, 1769904000) is None  # 2026-02-01 00:00 Berlin
        with pytest.raises(CsvReportError) as refused:
            archive.refuse_archived(conn, settings, jan_15, jan_15 + 3600)
        assert str(refused.value) == (
            f"the rows of 2026-01 were moved to the Parquet archive in {home / 'archive'}; load them back first: "
            "csvreport archive restore --month 2026-01")
    finally:
        conn.close()
    assert cli("archive", "restore", "--month", "2026-01").exit_code == 0
    conn = db.connect(settings, readonly=True)
    try:
        assert archive.archived_window(conn, settings, jan_15, jan_15 + 3600) is None
    finally:
        conn.close()


# --- crashes: a process killed between any two steps -------------------------------------------

KILLER = r"""
import os, signal, sys
from csvreport import archive
point, when = sys.argv[1], sys.argv[2]
original = getattr(archive, point)
def patched(*args, **kwargs):
    if when == "before":
        os.kill(os.getpid(), signal.SIGKILL)
    result = original(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)
setattr(archive, point, patched)
from csvreport.cli import main
sys.argv = ["csvreport", *sys.argv[3:]]
main()
"""


def killed(home: Path, point: str, when: str, *args: str) -> None:
    env = {**os.environ, "CSVREPORT_HOME": str(home), "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", KILLER, point, when, *args], env=env, cwd=home,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stdout + proc.stderr


@pytest.mark.parametrize("point, when", [
    ("_write_temp", "before"),   # the part is recorded, no file yet
    ("_write_temp", "after"),    # the temporary file is complete, not renamed
    ("replace_durably", "after"),  # the file is in place, its state still says writing
    ("_read_back", "before"),    # state written, not verified
    ("_delete_rows", "after"),   # rows deleted inside the transaction, not committed
])
def test_an_archive_killed_between_steps_loses_and_doubles_nothing(loaded, cli, point, when):
    home = loaded
    before = table_rows(home)

    killed(home, point, when, "archive", "--before", "2026-03", "--source", "sensors")
    assert sorted(table_rows(home)) == before  # nothing committed, nothing lost

    result = cli("archive", "--before", "2026-03", "--source", "sensors")
    assert result.exit_code == 0, result.output
    assert everywhere(home) == before
    assert not [p for p in (home / "archive").rglob("*") if p.is_file() and p.name.startswith(".")]
    assert [m for s, m, st, _ in parts(home) if st == "archived"] == ["2025-12", "2026-01", "2026-02"]

    for month in ("2025-12", "2026-01", "2026-02"):
        assert cli("archive", "restore", "--month", month).exit_code == 0
    assert table_rows(home) == before


@pytest.mark.parametrize("point, when", [
    # A restore's first durable rename hides the part's file beside it.
    ("replace_durably", "before"),  # state restoring, the file still in place
    ("replace_durably", "after"),   # the file hidden, rows not loaded
    ("_insert_rows", "after"),    # rows inserted inside the transaction, not committed
    ("_remove_files", "before"),  # rows committed back, the file not yet removed
])
def test_a_restore_killed_between_steps_loses_and_doubles_nothing(loaded, cli, point, when):
    home = loaded
    before = table_rows(home)
    assert cli("archive", "--before", "2026-02", "--source", "sensors").exit_code == 0

    killed(home, point, when, "archive", "restore", "--month", "2026-01")
    # Before the commit the rows may sit only in the file under its temporary name; after it,
    # that file is a leftover no reader sees (hidden), removed by the next archive command.
    assert everywhere(home, hidden=point != "_remove_files") == before

    result = cli("archive", "restore", "--month", "2026-01")
    if point == "_remove_files":
        # The killed run did restore the month; the next archive command removes the leftover file.
        assert result.exit_code == 1
        assert "month 2026-01 is not archived" in result.output
    else:
        assert result.exit_code == 0, result.output
    assert everywhere(home) == before
    assert [p.relative_to(home / "archive").as_posix() for p in parquet_files(home)] == [
        "sensors/year=2025/month=12/part-1.parquet"]
    assert not [p for p in (home / "archive").rglob("*") if p.is_file() and p.name.startswith(".")]
    assert cli("archive", "restore", "--month", "2025-12").exit_code == 0
    assert table_rows(home) == before


def test_a_workbook_for_an_archived_window_exits_1_naming_the_restore(loaded, cli):
    home = loaded
    assert cli("archive", "--before", "2026-02").exit_code == 0

    result = cli("hourly", "--hour", "2026-01-15 10:00")
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (
        f"Error: the rows of 2026-01 were moved to the Parquet archive in {home / 'archive'}; load them back first: "
        "csvreport archive restore --month 2026-01")
    result = cli("daily", "--date", "2026-01-31")
    assert result.exit_code == 1
    assert "csvreport archive restore --month 2026-01" in result.output
    assert not list((home / "reports").glob("*2026013*.xlsx"))

    assert cli("archive", "restore", "--month", "2026-01").exit_code == 0
    result = cli("hourly", "--hour", "2026-01-15 10:00")
    assert result.exit_code == 0, result.output


# --- the partition values read the same in every engine ----------------------------------------

def test_duckdb_and_pyarrow_type_and_filter_the_partitions_alike(loaded, cli):
    duckdb = pytest.importorskip("duckdb", reason="duckdb is a test dependency (the test and dev extras)")
    home = loaded
    before = table_rows(home)
    assert cli("archive", "--before", "2026-03", "--source", "sensors").exit_code == 0
    root = home / "archive" / "sensors"

    dataset = ds.dataset(root, format="parquet", partitioning="hive")
    arrow = {f.name: str(f.type) for f in dataset.schema if f.name in ("year", "month")}
    assert arrow == {"year": "int32", "month": "int32"}
    with duckdb.connect() as con:
        kinds = con.execute("SELECT DISTINCT typeof(year), typeof(month) "
                            "FROM read_parquet(?, hive_partitioning = true)", [f"{root}/*/*/*.parquet"]).fetchall()
        assert kinds == [("BIGINT", "BIGINT")]  # integers in both, as in pyarrow (Spark: IntegerType)
        by_duckdb = con.execute("SELECT year, month, count(*) FROM read_parquet(?, hive_partitioning = true) "
                                "GROUP BY ALL ORDER BY ALL", [f"{root}/*/*/*.parquet"]).fetchall()
        february = con.execute("SELECT count(*) FROM read_parquet(?, hive_partitioning = true) "
                               "WHERE year = 2026 AND month = 2", [f"{root}/*/*/*.parquet"]).fetchone()[0]
    counts = dataset.to_table(columns=["year", "month"]).group_by(["year", "month"]).aggregate([([], "count_all")])
    by_arrow = sorted(tuple(r.values()) for r in counts.to_pylist())
    assert by_duckdb == by_arrow
    assert [(y, m) for y, m, _ in by_arrow] == [(2025, 12), (2026, 1), (2026, 2)]
    assert sum(n for _, _, n in by_arrow) == len(before) - len(table_rows(home))
    assert february == dataset.count_rows(filter=(ds.field("year") == 2026) & (ds.field("month") == 2)) \
        == sum(1 for r in before if 1769900400 <= r[2] < 1772319600)


def test_a_month_archived_as_month_03_still_restores(loaded, cli):
    """Archives written before the partition values lost their zeros keep their paths and restore from them."""
    home = loaded
    before = table_rows(home)
    assert cli("archive", "--before", "2026-02", "--source", "sensors").exit_code == 0
    new = home / "archive" / "sensors" / "year=2026" / "month=1" / "part-2.parquet"
    old = home / "archive" / "sensors" / "year=2026" / "month=01" / "part-2.parquet"
    old.parent.mkdir()
    os.replace(new, old)  # the layout an earlier version wrote, and recorded
    new.parent.rmdir()
    with sqlite3.connect(home / "data" / "csvreport.sqlite3") as conn:
        conn.execute("UPDATE archive_parts SET path = 'sensors/year=2026/month=01/part-2.parquet' WHERE id = 2")

    result = cli("archive", "restore", "--month", "2026-01", "--source", "sensors")
    assert result.exit_code == 0, result.output
    assert not old.parent.exists()
    assert cli("archive", "restore", "--month", "2025-12", "--source", "sensors").exit_code == 0
    assert table_rows(home) == before
