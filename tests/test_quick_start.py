"""The README's quick start: a venv, then the example from the repository's own home folder.

.ci/run runs the two commands literally (the first from a fresh clone with the system Python,
which needs the network to install); here the example part runs offline, on a copy of the
repository's home, through a `.venv/bin/csvreport` that is this checkout.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys

import openpyxl
from conftest import REPO


def quick_start() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^## Quick start\n(.*?)^## ", text, re.DOTALL | re.MULTILINE)
    assert section, "README.md has no Quick start section"
    (block,) = re.findall(r"```sh\n(.*?)```", section.group(1), re.DOTALL)
    return block.strip().splitlines()


def test_two_commands_the_first_makes_its_own_virtual_environment():
    first, tests = quick_start()
    steps = first.split(" && ")
    assert steps[0] == "python3 -m venv .venv"
    assert steps[1].startswith(".venv/bin/pip install ") and "'.[dev]'" in steps[1]
    assert all(step.startswith(".venv/bin/") for step in steps[1:])  # nothing installs outside the venv
    assert tests == ".venv/bin/python -m pytest -q -n auto"
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert f'first="{first}"' in ci.splitlines()  # CI runs the README's commands, as written there
    assert tests in ci.splitlines()


def test_the_repository_is_a_home_and_the_example_writes_the_daily_workbook(tmp_path):
    clone = tmp_path / "csvreport"
    for folder in ("reports", "quarantine", "logs"):  # kept in git, contents ignored
        assert (REPO / folder / ".gitkeep").is_file(), folder
    for folder in ("config", "inbox"):  # what a fresh clone holds (the outputs may be there from a run)
        shutil.copytree(REPO / folder, clone / folder)
    venv_bin = clone / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "csvreport").write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -m csvreport \"$@\"\n",
                                        encoding="utf-8")
    (venv_bin / "csvreport").chmod(0o755)
    first, _ = quick_start()
    example = " && ".join(step for step in first.split(" && ") if step.startswith(".venv/bin/csvreport"))
    env = {k: v for k, v in os.environ.items() if k != "CSVREPORT_HOME"}
    env["PYTHONPATH"] = str(REPO)

    done = subprocess.run(["sh", "-ec", example], cwd=clone, env=env, capture_output=True, text=True, timeout=300,
                          check=False)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "level=WARNING" not in done.stdout
    book = openpyxl.load_workbook(clone / "reports" / "daily_20260329_2400.xlsx", read_only=True)
    assert "About" in book.sheetnames and len(book.sheetnames) > 1
    assert (clone / "data" / "csvreport.sqlite3").is_file()
