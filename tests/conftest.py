"""Shared fixtures: every test gets its own home folder; none touches a real one."""

from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import settings
from typer.testing import CliRunner

from csvreport.cli import app

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO.parent / "shared" / "corpus"

# Property tests: the same examples on every run (derandomize, no example database), few
# enough for CI; HYPOTHESIS_PROFILE=thorough searches at random and much longer.
settings.register_profile("ci", derandomize=True, database=None, max_examples=60, deadline=None)
settings.register_profile("thorough", max_examples=5000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

BASE_CONFIG = """
timezone = "Europe/Berlin"

[ingest]
settle_seconds = 0
max_bad_rows = {max_bad_rows}

[[sources]]
name = "sensors"
pattern = "inbox/sensors/*.csv"
timestamp = "ts"
columns = ["ts", "site", "metric", "value"]
types = {{ value = "real" }}
{extra_source}

[[reports]]
name = "sensor_summary"
source = "sensors"
group_by = ["site", "metric"]
[reports.measures]
readings = "count"
value_sum = "sum:value"
value_avg = "avg:value"
value_min = "min:value"
value_max = "max:value"
"""


# The repository root is itself a home (the README's quick start runs there); tests never touch it.
REPO_HOME = ("config", "inbox", "data", "reports", "quarantine", "logs", "archive", "backup", ".env")


def _repo_home_state() -> list[tuple[str, int, int]]:
    state = []
    for name in REPO_HOME:
        top = REPO / name
        for path in [top, *sorted(top.rglob("*"))] if top.is_dir() else [top] if top.exists() else []:
            info = path.stat()
            state.append((str(path.relative_to(REPO)), info.st_size if path.is_file() else 0, info.st_mtime_ns))
    return state


@pytest.fixture(scope="session", autouse=True)
def repository_home_untouched():
    """Fails the run when a test wrote into the repository's own home folder instead of tmp_path."""
    before = _repo_home_state()
    yield
    assert _repo_home_state() == before, "a test changed the repository's home folder; tests use tmp_path homes"


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch) -> Path:
    """A fresh home folder, named by CSVREPORT_HOME, with the standard example configuration."""
    home = tmp_path / "home"
    (home / "config").mkdir(parents=True)
    (home / "inbox" / "sensors").mkdir(parents=True)
    write_config(home)
    monkeypatch.setenv("CSVREPORT_HOME", str(home))
    monkeypatch.delenv("CSVREPORT_SMTP_PASSWORD", raising=False)
    return home


def write_config(home: Path, text: str | None = None, max_bad_rows: int = 0, extra_source: str = "") -> Path:
    path = home / "config" / "settings.toml"
    body = text if text is not None else BASE_CONFIG.format(max_bad_rows=max_bad_rows, extra_source=extra_source)
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def write_csv(path: Path, text: str, age: float = 3600, encoding: str = "utf-8") -> Path:
    """Write a CSV file as an exporter would, dated `age` seconds ago (settled)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(textwrap.dedent(text).lstrip("\n").encode(encoding) if isinstance(text, str) else text)
    then = time.time() - age
    os.utime(path, (then, then))
    return path


@pytest.fixture
def cli():
    runner = CliRunner()

    def invoke(*args: str, **kwargs):
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False, **kwargs)

    return invoke
