"""`csvreport hourly`: values against the raw CSV rows, DST days, late data, crashes."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import openpyxl
import pytest

from conftest import REPO, write_config
from reportcheck import (CONFIG, ZONE, about, assert_workbook_matches, make_rows, raw_rows, sheet, utc,
                         write_rows)


@pytest.fixture
def setup(home):
    write_config(home, CONFIG.format(catch_up=6))
    return home


def db(home: Path) -> sqlite3.Connection:
    return sqlite3.connect(home / "data" / "csvreport.sqlite3")


def ingest(cli):
    result = cli("ingest")
    assert result.exit_code == 0, result.output


def hour_labels(home: Path) -> list[str]:
    return sorted(p.name for p in (home / "reports").glob("hourly_*.xlsx"))


def test_ordinary_hours_match_the_raw_rows(setup, cli):
    files = [write_rows(setup / "inbox" / "sensors" / "a.csv", make_rows(utc(2026, 6, 15, 7), 3, seed=1)),
             write_rows(setup / "inbox" / "sensors" / "b.csv", make_rows(utc(2026, 6, 15, 8, 30), 1, seed=2))]
    ingest(cli)
    rows = raw_rows(files)
    for hour in ("2026-06-15 09:00", "2026-06-15 10:00", "2026-06-15 11:00"):
        result = cli("hourly", "--hour", hour)
        assert result.exit_code == 0, result.output
    assert hour_labels(setup) == ["hourly_20260615_0900.xlsx", "hourly_20260615_1000.xlsx",
                                  "hourly_20260615_1100.xlsx"]
    for name in hour_labels(setup):
        start, end = assert_workbook_matches(setup / "reports" / name, rows)
        assert end - start == 3600
    # 10:00 local (08:00 UTC): 6 readings x 6 series from a.csv, 3 x 6 from b.csv's first half hour
    facts = about(setup / "reports" / "hourly_20260615_1000.xlsx")
    assert facts["window start"] == "2026-06-15 10:00 +02:00"
    assert facts["window end"] == "2026-06-15 11:00 +02:00"
    assert facts["time zone"] == "Europe/Berlin"
    assert facts["data"] == "54 rows from 2 files"
    with db(setup) as conn:
        recorded = conn.execute("SELECT kind, local_start, rows, files, reason, path FROM workbooks "
                                "ORDER BY window_start").fetchall()
        runs = conn.execute("SELECT status, workbooks_written FROM run_history WHERE command = 'hourly'").fetchall()
    assert [r[:5] for r in recorded] == [
        ("hourly", "2026-06-15T09:00:00+02:00", 36, 1, "requested"),
        ("hourly", "2026-06-15T10:00:00+02:00", 54, 2, "requested"),
        ("hourly", "2026-06-15T11:00:00+02:00", 54, 2, "requested"),
    ]
    assert runs == [("ok", 1)] * 3


def _every_hour(cli, day_start_utc: datetime, hours: int) -> list[str]:
    """Ask for each hour of a day, the second of a repeated hour by its offset."""
    seen = set()
    for i in range(hours):
        local = (day_start_utc + timedelta(hours=i)).astimezone(ZONE)
        wall = local.strftime("%Y-%m-%d %H:00")
        text = wall if wall not in seen else local.isoformat(timespec="minutes")
        seen.add(wall)
        result = cli("hourly", "--hour", text)
        assert result.exit_code == 0, result.output
    return sorted(seen)


def test_spring_forward_day_has_23_workbooks(setup, cli):
    day_start = utc(2026, 3, 28, 23)  # 2026-03-29 00:00 +01:00
    path = write_rows(setup / "inbox" / "sensors" / "dst.csv", make_rows(day_start, 23, seed=3, step_minutes=20))
    ingest(cli)
    _every_hour(cli, day_start, 23)
    names = hour_labels(setup)
    assert len(names) == 23
    assert "hourly_20260329_0200.xlsx" not in names  # 02:00 does not exist that day
    rows = raw_rows([path])
    starts = sorted(assert_workbook_matches(setup / "reports" / n, rows) for n in names)
    assert starts == [(int((day_start + timedelta(hours=i)).timestamp()),
                       int((day_start + timedelta(hours=i + 1)).timestamp())) for i in range(23)]
    assert sum(about(setup / "reports" / n)["data"] == "18 rows from 1 file" for n in names) == 23


def test_fall_back_day_has_25_workbooks_none_overwritten(setup, cli):
    day_start = utc(2026, 10, 24, 22)  # 2026-10-25 00:00 +02:00
    path = write_rows(setup / "inbox" / "sensors" / "dst.csv", make_rows(day_start, 25, seed=4, step_minutes=20))
    ingest(cli)
    _every_hour(cli, day_start, 25)
    names = hour_labels(setup)
    assert len(names) == 25
    assert "hourly_20261025_0200.xlsx" in names and "hourly_20261025_0200_2.xlsx" in names
    assert about(setup / "reports" / "hourly_20261025_0200.xlsx")["window start"] == "2026-10-25 02:00 +02:00"
    assert about(setup / "reports" / "hourly_20261025_0200_2.xlsx")["window start"] == "2026-10-25 02:00 +01:00"
    rows = raw_rows([path])
    windows = sorted(assert_workbook_matches(setup / "reports" / n, rows) for n in names)
    assert windows == [(int((day_start + timedelta(hours=i)).timestamp()),
                        int((day_start + timedelta(hours=i + 1)).timestamp())) for i in range(25)]
    with db(setup) as conn:
        assert conn.execute("SELECT count(*), count(DISTINCT path) FROM workbooks").fetchone() == (25, 25)


def test_plain_hour_spec_takes_the_first_of_a_repeated_hour(setup, cli):
    result = cli("hourly", "--hour", "2026-10-25 02:00")
    assert result.exit_code == 0, result.output
    result = cli("hourly", "--hour", "2026-10-25T00:00Z")  # = 02:00 +02:00 again: rewritten, same file
    assert result.exit_code == 0, result.output
    assert hour_labels(setup) == ["hourly_20261025_0200.xlsx"]
    with db(setup) as conn:
        assert conn.execute("SELECT writes FROM workbooks").fetchall() == [(2,)]


def test_an_hour_without_rows_gets_a_workbook_that_says_so(setup, cli):
    result = cli("hourly", "--hour", "2026-06-15 03:00")
    assert result.exit_code == 0, result.output
    path = setup / "reports" / "hourly_20260615_0300.xlsx"
    assert about(path)["data"] == "No rows in this window"
    for name in ("by_site", "overall"):
        header, body, total = sheet(path, name)
        assert body == [("No rows in this window (Monday 15 June 2026, 03:00\u201304:00 Europe/Berlin (+02:00))",)
                        + (None,) * (len(header) - 1)]
        assert total is None


@pytest.mark.parametrize("text, message", [
    ("2026-03-29 02:00", "Error: --hour '2026-03-29 02:00': 2026-03-29 02:00 does not exist in Europe/Berlin "
                         "(the clocks skip it at the change to summer time); ask for the hour after it"),
    ("2026-06-15 10:30", "Error: --hour '2026-06-15 10:30': an hour starts at minute 00; use 2026-06-15 10:00"),
    ("yesterday", "Error: --hour 'yesterday': not a time such as \"2026-03-29 14:00\" or "
                  "\"2026-10-25T02:00+01:00\""),
    ("2026-06-15T10:30+01:00", "Error: --hour '2026-06-15T10:30+01:00': an hour starts at minute 00; "
                               "use 2026-06-15 10:00"),
    ("2099-01-01 10:00", "Error: --hour '2099-01-01 10:00': the hour 2099-01-01 10:00 +01:00 has not ended yet; "
                         "its workbook can be written from 2099-01-01 11:00 +01:00"),
])
def test_bad_hour_is_a_usage_error(setup, cli, text, message):
    result = cli("hourly", "--hour", text)
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines()[-1] == message
    assert not (setup / "data" / "csvreport.sqlite3").exists()  # stopped before touching anything


def _recent_hours(now: float, count: int) -> list[datetime]:
    """Local starts (aware) of the `count` complete hours before now, oldest first."""
    top = datetime.fromtimestamp(now, timezone.utc).replace(minute=0, second=0, microsecond=0)
    return [top - timedelta(hours=i) for i in range(count, 0, -1)]


def _mtimes(home: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in (home / "reports").glob("hourly_*.xlsx")}


def test_late_file_rewrites_only_the_touched_hour(setup, cli):
    now = time.time()
    hours = _recent_hours(now, 5)
    first = write_rows(setup / "inbox" / "sensors" / "early.csv", make_rows(hours[0], 4, seed=5))
    ingest(cli)
    result = cli("hourly")
    assert result.exit_code == 0, result.output
    before = _mtimes(setup)
    assert len(before) in (6, 5)  # the complete hours of the last 6 (5 when run at a full hour)
    late_hour = hours[2]
    late = write_rows(setup / "inbox" / "sensors" / "late.csv",
                      make_rows(late_hour + timedelta(minutes=5), 0.5, seed=6, sites=["berlin-01", "zz-late"]))
    ingest(cli)
    result = cli("hourly")
    assert result.exit_code == 0, result.output
    after = _mtimes(setup)
    touched = "hourly_" + late_hour.astimezone(ZONE).strftime("%Y%m%d_%H%M") + ".xlsx"
    assert sorted(n for n in after if after[n] != before.get(n)) == [touched]
    assert "reason=stale" in result.output and "ingestion 2 arrived" in result.output
    rows = raw_rows([first, late])
    assert_workbook_matches(setup / "reports" / touched, rows)
    _header, body, _ = sheet(setup / "reports" / touched, "by_site")
    assert ("zz-late", "humidity") in [r[:2] for r in body]  # the late rows are in the new numbers
    # a third run has nothing to do
    result = cli("hourly")
    assert result.exit_code == 0, result.output
    assert _mtimes(setup) == after
    assert "nothing to write" in result.output
    with db(setup) as conn:
        assert conn.execute("SELECT writes, reason FROM workbooks WHERE path LIKE ?",
                            (f"%{touched}",)).fetchone() == (2, "stale")


def test_rows_removed_by_a_rewritten_file_make_their_hours_stale(setup, cli):
    now = time.time()
    hours = _recent_hours(now, 4)
    path = setup / "inbox" / "sensors" / "export.csv"
    write_rows(path, make_rows(hours[0], 2, seed=7))
    ingest(cli)
    assert cli("hourly").exit_code == 0
    before = _mtimes(setup)
    # The exporter rewrites the file with the first hour only: the second hour's rows go away.
    write_rows(path, make_rows(hours[0], 1, seed=7), age=1800)
    ingest(cli)
    result = cli("hourly")
    assert result.exit_code == 0, result.output
    after = _mtimes(setup)
    changed = sorted(n for n in after if after[n] != before.get(n))
    names = ["hourly_" + h.astimezone(ZONE).strftime("%Y%m%d_%H%M") + ".xlsx" for h in hours[:2]]
    assert changed == names
    assert "ingestion 1 superseded" in result.output
    assert about(setup / "reports" / names[1])["data"] == "No rows in this window"
    assert_workbook_matches(setup / "reports" / names[0], raw_rows([path]))


def test_workbook_deleted_is_written_again_by_the_next_plain_run(setup, cli):
    assert cli("hourly").exit_code == 0
    victim = sorted((setup / "reports").glob("hourly_*.xlsx"))[-1]
    victim.unlink()
    result = cli("hourly")
    assert result.exit_code == 0, result.output
    assert victim.exists() and "reason=missing" in result.output


KILLER = """
import os, signal, sys
from csvreport import workbook
from csvreport.cli import main

