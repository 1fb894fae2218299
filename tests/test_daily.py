"""`csvreport daily`: the quad report against the raw rows, its by-hour sheets, late data."""

from __future__ import annotations

import sqlite3
import time
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import openpyxl
import pytest

from conftest import write_config
from reportcheck import (CONFIG, MEASURES, ZONE, about, assert_rows_equal, assert_workbook_matches, expected,
                         make_rows, raw_rows, utc, write_rows)


@pytest.fixture
def setup(home):
    write_config(home, CONFIG.format(catch_up=6))
    return home


def ingest(cli):
    result = cli("ingest")
    assert result.exit_code == 0, result.output


def by_hour(path: Path, report: str) -> tuple[list, list]:
    ws = openpyxl.load_workbook(path)[f"{report} by hour"]
    values = [tuple(r) for r in ws.iter_rows(values_only=True)]
    return list(values[0]), values[1:]


def expected_hours(rows, day_start: datetime, count: int, report: str) -> list[tuple]:
    """(local wall-clock hour, measures over all groups..., offset) for each hour, computed by hand."""
    measures = MEASURES[report][1]
    out = []
    for i in range(count):
        start = day_start + timedelta(hours=i)
        local = start.astimezone(ZONE)
        values = expected(rows, int(start.timestamp()), int(start.timestamp()) + 3600, report, grouped=False)
        values = values[0] if values else tuple(None for m in measures)  # no data: a gap, not a zero
        offset = local.strftime("%z")
        out.append((local.replace(tzinfo=None), *values, f"{offset[:3]}:{offset[3:]}"))
    return out


@pytest.mark.parametrize("day, day_start, hours", [
    ("2026-03-29", utc(2026, 3, 28, 23), 23),
    ("2026-10-25", utc(2026, 10, 24, 22), 25),
])
def test_daily_workbook_of_a_dst_day_matches_the_raw_rows(setup, cli, day, day_start, hours):
    path = write_rows(setup / "inbox" / "sensors" / "day.csv", make_rows(day_start - timedelta(hours=1),
                                                                          hours + 2, seed=11, step_minutes=15))
    ingest(cli)
    result = cli("daily", "--date", day)
    assert result.exit_code == 0, result.output
    book = setup / "reports" / f"daily_{day.replace('-', '')}_2400.xlsx"
    rows = raw_rows([path])
    start, end = assert_workbook_matches(book, rows)
    assert (start, end) == (int(day_start.timestamp()), int((day_start + timedelta(hours=hours)).timestamp()))
    assert openpyxl.load_workbook(book).sheetnames == [
        "Summary", "by_site", "overall", "by_site by hour", "overall by hour",
                                                     "About"]
    for report in MEASURES:
        header, body = by_hour(book, report)
        width = len(MEASURES[report][1]) + 2
        assert header[:width] == ["hour"] + [m[0] for m in MEASURES[report][1]] + ["utc offset"]
        assert len(body) == hours
        assert_rows_equal([r[:width] for r in body], expected_hours(rows, day_start, hours, report))
    with zipfile.ZipFile(book) as archive:
        charts = [n for n in archive.namelist() if n.startswith("xl/charts/chart")]
    assert len(charts) == 4  # per report, of its chart measure by hour: on its sheet and on the Summary


def test_slot_until_noon_covers_midnight_to_noon(setup, cli):
    day_start = utc(2026, 3, 28, 23)
    path = write_rows(setup / "inbox" / "sensors" / "day.csv", make_rows(day_start, 23, seed=12, step_minutes=30))
    ingest(cli)
    result = cli("daily", "--date", "2026-03-29", "--until", "12:00")
    assert result.exit_code == 0, result.output
    book = setup / "reports" / "daily_20260329_1200.xlsx"
    start, end = assert_workbook_matches(book, raw_rows([path]))
    assert about(book)["window end"] == "2026-03-29 12:00 +02:00"
    assert (end - start) == 11 * 3600  # 00:00 to 12:00 on the day the clocks skip 02:00
    _header, body = by_hour(book, "by_site")
    assert [r[0].hour for r in body] == [0, 1] + list(range(3, 12))


