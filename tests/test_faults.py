"""Every fault is reported as itself: a full disk, a log file that cannot be written, a failing query,
a damaged database, a closed pipe, a usage error; and a user who may only read can run `status`.

The tests that need root (a small tmpfs for the full disk, another user for the read-only home)
skip with the reason elsewhere; CI runs as root.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from conftest import REPO, write_config, write_csv

HEADER = "ts,site,metric,value\n"
NOBODY = 65534


def rows(count: int, hour: int = 10) -> str:
    return HEADER + "".join(f"2026-03-10 {hour:02d}:{i // 60 % 60:02d}:{i % 60:02d},site{i % 40},temperature,"
                            f"{i * 0.123456789:.9f}\n" for i in range(count))


def database(home: Path) -> Path:
    return home / "data" / "csvreport.sqlite3"


def run_rows(home: Path) -> list[tuple]:
    with closing(sqlite3.connect(database(home))) as conn:
        return conn.execute("SELECT command, status FROM run_history ORDER BY id").fetchall()


def set_paths(home: Path, **paths: Path) -> None:
    text = (home / "config" / "settings.toml").read_text()
    write_config(home, text=text + "\n[paths]\n" + "".join(f'{key} = "{value}"\n' for key, value in paths.items()))


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs mounted inside tmp_path: a disk that fills up for real."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def resize(mount: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(mount)], check=True)


def fill(folder: Path) -> None:
    """Use up every free byte of the file system holding `folder`."""
    with open(folder / "filler", "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 4096)
                handle.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


# --- a full disk -----------------------------------------------------------------------------------

def test_a_full_disk_during_ingest_says_so_names_the_database_and_loses_nothing(home, cli, small_disk):
    set_paths(home, database=small_disk / "csvreport.sqlite3")
    write_csv(home / "inbox" / "sensors" / "big.csv", rows(30000))
    result = cli("ingest")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"Error: the disk is full: cannot write the database {small_disk}/csvreport.sqlite3")
    assert "rollback" not in result.output.lower() and "Traceback" not in result.output
    resize(small_disk, "16m")
    result = cli("ingest")
    assert result.exit_code == 0, result.output
    with closing(sqlite3.connect(small_disk / "csvreport.sqlite3")) as conn:
        assert conn.execute("SELECT count(*) FROM sensors").fetchone() == (30000,)
        assert conn.execute("SELECT count(*) FROM ingestion_log").fetchone() == (1,)
        statuses = [r[0] for r in conn.execute("SELECT status FROM run_history ORDER BY id")]
    assert statuses == ["failed", "ok"]


def test_a_full_disk_during_hourly_is_one_line_without_logging_tracebacks(home, cli, small_disk):
    write_csv(home / "inbox" / "sensors" / "a.csv", rows(50))
    assert cli("ingest").exit_code == 0
    set_paths(home, reports=small_disk / "reports", logs=small_disk / "logs")
    (small_disk / "logs").mkdir()
    (small_disk / "logs" / "csvreport.log").write_text("")
    fill(small_disk)
    result = cli("hourly", "--hour", "2026-03-10 10:00")
    assert result.exit_code == 1
    assert "--- Logging error ---" not in result.output and "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert lines[0].startswith(
        f"csvreport: the disk is full: cannot write the log file {small_disk}/logs/csvreport.log")
    assert lines[-1].startswith(f"Error: the disk is full: cannot write the workbook {small_disk}/reports/")
    assert len(lines) == 2, result.stderr
    assert run_rows(home)[-1] == ("hourly", "failed")


# --- the stack of an unexpected error ----------------------------------------------------------

def test_without_a_log_file_the_stack_of_an_unexpected_error_goes_to_stderr(home, cli, monkeypatch):
    (home / "not-a-folder").write_text("the logs path is a file: no log file can be written\n")
    set_paths(home, logs=home / "not-a-folder")
    write_csv(home / "inbox" / "sensors" / "a.csv", rows(3))

    def broken(*args, **kwargs):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr("csvreport.ingest.load_rows", broken)
    result = cli("ingest")
    assert result.exit_code == 1
    assert "the stack is in" not in result.stderr
    assert "Traceback (most recent call last):" in result.stderr and 'raise RuntimeError("simulated bug")' in \
        result.stderr
    assert result.stderr.splitlines()[-1] == "Error: unexpected RuntimeError: simulated bug"
    assert f"cannot write the log file {home / 'not-a-folder' / 'csvreport.log'}" in result.stdout


# --- a failing query is not a missing table ----------------------------------------------------

def test_a_failing_database_is_not_taken_for_a_missing_table(home, cli):
    """A query that fails (here: interrupted, as a busy or failing database would) must stop the caller:
    read as "no archive" it would let a report be written with archived rows silently missing."""
    from csvreport import archive, mail
    from csvreport.config import load_settings

    write_csv(home / "inbox" / "sensors" / "a.csv", rows(3))
    assert cli("ingest").exit_code == 0
    settings = load_settings(home)
    with closing(sqlite3.connect(database(home))) as conn:
        assert archive.archived_window(conn, settings, 0, 2**40) is None
        assert archive.summary(conn) == [] and mail.unsent(conn, settings) == []
        conn.set_progress_handler(lambda: 1, 1)  # every statement is interrupted
        with pytest.raises(sqlite3.OperationalError, match="interrupted"):
            archive.archived_window(conn, settings, 0, 2**40)
        with pytest.raises(sqlite3.OperationalError, match="interrupted"):
            archive.summary(conn)
        with pytest.raises(sqlite3.OperationalError, match="interrupted"):
            mail.unsent(conn, settings)


# --- a damaged database ------------------------------------------------------------------------------

def test_an_empty_database_file_is_a_status_problem(home, cli):
    database(home).parent.mkdir()
    database(home).write_bytes(b"")
    result = cli("status", "--check")
    assert result.exit_code == 1
    assert result.output == (f"database {database(home)} is empty (0 bytes): it holds none of csvreport's tables; "
                             "restore it from a backup (docs/operations.md, 'Backups while cron runs')\n")
    assert database(home).stat().st_size == 0


@pytest.mark.parametrize("cut", ["last pages", "half"])
def test_a_truncated_database_file_is_a_status_problem(home, cli, cut):
    write_csv(home / "inbox" / "sensors" / "a.csv", rows(3000))
    assert cli("ingest").exit_code == 0
    size = database(home).stat().st_size
    assert not Path(f"{database(home)}-wal").exists()
    with open(database(home), "r+b") as handle:
        page = int.from_bytes(handle.read(18)[16:18], "big")  # the page size, from the file's header
        handle.truncate(size - 2 * page if cut == "last pages" else size // 2)
    result = cli("status", "--check")
    assert result.exit_code == 1
    assert result.output == f"database unreachable: cannot read {database(home)}: database disk image is malformed\n"


# --- a closed pipe ---------------------------------------------------------------------------------

@pytest.mark.parametrize("reader", ["head -1", "true"])
def test_status_into_a_pipe_closed_early_prints_no_traceback(home, cli, reader):
    write_csv(home / "inbox" / "sensors" / "a.csv", rows(3))
    assert cli("ingest").exit_code == 0
    command = f"{sys.executable} -m csvreport --home {home} status --json | {reader}"
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, cwd=REPO, check=False)
    assert done.stderr == ""
    assert done.stdout == ("{\n" if reader == "head -1" else "")


def test_status_check_into_a_closed_pipe_still_exits_1_on_a_problem(home, cli):
    """A monitoring wrapper with `set -o pipefail` must not read "all is well" because its reader went away."""
    write_csv(home / "inbox" / "sensors" / "bad.csv", "no,header,we,know\n1,2,3,4\n")
    assert cli("ingest").exit_code == 0  # quarantined: a problem for an operator
    for command, expected in (("status --check", "1"), ("status", "0")):
        line = f"{sys.executable} -m csvreport --home {home} {command} | true; echo ${{PIPESTATUS[0]}}"
        done = subprocess.run(["bash", "-c", line], capture_output=True, text=True, cwd=REPO, check=False)
        assert (done.stdout.strip(), done.stderr) == (expected, ""), command


# --- usage errors ------------------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (("hourly", "--hour", "0001-01-01 00:00"), "Error: --hour '0001-01-01 00:00': out of range"),
    (("hourly", "--hour", "9999-12-31 23:00"), "Error: --hour '9999-12-31 23:00': out of range"),
    (("daily", "--date", "9999-12-31"), "Error: --date '9999-12-31': out of range"),
    (("daily", "--date", "0001-01-01"), "Error: --date '0001-01-01': out of range"),
    (("archive", "--before", "2026-13"), "Error: --before 2026-13: not a month; write it as YYYY-MM"),
    (("archive", "--before", "0000-01"), "Error: --before 0000-01: not a month; write it as YYYY-MM"),
    (("archive", "restore", "--month", "2026-13"), "Error: --month 2026-13: not a month; write it as YYYY-MM"),
])
def test_a_usage_error_exits_2_before_any_run_is_recorded(home, cli, args, message):
    write_csv(home / "inbox" / "sensors" / "a.csv", rows(3))
    assert cli("ingest").exit_code == 0
    result = cli(*args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(message)
    assert run_rows(home) == [("ingest", "ok")]
    assert "failed" not in cli("status", "--check").output


def test_archive_without_pyarrow_exits_2_before_any_run_is_recorded(home, cli):
    write_csv(home / "inbox" / "sensors" / "a.csv", rows(3))
    assert cli("ingest").exit_code == 0
    code = ("import sys; sys.modules['pyarrow'] = None; from csvreport.cli import main; "
            f"sys.argv = ['csvreport', '--home', {str(home)!r}, 'archive', '--before', '2026-01']; main()")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=False)
    assert done.returncode == 2, done.stderr
    assert done.stderr == ("Error: the archive needs pyarrow, which is not installed; install it with: "
                           "pip install 'csvreport[archive]'\n")
    assert run_rows(home) == [("ingest", "ok")]


# --- a user who may only read the home --------------------------------------------------------------

def as_user(uid: int, args: list[str]) -> tuple[int, str]:
    """Run the command line in a child process that has become `uid` (exit code, output).

    The child forks from this interpreter (csvreport's own helper process does the fork), as
    another user cannot start this Python (it lives under root's home); every module the command
    needs is imported first, by running the same command once as root on another home.
    """
    from typer.testing import CliRunner

    from csvreport.cli import app
    from csvreport.helper import Helper

    def work() -> tuple[int, str]:
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            result = CliRunner().invoke(app, args)
        except Exception as exc:  # noqa: BLE001 - reported to the parent
            return 99, "".join(traceback.format_exception(exc))
        text = result.output
        if result.exception and not isinstance(result.exception, SystemExit):
            text += "".join(traceback.format_exception(result.exception))
        return result.exit_code, text

    outcome = Helper.start(work).result()
    assert isinstance(outcome, tuple), "the child process failed"
    return outcome


@pytest.fixture
def shared_folder() -> Iterator[Path]:
    """tmp_path lies in a folder only root may enter: homes another user reads live in a temporary folder of
    their own that others may enter; it is removed at the end."""
    if os.geteuid() != 0:
        pytest.skip("running status as another user (uid 65534) needs root (CI runs as root)")
    folder = Path(tempfile.mkdtemp(prefix="csvreport-shared-"))
    try:
        folder.chmod(0o755)
        yield folder
    finally:
        shutil.rmtree(folder)


def readable_home(folder: Path, cli) -> Path:
    """A home as a writing run leaves it (no -wal, no -shm), that others may read but not write."""
    home = folder / "home"
    (home / "config").mkdir(parents=True)
    write_config(home)
    write_csv(home / "inbox" / "sensors" / "a.csv", rows(5))
    write_csv(home / "inbox" / "sensors" / "bad.csv", "ts\n2026-03-10 10:00:00\n")
    assert cli("--home", home, "ingest").exit_code == 0
    for path in [home, *home.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    (home / ".env").write_text("CSVREPORT_SMTP_PASSWORD=secret\n")
    (home / ".env").chmod(0o600)  # secrets stay the owner's: status needs none of them
    return home


def test_status_and_recover_list_work_for_a_user_who_may_only_read_the_home(shared_folder, cli):
    warm = readable_home(shared_folder / "warm", cli)
    home = readable_home(shared_folder, cli)
    data = home / "data"
    before = sorted(p.name for p in data.iterdir())
    assert not any(name.endswith(("-wal", "-shm")) for name in before)
    for args in (["status", "--json"], ["status", "--check"], ["recover", "list"]):
        cli("--home", warm, *args)  # imports, as root, every module the command needs
    code, output = as_user(NOBODY, ["--home", str(home), "status", "--json"])
    assert code == 0, output
    assert '"reachable": true' in output and "readonly database" not in output
    code, output = as_user(NOBODY, ["--home", str(home), "status", "--check"])
    assert "database unreachable" not in output
    assert "quarantine not empty: 1 file(s) of source sensors" in output
    code, output = as_user(NOBODY, ["--home", str(home), "recover", "list"])
    assert code == 0, output
    assert "quarantine/sensors/bad.csv" in output
    assert sorted(p.name for p in data.iterdir()) == before


def test_status_for_a_user_who_may_not_even_enter_the_quarantine(shared_folder, cli):
    warm = readable_home(shared_folder / "warm", cli)
    home = readable_home(shared_folder, cli)
    (home / "quarantine").chmod(0o700)
    cli("--home", warm, "status", "--check")
    code, output = as_user(NOBODY, ["--home", str(home), "status", "--check"])
    assert code == 1, output
    assert "quarantine not empty: 1 file(s) of source sensors" in output
    assert "Traceback" not in output
    (home / "data").chmod(0o700)
    code, output = as_user(NOBODY, ["--home", str(home), "status", "--check"])
    assert code == 1, output
    assert output.startswith(f"database unreachable: cannot read {database(home)}: Permission denied; user ")
    assert "Traceback" not in output


def test_a_writing_command_by_a_user_who_may_not_write_names_the_path_and_the_user(shared_folder, cli):
    warm = readable_home(shared_folder / "warm", cli)
    home = readable_home(shared_folder, cli)
    cli("--home", warm, "ingest")
    code, output = as_user(NOBODY, ["--home", str(home), "ingest"])
    assert code == 1, output
    import pwd

    user = pwd.getpwuid(NOBODY).pw_name
    assert output.endswith(f"Error: cannot open the lock file {home}/data/csvreport.sqlite3.lock: Permission denied; "
                           f"user {user} may not write there: run csvreport as the user who owns the home\n")
    assert "Traceback" not in output
    with closing(sqlite3.connect(f"file:{database(home)}?mode=ro", uri=True)) as conn:
        assert conn.execute("SELECT count(*) FROM run_history").fetchone() == (1,)


def test_a_permission_fault_outside_a_recorded_run_is_one_line_naming_the_path(shared_folder, cli):
    import pwd

    cli("init", shared_folder / "warm")  # imports, as root, every module init needs
    code, output = as_user(NOBODY, ["init", str(shared_folder / "new")])
    assert code == 1, output
    assert output.endswith(f"Error: permission denied: user {pwd.getpwuid(NOBODY).pw_name} may not use "
                           f"{shared_folder / 'new'} (Permission denied); run csvreport as the user who owns the "
                           "home, or fix the permissions of that path\n")
    assert "unexpected" not in output and "Traceback" not in output


def test_a_user_who_may_only_read_sees_what_a_running_writer_committed(shared_folder, cli):
    warm = readable_home(shared_folder / "warm", cli)
    home = readable_home(shared_folder, cli)
    cli("--home", warm, "status", "--json")
    with closing(sqlite3.connect(database(home), isolation_level=None)) as writer:
        writer.execute("PRAGMA wal_autocheckpoint=0")  # the commit stays in the -wal file, as during a run
        writer.execute("INSERT INTO run_history (command, arguments, pid, started_at, finished_at, status) "
                       "VALUES ('hourly', '{}', 1, '2026-03-10T12:00:00Z', '2026-03-10T12:00:01Z', 'ok')")
        assert Path(f"{database(home)}-wal").stat().st_size > 0
        code, output = as_user(NOBODY, ["--home", str(home), "status", "--json"])
    assert code == 0, output
    assert '"command": "hourly"' in output and '"reachable": true' in output


def test_a_pattern_folder_the_user_may_not_read_is_a_status_problem_naming_the_user(shared_folder, cli):
    import pwd

    warm = readable_home(shared_folder / "warm", cli)
    home = readable_home(shared_folder, cli)
    cli("--home", warm, "status", "--check")
    (home / "inbox" / "sensors").chmod(0o700)
    code, output = as_user(NOBODY, ["--home", str(home), "status", "--check"])
    assert code == 1, output
    assert (f"source sensors: the folder {home / 'inbox' / 'sensors'} of its pattern is not readable by user "
            f"{pwd.getpwuid(NOBODY).pw_name}; create it, fix its permissions, or fix the pattern in the "
            "configuration") in output.splitlines()
