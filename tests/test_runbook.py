"""docs/operations.md and crontab.example, followed literally against a temporary home folder.

The shell blocks of the runbook and the job lines of crontab.example are run as written,
with only the example paths (/srv/csvreport, the virtual environment, node_exporter's folder)
pointed at this test's temporary folders. Package installs (apt-get, pip, useradd) are not run.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest

from conftest import REPO, write_csv

RUNBOOK = REPO / "docs" / "operations.md"
CRONTAB = REPO / "crontab.example"
NOT_RUN = ("sudo ", "python3 -m venv", "/opt/csvreport/venv/bin/pip", "export PATH=")
HEADER = "ts,site,metric,value\n"


def blocks(section: str) -> list[str]:
    """The ```sh blocks under the heading `section` of the runbook."""
    text = RUNBOOK.read_text(encoding="utf-8")
    match = re.search(rf"^#+ {re.escape(section)}\n(.*?)(?=^#+ |\Z)", text, re.S | re.M)
    assert match, f"no section {section!r} in {RUNBOOK}"
    found = re.findall(r"```sh\n(.*?)```", match.group(1), re.S)
    assert found, f"no sh block in section {section!r}"
    return found


@pytest.fixture
def shell(tmp_path, home):
    """Run runbook text with /bin/sh, `csvreport` on PATH as the venv would put it."""
    bin_dir = tmp_path / "venv-bin"
    bin_dir.mkdir()
    script = bin_dir / "csvreport"
    script.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -m csvreport \"$@\"\n", encoding="utf-8")
    script.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHONPATH": str(REPO)}
    env.pop("CSVREPORT_HOME", None)

    def run(text: str, subs: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess:
        lines = [line for line in text.splitlines() if not line.startswith(NOT_RUN)]
        script_text = "\n".join(lines)
        for old, new in {"/srv/csvreport": str(home), "/opt/csvreport/venv/bin/": "", **(subs or {})}.items():
            script_text = script_text.replace(old, new)
        done = subprocess.run(["sh", "-ec", script_text], env=env, cwd=tmp_path, capture_output=True, text=True,
                              timeout=120)
        if check:
            assert done.returncode == 0, f"{script_text}\n---\n{done.stdout}\n{done.stderr}"
        return done

    run.env = env
    return run


def db(home: Path) -> sqlite3.Connection:
    return sqlite3.connect(home / "data" / "csvreport.sqlite3")


def test_from_a_fresh_machine_to_a_working_crontab(home, tmp_path, shell):
    # A fresh machine: no home folder yet. (The test's `home` fixture made one; start over.)
    for leftover in sorted(home.rglob("*"), reverse=True):
        leftover.unlink() if leftover.is_file() else leftover.rmdir()
    home.rmdir()

    install, check = blocks("Install")[1:3]
    shell(install)
    assert (home / "config" / "settings.toml").is_file() and (home / "backup").is_dir()
    stamp = "2026-03-10 10:{:02d}:00,berlin,temp,{}\n"
    write_csv(home / "inbox" / "sensors" / "first.csv", HEADER + "".join(stamp.format(m, m) for m in range(5)))
    done = shell(check)
    assert "sensors  pending 1" in done.stdout and "sensors  pending 0  loaded 1" in done.stdout

    # The crontab, its variables set as an operator would, each job run as cron runs it.
    variables, jobs = crontab()
    assert set(variables) == {"SHELL", "PATH", "CSVREPORT_HOME", "MAILTO"}
    prom_dir = tmp_path / "node_exporter"
    prom_dir.mkdir()
    env_lines = f"export CSVREPORT_HOME={shlex.quote(str(home))}\n"
    for schedule, command in jobs:
        assert valid_schedule(schedule), schedule
        done = shell(env_lines + command, {"/var/lib/node_exporter": str(prom_dir)})
        # Cron mails whatever a job prints: a healthy run prints nothing.
        assert (done.stdout, done.stderr) == ("", ""), command
    with db(home) as conn:
        runs = dict(conn.execute("SELECT command, status FROM run_history WHERE id IN "
                                 "(SELECT max(id) FROM run_history GROUP BY command)").fetchall())
    assert runs == {"ingest": "ok", "hourly": "ok", "daily": "ok"}
    metrics = (prom_dir / "csvreport.prom").read_text(encoding="utf-8")
    assert 'csvreport_last_run_status{command="hourly",status="ok"} 1' in metrics
    with sqlite3.connect(home / "backup" / "csvreport.sqlite3") as backup:
        assert backup.execute("SELECT count(*) FROM sensors").fetchone()[0] == 5
    done = shell(f"csvreport --home {home} status --check")
    assert done.stdout == "OK: nothing needs an operator\n"


def crontab() -> tuple[dict[str, str], list[tuple[str, str]]]:
    variables, jobs = {}, []
    for line in CRONTAB.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        assignment = re.match(r"([A-Z_]+)=(.*)", line)
        if assignment:
            variables[assignment.group(1)] = assignment.group(2)
            continue
        fields = line.split(None, 5)
        jobs.append((" ".join(fields[:5]), fields[5]))
    return variables, jobs


FIELD = r"(\*|\d+(-\d+)?)(/\d+)?(,(\d+(-\d+)?)(/\d+)?)*"


def valid_schedule(schedule: str) -> bool:
    fields = schedule.split()
    limits = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]
    if len(fields) != 5:
        return False
    for field, (low, high) in zip(fields, limits):
        if not re.fullmatch(FIELD, field):
            return False
        numbers = [int(n) for n in re.findall(r"\d+", re.sub(r"/\d+", "", field))]
        if any(not low <= n <= high for n in numbers):
            return False
    return True


def test_the_crontab_runs_ingest_hourly_and_daily_quietly_with_wait():
    variables, jobs = crontab()
    commands = " ".join(command for _, command in jobs)
    for needed in ("csvreport --quiet ingest --wait", "csvreport --quiet hourly --wait",
                   "csvreport --quiet daily --wait"):
        assert needed in commands
    schedules = {command.split()[2]: schedule for schedule, command in jobs if command.startswith("csvreport --quiet")}
    assert schedules["ingest"].startswith("*/5 ")
    assert schedules["hourly"].split()[:2] == ["7", "*"]
    assert schedules["daily"].split()[1] == "0,6,12,18"
    assert variables["PATH"].startswith("/opt/csvreport/venv/bin:")


def cp1252_export(home: Path, name: str) -> Path:
    return write_csv(home / "inbox" / "sensors" / name,
                     HEADER + "2026-03-10 10:00:00,Zürich,temp,1.5\n2026-03-10 10:30:00,Zürich,temp,2.5\n",
                     encoding="cp1252")


def test_scenario_a_bad_csv_keeps_failing(home, shell):
    cp1252_export(home, "export_0329.csv")
    shell("csvreport --home /srv/csvreport ingest")
    listing, replay = blocks("A bad CSV keeps failing")
    done = shell(listing)
    assert "quarantine/sensors/export_0329.csv" in done.stdout and "reason: " in done.stdout

    # Replaying before the cause is fixed: it stays, its reason updated.
    single = replay.splitlines()[0]
    shell(single)
    reason = json.loads((home / "quarantine" / "sensors" / "export_0329.csv.reason.json").read_text())
    assert reason["replays"] == 1

    # The fix is in the configuration: this exporter writes cp1252.
    config = home / "config" / "settings.toml"
    config.write_text(config.read_text().replace('types = { value = "real" }',
                                                 'types = { value = "real" }\nencoding = "cp1252"'))
    done = shell(replay)
    assert "replay done: 1 file(s) replayed, 2 rows loaded; 0 still quarantined" in done.stdout
    assert not (home / "quarantine" / "sensors" / "export_0329.csv").exists()
    with db(home) as conn:
        assert conn.execute("SELECT site, value FROM sensors ORDER BY value").fetchall() == [
            ("Zürich", 1.5), ("Zürich", 2.5)]
    check = shell("csvreport --home /srv/csvreport status --check", check=False)
    assert "quarantine not empty" not in check.stdout


def test_scenario_a_duplicate_ingestion(home, shell):
    text = HEADER + "".join(f"2026-03-10 10:{m:02d}:00,berlin,temp,{m}\n" for m in range(4))
    write_csv(home / "inbox" / "sensors" / "export_0329.csv", text, age=4000)
    # The same rows again, with Windows line endings: different content, so it loads too.
    write_csv(home / "inbox" / "sensors" / "export_0329_copy.csv", text.replace("\n", "\r\n").encode())
    shell("csvreport --home /srv/csvreport ingest")
    with db(home) as conn:
        assert conn.execute("SELECT count(*) FROM sensors").fetchone()[0] == 8
        kept = conn.execute("SELECT * FROM sensors WHERE _ingestion_id = 1").fetchall()

    (home / "backup").mkdir()
    listing, preview, purge = blocks("A duplicate ingestion")
    done = shell(listing)
    (line,) = [line for line in done.stdout.splitlines() if line.endswith("inbox/sensors/export_0329_copy.csv")]
    duplicate = line.split()[0]
    done = shell(preview, {"purge 42": f"purge {duplicate}"})
    assert f"purging ingestion {duplicate} would delete 4 rows of sensors" in done.stdout
    done = shell(purge, {"purge 42": f"purge {duplicate}"})
    assert f"purged ingestion {duplicate}: 4 rows deleted" in done.stdout
    shell("csvreport --home /srv/csvreport ingest")
    with db(home) as conn:
        assert conn.execute("SELECT * FROM sensors").fetchall() == kept


def test_scenario_a_corrupt_or_deleted_workbook(home, shell):
    write_csv(home / "inbox" / "sensors" / "a.csv", HEADER + "2026-03-10 10:00:00,berlin,temp,1\n")
    shell("csvreport --home /srv/csvreport ingest\ncsvreport --home /srv/csvreport hourly")
    books = sorted((home / "reports").glob("hourly_*.xlsx"))
    books[0].unlink()
    books[1].write_bytes(b"saved over by someone")
    (command,) = blocks("A corrupt or deleted workbook")
    done = shell(command)
    assert "reports done: 2 workbook(s) written again" in done.stdout
    import openpyxl

    for book in books[:2]:
        assert openpyxl.load_workbook(book, read_only=True).sheetnames[-1] == "About"


def test_backup_while_ingest_runs_and_restore(home, shell, tmp_path):
    (home / "backup").mkdir()
    big = "".join(f"2026-03-10 {h:02d}:{m:02d}:{s:02d},s{h},temp,{m}\n" for h in range(24) for m in range(60)
                  for s in range(0, 60, 3))
    for n in range(4):
        write_csv(home / "inbox" / "sensors" / f"day{n}.csv", HEADER + big.replace("2026-03-10", f"2026-03-1{n}"))
    ingest = subprocess.Popen([sys.executable, "-m", "csvreport", "--home", str(home), "--quiet", "ingest"],
                              env=shell.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for_a_first_load(home)
        backup, python_backup = blocks("Backups while cron runs")[:2]
        shell(backup + python_backup)  # the second block runs where the first left the reader
    finally:
        _out, err = ingest.communicate(timeout=120)
    assert ingest.returncode == 0, err
    with closing(sqlite3.connect(home / "backup" / "csvreport.sqlite3")) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        loads = copy.execute("SELECT count(*), coalesce(sum(rows_loaded), 0) FROM ingestion_log "
                             "WHERE status = 'loaded'").fetchone()
        assert copy.execute("SELECT count(*) FROM sensors").fetchone()[0] == loads[1]  # whole files only

    restore = blocks("Backups while cron runs")[2]
    done = shell(restore)
    assert "reachable" in done.stdout
    with db(home) as conn:
        assert conn.execute("SELECT count(*), coalesce(sum(rows_loaded), 0) FROM ingestion_log "
                            "WHERE status = 'loaded'").fetchone() == loads
    shell("csvreport --home /srv/csvreport ingest")
    with db(home) as conn:
        assert conn.execute("SELECT count(*) FROM sensors").fetchone()[0] == 4 * len(big.splitlines())


def _wait_for_a_first_load(home: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            uri = f"{(home / 'data' / 'csvreport.sqlite3').as_uri()}?mode=ro"
            with closing(sqlite3.connect(uri, uri=True)) as conn:
                if conn.execute("SELECT count(*) FROM ingestion_log").fetchone()[0]:
                    return
        except sqlite3.Error:
            pass
        time.sleep(0.02)


def test_changing_a_column_type(home, shell):
    config = home / "config" / "settings.toml"
    text = config.read_text()
    config.write_text(text[:text.index("[[reports]]")].replace('types = { value = "real" }', ""))
    write_csv(home / "inbox" / "sensors" / "a.csv", HEADER + "2026-03-10 10:00:00,berlin,temp,1.5\n")
    shell("csvreport --home /srv/csvreport ingest")
    config.write_text(config.read_text().replace('columns = ["ts", "site", "metric", "value"]',
                                                 'columns = ["ts", "site", "metric", "value"]\n'
                                                 'types = { value = "real" }'))
    refused = shell("csvreport --home /srv/csvreport ingest", check=False)
    assert refused.returncode == 2 and "'Changing a column type'" in refused.stderr

    (recipe,) = blocks("Changing a column type")
    shell(recipe)
    write_csv(home / "inbox" / "sensors" / "b.csv", HEADER + "2026-03-10 11:00:00,berlin,temp,2.5\n")
    shell("csvreport --home /srv/csvreport ingest")
    with db(home) as conn:
        assert conn.execute("SELECT typeof(value), value FROM sensors ORDER BY _id").fetchall() == [
            ("real", 1.5), ("real", 2.5)]


def test_every_csvreport_command_of_the_runbook_exists(cli):
    """Commands outside the scenarios above (upgrade, logs) at least parse: a typo fails here."""
    text = RUNBOOK.read_text(encoding="utf-8")
    lines = [line for block in re.findall(r"```sh\n(.*?)```", text, re.S) for line in block.splitlines()]
    commands = [line.split("csvreport ", 1)[1] for line in lines
                if re.match(r"(/opt/csvreport/venv/bin/)?csvreport ", line)]
    assert len(commands) >= 10
    for command in commands:
        # --help is eager: it answers once the command path and every option before it parsed.
        result = cli(*shlex.split(command), "--help")
        assert result.exit_code == 0, f"{command}\n{result.output}"
