"""Regenerate docs/images/ from the example data: what the workbooks look like, on screen and printed.

    .venv/bin/python docs/make_images.py

Copies example/ (configuration and exports) into a temporary home, runs `ingest`,
`hourly --hour "2026-03-29 14:00"` and `daily --date 2026-03-29 --until 18:00` there,
prints both workbooks to PDF with LibreOffice (`soffice`) and renders the pages that the
docs show with `pdftoppm` (poppler-utils). Nothing outside docs/images/ is changed.
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
# image name: (workbook, page of its PDF, dots per inch, grey: as a black-and-white printer shows it)
PICTURES = {
    "hourly.png": (HOURLY, 1, 80, False),             # the hourly Summary
    "hourly_report.png": (HOURLY, 2, 80, False),      # a report sheet: fixed decimals, limits, no Total row
    "daily_summary.png": (DAILY, 1, 80, False),       # the daily Summary with its chart
    "daily_by_hour.png": (DAILY, 3, 80, False),       # `<name> by hour`: a line per group, a gap where no data
    "printed_page.png": (DAILY, 2, 100, True),        # printed in black and white: header, footer, limits
    "about.png": (HOURLY, 3, 80, False),              # the About sheet
}


def run(*args: str, cwd: Path | None = None) -> None:
    subprocess.run(list(args), check=True, cwd=cwd, stdout=subprocess.DEVNULL)


def main() -> None:
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None or shutil.which("pdftoppm") is None:
        sys.exit("needs LibreOffice (soffice) and pdftoppm (poppler-utils): apt-get install libreoffice-calc "
                 "poppler-utils")
    with tempfile.TemporaryDirectory() as scratch:
        home = Path(scratch) / "example"
        shutil.copytree(REPO / "example" / "config", home / "config")
        shutil.copytree(REPO / "example" / "inbox", home / "inbox")
        csvreport = [sys.executable, "-m", "csvreport", "--home", str(home), "--quiet"]
        run(*csvreport, "ingest", cwd=REPO)
        run(*csvreport, "hourly", "--hour", "2026-03-29 14:00", cwd=REPO)
        run(*csvreport, "daily", "--date", "2026-03-29", "--until", "18:00", cwd=REPO)
        pdfs = Path(scratch) / "pdf"
        profile = (Path(scratch) / "lo-profile").as_uri()
        run(soffice, f"-env:UserInstallation={profile}", "--headless", "--convert-to", "pdf", "--outdir", str(pdfs),
            str(home / "reports" / f"{HOURLY}.xlsx"), str(home / "reports" / f"{DAILY}.xlsx"))
        IMAGES.mkdir(exist_ok=True)
        for name, (book, page, dpi, grey) in PICTURES.items():
            target = IMAGES / name
            run("pdftoppm", "-png", "-singlefile", "-f", str(page), "-l", str(page), "-r", str(dpi),
                *(["-gray"] if grey else []), str(pdfs / f"{book}.pdf"), str(target.with_suffix("")))
            print(f"wrote {target.relative_to(REPO)}")


if __name__ == "__main__":
    main()
