"""The exclusive run lock: one writing command at a time, the others wait or exit 3.

An advisory `flock` on a file beside the database: the kernel drops it when the holder
dies, even by SIGKILL, so a crashed run never leaves a stale lock behind. The file holds
the holder's pid and command so the one that waits can say who it waits for.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from csvreport.db import current_user
from csvreport.errors import CsvReportError, LockHeld


def lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".lock")


def holder(database: Path, patience: float = 0.0) -> str:
    """Who holds the lock, as the holder wrote it. The holder writes its line just after taking
    the lock, so a reader that finds it empty may wait `patience` seconds for it. A holder that
    writes nothing (a `flock` command, as in the runbook) is named from the kernel's lock table."""
    path = lock_path(database)
    deadline = time.monotonic() + patience
    while True:
        try:
            text = path.read_text(encoding="utf-8").strip()
        except OSError:
            text = ""
        if text or time.monotonic() >= deadline:
            return text or _kernel_holder(path) or (
                f"a process that did not write its name into {path.name} (a `flock` on it, or a run that is just "
                f"starting or finishing); `fuser -v {path}` names it")
        time.sleep(0.02)


def _kernel_holder(path: Path) -> str:
    """`pid N (its command line)` of the process /proc/locks says holds a flock on `path`; "" when unknown."""
    try:
        st = path.stat()
        table = Path("/proc/locks").read_text(encoding="ascii")
    except OSError:
        return ""
    device = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    for line in table.splitlines():
        fields = line.split()
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == device and fields[4] != "0":
            try:
                argv = Path(f"/proc/{fields[4]}/cmdline").read_bytes().split(b"\0")
            except OSError:
                return f"pid {fields[4]}"
            command = " ".join(a.decode(errors="replace") for a in argv if a)
            return f"pid {fields[4]} ({command})" if command else f"pid {fields[4]}"
    return ""


@contextmanager
def exclusive(database: Path, command: str, wait: float = 0.0) -> Iterator[None]:
    path = lock_path(database)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
        raise CsvReportError(
            f"{'the disk is full: ' if full else ''}cannot open the lock file {path}: {exc.strerror or exc}; "
            + ("free space there, then run the command again" if full else
               f"user {current_user()} may not write there: run csvreport as the user who owns the home")) from None
    try:
        deadline = time.monotonic() + max(wait, 0.0)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    advice = (f"it was still working after {wait:g} seconds of waiting; try again later or "
                              "give a longer --wait" if wait > 0 else
                              "it is still working; try again later, or pass --wait SECONDS to wait for it")
                    raise LockHeld(f"another run holds the lock on {database.name}: "
                                   f"{holder(database, patience=0.5)}; {advice}") from None
                time.sleep(min(0.2, max(deadline - time.monotonic(), 0.01)))
        _write_holder(fd, f"pid {os.getpid()} ({command}, since {time.strftime('%Y-%m-%d %H:%M:%S')})\n")
        try:
            yield
        finally:
            _write_holder(fd, "")
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _write_holder(fd: int, line: str) -> None:
    """Who holds the lock is a courtesy to the one that waits: a full disk must not fail the run for it
    (the flock alone is the lock), nor hide the error the run itself is about to report."""
    try:
        os.ftruncate(fd, 0)
        if line:
            os.pwrite(fd, line.encode(), 0)
    except OSError:
        pass
