"""Write one report workbook with openpyxl, atomically.

The file is streamed in openpyxl's write-only mode (a 2,400-row sheet takes a fraction of
a second) into a hidden temporary file beside its final name, flushed to disk, hashed and
then renamed over the final name with `os.replace`, so a reader sees the old workbook or
the new one, never half of one. A run killed while writing leaves only the temporary file,
which the next run removes (`remove_leftovers`).

The sheets themselves are laid out by `csvreport.sheets`. No wall-clock time goes into the
file (document times are the window's end, zip entries carry a fixed date), so the same
rows give the same bytes and the sha256 recorded for a workbook says whether it changed.

openpyxl is imported inside the functions that write, so commands that write no workbook
start without it.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Optional, Sequence

from csvreport import log
from csvreport.aggregate import ReportTable, SourceSummary, Window
from csvreport.config import title_of
from csvreport.errors import CsvReportError
from csvreport.files import replace_durably

if TYPE_CHECKING:  # openpyxl is imported only when a workbook is written
    from openpyxl import Workbook

TEMP_PREFIX = "."
TEMP_SUFFIX = ".tmp"
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # zip entries carry no wall-clock time: same rows, same bytes


@dataclass(frozen=True)
class HourSeries:
    """A report hour by hour over the window: one grouped table per local hour."""

    table: ReportTable  # the report over the whole window (its groups name the chart's lines)
    hours: Sequence[tuple[Window, ReportTable]]


@dataclass(frozen=True)
class Content:
    kind: str  # hourly, daily
    window: Window
    sources: Sequence[SourceSummary]
    tables: Sequence[ReportTable]
    by_hour: Sequence[HourSeries] = ()
    previous: Sequence[Optional[ReportTable]] = ()  # per table: the same window one day earlier
    previous_window: Optional[Window] = None
    correction: bool = False  # written again because its data changed

    @property
    def title(self) -> str:
        return title_of([t.report for t in self.tables])

    @property
    def data_as_of(self) -> Optional[str]:
        stamps = [s.data_as_of for s in self.sources if s.data_as_of]
        return max(stamps) if stamps else None


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
    from csvreport.sheets import build_book  # which imports openpyxl: only commands that write workbooks

    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CsvReportError(f"cannot create the reports folder {final.parent}: {exc.strerror or exc}; fix "
                             "paths.reports in the configuration, or the folder's permissions") from None
    tmp = temp_path(final)
    # Built in memory and written by us: a full disk then fails our one write, cleanly, instead of leaving
    # openpyxl's half-written zip file to complain on stderr when it is garbage-collected.
    try:
        buffer = io.BytesIO()
        _write_zip(build_book(content), buffer, content)
        data = buffer.getvalue()
        with open(tmp, "wb", buffering=0) as handle:
            handle.write(data)
            os.fsync(handle.fileno())
        replace_durably(tmp, final)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise CsvReportError(f"the disk is full: cannot write the workbook {final}; free space on the file "
                                 f"system of {final.parent}, then run the command again") from None
        raise CsvReportError(f"cannot write the workbook {final}: {exc.strerror or exc}; free disk space or fix the "
                             f"permissions of {final.parent} (paths.reports), then run the command again") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return Saved(final, hashlib.sha256(data).hexdigest(), len(data))


def _write_zip(book: Workbook, target: BinaryIO, content: Content) -> None:
    """Save like openpyxl does, but with fixed times, so the same rows give the same bytes."""
    import zipfile

    from openpyxl.writer.excel import ExcelWriter

    class FixedTimeZip(zipfile.ZipFile):
        def writestr(self, zinfo_or_arcname: zipfile.ZipInfo | str, data: Any,
                     compress_type: int | None = None, compresslevel: int | None = None) -> None:
            name = zinfo_or_arcname.filename if isinstance(zinfo_or_arcname, zipfile.ZipInfo) else zinfo_or_arcname
            info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            super().writestr(info, data)

        def write(self, filename: Any, arcname: Any = None, compress_type: int | None = None,
                  compresslevel: int | None = None) -> None:
            with open(filename, "rb") as handle:
                self.writestr(arcname or os.path.basename(filename), handle.read())

    from datetime import datetime, timezone

    moment = datetime.fromtimestamp(content.window.end, timezone.utc).replace(tzinfo=None)
    book.properties.created = book.properties.modified = moment
    with FixedTimeZip(target, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        ExcelWriter(book, archive).write_data()
