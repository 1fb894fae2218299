"""`csvreport recover list | replay | purge` on real files in a temporary home."""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from conftest import BASE_CONFIG, write_config, write_csv

HEADER = "ts,site,metric,value\n"


def rows(hour: int, site: str, count: int, start: float = 0.0) -> str:
    return "".join(f"2026-03-10 {hour:02d}:{i % 60:02d}:00,{site},temp,{start + i}\n" for i in range(count))


def db(home: Path) -> sqlite3.Connection:
    return sqlite3.connect(home / "data" / "csvreport.sqlite3")


def quarantine_listing(home: Path) -> list[str]:
    folder = home / "quarantine" / "sensors"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def log_rows(home: Path) -> list[tuple]:
    with db(home) as conn:
        return conn.execute("SELECT id, path, status, rows_loaded FROM ingestion_log ORDER BY id").fetchall()


def last_run(home: Path, command: str) -> dict:
    with db(home) as conn:
        conn.row_factory = sqlite3.Row
        return dict(conn.execute("SELECT * FROM run_history WHERE command = ? ORDER BY id DESC LIMIT 1",
                                 (command,)).fetchone())


def test_list_shows_each_quarantined_file_with_its_reason(home, cli):
    write_csv(home / "inbox" / "sensors" / "good.csv", HEADER + rows(10, "a", 3))
    write_csv(home / "inbox" / "sensors" / "no_value.csv", "ts,site,metric\n2026-03-10 10:00:00,a,temp\n")
    assert cli("ingest").exit_code == 0

    result = cli("recover", "list")

    assert result.exit_code == 0, result.output
    assert "1 quarantined file(s)" in result.output
    assert "quarantine/sensors/no_value.csv" in result.output
    assert f"arrived as {home / 'inbox' / 'sensors' / 'no_value.csv'}" in result.output
    assert "reason: " in result.output and "value" in result.output
    assert "rows in the file: 1" in result.output


def test_list_with_nothing_quarantined(home, cli):
    write_csv(home / "inbox" / "sensors" / "good.csv", HEADER + rows(10, "a", 3))
    assert cli("ingest").exit_code == 0
    result = cli("recover", "list")
    assert result.exit_code == 0, result.output
    assert result.output == "No quarantined files.\n"


def test_list_is_read_only_and_needs_a_database(home, cli):
    result = cli("recover", "list")
    assert result.exit_code == 1
    assert result.output.endswith(
        f"Error: database {home / 'data' / 'csvreport.sqlite3'} does not exist yet; run `csvreport ingest` first\n")
    assert not (home / "data").exists()


def test_a_file_fixed_in_quarantine_is_replayed_and_leaves_quarantine(home, cli):
    inbox = home / "inbox" / "sensors"
    write_csv(inbox / "good.csv", HEADER + rows(10, "a", 4))
    write_csv(inbox / "broken.csv", "ts,site,metric\n2026-03-10 11:00:00,b,temp\n")
    assert cli("ingest").exit_code == 0
    assert quarantine_listing(home) == ["broken.csv", "broken.csv.reason.json"]

    # The operator fixes the file where it lies, then replays it by its quarantine path.
    write_csv(home / "quarantine" / "sensors" / "broken.csv", HEADER + rows(11, "b", 5, start=100))
    result = cli("recover", "replay", home / "quarantine" / "sensors" / "broken.csv")

    assert result.exit_code == 0, result.output
    assert "replayed: 5 rows loaded as ingestion 3; removed quarantine/sensors/broken.csv from quarantine" \
        in result.output
    assert "replay done: 1 file(s) replayed, 5 rows loaded; 0 still quarantined" in result.output
    assert quarantine_listing(home) == []
    original = str(inbox / "broken.csv")
    assert log_rows(home) == [(1, str(inbox / "good.csv"), "loaded", 4), (2, original, "replayed", 0),
                              (3, original, "loaded", 5)]
    with db(home) as conn:
        assert conn.execute("SELECT count(*), sum(value) FROM sensors WHERE site = 'b'").fetchone() == (5, 510.0)
        assert conn.execute("SELECT count(*) FROM sensors").fetchone()[0] == 9
    run = last_run(home, "recover replay")
    assert (run["status"], run["files_seen"], run["files_loaded"], run["rows_loaded"]) == ("ok", 1, 1, 5)
    assert json.loads(run["arguments"])["all"] is False
    assert cli("recover", "list").output == "No quarantined files.\n"


