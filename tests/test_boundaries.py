"""What csvreport may touch: files outside the home stay, links are not followed, patterns stay out of
csvreport's own folders and the system's, a pattern folder that cannot be read is said.

"Outside the home" is a folder beside the test's home inside tmp_path; no test reads or writes a
real system folder (the system-folder refusal is decided from the configuration alone).
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
from conftest import write_config, write_csv

HEADER = "ts,site,metric,value\n"
GOOD = HEADER + "2026-03-28 10:00:00,a,t,1.5\n2026-03-28 10:01:00,a,t,2.5\n"
BAD = HEADER + "2026-03-28 10:00:00,a,t,not-a-number\n"


def with_pattern(home: Path, pattern: str, extra: str = "") -> None:
    text = (home / "config" / "settings.toml").read_text()
    text = text.replace('pattern = "inbox/sensors/*.csv"', f"pattern = {json.dumps(pattern)}\n{extra}")
    write_config(home, text=text)


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file below `folder`, with its content and modification time (links are not followed)."""
    found = {}
    for path in sorted(folder.rglob("*")):
        info = path.lstat()
        content = os.readlink(path).encode() if path.is_symlink() else (path.read_bytes() if path.is_file() else b"")
        found[str(path.relative_to(folder))] = (content, info.st_mtime_ns)
    return found


