"""A run killed with SIGKILL at any point leaves each file wholly loaded or not at all; the next run finishes."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from conftest import REPO, write_csv
from csvreport.runs import INTERRUPTED

ROWS_PER_FILE = 120_000
FILES = 2


def generate(home: Path) -> int:
    for n in range(FILES):
        lines = ["ts,site,metric,value"]
        lines += [f"2026-03-28 {i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d},f{n},m,{i}"
                  for i in range(ROWS_PER_FILE)]
        write_csv(home / "inbox" / "sensors" / f"big{n}.csv", "\n".join(lines) + "\n", age=3600 - n)
    return FILES * ROWS_PER_FILE


def start(home: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "CSVREPORT_HOME": str(home), "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "csvreport", "--quiet", "ingest", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_run(home: Path, runs: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    path = home / "data" / "csvreport.sqlite3"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=5)
            try:
                if conn.execute("SELECT count(*) FROM run_history").fetchone()[0] >= runs:
                    return
            finally:
                conn.close()
        except sqlite3.OperationalError:
            pass  # not created yet
        time.sleep(0.01)


def assert_consistent(home: Path) -> int:
    """Every loaded ingestion owns exactly its rows_loaded rows; no row belongs to anything else."""
    path = home / "data" / "csvreport.sqlite3"
    if not path.exists():
        return 0
    with sqlite3.connect(path) as conn:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sensors'").fetchone():
            return 0
        per_ingestion = dict(conn.execute("SELECT _ingestion_id, count(*) FROM sensors GROUP BY _ingestion_id"))
        logged = {i: (n, first, last) for i, n, first, last in conn.execute(
            "SELECT id, rows_loaded, first_row_id, last_row_id FROM ingestion_log WHERE status = 'loaded'")}
        paths = [r[0] for r in conn.execute("SELECT path FROM ingestion_log WHERE status = 'loaded'")]
    assert set(per_ingestion) <= set(logged), "rows of an ingestion that did not commit"
    for ingestion, (rows, first, last) in logged.items():
        assert per_ingestion.get(ingestion, 0) == rows == ROWS_PER_FILE
        assert last - first + 1 == rows
    assert len(paths) == len(set(paths)), "a file loaded twice"
    return sum(per_ingestion.values())


def test_sigkill_at_several_points_loses_and_duplicates_nothing(home):
    total = generate(home)
    # A dry run reads and inserts everything (then rolls back): about as long as the load itself,
    # so the kill points are spread over the load however fast this machine is.
    began = time.monotonic()
    dry = start(home, "--dry-run")
    _out, err = dry.communicate(timeout=120)
    assert dry.returncode == 0, err
    took = time.monotonic() - began
    for n, delay in enumerate(took * f for f in (0.0, 0.1, 0.2, 0.3, 0.45)):
        proc = start(home)
        # Count from the moment the run has recorded itself, so a slow start-up does not shift the kill points.
        wait_for_run(home, n + 1, proc)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        loaded = assert_consistent(home)
        assert loaded in (0, ROWS_PER_FILE, total)
        print(f"killed {delay:.2f}s after the run started: {loaded} rows committed")
    proc = start(home)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert assert_consistent(home) == total
    with sqlite3.connect(home / "data" / "csvreport.sqlite3") as conn:
        assert conn.execute("SELECT count(DISTINCT value) FROM sensors").fetchone()[0] == ROWS_PER_FILE
        runs = conn.execute("SELECT status, error FROM run_history ORDER BY id").fetchall()
    # each killed run is closed as failed by the next one; the last one finished
    assert runs[-1] == ("ok", None)
    assert set(runs[:-1]) <= {("ok", None), ("failed", INTERRUPTED)}
    assert ("failed", INTERRUPTED) in runs
