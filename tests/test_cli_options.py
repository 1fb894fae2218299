"""Global options before or after a command's name, and --help that shows real metavars."""

from __future__ import annotations

import json
import re

import pytest
from conftest import write_config, write_csv
from test_cli_help import COMMANDS


def one_good_and_one_bad_file(home):
    write_csv(home / "inbox" / "sensors" / "good.csv", "ts,site,metric,value\n2026-03-29 10:00:00,a,t,1\n")
    write_csv(home / "inbox" / "sensors" / "bad.csv", "ts,site,metric,value\nnot a time,a,t,1\n")


@pytest.mark.parametrize("args", [("ingest", "--quiet"), ("ingest", "-q"), ("-q", "ingest")])
def test_quiet_after_or_before_the_command(home, cli, args):
    one_good_and_one_bad_file(home)
    result = cli(*args)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and "level=WARNING" in lines[0] and "bad.csv" in lines[0], lines


def test_log_format_after_the_command(home, cli):
    one_good_and_one_bad_file(home)
    result = cli("ingest", "--log-format", "json")
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert any(e["msg"] == "loaded 1 rows" for e in events)
    in_file = (home / "logs" / "csvreport.log").read_text(encoding="utf-8").splitlines()
    assert all(line.startswith("{") for line in in_file)


def test_bad_log_format_after_the_command_is_a_usage_error(home, cli):
    result = cli("ingest", "--log-format", "xml")
    assert result.exit_code == 2
    assert "must be kv or json" in result.output
    assert not (home / "data").exists()


@pytest.fixture
def other_home(tmp_path, monkeypatch):
    """A home that only --home names: CSVREPORT_HOME points at a folder that does not exist."""
    other = tmp_path / "other"
    (other / "config").mkdir(parents=True)
    write_config(other)
    write_csv(other / "inbox" / "sensors" / "bad.csv", "ts,site,metric,value\nnot a time,a,t,1\n")
    monkeypatch.setenv("CSVREPORT_HOME", str(tmp_path / "nowhere"))
    return other


@pytest.mark.parametrize("args", [
    ("recover", "list", "--home", "{home}"),
    ("recover", "--home", "{home}", "list"),
    ("--home", "{home}", "recover", "list"),
    ("recover", "list", "--config", "{home}/config/settings.toml", "--home", "{home}"),
])
def test_home_and_config_at_every_level_of_a_subcommand(other_home, cli, args):
    assert cli("ingest", "--home", other_home).exit_code == 0
    result = cli(*(a.format(home=other_home) for a in args))
    assert result.exit_code == 0, result.output
    assert "bad.csv" in result.output


def test_the_rightmost_home_wins(other_home, tmp_path, cli):
    result = cli("--home", tmp_path / "nowhere", "ingest", "--home", other_home)
    assert result.exit_code == 0, result.output
    assert (other_home / "data" / "csvreport.sqlite3").is_file()


def test_archive_takes_the_global_options_between_group_and_subcommand(other_home, cli):
    assert cli("ingest", "--home", other_home).exit_code == 0
    result = cli("archive", "--home", other_home, "--before", "2020-01")
    assert result.exit_code == 0, result.output
    result = cli("archive", "--home", other_home, "restore", "--month", "2019-12", "-q")
    assert result.exit_code == 1, result.output  # the home was found: the month is just not archived
    assert result.stderr == "Error: month 2019-12 is not archived (nothing is archived); nothing to restore\n"


def test_init_takes_home_after_its_name(tmp_path, cli):
    new = tmp_path / "new-home"
    result = cli("init", "--home", new)
    assert result.exit_code == 0, result.output
    assert (new / "config" / "settings.toml").is_file()


TYPE_DEBUGGING = re.compile(r"<(bool|str|path|int|float|file)[^>]*>|range|x>=|\{\w+\}")


def test_help_shows_real_metavars_and_nothing_on_flags(cli):
    for path, _command in COMMANDS:
        output = cli(*path, "--help").output
        assert not TYPE_DEBUGGING.search(output), (path, TYPE_DEBUGGING.search(output))
        for option, metavar in (("--home", "DIR"), ("--config", "FILE"), ("--log-format", "kv|json")):
            assert re.search(rf"{option}\s+{re.escape(metavar)}\s", output), (path, option)
        assert re.search(r"--quiet\s+-q\s+Print only", output), path
    shown = {" ".join(path): cli(*path, "--help").output for path, _ in COMMANDS}
    assert re.search(r"--wait\s+SECONDS\s", shown["ingest"])
    assert re.search(r"--source\s+NAME\s", shown["ingest"])
    assert re.search(r'--hour\s+"YYYY-MM-DD HH:00"\s', shown["hourly"])
    assert "recover purge [OPTIONS] INGESTION_ID" in shown["recover purge"]
    assert "recover replay [OPTIONS] [PATH]..." in shown["recover replay"]
    assert "quad" not in shown["daily"] and "day-to-date workbooks" in shown["daily"]


def _params():
    """One parameter of each kind the commands declare: a number with a lower limit, an int, a text, a path."""
    import typer.main

    from csvreport.cli import app

    group = typer.main.get_command(app)
    ingest = {p.name: p for p in group.commands["ingest"].params}
    purge = {p.name: p for p in group.commands["recover"].commands["purge"].params}
    return group, [ingest["wait"], purge["ingestion_id"], ingest["source"], ingest["home"], ingest["log_format"]]


def _outcome(runtime, value, param, ctx):
    import typer

    try:
        got = runtime.coerce(value, param=param, ctx=ctx)
    except typer.BadParameter as exc:
        return "refused", exc.format_message()
    return type(got), got


def _typer_coerces_with_pydantic() -> bool:
    from typer.core import TyperOption

    return hasattr(TyperOption, "get_runtime_param")  # Typer 0.29 on; before, click's types did it


@pytest.mark.skipif(not _typer_coerces_with_pydantic(), reason="this Typer coerces with click's types")
@pytest.mark.parametrize("value", [None, 0.0, "60", "0", "0.5", "007", "-1", "abc", "nan", "inf", "1e3", " 5", "5 ",
                                   "1_000", "+5", "", ".5", "5.", "٣", "a b", "~/x", "kv"])
def test_values_taken_without_pydantic_are_what_typers_own_coercion_makes_of_them(value):
    import typer
    from typer.core import TyperArgument, TyperOption

    group, params = _params()
    ctx = typer.Context(group)
    for param in params:
        base = TyperOption if isinstance(param, TyperOption) else TyperArgument
        ours = _outcome(param.get_runtime_param(), value, param, ctx)
        theirs = _outcome(base.get_runtime_param(param), value, param, ctx)
        assert ours == theirs, (param.name, value)
