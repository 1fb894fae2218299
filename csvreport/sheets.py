"""The layout of a report workbook: a Summary for people, one sheet per report, the daily
`<name> by hour` sheets with their charts, and About.

The data sheets keep row 1 as the header (group columns, then the measure labels) so that
programs reading them are not disturbed; everything meant only for people (titles, the
comparison with the day before, notes) lives on the Summary. Nothing here reads the
clock: the same rows give the same workbook, byte for byte.

openpyxl is imported inside `build_book`, so commands that write no workbook never load it.
"""

from __future__ import annotations

import math
from copy import copy
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Optional, Sequence

from csvreport import __version__
from csvreport.aggregate import MAX_LINES, ReportTable, Window, local_text, offset_text
from csvreport.config import Limit, Measure

if TYPE_CHECKING:  # openpyxl itself is imported only when a workbook is written
    from openpyxl import Workbook
    from openpyxl.cell.cell import Cell
    from openpyxl.chart import LineChart
    from openpyxl.styles import Alignment, Border, Font, PatternFill
    # Sheets and cells are write-only at run time; the stubs of the write-only classes lack what they
    # share with the ordinary ones (auto_filter, add_chart, row_breaks, styles), so they are typed as those.
    from openpyxl.worksheet.worksheet import Worksheet

    from csvreport.workbook import Content, HourSeries

DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
EXCEL_MAX_TEXT = 32767
HOUR_FORMAT = "yyyy-mm-dd hh:mm"
NO_ROWS = "No rows in this window"
MAX_SUMMARY_GROUPS = 20  # a report without a total lists at most this many groups on the Summary
CHART_ROWS = 18  # rows a chart on the Summary takes
HEADER_FILL = "DDEBF7"
LIMIT_FILL = "FFC7CE"
LIMIT_INK = "9C0006"
GREY = "595959"
FONT = "Calibri"  # the workbook's default font; LibreOffice shows its metric twin, Carlito


# -- words for people ------------------------------------------------------------------------


def _day_words(moment: datetime) -> str:
    return f"{DAYS[moment.weekday()]} {moment.day} {MONTHS[moment.month - 1]} {moment.year}"


def window_words(window: Window) -> str:
    """`Sunday 29 March 2026, 14:00–15:00 Europe/Berlin (+02:00)`; both offsets across a DST change."""
    start, end = window.local_start, window.local_end
    first, last = window.wall_clock()
    offsets = offset_text(start)
    end_offset = offset_text(end - timedelta(seconds=1))
    if end_offset != offsets:
        offsets += f" to {end_offset}"
    return f"{_day_words(start)}, {first}\u2013{last} {window.zone} ({offsets})"


def window_short(window: Window) -> str:
    """`Sun 29 Mar 14:00–15:00`: a column header."""
    start = window.local_start
    first, last = window.wall_clock()
    return f"{DAYS[start.weekday()][:3]} {start.day} {MONTHS[start.month - 1][:3]} {first}\u2013{last}"


def moment_words(stamp: str, zone_of: Window) -> str:
    """A bookkeeping time (UTC ISO) as the window's wall clock: `Sunday 29 March 2026, 14:58 (+02:00)`."""
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(zone_of.local_start.tzinfo)
    return f"{_day_words(moment)}, {moment:%H:%M} ({offset_text(moment)})"


def number_format(decimals: int) -> str:
    return "#,##0" + ("." + "0" * decimals if decimals else "")


def change_format(decimals: int) -> str:
    shown = number_format(decimals)
    return f"+{shown};-{shown};{shown}"


def _group_text(values: Sequence[Any]) -> str:
    return " \u00b7 ".join("(empty)" if v is None or v == "" else str(v) for v in values)


def _header_escape(text: str) -> str:
    return text.replace("&", "&&")


# -- what a report's measures look like ------------------------------------------------------


@dataclass(frozen=True)
class _Measure:
    measure: Measure
    kind: str  # count, average, integer, real, text
    decimals: int
    limit: Optional[Limit]

    @property
    def format(self) -> str:
        return number_format(self.decimals)


def _measures(table: ReportTable) -> list[_Measure]:
    report = table.report
    kinds = [c.kind for c in table.columns[table.group_width:]]
    return [_Measure(m, k, report.decimals_of(m, k), report.limits.get(m.label))
            for m, k in zip(report.measures, kinds)]