@pytest.mark.parametrize("args, message", [
    (["--date", "29.03.2026"], "Error: --date '29.03.2026': not a date such as 2026-03-29 (YYYY-MM-DD)"),
    (["--date", "2026-03-29", "--until", "25:00"],
     "Error: --until '25:00': not a time from 00:01 to 24:00 (HH:MM), such as 18:00"),
    (["--date", "2099-01-15", "--until", "06:00"],
     "Error: --date 2099-01-15 --until 06:00: that period has not ended yet; its workbook can be written from "
     "2099-01-15 06:00 +01:00"),
])
def test_bad_date_or_until_is_a_usage_error(setup, cli, args, message):
    result = cli("daily", *args)
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines()[-1] == message
    assert not (setup / "data").exists()


def _mtimes(home: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in (home / "reports").glob("daily_*.xlsx")}


def test_late_rows_rewrite_exactly_the_daily_slots_that_cover_them(setup, cli):
    now = time.time()
    today = datetime.fromtimestamp(now, ZONE).date()
    if datetime.fromtimestamp(now + 120, ZONE).date() != today:
        pytest.skip("too close to local midnight for a stable 'yesterday'")
    yesterday = today - timedelta(days=1)
    morning = datetime(yesterday.year, yesterday.month, yesterday.day, 5, tzinfo=ZONE)
    first = write_rows(setup / "inbox" / "sensors" / "a.csv", make_rows(morning.astimezone(timezone.utc), 8,
                                                                        seed=13, step_minutes=30))
    ingest(cli)
    result = cli("daily")
    assert result.exit_code == 0, result.output
    before = _mtimes(setup)
    stamp = f"{yesterday:%Y%m%d}"
    assert {f"daily_{stamp}_{s}.xlsx" for s in ("0600", "1200", "1800", "2400")} <= set(before)
    assert not any(n.startswith(f"daily_{today:%Y%m%d}") and n.endswith("2400.xlsx") for n in before)
    # Late rows for yesterday 10:00-10:30: the 12:00, 18:00 and 24:00 workbooks cover them, 06:00 does not.
    late_start = datetime(yesterday.year, yesterday.month, yesterday.day, 10, 5, tzinfo=ZONE)
    late = write_rows(setup / "inbox" / "sensors" / "late.csv",
                      make_rows(late_start.astimezone(timezone.utc), 0.4, seed=14, sites=["zz-late"]))
    ingest(cli)
    result = cli("daily")
    assert result.exit_code == 0, result.output
    after = _mtimes(setup)
    changed = sorted(n for n in after if after[n] != before.get(n))
    assert changed == [f"daily_{stamp}_{s}.xlsx" for s in ("1200", "1800", "2400")]
    rows = raw_rows([first, late])
    for name in changed + [f"daily_{stamp}_0600.xlsx"]:
        assert_workbook_matches(setup / "reports" / name, rows)
    _header, body = by_hour(setup / "reports" / f"daily_{stamp}_2400.xlsx", "by_site")
    ten = next(r for r in body if r[0].hour == 10)
    assert ten[1] == 12 + 3 * 2  # the hour's 2 readings x 6 series, plus 3 late x 2 metrics
    result = cli("daily")
    assert result.exit_code == 0, result.output
    assert _mtimes(setup) == after and "nothing to write" in result.output
    with sqlite3.connect(setup / "data" / "csvreport.sqlite3") as conn:
        runs = conn.execute("SELECT status, workbooks_written FROM run_history WHERE command = 'daily' "
                            "ORDER BY id").fetchall()
    assert runs[1:] == [("ok", 3), ("ok", 0)]


def test_plain_daily_on_a_new_home_writes_every_due_slot_of_today_and_yesterday(setup, cli):
    now = time.time()
    result = cli("daily")
    assert result.exit_code == 0, result.output
    names = set(_mtimes(setup))
    today = datetime.fromtimestamp(now, ZONE).date()
    due = set()
    for day in (today - timedelta(days=1), today):
        for slot in ("06:00", "12:00", "18:00", "24:00"):
            h, m = int(slot[:2]), int(slot[3:])
            end = (datetime(day.year, day.month, day.day, tzinfo=ZONE) + timedelta(days=1)) if h == 24 else \
                datetime(day.year, day.month, day.day, h, m, tzinfo=ZONE)
            if end.timestamp() <= now:
                due.add(f"daily_{day:%Y%m%d}_{slot.replace(':', '')}.xlsx")
    assert names == due
