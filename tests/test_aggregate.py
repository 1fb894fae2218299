"""Local windows and the SQL aggregation: DST, odd zones, totals, the index, the staleness check."""

from __future__ import annotations

import sqlite3
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from conftest import write_config, write_csv
from csvreport import db, freshness
from csvreport.aggregate import (aggregate, day_before, day_window, hour_totals, hours_between, hours_of_day,
                                 parse_hour, slot_end)
from csvreport.config import load_settings
from csvreport.errors import ConfigError
from csvreport.reports import records
from reportcheck import CONFIG
import itertools


@pytest.mark.parametrize("zone, day, count", [
    ("Europe/Berlin", date(2026, 3, 29), 23),
    ("Europe/Berlin", date(2026, 10, 25), 25),
    ("Europe/Berlin", date(2026, 6, 15), 24),
    ("America/New_York", date(2026, 3, 8), 23),
    ("America/New_York", date(2026, 11, 1), 25),
    ("Asia/Kolkata", date(2026, 3, 29), 24),
    ("Australia/Lord_Howe", date(2026, 4, 5), 24),  # clocks go back 30 minutes
    ("UTC", date(2026, 3, 29), 24),
])
def test_a_day_has_the_local_hours_it_has(zone, day, count):
    windows = hours_of_day(zone, day)
    assert len(windows) == count
    tz = ZoneInfo(zone)
    start = datetime(day.year, day.month, day.day, tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tz)
    assert windows[0].start == int(start.timestamp()) and windows[-1].end == int(end.timestamp())
    assert all(a.end == b.start for a, b in itertools.pairwise(windows))  # no gap, no overlap
    assert all(w.local_start.minute == 0 and w.local_start.date() == day for w in windows)


def test_the_repeated_hour_is_two_windows_the_second_marked():
    windows = hours_of_day("Europe/Berlin", date(2026, 10, 25))
    twos = [w for w in windows if w.local_start.hour == 2]
    assert [(w.local_start.strftime("%H:%M%z"), w.repeated) for w in twos] == [("02:00+0200", False),
                                                                               ("02:00+0100", True)]
    assert twos[0].end == twos[1].start and twos[1].end - twos[0].start == 7200


def test_parse_hour_picks_the_first_or_the_offset_given():
    first = parse_hour("2026-10-25 02:00", "Europe/Berlin")
    second = parse_hour("2026-10-25T02:00+01:00", "Europe/Berlin")
    assert (first.start, second.start) == (int(datetime(2026, 10, 25, 0, tzinfo=timezone.utc).timestamp()),
                                           int(datetime(2026, 10, 25, 1, tzinfo=timezone.utc).timestamp()))
    assert parse_hour("2026-10-25T01:00Z", "Europe/Berlin") == second
    assert parse_hour("2026-06-15T10:00", "Europe/Berlin").end - parse_hour("2026-06-15 10:00",
                                                                            "Europe/Berlin").start == 3600
    # any offset works as long as it names the start of a local hour
    assert parse_hour("2026-10-25T02:00+05:00", "Europe/Berlin") == parse_hour("2026-10-24 23:00", "Europe/Berlin")


def test_offset_that_is_not_a_local_hour_start_is_refused():
    with pytest.raises(ConfigError) as error:
        parse_hour("2026-06-15T10:00+05:30", "Europe/Berlin")  # 04:30Z = 06:30 local
    assert str(error.value) == ("--hour '2026-06-15T10:00+05:30' is 2026-06-15 06:30 +02:00 in Europe/Berlin, "
                                "not the start of a local hour; give the local time, such as 2026-06-15 06:00")


def test_slots_and_day_windows():
    zone = "Europe/Berlin"
    assert slot_end(zone, date(2026, 3, 29), "24:00") == int(datetime(2026, 3, 29, 22, tzinfo=timezone.utc)
                                                             .timestamp())
    # 02:30 does not exist that day: read with the offset before the change, i.e. 03:30 +02:00
    assert slot_end(zone, date(2026, 3, 29), "02:30") == int(datetime(2026, 3, 29, 1, 30, tzinfo=timezone.utc)
                                                             .timestamp())
    window = day_window(zone, date(2026, 10, 25), "24:00")
    assert window.end - window.start == 25 * 3600
    inside = hours_between(zone, window.start, window.end)
    assert inside == hours_of_day(zone, date(2026, 10, 25))


ROWS = """\
ts,site,metric,value
2026-06-15 10:00:00,a,t,1
2026-06-15 10:10:00,a,t,2
2026-06-15 10:20:00,a,t,3
2026-06-15 10:30:00,a,t,
2026-06-15 10:40:00,b,t,100
2026-06-15 10:50:00,,t,7
2026-06-15 11:00:00,a,t,1000
"""


@pytest.fixture
def loaded(home, cli):
    write_config(home, CONFIG.format(catch_up=24))
    write_csv(home / "inbox" / "sensors" / "a.csv", ROWS)
    result = cli("ingest")
    assert result.exit_code == 0, result.output
    settings = load_settings(home)
    conn = db.connect(settings)
    yield settings, conn
    conn.close()


