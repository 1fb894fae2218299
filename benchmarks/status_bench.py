"""How long `csvreport status` takes on ten million rows, beside the same on ten thousand.

status must answer from bookkeeping (ingestion_log, run_history, workbooks, seen_files and a
stat of each file in the drop folder), never by scanning a source table, so its time follows
the number of files and runs, not the number of rows. This script builds two home folders
that differ only in the number of rows (same 1,000 files and runs; a recorded hourly
workbook for every hour since 2026-03-10), then times `status` in all its renderings,
in-process and as the command cron or a monitor runs.

    python3 benchmarks/status_bench.py                    # 10 M rows vs 10 k rows, 1,000 files
    python3 benchmarks/status_bench.py --rows 1000000     # a quicker check

The databases are generated with SQL (a recursive CTE), deterministically, under
benchmarks/.work/status/ (git-ignored) and reused by later runs; --rebuild starts over.
Generating ten million rows takes about a minute.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

WORK = REPO / "benchmarks" / ".work" / "status"
START_TS = 1773100800  # 2026-03-10 00:00:00 UTC
CONFIG = """\
timezone = "Europe/Berlin"

[ingest]
settle_seconds = 0

[[sources]]
name = "sensors"
pattern = "inbox/sensors/*.csv"
timestamp = "ts"
columns = ["ts", "site", "metric", "value"]
types = { value = "real" }

[[reports]]
name = "sensor_summary"
source = "sensors"
group_by = ["site", "metric"]
[reports.measures]
readings = "count"
value_avg = "avg:value"

