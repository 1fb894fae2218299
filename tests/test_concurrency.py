"""Two runs at once: every row loaded exactly once; the one without the lock exits 3 naming the holder."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, write_csv
from csvreport.config import load_settings
from csvreport.lock import exclusive

ROWS = 150_000


def generate(home: Path) -> None:
    lines = ["ts,site,metric,value"]
    lines += [f"2026-03-28 {i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d},s,m,{i}" for i in range(ROWS)]
    write_csv(home / "inbox" / "sensors" / "big.csv", "\n".join(lines) + "\n")
    write_csv(home / "inbox" / "sensors" / "small.csv", "ts,site,metric,value\n2026-03-28 10:00:00,x,m,1\n")


def start(home: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "CSVREPORT_HOME": str(home), "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "csvreport", "ingest", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(*procs: subprocess.Popen) -> list[tuple[int, str, str]]:
    done = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)  # reads both pipes: a full pipe never blocks the child
        done.append((proc.returncode, out, err))
    return done


# A real `ingest` that, once it holds the lock, waits for a file to appear before loading:
# the second run is certain to find the lock taken, however fast or slow the machine is.
HOLDER = r"""
import sys, time
from pathlib import Path
import csvreport.ingest
load, go = csvreport.ingest.ingest, Path(sys.argv[1])
def held(*args, **kwargs):
    print("holding the lock", flush=True)
    while not go.exists():
        time.sleep(0.01)
    return load(*args, **kwargs)
csvreport.ingest.ingest = held
from csvreport.cli import main
sys.argv = ["csvreport", "--quiet", "ingest"]
main()
"""


def counts(home: Path) -> tuple[int, int, list[str]]:
    with sqlite3.connect(home / "data" / "csvreport.sqlite3") as conn:
        rows = conn.execute("SELECT count(*) FROM sensors").fetchone()[0]
        distinct = conn.execute("SELECT count(DISTINCT value || site) FROM sensors").fetchone()[0]
        statuses = sorted(r[0] for r in conn.execute("SELECT status FROM run_history"))
    return rows, distinct, statuses


def test_a_run_that_finds_the_lock_taken_exits_3_and_loads_nothing(home, tmp_path):
    generate(home)
    go = tmp_path / "go"
    env = {**os.environ, "CSVREPORT_HOME": str(home), "PYTHONPATH": str(REPO)}
    first = subprocess.Popen([sys.executable, "-c", HOLDER, str(go)], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        assert first.stdout is not None and first.stdout.readline() == "holding the lock\n", first.stderr
        [(code, _out, err)] = finish(start(home))
    finally:
        go.touch()
    [(first_code, _, first_err)] = finish(first)
    assert (first_code, code) == (0, 3), (first_err, err)
    assert f"Error: another run holds the lock on csvreport.sqlite3: pid {first.pid} (csvreport ingest, since " in err
    assert "Traceback" not in err
    rows, distinct, statuses = counts(home)
    assert rows == distinct == ROWS + 1
    assert statuses == ["ok", "skipped"]


def test_wait_lets_the_second_run_succeed(home):
    generate(home)
    results = finish(start(home, "--wait", "120"), start(home, "--wait", "120"))
    assert [code for code, _, _ in results] == [0, 0], results
    rows, distinct, statuses = counts(home)
    assert rows == distinct == ROWS + 1
    assert statuses == ["ok", "ok"]


def test_lock_held_names_the_holder_and_is_recorded_as_skipped(home, cli):
    write_csv(home / "inbox" / "sensors" / "small.csv", "ts,site,metric,value\n2026-03-28 10:00:00,x,m,1\n")
    assert cli("ingest").exit_code == 0
    settings = load_settings()
    with exclusive(settings.paths.database, "csvreport hourly"):
        code, out, err = finish(start(home))[0]
    assert code == 3, (out, err)
    assert err.startswith(f"Error: another run holds the lock on csvreport.sqlite3: pid {os.getpid()} "
                          f"(csvreport hourly, since ")
    assert err.rstrip().endswith("it is still working; try again later, or pass --wait SECONDS to wait for it")
    with sqlite3.connect(settings.paths.database) as conn:
        status, error = conn.execute("SELECT status, error FROM run_history ORDER BY id DESC LIMIT 1").fetchone()
    assert status == "skipped" and f"pid {os.getpid()}" in error


def test_a_run_that_waited_is_not_told_to_wait(home, cli):
    assert cli("ingest").exit_code == 0
    with exclusive(load_settings().paths.database, "csvreport hourly"):
        code, _, err = finish(start(home, "--wait", "0.3"))[0]
    assert code == 3, err
    assert err.rstrip().endswith("it was still working after 0.3 seconds of waiting; try again later or give a "
                                 "longer --wait")
    assert "pass --wait" not in err


@pytest.mark.skipif(shutil.which("flock") is None, reason="the flock command (util-linux) is not installed")
def test_a_flock_from_the_runbook_is_named_by_its_command_line(home, cli):
    assert cli("ingest").exit_code == 0
    lock = home / "data" / "csvreport.sqlite3.lock"
    holder = subprocess.Popen(["flock", str(lock), "sh", "-c", "echo taken; sleep 30"], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "taken\n"
        code, _, err = finish(start(home))[0]
    finally:
        holder.kill()
        holder.wait()
    assert code == 3, err
    assert f"holds the lock on csvreport.sqlite3: pid {holder.pid} (flock {lock} sh -c echo taken; sleep 30);" in err
    assert "unknown process" not in err
