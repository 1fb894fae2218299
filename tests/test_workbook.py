"""The workbook file itself: text stays text, layout, formats, speed, atomic writing."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import openpyxl
import pytest

from conftest import REPO, write_config, write_csv
from csvreport import workbook
from csvreport.aggregate import Column, ReportTable, SourceSummary, Window
from csvreport.config import Measure, Report
from csvreport.errors import CsvReportError

FORMULA_LOOKING = ['=HYPERLINK("http://example.com","x")', "+1", "-2+3", "@SUM(A1)", "=1+1", "-x"]


def test_formula_looking_text_in_a_grouped_column_stays_text(home, cli):
    lines = ["ts,site,metric,value"]
    for i, site in enumerate(FORMULA_LOOKING):
        lines.append(f'2026-06-15 10:{i:02d}:00,"{site.replace(chr(34), chr(34) * 2)}",t,{i}.5')
    write_csv(home / "inbox" / "sensors" / "evil.csv", "\n".join(lines) + "\n")
    assert cli("ingest").exit_code == 0
    result = cli("hourly", "--hour", "2026-06-15 10:00")
    assert result.exit_code == 0, result.output
    path = home / "reports" / "hourly_20260615_1000.xlsx"
    ws = openpyxl.load_workbook(path)["sensor_summary"]
    cells = [row[0] for row in ws.iter_rows(min_row=2, max_row=len(FORMULA_LOOKING) + 1)]
    assert sorted(c.value for c in cells) == sorted(FORMULA_LOOKING)
    assert all(c.data_type == "s" for c in cells), [(c.value, c.data_type) for c in cells]
    with zipfile.ZipFile(path) as archive:
        sheets = [archive.read(n).decode() for n in archive.namelist() if n.startswith("xl/worksheets/sheet")]
    assert not any("<f>" in s or "<f " in s for s in sheets)  # not one formula anywhere


def _table(rows: int) -> ReportTable:
    report = Report("big", "sensors", ("site", "metric"), (
        Measure("readings", "count", None), Measure("value_sum", "sum", "value"),
        Measure("value_avg", "avg", "value"), Measure("value_max", "max", "value")))
    columns = (Column("site", "text"), Column("metric", "text"), Column("readings", "count"),
               Column("value_sum", "real"), Column("value_avg", "average"), Column("value_max", "real"))
    body = tuple((f"site-{i:04d}", "temperature\x07bell", i, i * 1.5, 0.75, float(i)) for i in range(rows))
    overall = (sum(r[2] for r in body), sum(r[3] for r in body), 0.75, float(rows - 1))
    return ReportTable(report, columns, body, ("Total", None) + overall, rows, overall)


def _content(rows: int) -> workbook.Content:
    window = Window(1781510400, 1781514000, "Europe/Berlin")  # 2026-06-15 08:00Z
    return workbook.Content("hourly", window, [SourceSummary("sensors", rows, 1, "2026-06-15T09:01:00.000Z")],
                            [_table(rows)])


def test_layout_formats_header_filter_widths_and_totals(tmp_path):
    saved = workbook.save(tmp_path / "hourly_20260615_1000.xlsx", _content(3))
    book = openpyxl.load_workbook(saved.path)
    assert book.sheetnames == ["Summary", "big", "About"]
    ws = book["big"]
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == "A1:F4"  # header and groups; the totals row stays out of sorting
    assert [c.value for c in ws[1]] == ["site", "metric", "readings", "value_sum", "value_avg", "value_max"]
    assert all(c.font.b for c in ws[1])
    assert [c.number_format for c in ws[2]][2:] == ["#,##0", "#,##0.00", "#,##0.00", "#,##0.00"]
    assert ws["B2"].value == "temperature\ufffdbell"  # a control character cannot go into a workbook
    assert [c.value for c in ws[5]] == ["Total", None, 3, 4.5, 0.75, 2.0]
    assert ws.column_dimensions["A"].width >= len("site-0000") and ws.column_dimensions["B"].width <= 60
    about = {r[0]: r[1] for r in book["About"].iter_rows(min_row=2, max_col=2, values_only=True) if r[0]}
    assert about["window start"] == "2026-06-15 10:00 +02:00"
    assert about["data as of"] == "Monday 15 June 2026, 11:01 (+02:00) (2026-06-15T09:01:00.000Z)"
    assert "written at" not in about  # no wall-clock time inside: the same rows give the same bytes
    assert about["data"] == "3 rows from 1 file"
    assert saved.size == os.path.getsize(saved.path) and len(saved.sha256) == 64


def test_2400_rows_are_all_written(tmp_path):
    # How fast: benchmarks/run.py ("workbook of 2,400 rows written", under a second).
    content = _content(2400)
    workbook.save(tmp_path / "big.xlsx", content)
    assert sum(1 for _ in openpyxl.load_workbook(tmp_path / "big.xlsx", read_only=True)["big"].iter_rows()) == 2402


def test_failed_write_leaves_neither_temp_nor_final_file(tmp_path, monkeypatch):
    folder = tmp_path / "reports"
    final = folder / "hourly_20260615_1000.xlsx"

    def broken(content):
        raise OSError(28, "No space left on device")

    from csvreport import sheets

    monkeypatch.setattr(sheets, "build_book", broken)
    with pytest.raises(CsvReportError) as error:
        workbook.save(final, _content(1))
    assert str(error.value) == (f"the disk is full: cannot write the workbook {final}; free space on the file "
                                f"system of {folder}, then run the command again")
    assert list(folder.iterdir()) == []


def test_a_reports_path_that_is_not_a_folder_fails_the_run_with_exit_1(home, cli):
    (home / "reports").write_text("not a folder")
    result = cli("hourly", "--hour", "2026-06-15 10:00")
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines()[-1] == (
        f"Error: cannot create the reports folder {home / 'reports'}: File exists; fix paths.reports in the "
        "configuration, or the folder's permissions")


def test_leftover_temp_files_are_removed_and_others_kept(tmp_path):
    tmp_path = tmp_path / "reports"
    tmp_path.mkdir()
    (tmp_path / ".hourly_20260615_1000.xlsx.4242.tmp").write_bytes(b"half")
    (tmp_path / "hourly_20260615_0900.xlsx").write_bytes(b"whole")
    (tmp_path / "notes.tmp").write_bytes(b"someone else's")
    removed = workbook.remove_leftovers(tmp_path)
    assert [p.name for p in removed] == [".hourly_20260615_1000.xlsx.4242.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hourly_20260615_0900.xlsx", "notes.tmp"]


CHECK_IMPORTS = """
import sys
from csvreport.cli import main
sys.argv = ["csvreport", "--quiet", "hourly"]
try:
    main()
