"""A window asked for by name (--date, --hour) that holds no rows is written, with a WARNING."""

from __future__ import annotations

import sqlite3

import openpyxl
import pytest
from conftest import write_csv


@pytest.fixture
def loaded(home, cli):
    write_csv(home / "inbox" / "sensors" / "a.csv", "ts,site,metric,value\n2026-03-10 10:15:00,a,t,1\n")
    assert cli("ingest").exit_code == 0
    return home


@pytest.mark.parametrize("args, book, label", [
    (("daily", "--date", "2026-01-15"), "daily_20260115_2400.xlsx", "2026-01-15 00:00 +01:00 to 2026-01-16 00:00"),
    (("hourly", "--hour", "2026-03-10 12:00"), "hourly_20260310_1200.xlsx",
     "2026-03-10 12:00 +01:00 to 2026-03-10 13:00"),
])
def test_an_empty_requested_window_is_written_with_a_warning(loaded, cli, args, book, label):
    result = cli(*args)

    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stdout.splitlines() if "level=WARNING" in line]
    assert len(warnings) == 1, result.stdout
    assert f"the {args[0]} workbook for {label}" in warnings[0]
    assert "holds no rows: no loaded row falls in that window; check the date, or see what was loaded with " \
           "`csvreport recover loads`" in warnings[0]
    assert openpyxl.load_workbook(loaded / "reports" / book).sheetnames[-1] == "About"
    with sqlite3.connect(loaded / "data" / "csvreport.sqlite3") as conn:
        assert conn.execute("SELECT rows FROM workbooks WHERE path LIKE ?", (f"%{book}",)).fetchone() == (0,)


def test_a_requested_window_with_rows_and_a_plain_run_do_not_warn(loaded, cli):
    for args in (("hourly", "--hour", "2026-03-10 10:00"), ("daily", "--date", "2026-03-10"), ("hourly",)):
        result = cli(*args)
        assert result.exit_code == 0, result.output
        assert "level=WARNING" not in result.stdout, (args, result.stdout)
