"""`csvreport init [DIR]`: a new operator starts in one command."""

from __future__ import annotations

import sqlite3

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