def test_a_file_failing_again_stays_with_its_reason_updated(home, cli):
    inbox = home / "inbox" / "sensors"
    write_csv(inbox / "broken.csv", "ts,site,metric\n2026-03-10 11:00:00,b,temp\n")
    assert cli("ingest").exit_code == 0
    reason_file = home / "quarantine" / "sensors" / "broken.csv.reason.json"
    first = json.loads(reason_file.read_text())

    # A "fix" that is still wrong: the column is there now, the value is not a number.
    write_csv(home / "quarantine" / "sensors" / "broken.csv", HEADER + "2026-03-10 11:00:00,b,temp,warm\n")
    result = cli("recover", "replay", "--all")

    assert result.exit_code == 0, result.output
    assert "level=WARNING" in result.output and "still quarantined: " in result.output
    assert "replay done: 0 file(s) replayed, 0 rows loaded; 1 still quarantined" in result.output
    assert quarantine_listing(home) == ["broken.csv", "broken.csv.reason.json"]
    again = json.loads(reason_file.read_text())
    assert again["replays"] == 1
    assert again["first_reason"] == first["reason"]
    assert again["reason"] != first["reason"] and "warm" in again["reason"]
    assert again["first_bad_line"] == 2
    assert [r[2] for r in log_rows(home)] == ["replayed", "quarantined"]
    assert last_run(home, "recover replay")["status"] == "warn"
    listing = cli("recover", "list").output
    assert listing.count("quarantine/sensors/broken.csv") == 1 and "ingestion 2," in listing


def test_a_bad_file_repeatedly_failing_is_fixed_by_the_configuration_and_replayed(home, cli):
    # The exporter sends cp1252 (Windows) text; every file is quarantined as invalid UTF-8.
    inbox = home / "inbox" / "sensors"
    for day in (1, 2):
        write_csv(inbox / f"export_{day}.csv", HEADER + f"2026-03-0{day} 10:00:00,Zürich,temp,{day}.5\n",
                  encoding="cp1252")
    assert cli("ingest").exit_code == 0
    assert len(quarantine_listing(home)) == 4

    write_config(home, BASE_CONFIG.format(max_bad_rows=0, extra_source='encoding = "cp1252"'))
    result = cli("recover", "replay", "--all")

    assert result.exit_code == 0, result.output
    assert "replay done: 2 file(s) replayed, 2 rows loaded; 0 still quarantined" in result.output
    assert quarantine_listing(home) == []
    with db(home) as conn:
        assert conn.execute("SELECT site, value FROM sensors ORDER BY value").fetchall() == [
            ("Zürich", 1.5), ("Zürich", 2.5)]
    # The next cron run finds nothing new: the replayed files are not loaded twice.
    assert cli("ingest").exit_code == 0
    assert last_run(home, "ingest")["rows_loaded"] == 0


def test_replay_refuses_what_is_not_quarantined(home, cli):
    write_csv(home / "inbox" / "sensors" / "broken.csv", "ts,site\n2026-03-10 11:00:00,b\n")
    assert cli("ingest").exit_code == 0

    result = cli("recover", "replay", "quarantine/sensors/nope.csv", "broken.csv")
    assert result.exit_code == 2
    assert result.output == ("Error: recover replay: not a quarantined file: quarantine/sensors/nope.csv, "
                             "broken.csv; `csvreport recover list` shows the quarantined files\n")
    result = cli("recover", "replay")
    assert result.exit_code == 2
    assert result.output == ("Error: recover replay: give the quarantined files (PATH...) or --all, not both and "
                             "not neither; `csvreport recover list` shows the quarantined files\n")
    with db(home) as conn:
        assert conn.execute("SELECT count(*) FROM run_history WHERE command LIKE 'recover%'").fetchone()[0] == 0