def test_groups_totals_and_empty_values(loaded):
    settings, conn = loaded
    report = settings.reports[0]
    table = aggregate(conn, report, settings.source("sensors"), parse_hour("2026-06-15 10:00", "Europe/Berlin"))
    assert [c.name for c in table.columns] == ["site", "metric", "readings", "filled", "value_sum", "value_avg",
                                               "value_min", "value_max"]
    assert table.rows == (
        (None, "t", 1, 1, 7.0, 7.0, 7.0, 7.0),  # an empty group value sorts first, as SQLite sorts NULL
        ("a", "t", 4, 3, 6.0, 2.0, 1.0, 3.0),
        ("b", "t", 1, 1, 100.0, 100.0, 100.0, 100.0),
    )
    # avg over all rows (113 / 5), not the average of the three group averages (36.33)
    assert table.total == ("Total", None, 6, 5, 113.0, 22.6, 1.0, 100.0)
    assert table.row_count == 6


def test_ungrouped_report_and_hour_totals(loaded):
    settings, conn = loaded
    report = settings.reports[1]
    source = settings.source("sensors")
    table = aggregate(conn, report, source, day_window("Europe/Berlin", date(2026, 6, 15), "24:00"))
    assert table.rows == ((7, 1000.0),) and table.total is None
    hours = hours_of_day("Europe/Berlin", date(2026, 6, 15))
    totals = {w.local_start.hour: t.overall for w, t in hour_totals(conn, report, source, hours)}
    assert totals[10] == (6, 100.0) and totals[11] == (1, 1000.0) and totals[12] == (None, None)


def test_one_window_is_read_through_the_time_index(loaded):
    _settings, conn = loaded
    plan = " ".join(row[3] for row in conn.execute(
        "EXPLAIN QUERY PLAN SELECT site, count(*) FROM sensors WHERE _ts >= ? AND _ts < ? GROUP BY site",
        (0, 1)))
    assert "USING INDEX sensors__ts" in plan or "USING COVERING INDEX sensors__ts" in plan, plan


def test_staleness_reads_only_loads_above_the_marks(loaded):
    _settings, conn = loaded
    plans = [" ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", args)) for sql, args in (
        ("SELECT id FROM ingestion_log WHERE id > ? AND min_ts IS NOT NULL", (1,)),
        ("SELECT id FROM ingestion_log WHERE changed_at > ? AND min_ts IS NOT NULL", ("2026",)),
        ("SELECT id FROM window_changes WHERE id > ?", (1,)),
        ("SELECT w.id FROM workbooks w LEFT JOIN workbook_freshness f ON f.workbook_id = w.id WHERE w.kind = ? "
         "AND w.window_start > ? AND w.window_start < ? AND w.window_end > ? AND coalesce(f.seen_change, 0) < ?",
         ("hourly", 0, 1, 0, 1)),
        ("SELECT f.workbook_id FROM workbook_freshness f CROSS JOIN workbooks w ON w.id = f.workbook_id "
         "WHERE f.stale_change IS NOT NULL AND w.kind = ?", ("hourly",)),
    )]
    assert "INTEGER PRIMARY KEY" in plans[0], plans[0]
    assert "USING INDEX ingestion_log_changed" in plans[1], plans[1]
    # The changes since the last run, the windows near each, the workbooks marked stale: no full scan.
    assert "INTEGER PRIMARY KEY" in plans[2], plans[2]
    assert plans[3].startswith("SEARCH w USING") and "kind=? AND window_start>?" in plans[3], plans[3]
    assert "SCAN w" not in plans[4] and "workbook_freshness_stale" in plans[4], plans[4]


def test_a_sparse_late_file_makes_only_the_hours_holding_its_rows_stale(loaded, home, cli):
    _settings, conn = loaded
    for hour in range(9, 15):
        assert cli("hourly", "--hour", f"2026-06-15 {hour:02d}:00").exit_code == 0
    write_csv(home / "inbox" / "sensors" / "sparse.csv",
              "ts,site,metric,value\n2026-06-15 09:30:00,c,t,1\n2026-06-15 13:30:00,c,t,2\n")
    assert cli("ingest").exit_code == 0
    known = records(conn, "hourly", 0, 2**40)
    flagged = freshness.stale(conn, "hourly", {"sensors"})
    hours = sorted(datetime.fromtimestamp(r.start, ZoneInfo("Europe/Berlin")).hour
                   for r in known.values() if r.id in flagged)
    # its span covers 09:30 to 13:30, but only 09:00 and 13:00 hold its rows
    assert hours == [9, 13]


def test_workbooks_table_is_created_by_migration_0002(loaded):
    _settings, conn = loaded
    columns = {row[1] for row in conn.execute("PRAGMA table_info(workbooks)")}
    assert {"kind", "window_start", "window_end", "local_start", "local_end", "zone", "path", "sha256",
            "written_at", "rows", "files", "data_mark", "change_mark"} <= columns
    assert sqlite3.sqlite_version_info >= (3, 35)  # RETURNING, used to record a workbook


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/Santiago", "Australia/Lord_Howe", "Asia/Kolkata"])
@pytest.mark.parametrize("until", ["24:00", "06:00", "12:00", "18:00"])
def test_the_day_before_a_daily_window_is_the_same_slot_of_the_day_before(zone, until):
    """Every day of 2026: the comparison column of a daily workbook covers the whole slot of the day
    before. In Santiago, local midnight of 2026-09-06 is skipped, so 2026-09-05 ends at 01:00 on the
    next day: its day before is still the whole of 2026-09-04, not one hour of it."""
    day = date(2026, 1, 2)
    while day.year == 2026:
        assert day_before(day_window(zone, day, until)) == day_window(zone, day - timedelta(days=1), until), day
        day += timedelta(days=1)
