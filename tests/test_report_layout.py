"""A report, not an export: the Summary, limits, formats, charts, print setup and properties
of real workbooks written by `hourly` and `daily`, read back with openpyxl and from the
chart XML inside the file; and the same rows give the same bytes."""

from __future__ import annotations

import hashlib
import re
import sqlite3
import zipfile
from datetime import datetime
from pathlib import Path

import openpyxl
import pytest
from conftest import BASE_CONFIG, write_config, write_csv

from csvreport import __version__

# The standard home's zone and source, with two reports that say how they want to be read.
CONFIG = BASE_CONFIG.split("[[reports]]")[0].format(max_bad_rows=0, extra_source="") + """
[[reports]]
name = "temperature"
title = "Cold room & store"
source = "sensors"
group_by = ["site"]
chart = "Average (°C)"
[reports.measures]
"Readings" = "count"
"Average (°C)" = "avg:value"
"Highest (°C)" = "max:value"
"Lowest (°C)" = "min:value"
[reports.decimals]
"Average (°C)" = 1
[reports.limits]
"Highest (°C)" = { above = 30.0 }
"Lowest (°C)" = { below = 0.0 }

[[reports]]
name = "by_metric"
source = "sensors"
group_by = ["site", "metric"]
total = false
decimals = 3
[reports.measures]
readings = "count"
value_sum = "sum:value"
"""

# The day before (14 June, 10:00) and the hour itself (15 June, 10:00), local time.
ROWS = """\
ts,site,metric,value
2026-06-14 10:05:00,a,t,10
2026-06-14 10:35:00,a,t,20
2026-06-14 10:40:00,b,h,5
2026-06-15 10:05:00,a,t,12
2026-06-15 10:15:00,a,t,35
2026-06-15 10:20:00,b,h,-2.5
2026-06-15 10:50:00,b,h,4
"""
HOUR = "hourly_20260615_1000.xlsx"


@pytest.fixture
def setup(home: Path, cli) -> Path:
    write_config(home, CONFIG)
    write_csv(home / "inbox" / "sensors" / "rows.csv", ROWS)
    result = cli("ingest")
    assert result.exit_code == 0, result.output
    return home


def write_hour(cli, hour: str = "2026-06-15 10:00") -> None:
    result = cli("hourly", "--hour", hour)
    assert result.exit_code == 0, result.output


def summary_lines(ws) -> dict[tuple[str, str], list]:
    """(measure, group) -> [this window, day before, change, change %, outside limits] cells."""
    lines = {}
    for row in ws.iter_rows(min_row=1):
        label = row[0].value if len(row) >= 7 and row[0].font.b else None
        if label and label != "measure" and isinstance(row[1].value, str) and (
                row[2].value is not None or row[3].value is not None):
            lines[(label, row[1].value)] = list(row[2:7])
    return lines


def texts(ws) -> list[str]:
    return [c.value for row in ws.iter_rows(max_col=1) for c in row if isinstance(c.value, str)]


