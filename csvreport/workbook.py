"""Write one report workbook with openpyxl, atomically.

The file is streamed in openpyxl's write-only mode (a 2,400-row sheet takes a fraction of
a second) into a hidden temporary file beside its final name, flushed to disk, hashed and
then renamed over the final name with `os.replace`, so a reader sees the old workbook or
the new one, never half of one. A run killed while writing leaves only the temporary file,
which the next run removes (`remove_leftovers`).

Text from the CSVs is always stored as a string cell: openpyxl would turn a str starting
with "=" into a formula, so every text cell gets data_type "s" explicitly.

openpyxl is imported inside the functions that write, so commands that write no workbook
start without it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence

from csvreport import log
from csvreport.aggregate import Column, ReportTable, SourceSummary, Window, local_text
from csvreport.errors import CsvReportError
from csvreport.files import replace_durably, sha256_and_size

if TYPE_CHECKING:  # openpyxl is imported only when a workbook is written
    from openpyxl import Workbook
    from openpyxl.cell.cell import Cell
    # Sheets are write-only at run time; the stubs of Worksheet lack the attributes it
    # shares with Worksheet (page_setup, auto_filter, add_chart), so they are typed as that.
    from openpyxl.worksheet.worksheet import Worksheet

TEMP_PREFIX = "."
TEMP_SUFFIX = ".tmp"
EXCEL_MAX_TEXT = 32767
FORMATS = {
    "count": "#,##0",
    "integer": "#,##0",
    "real": "#,##0.00##",
    "average": "#,##0.00##",
    "hour": "yyyy-mm-dd hh:mm",
}
NO_ROWS = "No rows in this window"


@dataclass(frozen=True)
class HourSeries:
    """A report's measures over all its groups, one row per local hour of the window."""

    table: ReportTable  # the report and its measure columns (rows unused)
    hours: Sequence[tuple[Window, tuple[Any, ...]]]


@dataclass(frozen=True)
class Content:
    kind: str  # hourly, daily
    window: Window
    written_at: datetime  # aware, UTC
    sources: Sequence[SourceSummary]
    tables: Sequence[ReportTable]
    by_hour: Sequence[HourSeries] = ()


@dataclass(frozen=True)
class Saved:
    path: Path
    sha256: str
    size: int


def temp_path(final: Path) -> Path:
    return final.with_name(f"{TEMP_PREFIX}{final.name}.{os.getpid()}{TEMP_SUFFIX}")


def remove_leftovers(folder: Path) -> list[Path]:
    """Delete temporary workbooks left by a run that was killed while writing.

    Called under the run lock, so no other writer can own one of them.
    """
    removed = []
    if folder.is_dir():
        for path in folder.glob(f"{TEMP_PREFIX}*.xlsx.*{TEMP_SUFFIX}"):
            path.unlink(missing_ok=True)
            removed.append(path)
            log.info("reports", "removed a temporary workbook left by an interrupted run", file=str(path))
    return removed


