"""Regenerate docs/images/ from the example data: what the workbooks look like, on screen and printed.

    .venv/bin/python docs/make_images.py

Copies the repository's home (config/ and inbox/) into a temporary home, runs `ingest`,
`hourly --hour "2026-03-29 14:00"` and `daily --date 2026-03-29 --until 18:00` there,
prints both workbooks to PDF with LibreOffice (`soffice`) and renders the first page of
each sheet the docs show (found by its footer with `pdftotext`) with `pdftoppm`
(poppler-utils). Nothing outside docs/images/ is changed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
REPO = DOCS.parent
IMAGES = DOCS / "images"
HOURLY = "hourly_20260329_1400"
DAILY = "daily_20260329_1800"
# image name: (workbook, the sheet whose first printed page it shows, dots per inch, grey: as a
# black-and-white printer shows it)
PICTURES = {
    "hourly.png": (HOURLY, "Summary", 80, False),
    "hourly_report.png": (HOURLY, "sensor_summary", 80, False),       # fixed decimals, limits, no Total row
    "daily_summary.png": (DAILY, "Summary", 80, False),               # with the report's chart
    "daily_by_hour.png": (DAILY, "sensor_summary by hour", 80, False),  # a line per group
    "printed_page.png": (DAILY, "sensor_summary", 100, True),         # header, footer, limits in black and white
    "about.png": (HOURLY, "About", 80, False),
}


def run(*args: str, cwd: Path | None = None) -> None:
    subprocess.run(list(args), check=True, cwd=cwd, stdout=subprocess.DEVNULL)


def first_page(pdf: Path, sheet: str) -> int:
    """The number of the first page whose footer names `sheet` (the footer reads: sheet, Page X of Y)."""
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True,
                          text=True).stdout
    for number, page in enumerate(text.split("\f"), start=1):
        lines = [line.strip() for line in page.splitlines() if line.strip()]
        if lines and lines[-1].startswith(f"{sheet}  ") and " Page " in f" {lines[-1]}":
            return number
    raise SystemExit(f"{pdf.name}: no page of the sheet {sheet!r}")


def main() -> None:
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None or shutil.which("pdftoppm") is None or shutil.which("pdftotext") is None:
        sys.exit("needs LibreOffice (soffice) and pdftoppm and pdftotext (poppler-utils): apt-get install "
                 "libreoffice-calc poppler-utils")
    with tempfile.TemporaryDirectory() as scratch:
        home = Path(scratch) / "home"
        shutil.copytree(REPO / "config", home / "config")
        shutil.copytree(REPO / "inbox", home / "inbox")
        csvreport = [sys.executable, "-m", "csvreport", "--home", str(home), "--quiet"]
        run(*csvreport, "ingest", cwd=REPO)
        run(*csvreport, "hourly", "--hour", "2026-03-29 14:00", cwd=REPO)
        run(*csvreport, "daily", "--date", "2026-03-29", "--until", "18:00", cwd=REPO)
        pdfs = Path(scratch) / "pdf"
        profile = (Path(scratch) / "lo-profile").as_uri()
        run(soffice, f"-env:UserInstallation={profile}", "--headless", "--convert-to", "pdf", "--outdir", str(pdfs),
            str(home / "reports" / f"{HOURLY}.xlsx"), str(home / "reports" / f"{DAILY}.xlsx"))
        IMAGES.mkdir(exist_ok=True)
        for name, (book, sheet, dpi, grey) in PICTURES.items():
            page = first_page(pdfs / f"{book}.pdf", sheet)
            target = IMAGES / name
            run("pdftoppm", "-png", "-singlefile", "-f", str(page), "-l", str(page), "-r", str(dpi),
                *(["-gray"] if grey else []), str(pdfs / f"{book}.pdf"), str(target.with_suffix("")))
            print(f"wrote {target.relative_to(REPO)}")


if __name__ == "__main__":
    main()