def test_replay_by_original_path_relative_to_home(home, cli, monkeypatch):
    write_csv(home / "inbox" / "sensors" / "broken.csv", "ts,site,metric\n2026-03-10 11:00:00,b,temp\n")
    assert cli("ingest").exit_code == 0
    write_csv(home / "quarantine" / "sensors" / "broken.csv", HEADER + rows(11, "b", 2))
    monkeypatch.chdir(home)
    result = cli("recover", "replay", "inbox/sensors/broken.csv")
    assert result.exit_code == 0, result.output
    assert "1 file(s) replayed, 2 rows loaded" in result.output


def test_an_older_version_is_not_replayed_over_a_newer_load(home, cli):
    inbox = home / "inbox" / "sensors"
    write_csv(inbox / "daily.csv", "ts,site,metric\n2026-03-10 11:00:00,b,temp\n")
    assert cli("ingest").exit_code == 0
    write_csv(inbox / "daily.csv", HEADER + rows(12, "c", 3))  # the exporter's next, good version
    assert cli("ingest").exit_code == 0
    write_csv(home / "quarantine" / "sensors" / "daily.csv", HEADER + rows(11, "b", 2))

    result = cli("recover", "replay", "--all")

    assert result.exit_code == 0, result.output
    assert f"not replayed: a newer version of {inbox / 'daily.csv'} was loaded after this one was quarantined " \
           "(ingestion 2)" in result.output
    with db(home) as conn:
        assert conn.execute("SELECT site, count(*) FROM sensors GROUP BY site").fetchall() == [("c", 3)]
    assert quarantine_listing(home) == ["daily.csv", "daily.csv.reason.json"]


def _two_loads(home, cli) -> tuple[list[tuple], list[tuple]]:
    inbox = home / "inbox" / "sensors"
    write_csv(inbox / "a.csv", HEADER + rows(10, "a", 6))
    write_csv(inbox / "a_again.csv", HEADER + rows(10, "a", 6) + rows(11, "a", 1), age=3000)
    assert cli("ingest").exit_code == 0
    with db(home) as conn:
        first = conn.execute("SELECT * FROM sensors WHERE _ingestion_id = 1 ORDER BY _id").fetchall()
        second = conn.execute("SELECT * FROM sensors WHERE _ingestion_id = 2 ORDER BY _id").fetchall()
    return first, second


def test_purge_removes_exactly_that_loads_rows(home, cli):
    first, second = _two_loads(home, cli)
    (home / "inbox" / "sensors" / "a_again.csv").rename(home / "a_again.csv")  # out of the drop folder

    result = cli("recover", "purge", "2")

    assert result.exit_code == 0, result.output
    assert "purged ingestion 2: 7 rows deleted" in result.output
    assert "still in the drop folder" not in result.output
    with db(home) as conn:
        assert conn.execute("SELECT * FROM sensors ORDER BY _id").fetchall() == first
        assert conn.execute("SELECT status FROM ingestion_log ORDER BY id").fetchall() == [("loaded",), ("purged",)]
        assert conn.execute("SELECT count(*) FROM seen_files WHERE ingestion_id = 2").fetchone()[0] == 0
    run = last_run(home, "recover purge")
    assert (run["status"], run["rows_deleted"], json.loads(run["arguments"])) == ("ok", 7, {"ingestion_id": 2})
    assert len(second) == 7
    # Nothing comes back by itself: the file was moved away.
    assert cli("ingest").exit_code == 0
    with db(home) as conn:
        assert conn.execute("SELECT count(*) FROM sensors").fetchone()[0] == 6