def save(final: Path, content: Content) -> Saved:
    """Write the workbook to a temporary file, flush it to disk, then rename it into place."""
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CsvReportError(f"cannot create the reports folder {final.parent}: {exc.strerror or exc}; fix "
                             "paths.reports in the configuration, or the folder's permissions") from None
    tmp = temp_path(final)
    try:
        build(content).save(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
            handle.seek(0)
            sha256, size = sha256_and_size(handle)
        replace_durably(tmp, final)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise CsvReportError(f"cannot write the workbook {final}: {exc.strerror or exc}; free disk space or fix the "
                             f"permissions of {final.parent} (paths.reports), then run the command again") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return Saved(final, sha256, size)


def build(content: Content) -> Workbook:
    """The openpyxl Workbook (write-only) for `content`; the caller saves it."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    writer = _Writer(book)
    for table in content.tables:
        writer.report_sheet(table, content.window)
    for series in content.by_hour:
        writer.hour_sheet(series)
    writer.about_sheet(content)
    return book


class _Writer:
    def __init__(self, book: Workbook) -> None:
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
        from openpyxl.styles import Font, PatternFill

        self.book = book
        self.Cell = WriteOnlyCell
        self.illegal = ILLEGAL_CHARACTERS_RE
        self.bold = Font(bold=True)
        self.fill = PatternFill("solid", fgColor="DDEBF7")

    # -- cells ---------------------------------------------------------------------------

    def text(self, ws: Worksheet, value: str, bold: bool = False) -> Cell:
        value = self.illegal.sub("\ufffd", value)
        if len(value) > EXCEL_MAX_TEXT:
            value = value[:EXCEL_MAX_TEXT - 1] + "\u2026"
        cell = self.Cell(ws, value=value)
        cell.data_type = "s"  # never a formula, whatever the text starts with
        if bold:
            cell.font = self.bold
        return cell

    def value(self, ws: Worksheet, value: Any, kind: str) -> Optional[Cell]:
        if value is None:
            return None
        if isinstance(value, str):
            return self.text(ws, value)
        if isinstance(value, bytes):
            return self.text(ws, value.decode("utf-8", "replace"))
        if isinstance(value, float) and not math.isfinite(value):
            return self.text(ws, str(value))
        cell = self.Cell(ws, value=value)
        cell.number_format = FORMATS.get(kind, "General")
        return cell

    def header(self, ws: Worksheet, names: Sequence[str]) -> list[Cell]:
        cells = []
        for name in names:
            cell = self.text(ws, name, bold=True)
            cell.fill = self.fill
            cells.append(cell)
        return cells

    # -- sheets --------------------------------------------------------------------------

    def _sheet(self, title: str, columns: Sequence[Column], rows: Sequence[Sequence[Any]],
               extra_width: Sequence[tuple[str, float]] = ()) -> Worksheet:
        from openpyxl.utils import get_column_letter

        ws = self.book.create_sheet(title)
        for i, column in enumerate(columns, start=1):
            longest = max([len(column.name)] + [_shown_width(r[i - 1], column.kind) for r in rows[:5000]])
            ws.column_dimensions[get_column_letter(i)].width = min(max(longest + 2, 9), 60)
        for letter, width in extra_width:
            ws.column_dimensions[letter].width = width
        ws.freeze_panes = "A2"
        _fit_to_page_width(ws)
        return ws

    def report_sheet(self, table: ReportTable, window: Window) -> None:
        from openpyxl.utils import get_column_letter

        rows = list(table.rows) + ([table.total] if table.total else [])
        ws = self._sheet(table.report.name, table.columns, rows)
        last = get_column_letter(len(table.columns))
        ws.auto_filter.ref = f"A1:{last}{len(table.rows) + 1}"
        ws.append(self.header(ws, [c.name for c in table.columns]))
        if not table.rows:
            ws.append([self.text(ws, f"{NO_ROWS} ({window.label()})")])
            return
        kinds = [c.kind for c in table.columns]
        for row in table.rows:
            ws.append([self.value(ws, v, k) for v, k in zip(row, kinds)])
        if table.total:
            cells = [self.value(ws, v, k) for v, k in zip(table.total, kinds)]
            for cell in cells:
                if cell is not None:
                    cell.font = self.bold
            ws.append(cells)

    def hour_sheet(self, series: HourSeries) -> None:
        from openpyxl.chart import LineChart, Reference
        from openpyxl.utils import get_column_letter

        report = series.table.report
        measures = series.table.columns[len(report.group_by):]
        columns = (Column("hour", "hour"),) + tuple(measures) + (Column("utc offset", "text"),)
        rows = [(_naive(w), *values, _offset(w)) for w, values in series.hours]
        # Excel allows 31 characters in a sheet name; " by hour" takes 8 of them.
        ws = self._sheet(f"{report.name[:23]} by hour", columns, rows, extra_width=[("A", 18)])
        ws.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{len(rows) + 1}"
        if rows and measures:
            chart = LineChart()
            chart.title = f"{measures[0].name} by hour"
            chart.y_axis.title = measures[0].name
            chart.x_axis.title = f"hour ({series.hours[0][0].zone})"
            chart.x_axis.number_format = "hh:mm"
            chart.x_axis.delete = False
            chart.y_axis.delete = False
            chart.legend = None
            chart.height, chart.width = 9, 22
            data = Reference(ws, min_col=2, min_row=1, max_row=len(rows) + 1)
            chart.add_data(data, titles_from_data=True)
            chart.set_categories(Reference(ws, min_col=1, min_row=2, max_row=len(rows) + 1))
            ws.add_chart(chart, f"{get_column_letter(len(columns) + 2)}2")
        ws.append(self.header(ws, [c.name for c in columns]))
        kinds = [c.kind for c in columns]
        for row in rows:
            ws.append([self.value(ws, v, k) for v, k in zip(row, kinds)])

    def about_sheet(self, content: Content) -> None:
        window = content.window
        ws = self.book.create_sheet("About")
        _fit_to_page_width(ws)
        for letter, width in (("A", 22), ("B", 44), ("C", 14), ("D", 60)):
            ws.column_dimensions[letter].width = width
        rows_total = sum(s.rows for s in content.sources)
        files_total = sum(s.files for s in content.sources)
        written_local = content.written_at.astimezone(window.local_start.tzinfo)
        data = (f"{_plural(rows_total, 'row')} from {_plural(files_total, 'file')}" if rows_total else NO_ROWS)
        facts = [
            ("workbook", f"{content.kind}"),
            ("window start", local_text(window.local_start)),
            ("window end", local_text(window.local_end)),
            ("time zone", window.zone),
            ("window in UTC", f"{_utc(window.start)} to {_utc(window.end)}"),
            ("written at", f"{local_text(written_local)} ({content.written_at:%Y-%m-%dT%H:%M:%SZ})"),
            ("data", data),
        ]
        ws.append(self.header(ws, ["About this workbook", ""]))
        for key, value in facts:
            ws.append([self.text(ws, key, bold=True), self.text(ws, value)])
        ws.append([])
        ws.append(self.header(ws, ["source", "rows in window", "files"]))
        for summary in content.sources:
            ws.append([self.text(ws, summary.name), self.value(ws, summary.rows, "count"),
                       self.value(ws, summary.files, "count")])
        ws.append([])
        ws.append(self.header(ws, ["report", "source", "group by", "measures"]))
        for table in content.tables:
            report = table.report
            measures = ", ".join(f"{m.label} = {m.func}" + (f":{m.column}" if m.column else "")
                                 for m in report.measures)
            ws.append([self.text(ws, report.name), self.text(ws, report.source),
                       self.text(ws, ", ".join(report.group_by) or "(whole window)"), self.text(ws, measures)])


def _fit_to_page_width(ws: Worksheet) -> None:
    """Printed (or converted to PDF), a sheet is one page wide, landscape."""
    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    properties = ws.sheet_properties
    if properties.pageSetUpPr is None:  # openpyxl makes one with every sheet; its stubs allow None
        from openpyxl.worksheet.properties import PageSetupProperties

        properties.pageSetUpPr = PageSetupProperties()
    properties.pageSetUpPr.fitToPage = True


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def _shown_width(value: Any, kind: str) -> int:
    if value is None:
        return 0
    if kind in ("real", "average") and isinstance(value, float):
        return len(f"{value:,.2f}")
    if kind == "hour":
        return 16
    if isinstance(value, int):
        return len(f"{value:,}")
    return len(str(value))


def _naive(window: Window) -> datetime:
    """Excel has no time zones: the hour column holds the local wall-clock start."""
    return window.local_start.replace(tzinfo=None)


def _offset(window: Window) -> str:
    text = window.local_start.strftime("%z")
    return f"{text[:3]}:{text[3:]}"


def _utc(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