def query(home: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(home / "data" / "csvreport.sqlite3") as conn:
        return conn.execute(sql).fetchall()


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A drop folder outside the test's home (its sibling in tmp_path), as an SFTP drop under /srv would be."""
    folder = tmp_path / "srv" / "drop"
    folder.mkdir(parents=True)
    return folder


@pytest.mark.parametrize("relative", [False, True], ids=["absolute", "dotdot"])
def test_a_bad_file_outside_the_home_is_copied_and_remembered_and_the_original_stays(home, cli, outside, relative):
    with_pattern(home, "../srv/drop/*.csv" if relative else f"{outside}/*.csv")
    write_csv(outside / "bad.csv", BAD)
    write_csv(outside / "good.csv", GOOD, age=1800)
    before = snapshot(outside)
    result = cli("ingest")
    assert result.exit_code == 0, result.output
    assert "the original, outside the home, stays where it is; set move_bad_files = true" in result.stdout
    assert snapshot(outside) == before
    copy = home / "quarantine" / "sensors" / "bad.csv"
    assert copy.read_text() == BAD
    reason = json.loads((copy.parent / "bad.csv.reason.json").read_text())
    assert reason["moved"] is False and "outside the home" in reason["note"]
    assert query(home, "SELECT count(*) FROM sensors") == [(2,)]
    for extra in ((), ("--rehash",)):  # remembered by content: not tried again until replayed
        result = cli("ingest", *extra)
        assert result.exit_code == 0, result.output
        assert query(home, "SELECT files_quarantined, files_skipped, status FROM run_history ORDER BY id DESC "
                           "LIMIT 1") == [(0, 2, "ok")]
    assert query(home, "SELECT status, count(*) FROM ingestion_log GROUP BY status") == [("loaded", 1),
                                                                                        ("quarantined", 1)]
    assert snapshot(outside) == before
    listing = cli("recover", "list")
    arrived = "home/../srv/drop/bad.csv" if relative else str(outside / "bad.csv")
    assert "arrived as " in listing.output and listing.output.split("arrived as ")[1].split("\n")[0].endswith(arrived)


def test_move_bad_files_lets_a_source_move_originals_from_outside_the_home(home, cli, outside):
    with_pattern(home, f"{outside}/*.csv", "move_bad_files = true")
    write_csv(outside / "bad.csv", BAD)
    result = cli("ingest")
    assert result.exit_code == 0, result.output
    assert not (outside / "bad.csv").exists()
    assert (home / "quarantine" / "sensors" / "bad.csv").read_text() == BAD
    assert "moved to" in result.stdout


def test_a_bad_file_inside_the_home_is_still_moved(home, cli):
    write_csv(home / "inbox" / "sensors" / "bad.csv", BAD)
    assert cli("ingest").exit_code == 0
    assert not (home / "inbox" / "sensors" / "bad.csv").exists()
    assert (home / "quarantine" / "sensors" / "bad.csv").read_text() == BAD


def test_a_matched_symbolic_link_is_skipped_and_nothing_of_its_target_is_read(home, cli, tmp_path, monkeypatch):
    secret = tmp_path / "secret"
    secret.mkdir()
    write_csv(secret / "passwd", BAD)  # a bad "CSV": followed, it would be copied into quarantine
    write_csv(secret / "readings.csv", GOOD)
    link = home / "inbox" / "sensors" / "x.csv"
    link.symlink_to(secret / "passwd")
    (home / "inbox" / "sensors" / "y.csv").symlink_to(secret / "readings.csv")
    opened: list[str] = []
    real_open = open

    def watching_open(file, *args, **kwargs):
        opened.append(os.path.realpath(file) if isinstance(file, (str, Path)) else str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", watching_open)
    result = cli("ingest")
    monkeypatch.undo()
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stdout.splitlines() if "level=WARNING" in line and "symbolic link" in line]
    assert len(warnings) == 2 and f"file={link}" in warnings[1]
    assert not any(path.startswith(str(secret)) for path in opened)
    assert query(home, "SELECT count(*) FROM ingestion_log") == [(0,)]
    assert query(home, "SELECT count(*) FROM sensors") == [(0,)]
    assert not (home / "quarantine" / "sensors").exists() or not any((home / "quarantine" / "sensors").iterdir())
    assert link.is_symlink() and (secret / "passwd").read_text() == BAD
    assert query(home, "SELECT status FROM run_history") == [("warn",)]


def test_a_linked_folder_below_the_pattern_folder_is_not_followed(home, cli, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    write_csv(elsewhere / "a.csv", GOOD)
    (home / "inbox" / "sensors" / "sub").symlink_to(elsewhere, target_is_directory=True)
    write_csv(home / "inbox" / "sensors" / "real" / "b.csv", GOOD)
    with_pattern(home, "inbox/sensors/**/*.csv")
    result = cli("ingest")
    assert result.exit_code == 0, result.output
    assert "symbolic link" in result.stdout and "sub/a.csv" in result.stdout
    assert [Path(p).name for (p,) in query(home, "SELECT path FROM ingestion_log")] == ["b.csv"]


def test_links_on_the_way_to_the_pattern_folder_are_followed_and_count_as_outside(home, cli, outside):
    """inbox/sensors is itself a link to a drop folder outside the home: read as usual, never emptied."""
    (home / "inbox" / "sensors").rmdir()
    (home / "inbox" / "sensors").symlink_to(outside, target_is_directory=True)
    write_csv(outside / "good.csv", GOOD, age=1800)
    write_csv(outside / "bad.csv", BAD)
    result = cli("ingest")
    assert result.exit_code == 0, result.output
    assert query(home, "SELECT count(*) FROM sensors") == [(2,)]
    assert (outside / "bad.csv").read_text() == BAD
    assert (home / "quarantine" / "sensors" / "bad.csv").read_text() == BAD


def test_follow_symlinks_reads_what_the_links_point_at(home, cli, tmp_path):
    target = write_csv(tmp_path / "exports" / "today.csv", GOOD)
    (home / "inbox" / "sensors" / "today.csv").symlink_to(target)
    with_pattern(home, "inbox/sensors/*.csv", "follow_symlinks = true")
    result = cli("ingest")
    assert result.exit_code == 0, result.output
    assert "symbolic link" not in result.stdout
    assert query(home, "SELECT count(*) FROM sensors") == [(2,)]


@pytest.mark.parametrize("pattern, folder", [
    ("quarantine/**/*.csv", "quarantine"),
    ("*/*.csv", "configuration"),
    ("data/*", "database"),
    ("reports/*.xlsx", "reports"),
    ("logs/*.log*", "logs"),
    ("archive/**/*", "archive"),
])
def test_a_pattern_into_the_homes_own_folders_is_a_configuration_error(home, cli, pattern, folder):
    with_pattern(home, pattern)
    result = cli("ingest")
    assert result.exit_code == 2
    assert f"sources.sensors.pattern: '{pattern}': can match files inside " in result.stderr
    assert f"csvreport's own {folder} folder" in result.stderr
    assert not (home / "data").exists()


@pytest.mark.parametrize("pattern, folder", [
    ("/etc/*.csv", "/etc"),
    ("/etc/../etc/cron.d/*", "/etc"),
    ("/*/passwd", "/bin"),
    ("/usr/**/*.csv", "/usr"),
    ("/lib64/*.csv", "/lib*"),
    ("/var/lib/dpkg/*", "/var/lib"),
    ("/root/*.csv", "/root"),
    ("../../../../../../../../../../usr/share/*.csv", "/usr"),
])
def test_a_pattern_into_a_system_folder_is_a_configuration_error(home, cli, pattern, folder):
    """Decided from the configuration alone: the command stops before it reads any file."""
    with_pattern(home, pattern)
    result = cli("ingest", "--dry-run")
    assert result.exit_code == 2
    assert (f"sources.sensors.pattern: '{pattern}': can match files under the system folder {folder}; "
            "csvreport never reads there") in result.stderr
    assert not (home / "data").exists()


def test_a_pattern_that_can_reach_anywhere_is_refused(home, cli):
    with_pattern(home, "/**/*.csv")
    result = cli("ingest", "--dry-run")
    assert result.exit_code == 2
    assert "sources.sensors.pattern: '/**/*.csv': can match files inside" in result.stderr


def test_only_patterns_that_can_match_there_are_refused():
    from csvreport.config import pattern_can_reach

    assert pattern_can_reach("/l*/x.csv", "/lib*") and pattern_can_reach("/*/x.csv", "/lib*")
    assert not pattern_can_reach("/d*/x.csv", "/lib*") and not pattern_can_reach("/srv/*/x.csv", "/lib*")
    assert not pattern_can_reach("/var/log/*.csv", "/var/lib")
    assert not pattern_can_reach("/srv/csvreport/inbox/*.csv", "/srv/csvreport/quarantine")
    assert not pattern_can_reach("/srv/csvreport/*.csv", "/srv/csvreport/quarantine")
    assert pattern_can_reach("/srv/csvreport/*/*.csv", "/srv/csvreport/quarantine")


def test_a_home_inside_a_system_folder_may_read_its_own_drop_folders():
    from csvreport.config import pattern_can_reach

    home = "/var/lib/csvreport"
    assert not pattern_can_reach(f"{home}/inbox/*.csv", "/var/lib", skip=home)
    assert pattern_can_reach("/var/lib/other/*.csv", "/var/lib", skip=home)


def test_a_pattern_whose_folder_is_missing_is_a_warning_and_a_status_problem(home, cli):
    with_pattern(home, "inbox/meters/*.csv")
    folder = home / "inbox" / "meters"
    result = cli("ingest")
    assert result.exit_code == 0, result.output
    assert f"the folder {folder} of the source's pattern does not exist" in result.stdout
    assert "source=sensors" in result.stdout
    assert query(home, "SELECT status FROM run_history") == [("warn",)]
    check = cli("status", "--check")
    assert check.exit_code == 1
    assert (f"source sensors: the folder {folder} of its pattern does not exist; create it, fix its permissions, "
            "or fix the pattern in the configuration") in check.output.splitlines()
    folder.mkdir()
    assert "folder" not in cli("status", "--check").output


@pytest.mark.skipif(os.geteuid() == 0, reason="root may read any folder: an unreadable one needs another user")
def test_a_pattern_whose_folder_is_unreadable_is_a_status_problem(home, cli):
    folder = home / "inbox" / "sensors"
    folder.chmod(0)
    try:
        check = cli("status", "--check")
    finally:
        folder.chmod(0o755)
    assert check.exit_code == 1
    assert f"source sensors: the folder {folder} of its pattern is not readable by user" in check.output
