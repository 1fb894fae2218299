"""Every command and subcommand has help text with an Example; --version; python -m csvreport."""

from __future__ import annotations

import os
import subprocess
import sys

import typer.main

from conftest import REPO
from csvreport import __version__
from csvreport.cli import app


def walk(command, path: tuple[str, ...] = ()):
    # Typer may ship its own copy of click, so groups are recognised by their commands, not their class.
    yield path, command
    if isinstance(getattr(command, "commands", None), dict):
        for name, sub in sorted(command.commands.items()):
            yield from walk(sub, path + (name,))


COMMANDS = [(path, cmd) for path, cmd in walk(typer.main.get_command(app)) if path]


def test_there_are_commands_to_check():
    assert ("ingest",) in {path for path, _ in COMMANDS}


def test_every_command_has_help_with_an_example(cli):
    missing = []
    for path, command in COMMANDS:
        if command.hidden:
            continue
        result = cli(*path, "--help")
        assert result.exit_code == 0, (path, result.output)
        text = command.help or ""
        if not text.strip() or "Example:" not in text or "Example:" not in result.output:
            missing.append(" ".join(path))
        example = text.split("Example:", 1)[-1].strip().split()
        if example and example[0] == "csvreport":
            # the example runs the command it documents
            words = [w for w in example[1:] if not w.startswith("-")]
            assert all(p in words for p in path), (path, example)
    assert missing == [], f"commands without help text and an Example: line: {missing}"


def test_version(cli):
    result = cli("--version")
    assert result.exit_code == 0
    assert result.output == f"csvreport {__version__}\n"


def test_python_dash_m_works(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "csvreport", "--help"], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "ingest" in done.stdout and "Usage: " in done.stdout and "csvreport" in done.stdout


def test_startup_does_not_import_heavy_modules():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    code = ("import sys, csvreport.cli; "
            "print(sorted(m for m in ('openpyxl', 'pyarrow', 'rich.progress') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# `init` creates a home folder, so it takes the folder as its argument instead.
WITHOUT_HOME = {("init",)}


def test_every_command_takes_home_and_config_after_its_name():
    missing = []
    for path, command in COMMANDS:
        if path in WITHOUT_HOME or not command.params:
            continue
        options = {opt for param in command.params for opt in param.opts}
        if not {"--home", "--config"} <= options:
            missing.append(" ".join(path))
    assert missing == []


def test_docs_cli_md_is_the_current_help_text():
    # As sqlite-utils checks its CLI reference: the page is generated, and a stale one fails here.
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "cli_docs.py"), "--check"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
