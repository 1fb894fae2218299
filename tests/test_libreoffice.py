"""LibreOffice opens the workbooks: every sheet converts, with the values and text intact.

soffice exits 0 even when it cannot load a file, so the test judges what the conversion
produced: one CSV per sheet, holding the numbers, the formula-looking text as text (a
formula would export its result, "x", instead) and the note of an empty hour.
"""

from __future__ import annotations

import csv
import shutil
import subprocess

import pytest
from conftest import write_config, write_csv

SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")
CSV_ALL_SHEETS = "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,-1"


@pytest.mark.skipif(SOFFICE is None, reason="LibreOffice (soffice) is not installed; .ci/run installs it")
def test_libreoffice_converts_every_sheet_of_daily_and_hourly_workbooks(home, cli, tmp_path):
    write_csv(home / "inbox" / "sensors" / "a.csv", """\
        ts,site,metric,value
        2026-03-29 01:10:00,berlin-01,t,1.5
        2026-03-29 03:20:00,berlin-01,t,2.5
        2026-03-29 03:30:00,"=HYPERLINK(""http://example.com"",""x"")",t,4
        2026-03-29 03:40:00,@SUM(A1),t,5
        2026-03-29 03:50:00,-2+3,t,6
        """)
    assert cli("ingest").exit_code == 0
    for args in (["daily", "--date", "2026-03-29"], ["hourly", "--hour", "2026-03-29 05:00"]):
        result = cli(*args)
        assert result.exit_code == 0, result.output
    reports = home / "reports"
    out = tmp_path / "converted"
    profile = tmp_path / "lo-profile"
    proc = subprocess.run(
        [SOFFICE, f"-env:UserInstallation={profile.as_uri()}", "--headless", "--convert-to", CSV_ALL_SHEETS,
         "--outdir", str(out), str(reports / "daily_20260329_2400.xlsx"), str(reports / "hourly_20260329_0500.xlsx")],
        capture_output=True, text=True, timeout=180)
    produced = sorted(p.name for p in out.glob("*.csv")) if out.exists() else []
    assert produced == [
        "daily_20260329_2400-About.csv", "daily_20260329_2400-Summary.csv",
        "daily_20260329_2400-sensor_summary by hour.csv", "daily_20260329_2400-sensor_summary.csv",
        "hourly_20260329_0500-About.csv", "hourly_20260329_0500-Summary.csv",
        "hourly_20260329_0500-sensor_summary.csv"], (proc.stdout, proc.stderr)

    def rows(name):
        with open(out / name, newline="", encoding="utf-8") as handle:
            return list(csv.reader(handle))

    summary = rows("daily_20260329_2400-sensor_summary.csv")
    assert summary[0] == ["site", "metric", "readings", "value_sum", "value_avg", "value_min", "value_max"]
    assert [r[0] for r in summary[1:]] == ["-2+3", "=HYPERLINK(\"http://example.com\",\"x\")", "@SUM(A1)",
                                           "berlin-01", "Total"]
    assert summary[4][2:] == ["2", "4", "2", "1.5", "2.5"]
    assert summary[5][2:] == ["5", "19", "3.8", "1.5", "6"]
    by_hour = rows("daily_20260329_2400-sensor_summary by hour.csv")
    assert len(by_hour) == 1 + 23
    assert by_hour[1][:2] == ["2026-03-29 00:00:00", ""] and by_hour[2][:2] == ["2026-03-29 01:00:00", "1"]
    assert by_hour[3][:7] == ["2026-03-29 03:00:00", "4", "17.5", "4.375", "2.5", "6", "+02:00"]  # 02:00 never was
    about = {r[0]: r[1] for r in rows("daily_20260329_2400-About.csv") if r}
    assert about["window start"] == "2026-03-29 00:00 +01:00" and about["data"] == "5 rows from 1 file"
    empty = rows("hourly_20260329_0500-sensor_summary.csv")
    assert empty[1][0].startswith("No rows in this window")


PDFTOTEXT = shutil.which("pdftotext")


@pytest.mark.skipif(SOFFICE is None or PDFTOTEXT is None,
                    reason="LibreOffice (soffice) or pdftotext (poppler-utils) is not installed; .ci/run installs both")
def test_printed_workbooks_have_a_header_on_every_page_and_the_summary_figures(home, cli, tmp_path):
    from test_report_layout import CONFIG, ROWS

    write_config(home, CONFIG)
    write_csv(home / "inbox" / "sensors" / "rows.csv", ROWS)
    assert cli("ingest").exit_code == 0
    for args in (["hourly", "--hour", "2026-06-15 10:00"], ["daily", "--date", "2026-06-15", "--until", "12:00"]):
        result = cli(*args)
        assert result.exit_code == 0, result.output
    reports = home / "reports"
    out = tmp_path / "pdf"
    proc = subprocess.run(
        [SOFFICE, f"-env:UserInstallation={(tmp_path / 'lo-profile').as_uri()}", "--headless", "--convert-to", "pdf",
         "--outdir", str(out), str(reports / "hourly_20260615_1000.xlsx"), str(reports / "daily_20260615_1200.xlsx")],
        capture_output=True, text=True, timeout=180, check=False)  # judged by the PDFs it made
    title = "Cold room & store, by_metric"
    expected = {  # name: (pages, window as every page header says it)
        "hourly_20260615_1000": (4, "Monday 15 June 2026, 10:00\u201311:00 Europe/Berlin (+02:00)"),
        "daily_20260615_1200": (7, "Monday 15 June 2026, 00:00\u201312:00 Europe/Berlin (+02:00)"),
    }
    for name, (count, window) in expected.items():
        pdf = out / f"{name}.pdf"
        assert pdf.is_file(), (proc.stdout, proc.stderr)
        text = subprocess.run([PDFTOTEXT, "-layout", str(pdf), "-"], capture_output=True, text=True,
                              check=True).stdout
        pages = text.split("\f")[:-1]  # pdftotext ends every page with a form feed
        assert len(pages) == count, (name, [p[:200] for p in pages])
        for number, page in enumerate(pages, start=1):
            flat = " ".join(page.split())
            assert title in flat and window in flat, (name, number, flat[:300])
            assert f"Page {number} of {count}" in flat, (name, number, flat[-200:])
        flat_pages = [" ".join(p.split()) for p in pages]
        summary = " ".join(p for p in flat_pages if "Summary Page" in p)  # its footer names the sheet
        summary = summary.replace(" \u00b7 ", "\u00b7")  # pdftotext may drop the spaces around a middle dot
        # the hour and the same hour a day earlier, with the change: as the Summary's cells show them
        for figure in ("Readings all 4 3 +1 +33.3%", "Average (°C) all 12.1 11.7 +0.5 +3.9%",
                       "Highest (°C) all 35.00 20.00 +15.00 +75.0% 1", "Lowest (°C) all -2.50 5.00 -7.50 -150.0% 1",
                       "value_sum a·t 47.000 30.000 +17.000 +56.7%"):
            assert figure in summary, (name, figure, summary)