def test_a_purged_file_still_in_the_drop_folder_loads_again(home, cli):
    _two_loads(home, cli)
    result = cli("recover", "purge", "2")
    assert result.exit_code == 0, result.output
    assert f"{home / 'inbox' / 'sensors' / 'a_again.csv'} is still in the drop folder: the next ingest loads it " \
           "again; move it away if its rows are unwanted" in result.output
    assert cli("ingest").exit_code == 0
    with db(home) as conn:
        assert conn.execute("SELECT count(*) FROM sensors").fetchone()[0] == 13
        assert conn.execute("SELECT id, status FROM ingestion_log ORDER BY id").fetchall() == [
            (1, "loaded"), (2, "purged"), (3, "loaded")]


@pytest.mark.parametrize("target, message", [
    ("7", "Error: recover purge: ingestion 7 does not exist; `csvreport recover loads` lists the ingestion ids\n"),
    ("3", "Error: recover purge: ingestion 3 ({source}, {path}) is a quarantined file and loaded no rows: fix it "
          "and `csvreport recover replay` it, or delete it and its .reason.json from the quarantine folder; "
          "nothing purged\n"),
])
def test_purge_refuses_a_target_it_cannot_purge(home, cli, target, message):
    _two_loads(home, cli)
    bad = write_csv(home / "inbox" / "sensors" / "bad.csv", "ts\n2026-03-10 10:00:00\n")
    assert cli("ingest").exit_code == 0

    result = cli("recover", "purge", target)

    assert result.exit_code == 2
    assert result.output == message.format(source="sensors", path=bad)
    with db(home) as conn:
        assert conn.execute("SELECT count(*) FROM sensors").fetchone()[0] == 13
        assert conn.execute("SELECT count(*) FROM run_history WHERE command = 'recover purge'").fetchone()[0] == 0


def test_purge_twice_is_refused(home, cli):
    _two_loads(home, cli)
    assert cli("recover", "purge", "1").exit_code == 0
    result = cli("recover", "purge", "1")
    assert result.exit_code == 2
    path = home / "inbox" / "sensors" / "a.csv"
    assert result.output.startswith(f"Error: recover purge: ingestion 1 (sensors, {path}) was purged already (at 20")
    assert result.output.endswith("); nothing purged\n")


# -- recover loads, purge --dry-run ---------------------------------------------------------------


def test_loads_lists_ids_files_rows_spans_and_status(home, cli):
    _two_loads(home, cli)
    write_csv(home / "inbox" / "sensors" / "bad.csv", "ts\n2026-03-10 10:00:00\n")
    assert cli("ingest").exit_code == 0
    assert cli("recover", "purge", "1").exit_code == 0

    result = cli("recover", "loads")

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "3 load(s); `csvreport recover purge ID --dry-run` shows what purging one would remove:"
    assert lines[2].split() == ["ID", "STATUS", "ROWS", "EVENTS", "(local", "time)", "LOADED", "(UTC)", "SOURCE",
                                "FILE"]
    table = [line.split() for line in lines[3:]]
    assert [row[:3] for row in table] == [["1", "purged", "6"], ["2", "loaded", "7"], ["3", "quarantined", "0"]]
    assert table[1][3:7] == ["2026-03-10", "10:00:00", "..", "2026-03-10"]
    assert [row[-2:] for row in table] == [["sensors", "inbox/sensors/a.csv"], ["sensors", "inbox/sensors/a_again.csv"],
                                          ["sensors", "inbox/sensors/bad.csv"]]
    assert table[2][3] == "-"  # a quarantined file loaded no rows: no span


