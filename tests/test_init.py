"""`csvreport init [DIR]`: a new operator starts in one command."""

from __future__ import annotations

import os
import re
import shlex
import sqlite3
import subprocess
from pathlib import Path

from conftest import REPO, write_csv

from csvreport.config import load_settings


def test_init_creates_a_home_that_ingest_works_in(tmp_path, cli):
    new = tmp_path / "srv" / "csvreport"

    result = cli("init", new)

    assert result.exit_code == 0, result.output
    for folder in ("config", "data", "reports", "quarantine", "logs", "inbox/sensors"):
        assert (new / folder).is_dir(), folder
    settings_file = new / "config" / "settings.toml"
    assert f"created {settings_file}" in result.output
    assert f"Next: edit {settings_file}, then run `csvreport --home {new} ingest`" in result.output
    text = settings_file.read_text(encoding="utf-8")
    assert text.count("\n# ") > 10  # commented, for the operator who edits it
    settings = load_settings(new)
    assert [s.name for s in settings.sources] == ["sensors"]
    assert settings.paths.database == new / "data" / "csvreport.sqlite3"

    ingest = cli("--home", new, "ingest")

    assert ingest.exit_code == 0, ingest.output
    with sqlite3.connect(new / "data" / "csvreport.sqlite3") as conn:
        assert conn.execute("SELECT command, status, files_seen FROM run_history").fetchall() == [("ingest", "ok", 0)]
    status = cli("--home", new, "status")
    assert status.exit_code == 0, status.output


def test_init_never_overwrites_a_configuration(tmp_path, cli):
    new = tmp_path / "home2"
    assert cli("init", new).exit_code == 0
    settings_file = new / "config" / "settings.toml"
    settings_file.write_text('timezone = "UTC"\n', encoding="utf-8")

    result = cli("init", new)

    assert result.exit_code == 2
    assert result.output == (f"Error: {settings_file} already exists; edit it, or move it away to start over "
                             "(init never overwrites a configuration)\n")
    assert settings_file.read_text(encoding="utf-8") == 'timezone = "UTC"\n'


def test_init_without_dir_uses_the_home_folder(home, cli, monkeypatch, tmp_path):
    # CSVREPORT_HOME points at the test's home, which already has a configuration.
    result = cli("init")
    assert result.exit_code == 2
    assert result.output.startswith(f"Error: {home / 'config' / 'settings.toml'} already exists")

    fresh = tmp_path / "fresh"
    monkeypatch.setenv("CSVREPORT_HOME", str(fresh))
    assert cli("init").exit_code == 0
    assert (fresh / "config" / "settings.toml").is_file()
    other = tmp_path / "other"
    assert cli("--home", other, "init").exit_code == 0
    assert (other / "config" / "settings.toml").is_file()


def test_init_refuses_a_file_as_home(tmp_path, cli):
    target = tmp_path / "afile"
    target.write_text("x", encoding="utf-8")
    result = cli("init", target)
    assert result.exit_code == 2
    assert result.output == f"Error: {target} exists and is not a folder; choose another DIR\n"


def _jobs(text: str) -> list[tuple[str, str]]:
    jobs = []
    for line in text.splitlines():
        if line.strip() and not line.startswith("#") and not re.match(r"[A-Z_]+=", line):
            fields = line.split(None, 5)
            jobs.append((" ".join(fields[:5]), fields[5]))
    return jobs


def test_init_writes_the_crontab_of_that_home_with_absolute_paths(tmp_path, cli, monkeypatch):
    new = tmp_path / "srv" / "csvreport"
    monkeypatch.chdir(tmp_path)
    result = cli("init", "srv/csvreport")
    assert result.exit_code == 0, result.output
    crontab = new / "config" / "crontab"
    assert f"created {crontab}" in result.output
    assert f"then install the cron jobs of {crontab} with `crontab -e`" in result.output
    assert "crontab.example" not in result.output  # a pip install does not ship it

    jobs = _jobs(crontab.read_text(encoding="utf-8"))
    example = _jobs((REPO / "crontab.example").read_text(encoding="utf-8"))
    # The same schedule and commands as the repository's crontab.example, the first two lines of
    # which (status --prometheus, the backup) are left for the operator to enable.
    assert [(s, c.split(" --quiet ")[-1]) for s, c in jobs[:3]] == [
        (s, c.split(" --quiet ")[-1]) for s, c in example[:3]]
    assert [s for s, _ in jobs] == [s for s, _ in example[:4]]
    for _, command in jobs:
        program = shlex.split(command.removeprefix("out=$("))[0]
        assert Path(program).is_absolute() and os.access(program, os.X_OK), command
        assert f"--home {new} " in command

    write_csv(new / "inbox" / "sensors" / "a.csv", "ts,site,metric,value\n2026-03-10 10:00:00,a,t,1\n")
    (new / "config" / "settings.toml").write_text(
        (new / "config" / "settings.toml").read_text(encoding="utf-8").replace("settle_seconds = 30",
                                                                              "settle_seconds = 0"),
        encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "CSVREPORT_HOME"}
    env.update(PATH="/usr/bin:/bin", PYTHONPATH=str(REPO))  # cron's PATH: no virtual environment on it
    for _, command in jobs[:3]:
        done = subprocess.run(["sh", "-c", command], cwd="/", env=env, capture_output=True, text=True, timeout=120,
                              check=False)
        assert (done.returncode, done.stdout, done.stderr) == (0, "", ""), command
    with sqlite3.connect(new / "data" / "csvreport.sqlite3") as conn:
        assert conn.execute("SELECT command, status FROM run_history ORDER BY id").fetchall() == [
            ("ingest", "ok"), ("hourly", "ok"), ("daily", "ok")]