def chart_xml(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        return [archive.read(n).decode() for n in sorted(archive.namelist()) if n.startswith("xl/charts/chart")]


def test_the_summary_compares_each_measure_with_the_same_hour_a_day_earlier(setup, cli):
    write_hour(cli)
    book = openpyxl.load_workbook(setup / "reports" / HOUR)
    assert book.sheetnames == ["Summary", "temperature", "by_metric", "About"]
    ws = book["Summary"]
    assert ws["A1"].value == "Cold room & store, by_metric" and ws["A1"].font.sz == 16
    assert ws["A2"].value == "Monday 15 June 2026, 10:00\u201311:00 Europe/Berlin (+02:00)"
    assert re.fullmatch(r"Data as of \w+day \d+ \w+ \d{4}, \d\d:\d\d \(\+0[12]:00\)", ws["A3"].value)
    assert "Correction" not in " ".join(texts(ws))
    header = [c.value for c in next(r for r in ws.iter_rows() if r[0].value == "measure")]
    assert header == ["measure", "site", "Mon 15 Jun 10:00\u201311:00", "Sun 14 Jun 10:00\u201311:00", "change",
                      "change %", "outside limits"]
    lines = summary_lines(ws)
    readings = lines[("Readings", "all")]
    assert [c.value for c in readings] == [4, 3, 1, pytest.approx(1 / 3), None]
    assert [c.number_format for c in readings[:4]] == ["#,##0", "#,##0", "+#,##0;-#,##0;#,##0", "+0.0%;-0.0%;0.0%"]
    average = lines[("Average (°C)", "all")]
    assert [c.value for c in average[:2]] == [pytest.approx(48.5 / 4), pytest.approx(35 / 3)]
    assert average[0].number_format == "#,##0.0" and average[2].number_format == "+#,##0.0;-#,##0.0;#,##0.0"
    highest = lines[("Highest (°C)", "all")]
    assert [c.value for c in highest] == [35.0, 20.0, 15.0, pytest.approx(0.75), 1]
    assert highest[0].number_format == "#,##0.00"  # the default: two decimals
    lowest = lines[("Lowest (°C)", "all")]
    assert [c.value for c in lowest] == [-2.5, 5.0, -7.5, pytest.approx(-1.5), 1]
    # outside its limits: a fill for the screen and a bold border for black-and-white print
    for cell in (highest[0], lowest[0]):
        assert cell.fill.fill_type == "solid" and cell.fill.fgColor.rgb.endswith("FFC7CE")
        assert cell.border.left.style == cell.border.bottom.style == "medium" and cell.font.b
    assert highest[1].fill.fill_type is None  # 20 is inside
    facts = [t for t in texts(ws) if t.startswith("4 rows")]
    assert facts == ["4 rows; 2 values outside limits", "4 rows"]  # the second report has no limits
    # total = false: a line per group for what does not add up, counts over all of them
    assert [c.value for c in lines[("value_sum", "a \u00b7 t")][:3]] == [47.0, 30.0, 17.0]
    assert [c.value for c in lines[("value_sum", "b \u00b7 h")][:3]] == [1.5, 5.0, -3.5]
    assert lines[("value_sum", "a \u00b7 t")][0].number_format == "#,##0.000"
    assert ("value_sum", "all") not in lines and lines[("readings", "all")][0].value == 4


def test_report_sheets_keep_their_header_and_highlight_values_outside_limits(setup, cli):
    write_hour(cli)
    book = openpyxl.load_workbook(setup / "reports" / HOUR)
    ws = book["temperature"]
    rows = [list(r) for r in ws.iter_rows()]
    assert [c.value for c in rows[0]] == ["site", "Readings", "Average (°C)", "Highest (°C)", "Lowest (°C)"]
    assert [c.value for c in rows[1]] == ["a", 2, 23.5, 35.0, 12.0]
    assert [c.value for c in rows[2]] == ["b", 2, 0.75, 4.0, -2.5]
    assert [c.value for c in rows[3]] == ["Total", 4, 12.125, 35.0, -2.5]
    assert [c.number_format for c in rows[1][1:]] == ["#,##0", "#,##0.0", "#,##0.00", "#,##0.00"]
    outside = {(r, c) for r, row in enumerate(rows) for c, cell in enumerate(row) if cell.fill.fill_type == "solid"
               and cell.fill.fgColor.rgb.endswith("FFC7CE")}
    assert outside == {(1, 3), (2, 4), (3, 3), (3, 4)}  # above 30 and below 0, in the groups and the total
    assert all(rows[r][c].border.top.style == "medium" for r, c in outside)
    assert rows[1][0].alignment.horizontal is None and rows[0][1].alignment.horizontal == "right"
    metric = [[c.value for c in r] for r in book["by_metric"].iter_rows()]
    assert metric == [["site", "metric", "readings", "value_sum"], ["a", "t", 2, 47.0], ["b", "h", 2, 1.5]]


def test_a_text_measure_lines_up_right_under_its_header_like_the_numbers(home, cli):
    """The latest of a text column is a measure too: left-aligned, it would run into the number beside it."""
    write_config(home, CONFIG + """
[[reports]]
name = "latest"
source = "sensors"
group_by = ["site"]
[reports.measures]
readings = "count"
"Latest reading" = "max:ts"
""")
    write_csv(home / "inbox" / "sensors" / "rows.csv", ROWS)
    assert cli("ingest").exit_code == 0
    assert cli("daily", "--date", "2026-06-15").exit_code == 0
    book = openpyxl.load_workbook(home / "reports" / "daily_20260615_2400.xlsx")
    rows = list(book["latest"].iter_rows())
    assert [c.value for c in rows[1]] == ["a", 2, "2026-06-15 10:15:00"]
    assert [c.value for c in rows[3]] == ["Total", 4, "2026-06-15 10:50:00"]
    assert {c.alignment.horizontal for row in rows for c in row[1:]} == {"right"}
    by_hour = [row for row in book["latest by hour"].iter_rows(min_row=2) if row[2].value is not None]
    assert [row[2].value for row in by_hour] == ["2026-06-15 10:50:00"]
    assert {row[c].alignment.horizontal for row in by_hour for c in (1, 2)} == {"right"}


def test_every_sheet_prints_landscape_one_page_wide_with_header_and_footer(setup, cli):
    write_hour(cli)
    book = openpyxl.load_workbook(setup / "reports" / HOUR)
    for ws in book.worksheets:
        assert ws.page_setup.orientation == "landscape", ws.title
        assert ws.page_setup.fitToWidth == 1 and ws.page_setup.fitToHeight == 0, ws.title
        assert ws.sheet_properties.pageSetUpPr.fitToPage, ws.title
        assert ws.oddHeader.left.text == "Cold room && store, by_metric", ws.title  # & is escaped in a header
        assert ws.oddHeader.right.text == "Monday 15 June 2026, 10:00\u201311:00 Europe/Berlin (+02:00)"
        assert ws.oddFooter.center.text == "Page &P of &N", ws.title
    for name in ("temperature", "by_metric"):
        assert book[name].print_title_rows == "$1:$1" and book[name].freeze_panes == "A2"
    props = book.properties
    assert props.title == "Cold room & store, by_metric"
    assert props.subject == "Monday 15 June 2026, 10:00\u201311:00 Europe/Berlin (+02:00)"
    assert props.creator == f"csvreport {__version__}"
    assert props.created == props.modified == datetime(2026, 6, 15, 9, 0)  # the window's end, not the clock


def test_a_previous_day_without_data_leaves_the_comparison_empty_and_says_so(setup, cli):
    write_csv(setup / "inbox" / "sensors" / "later.csv", "ts,site,metric,value\n2026-06-20 08:10:00,a,t,7\n")
    assert cli("ingest").exit_code == 0
    write_hour(cli, "2026-06-20 08:00")
    ws = openpyxl.load_workbook(setup / "reports" / "hourly_20260620_0800.xlsx")["Summary"]
    lines = summary_lines(ws)
    assert [c.value for c in lines[("Readings", "all")]] == [1, None, None, None, None]
    assert [c.value for c in lines[("Highest (°C)", "all")]] == [7.0, None, None, None, 0]
    assert "1 rows; 0 values outside limits; no data on Fri 19 Jun 08:00\u201309:00 to compare with" in texts(ws)


def test_an_hour_after_a_skipped_hour_has_nothing_to_compare_with(setup, cli):
    write_hour(cli, "2026-03-30 02:00")  # 2026-03-29 had no 02:00
    ws = openpyxl.load_workbook(setup / "reports" / "hourly_20260330_0200.xlsx")["Summary"]
    assert "The day before has no such hour (the clocks skipped it): nothing to compare with." in texts(ws)
    assert ws["A3"].value == "No data in this window"


DST_ROWS = """\
ts,site,metric,value
2026-10-25T00:30:00+02:00,a,t,10
2026-10-25T01:30:00+02:00,a,t,11
2026-10-25T02:30:00+02:00,a,t,12
2026-10-25T02:30:00+01:00,a,t,13
2026-10-25T02:40:00+01:00,b,h,40
2026-10-25T05:30:00+01:00,b,h,31
"""


def test_daily_workbook_of_a_25_hour_day_charts_each_group_with_gaps(setup, cli):
    write_csv(setup / "inbox" / "sensors" / "dst.csv", DST_ROWS)
    assert cli("ingest").exit_code == 0
    result = cli("daily", "--date", "2026-10-25")
    assert result.exit_code == 0, result.output
    path = setup / "reports" / "daily_20261025_2400.xlsx"
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["Summary", "temperature", "by_metric", "temperature by hour", "by_metric by hour",
                               "About"]
    assert book["Summary"]["A2"].value == "Sunday 25 October 2026, 00:00\u201324:00 Europe/Berlin (+02:00 to +01:00)"
    hours = [[c.value for c in r] for r in book["temperature by hour"].iter_rows()]
    assert hours[0] == ["hour", "Readings", "Average (°C)", "Highest (°C)", "Lowest (°C)", "utc offset",
                        "Average (°C): a", "Average (°C): b"]
    assert len(hours) == 1 + 25
    assert [r[5] for r in hours[1:5]] == ["+02:00", "+02:00", "+02:00", "+01:00"]  # 02:00 twice
    assert hours[3][:2] == [datetime(2026, 10, 25, 2, 0), 1] and hours[4][:2] == [datetime(2026, 10, 25, 2, 0), 2]
    assert hours[4][6:] == [13.0, 40.0]
    assert hours[5] == [datetime(2026, 10, 25, 3, 0), None, None, None, None, "+01:00", None, None]  # a gap
    assert book["temperature by hour"]["D5"].fill.fill_type == "solid"  # 40 > 30, highlighted here too
    # total = false: only the counts over all groups; the sum is charted per group
    assert [c.value for c in next(book["by_metric by hour"].iter_rows())] == [
        "hour", "readings", "utc offset", "value_sum: a \u00b7 t", "value_sum: b \u00b7 h"]
    charts = chart_xml(path)
    assert len(charts) == 4  # each report's chart, on the Summary and beside its hours
    for xml in charts:
        assert xml.count('<smooth val="0" />') == xml.count("<ser>") == 2 and '<smooth val="1"' not in xml
        assert xml.count('<symbol val="circle" />') == 2
        assert '<dispBlanksAs val="gap" />' in xml
        assert "hour (Europe/Berlin)" in xml
        assert "$A$2:$A$26" in xml  # the 25 local hours as categories
    temperature = [x for x in charts if "Average (°C) by hour" in x]
    assert len(temperature) == 2
    assert re.search(r"<valAx>.*<a:t>Average \(°C\)</a:t>.*</valAx>", temperature[0], re.DOTALL)
    assert re.search(r"<catAx>.*<a:t>hour \(Europe/Berlin\)</a:t>.*formatCode=\"hh:mm\".*</catAx>", temperature[0],
                     re.DOTALL)
    assert "'temperature by hour'!$G$2:$G$26" in temperature[0] and "'temperature by hour'!$H$2:$H$26" in temperature[0]
    with zipfile.ZipFile(path) as archive:
        drawings = [n for n in archive.namelist() if n.startswith("xl/worksheets/_rels/")]
        summary_rels = archive.read("xl/worksheets/_rels/sheet1.xml.rels").decode()
    assert "drawing" in summary_rels and len(drawings) == 3  # the Summary and the two by-hour sheets


def test_more_than_eight_groups_draw_one_line_over_all(home, cli):
    write_config(home, CONFIG)
    lines = ["ts,site,metric,value"] + [f"2026-06-15 10:{i:02d}:00,s{i},t,{i}" for i in range(9)]
    write_csv(home / "inbox" / "sensors" / "many.csv", "\n".join(lines) + "\n")
    assert cli("ingest").exit_code == 0
    assert cli("daily", "--date", "2026-06-15").exit_code == 0
    charts = chart_xml(home / "reports" / "daily_20260615_2400.xlsx")
    assert len(charts) == 2  # temperature on two sheets; by_metric (no total, 9 groups) has no honest line
    assert all(x.count("<ser>") == 1 and "'temperature by hour'!$C$2:$C$25" in x for x in charts)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_same_rows_give_the_same_bytes_and_a_change_says_correction(setup, cli):
    write_hour(cli)
    path = setup / "reports" / HOUR
    first = path.read_bytes()
    write_hour(cli)
    assert path.read_bytes() == first
    with zipfile.ZipFile(path) as archive:
        assert {i.date_time for i in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    result = cli("daily", "--date", "2026-06-15")
    assert result.exit_code == 0
    daily = setup / "reports" / "daily_20260615_2400.xlsx"
    daily_bytes = daily.read_bytes()
    assert cli("daily", "--date", "2026-06-15").exit_code == 0 and daily.read_bytes() == daily_bytes
    with sqlite3.connect(setup / "data" / "csvreport.sqlite3") as conn:
        recorded = dict(conn.execute("SELECT path, sha256 FROM workbooks").fetchall())
    assert recorded[str(path.relative_to(setup))] == _sha(path)
    assert recorded[str(daily.relative_to(setup))] == _sha(daily)

    write_csv(setup / "inbox" / "sensors" / "late.csv", "ts,site,metric,value\n2026-06-15 10:55:00,a,t,1\n")
    assert cli("ingest").exit_code == 0
    write_hour(cli)
    corrected = path.read_bytes()
    assert corrected != first
    ws = openpyxl.load_workbook(path)["Summary"]
    assert ws["A4"].value.startswith("Correction: written again because its data changed")
    assert ws["A4"].font.b
    about = {r[0]: r[1] for r in openpyxl.load_workbook(path)["About"].iter_rows(values_only=True) if r[0]}
    assert about["correction"] == "yes: written again because its data changed"
    write_hour(cli)  # a correction written again from the same rows is still the same file
    assert path.read_bytes() == corrected


@pytest.mark.parametrize("report, message", [
    ('chart = "nope"', "reports.r.chart: 'nope' must be a measure label or false (measures: n, v)"),
    ("decimals = 9", "reports.r.decimals: 9 must be a whole number of decimals from 0 to 6"),
    ('decimals = { x = 1 }', "reports.r.decimals.x: is not a measure label (measures: n, v)"),
    ('limits = { v = { below = 5, above = 1 } }', "reports.r.limits.v: below (5) must be less than above (1)"),
    ('limits = { v = { over = 5 } }', "reports.r.limits.v: must be a table such as { below = 10.0, above = 80.0 }"),
    ('total = "no"', "reports.r.total: must be of type bool, not str 'no'"),
])
def test_bad_report_reading_keys_are_configuration_errors(home, cli, report, message):
    write_config(home, CONFIG.split("[[reports]]")[0] + f"""
[[reports]]
name = "r"
source = "sensors"
{report}
measures = {{ n = "count", v = "max:value" }}
""")
    result = cli("ingest")
    assert result.exit_code == 2, result.output
    assert f"{home / 'config' / 'settings.toml'}: {message}" in result.output


def test_a_report_may_not_be_named_summary(home, cli):
    write_config(home, CONFIG.replace('name = "by_metric"', 'name = "Summary"'))
    result = cli("ingest")
    assert result.exit_code == 2, result.output
    assert "reports.Summary.name: 'Summary' must be a sheet name" in result.output