except SystemExit as exc:
    assert not exc.code, exc.code
print("openpyxl imported:", "openpyxl" in sys.modules)
"""


def test_a_run_that_writes_no_workbook_does_not_import_openpyxl(home, cli, tmp_path):
    write_config(home)
    assert cli("hourly").exit_code == 0  # writes the catch-up window
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", CHECK_IMPORTS], env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "openpyxl imported: False"


def test_help_of_the_report_commands_has_an_example(cli):
    for command in ("hourly", "daily"):
        result = cli(command, "--help")
        assert result.exit_code == 0, result.output
        assert "Example: csvreport" in result.output


def test_a_24_character_report_name_still_fits_its_by_hour_sheet(tmp_path):
    table = _table(2)
    long = ReportTable(Report("x" * 24, "sensors", table.report.group_by, table.report.measures), table.columns,
                       table.rows, table.total, table.row_count, table.overall)
    content = _content(2)
    hours = [(content.window, long)]
    content = workbook.Content("daily", content.window, content.sources, [long], [workbook.HourSeries(long, hours)])
    workbook.save(tmp_path / "daily.xlsx", content)
    assert openpyxl.load_workbook(tmp_path / "daily.xlsx").sheetnames == ["Summary", "x" * 24, "x" * 23 + " by hour",
                                                                         "About"]