def outside_count(table: ReportTable, index: int) -> int:
    """How many group values of measure `index` lie outside its limits."""
    limit = table.report.limits.get(table.report.measures[index].label)
    if limit is None:
        return 0
    return sum(1 for row in table.rows if limit.outside(row[table.group_width + index]))


def _number_width(value: Any, decimals: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return len(str(value)) if value is not None else 0
    if isinstance(value, float) and not math.isfinite(value):
        return len(str(value))
    return len(f"{value:,.{decimals}f}")


def _chart_lines(table: ReportTable) -> list[tuple[Any, ...]]:
    """The groups that get a line of their own (at most MAX_LINES); none: one line over all groups."""
    groups = [row[:table.group_width] for row in table.rows]
    wanted = len(groups) >= 2 or not table.report.total
    return groups if table.group_width and wanted and len(groups) <= MAX_LINES else []


# -- the book --------------------------------------------------------------------------------


def hour_sheet_name(report: str) -> str:
    """`<name> by hour`: Excel allows 31 characters in a sheet name, and " by hour" takes 8 of them."""
    return f"{report[:23]} by hour"


def build_book(content: Content) -> Workbook:
    """The openpyxl Workbook (write-only) for `content`: Summary, reports, by hour, About."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    props = book.properties
    props.title = content.title
    props.subject = window_words(content.window)
    props.creator = props.lastModifiedBy = f"csvreport {__version__}"
    props.description = f"{content.kind} report written by csvreport from the rows loaded for this window"
    writer = _Writer(book, content)
    writer.summary_sheet()
    for table in content.tables:
        writer.report_sheet(table)
    for series in content.by_hour:
        writer.hour_sheet(series)
    writer.about_sheet()
    return book


class _Writer:
    def __init__(self, book: Workbook, content: Content) -> None:
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
        from openpyxl.styles import Alignment, Border, Font, PatternFill, Side

        self.book = book
        self.content = content
        self.Cell = WriteOnlyCell
        self.illegal = ILLEGAL_CHARACTERS_RE
        self.bold = Font(name=FONT, bold=True)
        self.title_font = Font(name=FONT, bold=True, size=16)
        self.report_font = Font(name=FONT, bold=True, size=13)
        self.note_font = Font(name=FONT, italic=True, color=GREY)
        self.correction_font = Font(name=FONT, bold=True, color=LIMIT_INK, size=12)
        self.header_fill = PatternFill("solid", fgColor=HEADER_FILL)
        thin = Side(style="thin", color="808080")
        self.header_border = Border(bottom=thin)
        self.total_border = Border(top=thin)
        heavy = Side(style="medium", color=LIMIT_INK)
        self.limit_fill = PatternFill("solid", fgColor=LIMIT_FILL)
        self.limit_border = Border(left=heavy, right=heavy, top=heavy, bottom=heavy)
        self.limit_font = Font(name=FONT, bold=True, color=LIMIT_INK)
        self.right = Alignment(horizontal="right")
        self.center = Alignment(horizontal="center")
        self.left = Alignment(horizontal="left")
        self.words = window_words(content.window)
        self.styles: dict[tuple, Any] = {}

    # -- cells -------------------------------------------------------------------------------

    def dress(self, cell: Cell, font: Optional[Font] = None, fill: Optional[PatternFill] = None,
              border: Optional[Border] = None, alignment: Optional[Alignment] = None,
              fmt: Optional[str] = None) -> Cell:
        """Style a cell; each combination is resolved once per workbook and then copied.

        openpyxl hashes a Font, Fill or Border every time one is assigned: copying the
        resolved style of an earlier cell keeps thousands of styled cells cheap.
        """
        key = (id(font), id(fill), id(border), id(alignment), fmt)
        resolved = self.styles.get(key)
        if resolved is None:
            if font is not None:
                cell.font = font
            if fill is not None:
                cell.fill = fill
            if border is not None:
                cell.border = border
            if alignment is not None:
                cell.alignment = alignment
            if fmt is not None:
                cell.number_format = fmt
            self.styles[key] = copy(cell._style)  # type: ignore[attr-defined]  # openpyxl's own, unstubbed
        else:
            cell._style = copy(resolved)  # type: ignore[attr-defined]
        return cell

    def text(self, ws: Worksheet, value: str, font: Optional[Font] = None,
             alignment: Optional[Alignment] = None) -> Cell:
        value = self.illegal.sub("\ufffd", value)
        if len(value) > EXCEL_MAX_TEXT:
            value = value[:EXCEL_MAX_TEXT - 1] + "\u2026"
        cell = self.Cell(ws, value=value)
        cell.data_type = "s"  # never a formula, whatever the text starts with
        if font is not None or alignment is not None:
            self.dress(cell, font=font, alignment=alignment)
        return cell

    def value(self, ws: Worksheet, value: Any, fmt: str, limit: Optional[Limit] = None,
              font: Optional[Font] = None, border: Optional[Border] = None,
              alignment: Optional[Alignment] = None) -> Optional[Cell]:
        if value is None:
            return None
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if isinstance(value, str):
            return self.text(ws, value, font, alignment)
        if isinstance(value, float) and not math.isfinite(value):
            return self.text(ws, str(value), font, alignment)
        cell = self.Cell(ws, value=value)
        if limit is not None and limit.outside(value):
            # Outside a limit: a fill for the screen and a bold border that survives black-and-white print.
            return self.dress(cell, self.limit_font, self.limit_fill, self.limit_border, alignment, fmt)
        return self.dress(cell, font, None, border, alignment, fmt)

    def measure(self, ws: Worksheet, value: Any, m: _Measure, font: Optional[Font] = None,
                border: Optional[Border] = None) -> Optional[Cell]:
        """A measure's value, right-aligned under its header: a text one too (the latest of a text
        column), so that it never runs into the number beside it."""
        return self.value(ws, value, m.format, m.limit, font=font, border=border, alignment=self.right)

    def header(self, ws: Worksheet, names: Sequence[str], numeric_from: int = 10**6) -> list[Cell]:
        cells = []
        for i, name in enumerate(names):
            cell = self.text(ws, name)
            # right-aligned over the numbers it heads
            self.dress(cell, self.bold, self.header_fill, self.header_border, self.right if i >= numeric_from else None)
            cells.append(cell)
        return cells

    # -- every sheet -------------------------------------------------------------------------

    def sheet(self, title: str, widths: Sequence[float], header_rows: bool = True) -> Worksheet:
        from openpyxl.utils import get_column_letter

        ws = self.book.create_sheet(title)
        for i, width in enumerate(widths, start=1):
            ws.column_dimensions[get_column_letter(i)].width = width
        ws.page_setup.orientation = "landscape"
        ws.page_setup.paperSize = "9"  # A4
        ws.page_setup.fitToWidth = 1
        ws.page_setup.fitToHeight = 0
        ws.sheet_properties.pageSetUpPr.fitToPage = True
        ws.page_margins.left = ws.page_margins.right = 0.5
        ws.page_margins.top = ws.page_margins.bottom = 0.8
        ws.page_margins.header = ws.page_margins.footer = 0.3
        ws.oddHeader.left.text = _header_escape(self.content.title)
        ws.oddHeader.left.font = "-,Bold"
        ws.oddHeader.right.text = _header_escape(self.words)
        ws.oddFooter.left.text = "&A"
        ws.oddFooter.center.text = "Page &P of &N"
        ws.oddFooter.right.text = _header_escape(f"csvreport {__version__}")
        if header_rows:
            ws.freeze_panes = "A2"
            ws.print_title_rows = "1:1"
        return ws

    # -- Summary -----------------------------------------------------------------------------

    def summary_sheet(self) -> None:
        from openpyxl.worksheet.pagebreak import Break

        content = self.content
        ws = self.sheet("Summary", (26, 26, 22, 22, 14, 12, 15), header_rows=False)
        ws.append([self.text(ws, content.title, self.title_font)])
        ws.append([self.text(ws, self.words)])
        stamp = content.data_as_of
        as_of = f"Data as of {moment_words(stamp, content.window)}" if stamp else "No data in this window"
        ws.append([self.text(ws, as_of)])
        row = 3  # rows written so far
        if content.correction:
            ws.append([self.text(ws, "Correction: written again because its data changed after it was first "
                                     "written; it replaces the earlier version", self.correction_font)])
            row += 1
        previous = content.previous_window
        for index, table in enumerate(content.tables):
            if index and content.by_hour:
                # With its chart a report fills a printed page: the next one starts on a new page.
                ws.row_breaks.append(Break(id=row))
            ws.append([])
            row += 1
            before = content.previous[index] if index < len(content.previous) else None
            row = self._summary_block(ws, row, table, before, previous)
            series = content.by_hour[index] if index < len(content.by_hour) else None
            if series is not None:
                chart = self.chart(series)
                if chart is not None:
                    ws.add_chart(chart, f"A{row + 1}")
                    for _ in range(CHART_ROWS):
                        ws.append([])
                    row += CHART_ROWS
        ws.append([])
        notes = []
        if previous is None:
            notes.append("The day before has no such hour (the clocks skipped it): nothing to compare with.")
        else:
            notes.append(f"Day before: the same window one day earlier, {window_words(previous)}; change and "
                         "change % compare with it.")
        if any(t.report.limits for t in content.tables):
            notes.append("Values outside a report's limits have a red fill and a bold border, on every sheet.")
        for note in notes:
            ws.append([self.text(ws, note, self.note_font)])

    def _summary_block(self, ws: Worksheet, row: int, table: ReportTable, before: Optional[ReportTable],
                       previous: Optional[Window]) -> int:
        report = table.report
        measures = _measures(table)
        outside = [outside_count(table, i) for i in range(len(measures))]
        ws.append([self.text(ws, report.heading, self.report_font)])
        facts = f"{table.row_count:,} rows" if table.row_count else NO_ROWS
        if report.limits:
            total_out = sum(outside)
            facts += f"; {total_out:,} value{'' if total_out == 1 else 's'} outside limits"
        if before is not None and not before.row_count and previous is not None:
            facts += f"; no data on {window_short(previous)} to compare with"
        ws.append([self.text(ws, facts, self.note_font)])
        day_before = window_short(previous) if previous else "day before"
        ws.append(self.header(ws, ["measure", " \u00b7 ".join(report.group_by) or "", window_short(self.content.window),
                                   day_before, "change", "change %", "outside limits"], numeric_from=2))
        row += 3
        per_group = not report.total and table.group_width > 0
        earlier = {r[:table.group_width]: r[table.group_width:] for r in before.rows} if before and per_group else {}
        for i, m in enumerate(measures):
            lines: list[tuple[str, Any, Any, Optional[int]]] = []
            if per_group and m.measure.func != "count":
                for group_row in table.rows[:MAX_SUMMARY_GROUPS]:
                    key = group_row[:table.group_width]
                    then = earlier.get(key)
                    value = group_row[table.group_width + i]
                    lines.append((_group_text(key), value, then[i] if then else None,
                                  int(m.limit.outside(value)) if m.limit else None))
                if len(table.rows) > MAX_SUMMARY_GROUPS:
                    more = f"{len(table.rows) - MAX_SUMMARY_GROUPS} more groups: see the sheet {report.name}"
                    lines.append((more, None, None, None))
            else:
                whole = "all" if table.group_width else ""
                lines.append((whole, table.overall[i] if table.overall else None,
                              before.overall[i] if before and before.overall else None,
                              outside[i] if m.limit else None))
            for group, value, then, out in lines:
                cells: list[Optional[Cell]] = [self.text(ws, m.measure.label, self.bold), self.text(ws, group)]
                cells.append(self.measure(ws, value, m))
                cells.append(self.measure(ws, then, m))
                change = value - then if _numbers(value, then) else None
                cells.append(self.value(ws, change, change_format(m.decimals)))
                ratio = change / abs(then) if change is not None and then else None
                cells.append(self.value(ws, ratio, "+0.0%;-0.0%;0.0%"))
                cells.append(self.value(ws, out, "#,##0"))
                ws.append(cells)
                row += 1
        return row

    # -- one sheet per report ----------------------------------------------------------------

    def report_sheet(self, table: ReportTable) -> None:
        from openpyxl.utils import get_column_letter

        width = table.group_width
        measures = _measures(table)
        rows = list(table.rows) + ([table.total] if table.total else [])
        widths = []
        sample = rows[:5000]
        for i, column in enumerate(table.columns):
            if i < width:
                longest = max([len(str(r[i])) for r in sample if r[i] is not None], default=0)
            else:
                longest = max([_number_width(r[i], measures[i - width].decimals) for r in sample], default=0)
            widths.append(min(max(longest, len(column.name)) + 3, 60) if i < width else
                          min(max(longest + 3, len(column.name) + 3, 10), 40))
        if not table.rows:
            widths[0] = max(widths[0], 12)
        ws = self.sheet(table.report.name, widths)
        last = get_column_letter(len(table.columns))
        ws.auto_filter.ref = f"A1:{last}{len(table.rows) + 1}"
        ws.append(self.header(ws, [c.name for c in table.columns], numeric_from=width))
        if not table.rows:
            ws.append([self.text(ws, f"{NO_ROWS} ({window_words(self.content.window)})")])
            return
        group_formats = [_group_format(c.kind) for c in table.columns[:width]]
        for record in table.rows:
            ws.append([self.value(ws, v, f) for v, f in zip(record[:width], group_formats)]
                      + [self.measure(ws, v, m) for v, m in zip(record[width:], measures)])
        if table.total:
            cells = [self.dress(self.text(ws, "Total"), self.bold, border=self.total_border)] + [None] * (width - 1)
            cells += [self.measure(ws, v, m, font=self.bold, border=self.total_border)
                      for v, m in zip(table.total[width:], measures)]
            ws.append(cells)

    # -- daily: `<name> by hour` -------------------------------------------------------------

    def hour_sheet(self, series: HourSeries) -> None:
        table = series.table
        measures = _hour_measures(table)
        lines = _chart_lines(table)
        chart_index = _chart_index(table)
        # hour, the measures over all groups, utc offset: then, for the chart, its measure per group.
        headers = ["hour"] + [m.measure.label for _, m in measures] + ["utc offset"]
        if chart_index is not None:
            label = table.report.measures[chart_index].label
            headers += [f"{label}: {_group_text(g)}" for g in lines]
        widths = [18.0] + [min(max(len(h) + 3, 12), 40) for h in headers[1:]]
        widths[len(measures) + 1] = 12.0
        ws = self.sheet(hour_sheet_name(table.report.name), widths)
        ws.auto_filter.ref = f"A1:{_letter(len(headers))}{len(series.hours) + 1}"
        ws.append(self.header(ws, headers, numeric_from=1))
        chart = self.chart(series)
        if chart is not None:
            ws.add_chart(chart, f"A{len(series.hours) + 3}")  # below the hours: the printed page stays readable
        chart_measure = _measures(table)[chart_index] if chart_index is not None else None
        for window, hour in series.hours:
            offset = self.text(ws, offset_text(window.local_start), alignment=self.center)
            # An hour without data is a gap, not a zero: its cells stay empty.
            cells = [self.value(ws, window.local_start.replace(tzinfo=None), HOUR_FORMAT)]
            cells += [self.measure(ws, hour.overall[i], m) if hour.row_count else None
                      for i, m in measures]
            cells.append(offset)
            if chart_measure is not None and lines and chart_index is not None:
                by_group = {r[:table.group_width]: r[table.group_width + chart_index] for r in hour.rows}
                cells += [self.measure(ws, by_group.get(g), chart_measure) for g in lines]
            ws.append(cells)

    def chart(self, series: HourSeries) -> Optional[LineChart]:
        """Straight lines with markers over the local hours; an hour without data stays a gap."""
        from openpyxl.chart import LineChart, Reference, Series

        table = series.table
        index = _chart_index(table)
        if index is None or not series.hours:
            return None
        measure = table.report.measures[index]
        lines = _chart_lines(table)
        if not lines and not table.report.total and measure.func != "count" and table.group_width:
            return None  # more groups than lines and no meaningful figure over all of them
        sheet = hour_sheet_name(table.report.name)
        count = len(series.hours)
        chart = LineChart()
        chart.title = f"{measure.label} by hour"
        chart.style = 2
        chart.y_axis.title = measure.label
        chart.x_axis.title = f"hour ({series.hours[0][0].zone})"
        chart.x_axis.number_format = "hh:mm"
        decimals = table.report.decimals_of(measure, table.columns[table.group_width + index].kind)
        chart.y_axis.number_format = number_format(min(decimals, 1))  # an axis needs no more
        chart.x_axis.delete = False
        chart.y_axis.delete = False
        chart.y_axis.majorGridlines = chart.y_axis.majorGridlines  # keep the default horizontal lines
        chart.display_blanks = "gap"
        chart.height, chart.width = 8.5, 24
        shown = [i for i, _ in _hour_measures(table)]
        columns = ([3 + len(shown) + i for i in range(len(lines))] if lines else [2 + shown.index(index)])
        for column in columns:
            data = Reference(range_string=f"{_quoted(sheet)}!${_letter(column)}$1:${_letter(column)}${count + 1}")
            line = Series(data, title_from_data=True)
            line.smooth = False
            line.marker.symbol = "circle"
            line.marker.size = 5
            chart.series.append(line)
        chart.set_categories(Reference(range_string=f"{_quoted(sheet)}!$A$2:$A${count + 1}"))
        if len(columns) == 1:
            chart.legend = None
        elif chart.legend is not None:
            chart.legend.position = "b"
        return chart

    # -- About -------------------------------------------------------------------------------

    def about_sheet(self) -> None:
        content = self.content
        window = content.window
        ws = self.sheet("About", (24, 48, 16, 60), header_rows=False)
        rows_total = sum(s.rows for s in content.sources)
        files_total = sum(s.files for s in content.sources)
        data = f"{_plural(rows_total, 'row')} from {_plural(files_total, 'file')}" if rows_total else NO_ROWS
        stamp = content.data_as_of
        facts = [
            ("workbook", content.kind),
            ("title", content.title),
            ("window", self.words),
            ("window start", local_text(window.local_start)),
            ("window end", local_text(window.local_end)),
            ("time zone", window.zone),
            ("window in UTC", f"{_utc(window.start)} to {_utc(window.end)}"),
            ("data as of", f"{moment_words(stamp, window)} ({stamp})" if stamp else "no data in this window"),
            ("data", data),
            ("correction", "yes: written again because its data changed" if content.correction else "no"),
            ("written by", f"csvreport {__version__}"),
        ]
        ws.append(self.header(ws, ["About this workbook", ""]))
        for key, value in facts:
            ws.append([self.text(ws, key, self.bold), self.text(ws, value)])
        ws.append([])
        ws.append(self.header(ws, ["source", "rows in window", "files"]))
        for summary in content.sources:
            # left-aligned: under the facts above, not at the far edge of a wide column
            ws.append([self.text(ws, summary.name), self.value(ws, summary.rows, "#,##0", alignment=self.left),
                       self.value(ws, summary.files, "#,##0", alignment=self.left)])
        ws.append([])
        ws.append(self.header(ws, ["report", "title and source", "group by", "measures"]))
        for table in content.tables:
            report = table.report
            measures = ", ".join(f"{m.label} = {m.func}" + (f":{m.column}" if m.column else "")
                                 for m in report.measures)
            ws.append([self.text(ws, report.name), self.text(ws, f"{report.heading} ({report.source})"),
                       self.text(ws, ", ".join(report.group_by) or "(whole window)"), self.text(ws, measures)])


def _hour_measures(table: ReportTable) -> list[tuple[int, _Measure]]:
    """The measures of the by-hour sheet: all of them, or without a total only the counts.

    Without a total the groups' units differ, so an average or a maximum over all of them
    means nothing; the chart measure is then shown per group instead (up to MAX_LINES).
    """
    return [(i, m) for i, m in enumerate(_measures(table)) if table.report.total or m.measure.func == "count"]


def _chart_index(table: ReportTable) -> Optional[int]:
    chosen = table.report.chart_measure
    return None if chosen is None else table.report.measures.index(chosen)


def _numbers(*values: Any) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)


def _group_format(kind: str) -> str:
    return {"integer": "0", "real": "General"}.get(kind, "General")


def _letter(column: int) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(column)


def _quoted(sheet: str) -> str:
    return "'" + sheet.replace("'", "''") + "'"


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def _utc(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
