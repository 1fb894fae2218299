"""The run lock: one writer at a time, a clear message naming the holder, --wait, and no stale locks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from conftest import REPO
from csvreport.errors import LockHeld
from csvreport.lock import exclusive, holder, lock_path


def test_second_holder_is_refused_naming_the_first(tmp_path):
    database = tmp_path / "data" / "x.sqlite3"
    with exclusive(database, "csvreport ingest"):
        assert holder(database).startswith(f"pid {os.getpid()} (csvreport ingest, since ")
        with pytest.raises(LockHeld) as info, exclusive(database, "csvreport hourly"):
            pass
    assert info.value.exit_code == 3
    assert str(info.value).startswith(f"another run holds the lock on x.sqlite3: pid {os.getpid()} (csvreport ingest")
    assert lock_path(database).read_text() == ""  # released: nobody named any more
    with exclusive(database, "csvreport hourly"):
        pass


def test_wait_gets_the_lock_once_it_is_released(tmp_path):
    database = tmp_path / "x.sqlite3"
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        with exclusive(database, "csvreport daily"):
            taken.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    taken.wait(10)
    threading.Timer(0.4, release.set).start()
    started = time.monotonic()
    with exclusive(database, "csvreport ingest", wait=10):
        waited = time.monotonic() - started
    thread.join()
    assert 0.3 < waited < 5


def test_wait_gives_up_after_the_given_seconds(tmp_path):
    database = tmp_path / "x.sqlite3"
    with exclusive(database, "csvreport daily"):
        started = time.monotonic()
        with pytest.raises(LockHeld), exclusive(database, "csvreport ingest", wait=0.5):
            pass
        assert 0.45 < time.monotonic() - started < 3


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    database = tmp_path / "x.sqlite3"
    code = ("import sys, time; from pathlib import Path; from csvreport.lock import exclusive\n"
            "with exclusive(Path(sys.argv[1]), 'csvreport ingest'):\n"
            "    print('held', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(database)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stdout.readline().strip() == "held"
    with pytest.raises(LockHeld, match=f"pid {proc.pid} "), exclusive(database, "csvreport ingest"):
        pass
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    with exclusive(database, "csvreport ingest"):
        assert holder(database).startswith(f"pid {os.getpid()} ")