def test_loads_filters_by_source_and_day_and_only_reads(home, cli):
    _two_loads(home, cli)
    before = (home / "data" / "csvreport.sqlite3").stat().st_mtime_ns
    with db(home) as conn:
        conn.execute("UPDATE ingestion_log SET started_at = '2026-03-28T22:59:59.000Z' WHERE id = 1")

    since = cli("recover", "loads", "--since", "2026-03-29")  # Berlin midnight is 22:00 UTC (winter time)
    assert since.exit_code == 0, since.output
    assert [line.split()[0] for line in since.output.splitlines()[3:]] == ["2"]
    assert cli("recover", "loads", "--since", "2026-03-28").output.startswith("2 load(s)")
    assert cli("recover", "loads", "--source", "sensors").output.startswith("2 load(s)")

    bad_day = cli("recover", "loads", "--since", "29.03.2026")
    assert (bad_day.exit_code, bad_day.output) == (
        2, "Error: recover loads: --since '29.03.2026' is not a date; give it as YYYY-MM-DD\n")
    unknown = cli("recover", "loads", "--source", "sensor")
    assert unknown.exit_code == 2 and "no source named 'sensor'" in unknown.output
    with db(home) as conn:
        assert conn.execute("SELECT count(*) FROM run_history WHERE command LIKE 'recover%'").fetchone()[0] == 0
    assert before <= (home / "data" / "csvreport.sqlite3").stat().st_mtime_ns


def test_loads_without_a_database_says_so(home, cli):
    result = cli("recover", "loads")
    assert result.exit_code == 1
    assert "does not exist yet; run `csvreport ingest` first" in result.output


def test_purge_dry_run_says_what_would_go_and_changes_nothing(home, cli):
    _two_loads(home, cli)
    with db(home) as conn:
        before = conn.execute("SELECT * FROM sensors ORDER BY _id").fetchall()
        runs = conn.execute("SELECT count(*) FROM run_history").fetchone()[0]
    log_file = home / "logs" / "csvreport.log"
    logged = log_file.read_text(encoding="utf-8")

    result = cli("recover", "purge", "2", "--dry-run")

    assert result.exit_code == 0, result.output
    assert result.output == (
        "dry run, nothing was changed: purging ingestion 2 would delete 7 rows of sensors loaded from "
        "inbox/sensors/a_again.csv (events 2026-03-10 10:00:00 .. 2026-03-10 11:00:00) and mark it purged.\n"
        "inbox/sensors/a_again.csv is still in the drop folder: the next ingest would load it again; move it away "
        "first if its rows are unwanted.\n")
    with db(home) as conn:
        assert conn.execute("SELECT * FROM sensors ORDER BY _id").fetchall() == before
        assert conn.execute("SELECT count(*) FROM run_history").fetchone()[0] == runs
        assert conn.execute("SELECT status FROM ingestion_log WHERE id = 2").fetchone() == ("loaded",)
    assert log_file.read_text(encoding="utf-8") == logged

    refused = cli("recover", "purge", "7", "--dry-run")
    assert refused.exit_code == 2
    assert refused.output.startswith("Error: recover purge: ingestion 7 does not exist")


def test_purge_dry_run_of_a_source_that_left_the_configuration_still_says_what_would_go(home, cli):
    """purge needs no configuration of the load's source, so its dry run needs none either."""
    _two_loads(home, cli)
    write_config(home, BASE_CONFIG.format(max_bad_rows=0, extra_source="").replace('"sensors"', '"meters"')
                 .replace("inbox/sensors/", "inbox/meters/"))

    result = cli("recover", "purge", "2", "--dry-run")

    assert result.exit_code == 0, result.output
    assert result.output.startswith(
        "dry run, nothing was changed: purging ingestion 2 would delete 7 rows of sensors loaded from "
        "inbox/sensors/a_again.csv (events 2026-03-10 10:00:00 .. 2026-03-10 11:00:00) and mark it purged.\n")


# -- recover reports -------------------------------------------------------------------------------