[monitor]
max_ingest_age_hours = 24
"""


def build(home: Path, rows: int, files: int) -> float:
    """A home folder whose database holds `rows` rows loaded from `files` files, as ingest leaves it."""
    from csvreport import db
    from csvreport.config import load_settings

    started = time.perf_counter()
    if home.exists():
        shutil.rmtree(home)
    (home / "config").mkdir(parents=True)
    (home / "config" / "settings.toml").write_text(CONFIG, encoding="utf-8")
    inbox = home / "inbox" / "sensors"
    inbox.mkdir(parents=True)
    settings = load_settings(home)
    conn = db.connect(settings)  # creates the database and applies every migration
    per_file = rows // files
    step = 3  # seconds between two rows: ten million rows span about a year
    with db.transaction(conn):
        db.ensure_source_table(conn, settings.sources[0])
        conn.execute("PRAGMA cache_size = -200000")
        conn.execute(
            "INSERT INTO sensors (_id, _ingestion_id, _ts, ts, site, metric, value) "
            "WITH RECURSIVE r(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM r WHERE i < ?) "
            "SELECT i + 1, i / ? + 1, ? + i * ?, NULL, 'site' || (i % 20), 'temp', ((i * 7919) % 1000) / 10.0 "
            "FROM r", (rows - 1, per_file, START_TS, step))
        now = db.utcnow()
        for f in range(files):
            first, last = f * per_file + 1, (f + 1) * per_file
            path = inbox / f"export_{f:05d}.csv"
            path.write_text("ts,site,metric,value\n", encoding="utf-8")
            info = path.stat()
            run = conn.execute(
                "INSERT INTO run_history (command, started_at, finished_at, status, files_seen, files_loaded, "
                "rows_loaded) VALUES ('ingest', ?, ?, 'ok', 1, 1, ?)", (now, now, per_file)).lastrowid
            conn.execute(
                "INSERT INTO ingestion_log (id, source, path, sha256, size, mtime_ns, status, rows_read, rows_loaded, "
                "first_row_id, last_row_id, min_ts, max_ts, started_at, finished_at, run_id) "
                "VALUES (?, 'sensors', ?, ?, ?, ?, 'loaded', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (f + 1, str(path), f"{f:064x}", info.st_size, info.st_mtime_ns, per_file, per_file, first, last,
                 START_TS + (first - 1) * step, START_TS + (last - 1) * step, now, now, run))
            conn.execute("INSERT INTO seen_files (source, path, size, mtime_ns, sha256, ingestion_id) "
                         "VALUES ('sensors', ?, ?, ?, ?, ?)", (str(path), info.st_size, info.st_mtime_ns,
                                                               f"{f:064x}", f + 1))
        _workbooks(conn, settings, START_TS, files)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return time.perf_counter() - started


def _workbooks(conn: sqlite3.Connection, settings, first: int, data_mark: int) -> None:
    """A recorded hourly workbook for every hour from `first` until now, as months of cron leave them."""
    from csvreport import reports
    from csvreport.aggregate import hours_between

    now = time.time()
    layout = reports.layout_fingerprint(settings)
    stamp = "2026-11-01T00:00:00.000Z"
    conn.executemany(
        "INSERT INTO workbooks (kind, window_start, window_end, local_start, local_end, zone, path, sha256, size, "
        "rows, files, data_mark, change_mark, layout, reason, first_written_at, written_at) "
        "VALUES ('hourly', ?, ?, ?, ?, ?, ?, ?, 9000, 1200, 1, ?, NULL, ?, 'new', ?, ?)",
        ((w.start, w.end, w.local_start.isoformat(), w.local_end.isoformat(), w.zone,
          str(reports.hourly_path(settings, w)), "0" * 64, data_mark, layout, stamp, stamp)
         for w in hours_between(settings.timezone, first, int(now))))


def median_time(action, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(home: Path, repeat: int) -> dict[str, float]:
    from csvreport import status
    from csvreport.config import load_settings

    settings = load_settings(home)
    facts = status.gather(settings)
    figures = {"gather (in-process)": median_time(lambda: status.gather(settings), repeat)}
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for flags in ([], ["--json"], ["--prometheus"], ["--check"]):
        command = [sys.executable, "-m", "csvreport", "--home", str(home), "status", *flags]

        def run(command: list[str] = command) -> None:
            done = subprocess.run(command, env=env, capture_output=True, text=True)
            if done.returncode not in (0, 1):
                raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")

        figures[" ".join(["csvreport status", *flags])] = median_time(run, repeat)
    figures["_rows"] = facts.sources[0].rows
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows of the large database (10 M)")
    parser.add_argument("--small", type=int, default=10_000, help="rows of the small database (10 k)")
    parser.add_argument("--files", type=int, default=1000, help="files (loads) in both databases")
    parser.add_argument("--repeat", type=int, default=5, help="timings per figure; the median is shown")
    parser.add_argument("--rebuild", action="store_true", help="generate the databases again")
    args = parser.parse_args()

    results = {}
    for rows in (args.small, args.rows):
        home = WORK / f"rows_{rows}_files_{args.files}"
        marker = home / "built"
        if args.rebuild or not marker.exists():
            took = build(home, rows, args.files)
            marker.write_text(f"{rows} rows\n", encoding="utf-8")
            size = (home / "data" / "csvreport.sqlite3").stat().st_size / 2**20
            print(f"generated {rows:,} rows in {args.files:,} files in {took:.1f} s ({size:,.0f} MiB): {home}")
        results[rows] = measure(home, args.repeat)
        assert results[rows]["_rows"] == rows // args.files * args.files, results[rows]["_rows"]

    load = os.getloadavg()
    print(f"\ncsvreport status, median of {args.repeat}; {os.cpu_count()} CPUs, load average "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n")
    small, large = results[args.small], results[args.rows]
    print(f"{'':34} {args.small:>12,} rows {args.rows:>12,} rows   ratio")
    for name in small:
        if name.startswith("_"):
            continue
        ratio = large[name] / small[name]
        print(f"{name:34} {small[name] * 1000:>13.1f} ms {large[name] * 1000:>13.1f} ms  {ratio:5.2f}")
    worst = max(v for k, v in large.items() if not k.startswith("_"))
    print(f"\nslowest on {args.rows:,} rows: {worst * 1000:.0f} ms (target: well under 1 s)")


if __name__ == "__main__":
    main()
