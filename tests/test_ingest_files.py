"""What happens to a file: found, known already, loaded, replaced, rejected rows, quarantined."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from conftest import write_config, write_csv

HEADER = "ts,site,metric,value\n"


def rows_text(n: int, start_hour: int = 0, site: str = "a") -> str:
    return HEADER + "".join(f"2026-03-28 {start_hour:02d}:{i // 60 % 60:02d}:{i % 60:02d},{site},t,{i}.5\n"
                            for i in range(n))


def db(home: Path) -> sqlite3.Connection:
    return sqlite3.connect(home / "data" / "csvreport.sqlite3")


def table_count(home: Path, table: str = "sensors") -> int:
    with db(home) as conn:
        return conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]


def log_rows(home: Path) -> list[dict]:
    conn = db(home)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM ingestion_log ORDER BY id")]
    finally:
        conn.close()


def last_run(home: Path) -> dict:
    conn = db(home)
    conn.row_factory = sqlite3.Row
    try:
        return dict(conn.execute("SELECT * FROM run_history ORDER BY id DESC LIMIT 1").fetchone())
    finally:
        conn.close()


def inbox(home: Path) -> Path:
    return home / "inbox" / "sensors"


def test_rerun_loads_nothing(home, cli):
    write_csv(inbox(home) / "a.csv", rows_text(5))
    result = cli("ingest")
    assert result.exit_code == 0, result.output
    assert table_count(home) == 5
    result = cli("ingest")
    assert result.exit_code == 0, result.output
    assert table_count(home) == 5
    run = last_run(home)
    assert (run["status"], run["files_seen"], run["files_skipped"], run["rows_loaded"]) == ("ok", 1, 1, 0)
    # --rehash reads the file again and still recognises its content
    result = cli("ingest", "--rehash")
    assert result.exit_code == 0, result.output
    assert table_count(home) == 5 and len(log_rows(home)) == 1


def test_same_content_renamed_is_skipped(home, cli):
    write_csv(inbox(home) / "a.csv", rows_text(5))
    assert cli("ingest").exit_code == 0
    (inbox(home) / "a.csv").rename(inbox(home) / "b.csv")
    result = cli("ingest")
    assert result.exit_code == 0, result.output
    assert "skipped: this content was loaded before (ingestion 1" in result.output
    assert table_count(home) == 5
    assert len(log_rows(home)) == 1
    assert last_run(home)["files_skipped"] == 1


def test_rewritten_file_replaces_its_rows(home, cli):
    path = write_csv(inbox(home) / "a.csv", rows_text(5))
    assert cli("ingest").exit_code == 0
    write_csv(path, rows_text(8, start_hour=1, site="b"), age=1800)
    result = cli("ingest")
    assert result.exit_code == 0, result.output
    assert "replaces the rows of ingestion 1" in result.output
    with db(home) as conn:
        assert conn.execute("SELECT DISTINCT site, _ingestion_id FROM sensors").fetchall() == [("b", 2)]
    assert table_count(home) == 8
    first, second = log_rows(home)
    assert (first["status"], first["rows_loaded"], first["changed_at"] is not None) == ("superseded", 5, True)
    assert (second["status"], second["rows_loaded"]) == ("loaded", 8)


def test_keyed_rows_upsert(home, cli):
    write_config(home, extra_source='key = ["ts", "site", "metric"]')
    write_csv(inbox(home) / "a.csv", HEADER + "2026-03-28 10:00:00,a,t,1\n2026-03-28 11:00:00,a,t,2\n")
    write_csv(inbox(home) / "b.csv", HEADER + "2026-03-28 11:00:00,a,t,20\n2026-03-28 12:00:00,a,t,3\n", age=1800)
    result = cli("ingest")
    assert result.exit_code == 0, result.output
    with db(home) as conn:
        got = conn.execute("SELECT ts, value FROM sensors ORDER BY _ts").fetchall()
    assert got == [("2026-03-28 10:00:00", 1.0), ("2026-03-28 11:00:00", 20.0), ("2026-03-28 12:00:00", 3.0)]


def _assert_quarantined(home: Path, name: str, reason_part: str, content: bytes) -> dict:
    folder = home / "quarantine" / "sensors"
    assert (folder / name).read_bytes() == content
    assert not (inbox(home) / name).exists()
    reason = json.loads((folder / f"{name}.reason.json").read_text(encoding="utf-8"))
    assert set(reason) >= {"source", "original_path", "sha256", "reason", "first_bad_line", "time"}
    assert reason["source"] == "sensors"
    assert reason["original_path"] == str(inbox(home) / name)
    assert reason_part in reason["reason"], reason["reason"]
    import hashlib
    assert reason["sha256"] == hashlib.sha256(content).hexdigest()
    return reason


def test_broken_files_are_quarantined_while_others_load(home, cli):
    good = write_csv(inbox(home) / "good.csv", rows_text(3))
    bad_utf8 = HEADER.encode() + b"2026-03-28 10:00:00,a,t,1\n2026-03-28 10:00:01,M\xfcnchen,t,2\n"
    write_csv(inbox(home) / "latin.csv", bad_utf8)
    missing = "ts,site,value\n2026-03-28 10:00:00,a,1\n"
    write_csv(inbox(home) / "missing.csv", missing)
    write_csv(inbox(home) / "empty.csv", b"")
    garbage = gzip.compress(rows_text(50).encode())
    write_csv(inbox(home) / "packed.csv", garbage)
    result = cli("ingest")
    assert result.exit_code == 0, result.output
    assert table_count(home) == 3
    assert good.exists()  # loaded files stay where they are
    reason = _assert_quarantined(home, "latin.csv", "cannot be decoded as utf-8", bad_utf8)
    assert reason["first_bad_line"] == 3
    assert "line 3" in reason["reason"] and "cp1252" in reason["reason"]
    _assert_quarantined(home, "missing.csv", "the header lacks column 'metric'", missing.encode())
    _assert_quarantined(home, "empty.csv", "the file is empty", b"")
    _assert_quarantined(home, "packed.csv", "binary", garbage)
    run = last_run(home)
    assert (run["status"], run["files_loaded"], run["files_quarantined"]) == ("warn", 1, 4)
    for name in ("latin.csv", "missing.csv", "empty.csv", "packed.csv"):
        assert f"file={inbox(home) / name}" in result.output
    assert result.output.count("level=WARNING") >= 4
    # a second run does not try them again, and the quarantine is not mistaken for the inbox
    result = cli("ingest")
    assert result.exit_code == 0, result.output
    assert last_run(home)["files_seen"] == 1


def test_bad_rows_up_to_max_go_to_rejects_with_line_numbers(home, cli):
    write_config(home, max_bad_rows=3)
    text = (HEADER
            + "2026-03-28 10:00:00,a,t,1\n"
            + "2026-03-28 10:00:01,a,t\n"                        # line 3: too few fields
            + "2026-03-28 10:00:02,\"multi\nline\",t,oops\n"     # line 4-5: not a number
            + "yesterday,a,t,3\n"                                # line 6: timestamp
            + "2026-03-28 10:00:04,a,t,4\n")
    write_csv(inbox(home) / "a.csv", text)
    result = cli("ingest")
    assert result.exit_code == 0, result.output
    assert table_count(home) == 2
    rejects = home / "quarantine" / "sensors" / "a.csv.rejects.csv"
    import csv
    with open(rejects, newline="", encoding="utf-8") as handle:
        got = list(csv.reader(handle))
    assert got[0] == ["line", "reason", "ts", "site", "metric", "value"]
    assert [r[0] for r in got[1:]] == ["3", "4", "6"]
    assert got[1][1] == "3 fields where the header has 4"
    assert got[2][1] == "column 'value': 'oops' is not a number"
    assert got[2][3] == "multi\nline"
    assert "yesterday" in got[3][1]
    (entry,) = log_rows(home)
    assert (entry["rows_read"], entry["rows_loaded"], entry["rows_rejected"], entry["first_bad_line"]) == (5, 2, 3, 3)
    assert entry["rejects_path"] == str(rejects)
    run = last_run(home)
    assert (run["status"], run["rows_loaded"], run["rows_rejected"]) == ("warn", 2, 3)
    assert "3 bad rows rejected; first at line 3" in result.output


def test_more_bad_rows_than_allowed_quarantines_the_file(home, cli):
    write_config(home, max_bad_rows=1)
    text = HEADER + "2026-03-28 10:00:00,a,t,1\nx,a,t,1\n2026-03-28 10:00:02,a,t,z\n2026-03-28 10:00:03,a,t,4\n"
    write_csv(inbox(home) / "a.csv", text)
    result = cli("ingest")
    assert result.exit_code == 0, result.output
    assert table_count(home) == 0
    reason = _assert_quarantined(home, "a.csv", "more than max_bad_rows=1 bad rows", text.encode())
    assert reason["first_bad_line"] == 3
    assert not (home / "quarantine" / "sensors" / "a.csv.rejects.csv").exists()
    run = last_run(home)
    assert (run["files_quarantined"], run["rows_quarantined"], run["rows_loaded"]) == (1, 4, 0)


def test_fresh_file_waits_for_the_next_run(home, cli):
    write_config(home, text=(home / "config" / "settings.toml").read_text().replace(
        "settle_seconds = 0", "settle_seconds = 30"))
    path = write_csv(inbox(home) / "a.csv", rows_text(2), age=0)
    result = cli("ingest")
    assert result.exit_code == 0, result.output
    assert "waiting for the next run" in result.output
    assert table_count(home) == 0
    then = time.time() - 31
    os.utime(path, (then, then))
    assert cli("ingest").exit_code == 0
    assert table_count(home) == 2


def test_hidden_and_temporary_files_are_ignored(home, cli):
    for name in (".hidden.csv", "a.csv.tmp", "b.csv.part", "c.csv.partial", "d.CSV.TMP"):
        write_csv(inbox(home) / name, rows_text(2))
    write_config(home, text=(home / "config" / "settings.toml").read_text().replace(
        'pattern = "inbox/sensors/*.csv"', 'pattern = ["inbox/sensors/*", "inbox/sensors/.*"]'))
    (inbox(home) / "sub.csv").mkdir()  # a directory that matches is not a file either
    result = cli("ingest")
    assert result.exit_code == 0, result.output
    assert last_run(home)["files_seen"] == 0
    assert table_count(home) == 0


def _immutable(folder: Path, on: bool) -> None:
    subprocess.run(["chattr", "+i" if on else "-i", str(folder)], check=True, capture_output=True)


@pytest.fixture
def read_only_inbox(home):
    """The drop folder refuses removals. chmod does not stop root, so as root the folder is made immutable."""
    folder = inbox(home)
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    if shutil.which("chattr") is None:
        pytest.skip("running as root without chattr: cannot make a folder read-only for root")
    try:
        _immutable(folder, True)
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"chattr +i is not allowed here ({exc.stderr.decode().strip()})")
    try:
        yield folder
    finally:
        _immutable(folder, False)


def test_read_only_drop_folder_is_copied_and_remembered(home, cli, request):
    bad = HEADER + "2026-03-28 10:00:00,a,t,x\n"
    write_csv(inbox(home) / "a.csv", bad)
    write_csv(inbox(home) / "b.csv", rows_text(2))
    request.getfixturevalue("read_only_inbox")
    with pytest.raises(PermissionError):
        os.unlink(inbox(home) / "b.csv")
    result = cli("ingest")
    assert result.exit_code == 0, result.output
    assert "(the drop folder is read-only)" in result.output
    assert (inbox(home) / "a.csv").read_text() == bad
    copy = home / "quarantine" / "sensors" / "a.csv"
    assert copy.read_text() == bad
    reason = json.loads((copy.parent / "a.csv.reason.json").read_text())
    assert reason["moved"] is False and "'x' is not a number" in reason["reason"]
    assert table_count(home) == 2
    for extra in ((), ("--rehash",)):
        result = cli("ingest", *extra)
        assert result.exit_code == 0, result.output
        run = last_run(home)
        assert (run["files_quarantined"], run["files_skipped"], run["status"]) == (0, 2, "ok"), extra
    assert [r["status"] for r in log_rows(home)] == ["quarantined", "loaded"]


def test_quarantine_names_never_collide_and_a_crashed_copy_is_reused(home, cli):
    write_config(home, text=(home / "config" / "settings.toml").read_text().replace(
        'pattern = "inbox/sensors/*.csv"', 'pattern = ["inbox/sensors/*.csv", "inbox/more/*.csv"]'))
    first = HEADER + "2026-03-28 10:00:00,a,t,x\n"
    second = HEADER + "2026-03-28 10:00:00,a,t,y\n"
    write_csv(inbox(home) / "a.csv", first)
    write_csv(home / "inbox" / "more" / "a.csv", second, age=1800)
    # a run that crashed between copying a.csv into quarantine and removing the original left this copy
    leftover = home / "quarantine" / "sensors" / "a.csv"
    leftover.parent.mkdir(parents=True)
    leftover.write_text(first)
    result = cli("ingest")
    assert result.exit_code == 0, result.output
    names = {p.name for p in leftover.parent.iterdir()}
    import hashlib
    tag = hashlib.sha256(second.encode()).hexdigest()[:12]
    assert names == {"a.csv", "a.csv.reason.json", f"a.{tag}.csv", f"a.{tag}.csv.reason.json"}
    assert leftover.read_text() == first and (leftover.parent / f"a.{tag}.csv").read_text() == second
    assert [r["quarantine_path"] for r in log_rows(home)] == [str(leftover), str(leftover.parent / f"a.{tag}.csv")]


def test_a_run_killed_between_recording_a_quarantine_and_removing_the_original_loses_no_record(
        home, cli, monkeypatch):
    bad = write_csv(inbox(home) / "bad.csv", HEADER + "2026-03-28 10:00:00,a,t\n")
    from csvreport import ingest as ingest_module

    class Killed(BaseException):
        pass

    def killed(*args):
        raise Killed  # the process ends here: the record is committed, the original not yet removed

    real = ingest_module.remove_original
    monkeypatch.setattr(ingest_module, "remove_original", killed)
    with pytest.raises(Killed):
        cli("ingest")
    monkeypatch.setattr(ingest_module, "remove_original", real)
    assert [(r["path"], r["status"]) for r in log_rows(home)] == [(str(bad), "quarantined")]
    assert bad.exists() and (home / "quarantine" / "sensors" / "bad.csv.reason.json").exists()
    result = cli("ingest")
    assert result.exit_code == 0, result.output
    assert "skipped: this content was quarantined before" in result.output
    assert [r["status"] for r in log_rows(home)] == ["quarantined"]  # recorded once, rows counted once
    assert "bad.csv" in cli("recover", "list").output


@pytest.mark.parametrize("content", [rows_text(3), HEADER + "2026-03-28 10:00:00,a,t,not a number\n"])
def test_a_file_that_changes_while_it_is_read_is_left_for_the_next_run(home, cli, monkeypatch, content):
    path = write_csv(inbox(home) / "a.csv", content)
    from csvreport import ingest as ingest_module
    real = ingest_module.load_rows

    def exporter_appends_meanwhile(conn, source, file, *args, **kwargs):
        with open(file, "a", encoding="utf-8") as handle:
            handle.write("2026-03-28 11:00:00,a,t,9\n")
        return real(conn, source, file, *args, **kwargs)

    monkeypatch.setattr(ingest_module, "load_rows", exporter_appends_meanwhile)
    result = cli("ingest")
    assert result.exit_code == 0, result.output
    assert "the file changed while it was read" in result.output
    assert path.exists() and not (home / "quarantine").exists()
    assert log_rows(home) == [] and table_count(home) == 0
    run = last_run(home)
    assert (run["files_seen"], run["files_loaded"], run["files_quarantined"], run["status"]) == (1, 0, 0, "warn")
    monkeypatch.setattr(ingest_module, "load_rows", real)
    then = time.time() - 60
    os.utime(path, (then, then))
    result = cli("ingest")
    assert result.exit_code == 0, result.output
    assert [r["status"] for r in log_rows(home)] == ["loaded" if content == rows_text(3) else "quarantined"]


def test_database_in_the_home_folder_itself_does_not_hide_the_inbox(home, cli):
    text = (home / "config" / "settings.toml").read_text()
    write_config(home, text=text.replace('timezone = "Europe/Berlin"',
                                         'timezone = "Europe/Berlin"\n[paths]\ndatabase = "csvreport.sqlite3"')
                 .replace('pattern = "inbox/sensors/*.csv"', 'pattern = ["*", "inbox/sensors/*.csv"]'))
    write_csv(inbox(home) / "a.csv", rows_text(2))
    result = cli("ingest")
    assert result.exit_code == 0, result.output
    assert cli("ingest").exit_code == 0  # the database, its -wal/-shm and lock file are never taken as input
    with sqlite3.connect(home / "csvreport.sqlite3") as conn:
        assert conn.execute("SELECT count(*) FROM sensors").fetchone()[0] == 2
        assert conn.execute("SELECT path FROM ingestion_log").fetchall() == [(str(inbox(home) / "a.csv"),)]
    assert (home / "csvreport.sqlite3").exists() and not (home / "quarantine").exists()


def test_an_unreadable_file_does_not_stop_the_others(home, cli, monkeypatch):
    write_csv(inbox(home) / "a.csv", rows_text(2))
    locked = write_csv(inbox(home) / "b.csv", rows_text(3, site="b"), age=1800)
    from csvreport import ingest as ingest_module
    real = ingest_module.sha256_of

    def permission_denied_for_b(path):
        # root reads every file, so the kernel's refusal for other users is simulated here
        if path == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(ingest_module, "sha256_of", permission_denied_for_b)
    result = cli("ingest")
    assert result.exit_code == 0, result.output
    assert "cannot read the file: Permission denied; check its owner and permissions" in result.output
    assert table_count(home) == 2 and locked.exists()
    assert last_run(home)["status"] == "warn"
    monkeypatch.setattr(ingest_module, "sha256_of", real)
    assert cli("ingest").exit_code == 0
    assert table_count(home) == 5


def test_an_unwritable_quarantine_is_a_clear_failure_and_loses_nothing(home, cli):
    write_csv(inbox(home) / "bad.csv", "nothing,useful\n1,2\n")
    (home / "quarantine").write_text("a file where the quarantine folder should be")
    result = cli("ingest")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: cannot create the quarantine folder {home / 'quarantine' / 'sensors'}: ")
    assert (inbox(home) / "bad.csv").exists()
    assert last_run(home)["status"] == "failed"
    assert log_rows(home) == []