def _digest(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_deleted_and_a_corrupted_workbook_are_found_and_written_again(home, cli):
    import openpyxl

    hour = (datetime.now(ZoneInfo("Europe/Berlin")) - timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
    data = "".join(f"{hour:%Y-%m-%d %H}:{m:02d}:00,berlin,temp,{m}\n" for m in (5, 10, 15))
    write_csv(home / "inbox" / "sensors" / "recent.csv", HEADER + data)
    assert cli("ingest").exit_code == 0
    assert cli("hourly").exit_code == 0
    assert cli("daily").exit_code == 0
    with db(home) as conn:
        # paths are stored relative to the home (migration 0008)
        recorded = {str(home / p): s for p, s in conn.execute("SELECT path, sha256 FROM workbooks")}
        daily_path = home / conn.execute("SELECT path FROM workbooks WHERE kind = 'daily' ORDER BY window_start DESC, "
                                  "window_end DESC LIMIT 1").fetchone()[0]
    deleted = home / "reports" / f"hourly_{hour:%Y%m%d_%H%M}.xlsx"
    assert str(deleted) in recorded
    deleted.unlink()
    corrupted = Path(daily_path)
    corrupted.write_bytes(corrupted.read_bytes()[:1000])  # a truncated copy, as a full disk would leave it
    untouched = {p: _digest(Path(p)) for p in recorded if Path(p) not in (deleted, corrupted)}

    result = cli("recover", "reports")

    assert result.exit_code == 0, result.output
    assert f"hourly workbook {deleted.name}: its file is gone; writing it again" in result.output
    assert f"daily workbook {corrupted.name}: its file differs from the checksum recorded; writing it again" \
        in result.output
    assert "reports done: 2 workbook(s) written again" in result.output
    with db(home) as conn:
        now_recorded = {str(home / p): s for p, s in conn.execute("SELECT path, sha256 FROM workbooks")}
    assert set(now_recorded) == set(recorded)
    for path in (deleted, corrupted):
        assert _digest(path) == now_recorded[str(path)]
    assert {p: _digest(Path(p)) for p in untouched} == untouched  # nothing else was rewritten
    sheet = openpyxl.load_workbook(deleted, read_only=True)["sensor_summary"]
    values = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert values[0][:3] == ["site", "metric", "readings"]
    assert values[1][:3] == ["berlin", "temp", 3]
    assert openpyxl.load_workbook(corrupted, read_only=True).sheetnames[:2] == ["Summary", "sensor_summary"]
    run = last_run(home, "recover reports")
    assert (run["status"], run["workbooks_written"]) == ("ok", 2)

    again = cli("recover", "reports")
    assert again.exit_code == 0, again.output
    assert "reports done: 0 workbook(s) written again; every recorded workbook is in place and unchanged" \
        in again.output


def test_a_lost_workbook_of_an_archived_month_waits_for_the_restore(home, cli):
    pytest.importorskip("pyarrow", reason="needs the archive extra: pip install -e '.[dev]'")
    write_csv(home / "inbox" / "sensors" / "jan.csv", HEADER + "2026-01-15 10:05:00,a,temp,1\n")
    assert cli("ingest").exit_code == 0
    assert cli("hourly", "--hour", "2026-01-15 10:00").exit_code == 0
    assert cli("archive", "--before", "2026-02").exit_code == 0
    book = home / "reports" / "hourly_20260115_1000.xlsx"
    book.unlink()

    result = cli("recover", "reports")

    assert result.exit_code == 0, result.output
    assert ("not rewritten: the rows of 2026-01 are in the Parquet archive; load them back first (csvreport archive "
            "restore --month 2026-01), then run recover reports again") in result.output
    assert not book.exists()
    assert last_run(home, "recover reports")["status"] == "warn"
    assert cli("archive", "restore", "--month", "2026-01").exit_code == 0
    assert cli("recover", "reports").exit_code == 0
    assert book.is_file()


def test_recover_on_a_damaged_database_says_so(home, cli):
    (home / "data").mkdir()
    (home / "data" / "csvreport.sqlite3").write_bytes(b"not a database at all\n" * 200)
    result = cli("recover", "list")
    assert result.exit_code == 1
    assert result.output.endswith(
        f"Error: cannot read {home / 'data' / 'csvreport.sqlite3'}: file is not a database; restore it from a "
        "backup (docs/operations.md, 'Backups while cron runs')\n")


def test_replaying_content_that_was_loaded_before_loads_nothing_twice(home, cli):
    inbox = home / "inbox" / "sensors"
    good = write_csv(inbox / "good.csv", HEADER + rows(10, "a", 4))
    write_csv(inbox / "broken.csv", "ts,site,metric\n2026-03-10 11:00:00,b,temp\n")
    assert cli("ingest").exit_code == 0
    # The operator "fixes" the quarantined file with a copy of an export that is already loaded.
    (home / "quarantine" / "sensors" / "broken.csv").write_bytes(good.read_bytes())

    result = cli("recover", "replay", "--all")

    assert result.exit_code == 0, result.output
    assert ("this content was loaded before (ingestion 1): nothing loaded; removed quarantine/sensors/broken.csv "
            "from quarantine") in result.output
    assert "replay done: 0 file(s) replayed, 0 rows loaded; 1 already loaded before (removed from quarantine); " \
           "0 still quarantined" in result.output
    assert quarantine_listing(home) == []
    with db(home) as conn:
        assert conn.execute("SELECT count(*) FROM sensors").fetchone()[0] == 4
    run = last_run(home, "recover replay")
    assert (run["status"], run["files_skipped"], run["rows_loaded"]) == ("ok", 1, 0)


def test_purge_on_a_keyed_source_says_what_it_cannot_undo(home, cli):
    write_config(home, BASE_CONFIG.format(max_bad_rows=0, extra_source='key = ["ts", "site", "metric"]'))
    inbox = home / "inbox" / "sensors"
    write_csv(inbox / "first.csv", HEADER + "2026-03-10 10:00:00,a,temp,1\n2026-03-10 10:00:00,b,temp,2\n"
              "2026-03-10 11:00:00,a,temp,3\n", age=4000)
    write_csv(inbox / "second.csv", HEADER + "2026-03-10 11:00:00,a,temp,30\n2026-03-10 12:00:00,a,temp,4\n")
    assert cli("ingest").exit_code == 0
    (inbox / "first.csv").unlink()

    result = cli("recover", "purge", "1")

    assert result.exit_code == 0, result.output
    assert ("purged ingestion 1: 2 rows deleted (1 of its 3 rows had been replaced already by later rows with "
            "the same key)") in result.output
    assert ("keyed source: the older rows this load replaced are not brought back; load their file again if you "
            "need them") in result.output
    with db(home) as conn:
        assert conn.execute("SELECT ts, site, value FROM sensors ORDER BY _id").fetchall() == [
            ("2026-03-10 11:00:00", "a", 30.0), ("2026-03-10 12:00:00", "a", 4.0)]


def test_a_moved_home_still_finds_its_workbooks(home, tmp_path, cli, monkeypatch):
    hour = (datetime.now(ZoneInfo("Europe/Berlin")) - timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
    write_csv(home / "inbox" / "sensors" / "recent.csv", HEADER + f"{hour:%Y-%m-%d %H}:05:00,berlin,temp,1\n")
    assert cli("ingest").exit_code == 0
    assert cli("hourly").exit_code == 0
    assert cli("daily").exit_code == 0
    moved = tmp_path / "moved" / "home"
    shutil.copytree(home, moved)
    home.rename(tmp_path / "gone")  # nothing is left where the workbooks were written
    monkeypatch.setenv("CSVREPORT_HOME", str(moved))

    facts = json.loads(cli("status", "--json").output)
    assert facts["workbooks"]["hourly"]["exists"] and facts["workbooks"]["daily"]["exists"]
    assert facts["workbooks"]["hourly"]["path"].startswith(str(moved / "reports"))
    assert facts["due_workbooks"] == []
    assert cli("status", "--check").output == "OK: nothing needs an operator\n"

    result = cli("recover", "reports")
    assert result.exit_code == 0, result.output
    assert "reports done: 0 workbook(s) written again; every recorded workbook is in place and unchanged" \
        in result.output
    assert "wrote the" not in cli("hourly").output  # nothing is due: every workbook is where it was recorded