target, real_replace = sys.argv[1], os.replace
def replace(src, dst):
    if str(dst).endswith(target):
        os.kill(os.getpid(), signal.SIGKILL)   # killed with the workbook written, before the rename
    real_replace(src, dst)
workbook.os.replace = replace
sys.argv = ["csvreport", "hourly"]
main()
"""


def test_killed_while_writing_leaves_no_final_file_and_the_next_run_writes_it(setup, cli, tmp_path):
    now = time.time()
    hours = _recent_hours(now, 3)
    path = write_rows(setup / "inbox" / "sensors" / "a.csv", make_rows(hours[0], 3, seed=8))
    ingest(cli)
    target = "hourly_" + hours[1].astimezone(ZONE).strftime("%Y%m%d_%H%M") + ".xlsx"
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, str(script), target], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    reports = setup / "reports"
    assert not (reports / target).exists()
    leftovers = list(reports.glob(f".{target}.*.tmp"))
    assert len(leftovers) == 1 and leftovers[0].stat().st_size > 0
    with db(setup) as conn:
        assert conn.execute("SELECT count(*) FROM workbooks WHERE path LIKE ?", (f"%{target}",)).fetchone() == (0,)
        assert conn.execute("SELECT status FROM run_history WHERE command = 'hourly'").fetchall() == [("running",)]
    result = cli("hourly")
    assert result.exit_code == 0, result.output
    assert (reports / target).exists()
    assert not list(reports.glob(".*.tmp"))
    assert "removed a temporary workbook left by an interrupted run" in result.output
    assert_workbook_matches(reports / target, raw_rows([path]))
    openpyxl.load_workbook(reports / target)  # a whole workbook, not half of one
