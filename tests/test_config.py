"""Configuration: every mistake is exit 2 naming the file and key, all at once, before anything is touched."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from conftest import BASE_CONFIG, write_config, write_csv
from csvreport.config import load_settings
from csvreport.errors import ConfigError

GOOD = BASE_CONFIG.format(max_bad_rows=0, extra_source="")


def assert_config_error(cli, home: Path, *lines: str) -> str:
    result = cli("ingest")
    assert result.exit_code == 2, result.output
    config = home / "config" / "settings.toml"
    assert "Error: configuration is not valid:\n" in result.output
    for line in lines:
        assert f"{config}: {line}" in result.output, result.output
    assert not (home / "data").exists()
    assert not (home / "logs").exists()
    assert not (home / "quarantine").exists()
    return result.output


@pytest.mark.parametrize("change, line", [
    (("max_bad_rows = 0", "max_bad_rows = 0\nmax_bad_row = 1"),
     "ingest.max_bad_row: unknown key; did you mean 'max_bad_rows'? (allowed: max_bad_rows, settle_seconds)"),
    (('name = "sensors"', 'name = "Sensors-1"'), "sources.Sensors-1.name: 'Sensors-1' must match [a-z][a-z0-9_]{0,30}"),
    (('source = "sensors"', 'source = "sensor"'),
     ("reports.sensor_summary.source: 'sensor' is not a configured source; did you mean 'sensors'? "
      "(known: sensors)")),
    (('group_by = ["site", "metric"]', 'group_by = ["site", "place"]'),
     "reports.sensor_summary.group_by: 'place' is not a column of source 'sensors'"),
    (('value_sum = "sum:value"', 'value_sum = "sum:amount"'),
     "reports.sensor_summary.measures.value_sum: 'amount' is not a column of source 'sensors'"),
    (('timezone = "Europe/Berlin"', 'timezone = "Europe/Berlinn"'),
     "timezone: unknown time zone 'Europe/Berlinn' (use an IANA name such as \"Europe/Berlin\")"),
    (('pattern = "inbox/sensors/*.csv"', 'pattern = "inbox/[sensors/*.csv"'),
     "sources.sensors.pattern: 'inbox/[sensors/*.csv': has a '[' without its ']'"),
    (('pattern = "inbox/sensors/*.csv"', 'pattern = "inbox/se**/*.csv"'),
     "sources.sensors.pattern: 'inbox/se**/*.csv': '**' must be a whole path component"),
    (('name = "sensors"', 'name = "run_history"'),
     "sources.run_history.name: 'run_history' is a table csvreport keeps for itself; choose another name"),
    (('name = "sensors"', 'name = "sensors__ts"'),
     "sources.sensors__ts.name: 'sensors__ts': '__' is reserved for the names of csvreport's indexes"),
    (('timestamp = "ts"', 'timestamp = "ts"\ntimestamp_format = "%d.%m.%Y %Q"'),
     "sources.sensors.timestamp_format: '%d.%m.%Y %Q': 'Q' is a bad directive in format '%d.%m.%Y %Q'"),
])
def test_each_kind_of_mistake_is_exit_2_naming_file_and_key(home, cli, change, line):
    write_config(home, GOOD.replace(*change))
    assert_config_error(cli, home, line)


def test_password_in_settings_is_refused(home, cli):
    write_config(home, GOOD + '\n[email]\nhost = "smtp.example.com"\nsender = "r@example.com"\npassword = "hunter2"\n')
    output = assert_config_error(
        cli, home, "email.password: secrets never go in settings.toml; set CSVREPORT_SMTP_PASSWORD in the "
                   "environment or in .env in the home folder")
    assert "hunter2" not in output
    assert "unknown key" not in output


def test_all_problems_are_reported_at_once(home, cli):
    text = (GOOD.replace('timezone = "Europe/Berlin"', 'timezone = "Mars/Olympus"')
            .replace('name = "sensors"', 'name = "9sensors"')
            .replace("settle_seconds = 0", "settle_seconds = -1\nspeed = 3"))
    write_config(home, text)
    output = assert_config_error(
        cli, home,
        "timezone: unknown time zone 'Mars/Olympus'",
        "sources.9sensors.name: '9sensors' must match",
        "ingest.settle_seconds: must be 0 or more",
        "ingest.speed: unknown key",
        "reports.sensor_summary.source: 'sensors' is not a configured source")
    assert len([line for line in output.splitlines() if line.startswith(str(home))]) == 5


def test_not_toml_and_missing_file(home, cli):
    path = write_config(home, "timezone = \n")
    result = cli("ingest")
    assert result.exit_code == 2
    assert result.output.startswith(f"Error: {path}: not valid TOML: ")
    path.unlink()
    result = cli("ingest")
    assert result.exit_code == 2
    assert f"Error: {path}: configuration not found; " in result.output
    assert not (home / "data").exists()


def test_unknown_source_option_is_exit_2(home, cli):
    result = cli("ingest", "--source", "nope")
    assert result.exit_code == 2
    assert f"Error: no source named 'nope' in {home / 'config' / 'settings.toml'} (known: sensors)" in result.output
    assert not (home / "data").exists()


def _other_home(tmp_path: Path) -> Path:
    other = tmp_path / "other"
    (other / "config").mkdir(parents=True)
    write_config(other)
    write_csv(other / "inbox" / "sensors" / "a.csv", "ts,site,metric,value\n2026-03-28 10:00:00,a,t,1\n")
    return other


@pytest.mark.parametrize("where", ["before", "after"])
def test_home_option_before_or_after_the_command(home, cli, tmp_path, where):
    other = _other_home(tmp_path)
    args = ["--home", other, "ingest"] if where == "before" else ["ingest", "--home", other]
    result = cli(*args)
    assert result.exit_code == 0, result.output
    assert (other / "data" / "csvreport.sqlite3").exists()
    assert not (home / "data").exists()


@pytest.mark.parametrize("where", ["before", "after"])
def test_config_option_before_or_after_the_command(home, cli, tmp_path, where):
    alt = tmp_path / "alt.toml"
    alt.write_text(GOOD.replace('pattern = "inbox/sensors/*.csv"', 'pattern = "elsewhere/*.csv"'))
    write_csv(home / "elsewhere" / "a.csv", "ts,site,metric,value\n2026-03-28 10:00:00,a,t,1\n")
    args = ["--config", alt, "ingest"] if where == "before" else ["ingest", "--config", alt]
    result = cli(*args)
    assert result.exit_code == 0, result.output
    assert "loaded 1 rows" in result.output
    assert str(home / "elsewhere" / "a.csv") in result.output


def test_home_resolution_order(home, tmp_path, monkeypatch):
    other = _other_home(tmp_path)
    assert load_settings(other).home == other.resolve()           # --home wins over CSVREPORT_HOME
    assert load_settings().home == home.resolve()                 # then CSVREPORT_HOME
    monkeypatch.delenv("CSVREPORT_HOME")
    monkeypatch.chdir(other)
    assert load_settings().home == other.resolve()                # then the current directory


def test_relative_paths_resolve_against_home_not_cwd(home, cli, tmp_path, monkeypatch):
    write_config(home, GOOD.replace('timezone = "Europe/Berlin"', 'timezone = "Europe/Berlin"\n[paths]\n'
                                    'database = "db/x.sqlite3"\nquarantine = "q"\nlogs = "var/log"\n'))
    write_csv(home / "inbox" / "sensors" / "a.csv", "ts,site,metric,value\n2026-03-28 10:00:00,a,t,1\nbad\n")
    elsewhere = tmp_path / "cron-cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = cli("ingest")
    assert result.exit_code == 0, result.output
    assert (home / "db" / "x.sqlite3").exists()
    assert (home / "q" / "sensors" / "a.csv").exists()
    assert (home / "var" / "log" / "csvreport.log").exists()
    assert list(elsewhere.iterdir()) == []


def test_settings_are_frozen_and_complete(home):
    settings = load_settings()
    (source,) = settings.sources
    assert (settings.timezone, source.timezone, source.columns, source.type_of("value")) == (
        "Europe/Berlin", "Europe/Berlin", ("ts", "site", "metric", "value"), "real")
    assert settings.paths.database == home.resolve() / "data" / "csvreport.sqlite3"
    with pytest.raises(AttributeError):
        settings.timezone = "UTC"  # type: ignore[misc]


def test_dotenv_is_read_and_environment_wins(home, monkeypatch):
    (home / ".env").write_text('# secrets\nexport CSVREPORT_SMTP_PASSWORD="s3cret"\nOTHER=1 # note\nNO_VALUE\n')
    settings = load_settings()
    assert (settings.env["CSVREPORT_SMTP_PASSWORD"], settings.env["OTHER"]) == ("s3cret", "1")
    assert "NO_VALUE" not in settings.env
    monkeypatch.setenv("CSVREPORT_SMTP_PASSWORD", "from-env")
    assert load_settings().env["CSVREPORT_SMTP_PASSWORD"] == "from-env"


def test_dotenv_values_are_taken_literally(home, monkeypatch):
    monkeypatch.setenv("USER_FOR_TEST", "someone")
    (home / ".env").write_text('CSVREPORT_SMTP_PASSWORD="pa${USER_FOR_TEST}word"\n')
    assert load_settings().env["CSVREPORT_SMTP_PASSWORD"] == "pa${USER_FOR_TEST}word"


_NAMES = st.from_regex(r"[A-Z][A-Z0-9_]{0,8}", fullmatch=True).map(lambda n: f"CSVREPORT_T_{n}")
# Anything but the quote that delimits the value and the backslash that escapes inside it.
_VALUES = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="'\\"), max_size=20)


@hypothesis_settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(in_file=st.dictionaries(_NAMES, _VALUES, max_size=5),
       in_environment=st.dictionaries(_NAMES, _VALUES, max_size=5))
def test_a_variable_comes_from_the_environment_else_from_dotenv(home, in_file, in_environment):
    lines = [f"{'export ' if len(name) % 2 else ''}{name}='{value}'" for name, value in in_file.items()]
    (home / ".env").write_text("\n".join(["# generated", *lines]) + "\n", encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("CSVREPORT_T_")]:
            patch.delenv(name)
        for name, value in in_environment.items():
            patch.setenv(name, value)
        env = load_settings().env
    for name in in_file.keys() | in_environment.keys():
        assert env[name] == in_environment.get(name, in_file.get(name))


def test_config_error_is_the_exit_2_exception(home):
    write_config(home, GOOD.replace('name = "sensors"', 'name = "sqlite_x"'))
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert info.value.exit_code == 2
    assert "sources.sqlite_x.name: 'sqlite_x' is reserved by SQLite" in str(info.value)


def test_a_source_may_not_take_over_a_table_that_is_not_a_source_table(home, cli):
    import sqlite3

    write_config(home, GOOD.replace('source = "sensors"', 'source = "notes"').replace(
        'name = "sensors"', 'name = "notes"'))
    (home / "data").mkdir()
    with sqlite3.connect(home / "data" / "csvreport.sqlite3") as conn:
        conn.execute("CREATE TABLE notes (ts TEXT, site TEXT)")
    write_csv(home / "inbox" / "sensors" / "a.csv", "ts,site,metric,value\n2026-03-28 10:00:00,a,t,1\n")
    result = cli("ingest")
    assert result.exit_code == 2
    assert ("Error: sources.notes.name: the database already has a table 'notes' that is not a source table "
            "(it lacks _ingestion_id and _ts); choose another name for the source") in result.output
    with sqlite3.connect(home / "data" / "csvreport.sqlite3") as conn:
        assert [r[1] for r in conn.execute("PRAGMA table_info(notes)")] == ["ts", "site"]


def test_typos_get_a_did_you_mean_and_tables_are_named_by_their_name(home, cli):
    text = (GOOD.replace('columns = ["ts", "site", "metric", "value"]',
                         'colums = ["ts"]\ncolumns = ["ts", "site", "metric", "value"]')
            .replace('source = "sensors"', 'source = "sensor"'))
    write_config(home, text)
    assert_config_error(
        cli, home,
        "sources.sensors.colums: unknown key; did you mean 'columns'? (allowed: columns, decimal, ",
        "reports.sensor_summary.source: 'sensor' is not a configured source; did you mean 'sensors'? (known: sensors)")
    write_config(home)
    result = cli("ingest", "--source", "sensor")
    assert result.exit_code == 2
    assert result.output == (f"Error: no source named 'sensor' in {home / 'config' / 'settings.toml'}; "
                             "did you mean 'sensors'? (known: sensors)\n")


def test_a_timestamp_column_missing_from_columns_stops_before_any_file_is_quarantined(home, cli):
    write_config(home, GOOD.replace('timestamp = "ts"', 'timestamp = "tss"'))
    write_csv(home / "inbox" / "sensors" / "a.csv", "ts,site,metric,value\n2026-03-28 10:00:00,a,t,1\n")
    assert_config_error(cli, home, "sources.sensors.timestamp: 'tss' is not one of the source's columns; "
                                   "did you mean 'ts'? (an event-time column must be listed in columns too)")
    assert not (home / "data").exists() and not (home / "quarantine").exists()


def test_a_missing_config_file_given_by_option_is_not_a_reason_to_init(home, tmp_path, cli):
    missing = tmp_path / "elsewhere.toml"
    result = cli("status", "--config", missing)
    assert result.exit_code == 2
    assert result.output == f"Error: {missing}: configuration not found; check the path given to --config\n"


def test_a_dotenv_this_user_may_not_read_is_skipped(home, monkeypatch):
    import dotenv

    def refused(path, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    (home / ".env").write_text("CSVREPORT_SMTP_PASSWORD=secret\n")
    monkeypatch.setattr(dotenv, "dotenv_values", refused)  # root, as in CI, reads any file whatever its mode
    assert "CSVREPORT_SMTP_PASSWORD" not in load_settings().env
