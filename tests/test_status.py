"""`csvreport status`: the same facts as the tables, read-only, in four renderings, and --check."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest

from conftest import BASE_CONFIG, REPO, write_config, write_csv

HEADER = "ts,site,metric,value\n"

MIXED_CONFIG = """
timezone = "Europe/Berlin"

[ingest]
settle_seconds = 30
max_bad_rows = 1

[[sources]]
name = "sensors"
pattern = "inbox/sensors/*.csv"
timestamp = "ts"
columns = ["ts", "site", "metric", "value"]
types = { value = "real" }

[[sources]]
name = "meters"
pattern = "inbox/meters/*.csv"
timestamp = "ts"
columns = ["ts", "meter", "kwh"]
types = { kwh = "real" }
key = ["ts", "meter"]

[[sources]]
name = "legacy"
enabled = false
pattern = "inbox/legacy/*.csv"
columns = ["a"]
"""


def rows(hour: int, site: str, count: int) -> str:
    return "".join(f"2026-03-10 {hour:02d}:{i:02d}:00,{site},temp,{i}.5\n" for i in range(count))


def database(home: Path) -> Path:
    return home / "data" / "csvreport.sqlite3"


def status_json(cli) -> dict:
    result = cli("status", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def mixed_scenario(home: Path, cli) -> None:
    """Loads, a rejected row, a quarantined file, keyed upserts, a purge, a pending and a settling file."""
    write_config(home, MIXED_CONFIG)
    sensors, meters = home / "inbox" / "sensors", home / "inbox" / "meters"
    write_csv(sensors / "a.csv", HEADER + rows(10, "a", 5) + "2026-03-10 10:59:00,a,temp,hot\n")
    write_csv(sensors / "b.csv", HEADER + rows(11, "b", 3), age=3000)
    write_csv(sensors / "broken.csv", "ts,site\n2026-03-10 10:00:00,a\n", age=2000)
    write_csv(meters / "m1.csv", "ts,meter,kwh\n2026-03-10 10:00:00,m1,1\n2026-03-10 10:00:00,m2,2\n"
              "2026-03-10 11:00:00,m1,3\n")
    write_csv(meters / "m2.csv", "ts,meter,kwh\n2026-03-10 11:00:00,m1,30\n2026-03-10 12:00:00,m1,4\n", age=3000)
    assert cli("ingest").exit_code == 0
    (sensors / "b.csv").rename(home / "b.csv")
    assert cli("recover", "purge", "2").exit_code == 0
    assert cli("hourly").exit_code == 0
    assert cli("daily").exit_code == 0
    write_csv(sensors / "pending.csv", HEADER + rows(12, "c", 2))
    write_csv(sensors / "settling.csv", HEADER + rows(13, "d", 2), age=0)


def test_json_counts_agree_with_the_tables_and_run_history(home, cli):
    mixed_scenario(home, cli)

    facts = status_json(cli)

    conn = sqlite3.connect(database(home))
    conn.row_factory = sqlite3.Row
    by_name = {s["name"]: s for s in facts["sources"]}
    assert list(by_name) == ["sensors", "meters", "legacy"]
    sensors, meters, legacy = by_name["sensors"], by_name["meters"], by_name["legacy"]
    assert sensors["rows"] == conn.execute("SELECT count(*) FROM sensors").fetchone()[0] == 5
    assert sensors["rows_exact"] is True
    assert sensors["rows_rejected"] == 1
    assert sensors["files_loaded"] == conn.execute(
        "SELECT count(*) FROM ingestion_log WHERE source = 'sensors' AND status = 'loaded'").fetchone()[0] == 1
    assert sensors["files_quarantined"] == 1 == len(list((home / "quarantine" / "sensors").glob("*.reason.json")))
    assert (sensors["files_pending"], sensors["files_waiting"]) == (1, 1)
    assert sensors["last_ingested_at"] == conn.execute(
        "SELECT max(finished_at) FROM ingestion_log WHERE source = 'sensors' AND status != 'quarantined'"
    ).fetchone()[0]
    # Keyed: m2's row for (11:00, m1) replaced m1's, so the sum of loads is an upper bound.
    assert meters["rows_exact"] is False
    assert meters["rows"] == 5 and conn.execute("SELECT count(*) FROM meters").fetchone()[0] == 4
    assert (meters["files_loaded"], meters["files_pending"], meters["files_quarantined"]) == (2, 0, 0)
    assert (legacy["enabled"], legacy["files_pending"], legacy["rows"]) == (False, None, 0)

    runs = {r["command"]: r for r in facts["runs"]}
    assert set(runs) == {row[0] for row in conn.execute("SELECT DISTINCT command FROM run_history")}
    for command, run in runs.items():
        last = dict(conn.execute("SELECT * FROM run_history WHERE command = ? ORDER BY id DESC LIMIT 1",
                                 (command,)).fetchone())
        last["arguments"] = json.loads(last["arguments"])
        assert {k: run[k] for k in last} == last
    assert runs["ingest"]["status"] == "warn" and runs["ingest"]["rows_loaded"] == 13
    assert runs["recover purge"]["rows_deleted"] == 3
    assert facts["database"]["pending_migrations"] == []
    assert facts["problems"] == [
        "quarantine not empty: 1 file(s) of source sensors in "
        f"{home / 'quarantine' / 'sensors'}; see `csvreport recover list`"]


def test_prometheus_output_parses_and_carries_the_same_numbers(home, cli):
    from prometheus_client.parser import text_string_to_metric_families

    mixed_scenario(home, cli)
    facts = status_json(cli)
    result = cli("status", "--prometheus")
    assert result.exit_code == 0, result.output

    samples = {}
    for family in text_string_to_metric_families(result.output):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value

    def value(name: str, **labels: str) -> float:
        return samples[(f"csvreport_{name}", tuple(sorted(labels.items())))]

    assert value("database_up") == 1
    assert value("schema_version") == facts["database"]["schema_version"]
    assert value("pending_migrations") == 0
    for source in facts["sources"]:
        exact = str(source["rows_exact"]).lower()
        assert value("source_rows", source=source["name"], exact=exact) == source["rows"]
        assert value("source_rows_rejected", source=source["name"]) == source["rows_rejected"]
        for state in ("loaded", "quarantined", "pending", "waiting"):
            if source[f"files_{state}"] is None:
                assert ("csvreport_source_files", (("source", source["name"]), ("state", state))) not in samples
            else:
                assert value("source_files", source=source["name"], state=state) == source[f"files_{state}"]
    for run in facts["runs"]:
        assert value("last_run_status", command=run["command"], status=run["status"]) == 1
        assert value("last_run_rows_loaded", command=run["command"]) == run["rows_loaded"]
    assert value("problems") == len(facts["problems"]) == 1


def test_text_output_off_a_terminal_and_the_rich_table(home, cli, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    mixed_scenario(home, cli)
    result = cli("status")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"csvreport status of {home} at ")
    assert "  sensors  pending 1 (+1 settling)  loaded 1  quarantined 1  rows 5  last file 20" in result.output
    assert "  meters  pending 0  loaded 2  quarantined 0  rows 5 (at most: keyed source)" in result.output
    assert "  legacy  disabled" in result.output
    assert "problems: 1\n  - quarantine not empty" in result.output

    from csvreport import status, status_render
    from csvreport.config import load_settings

    status_render.print_table(status.gather(load_settings(home)))
    table = capsys.readouterr().out
    assert "sources" in table and "sensors" in table and "last runs" in table and "recover purge" in table
    assert "quarantine not empty" in table


# -- --check: one line per problem, exit 1; 0 when all is well ---------------------------------


def all_well(home: Path, cli) -> None:
    write_csv(home / "inbox" / "sensors" / "a.csv", HEADER + rows(10, "a", 3))
    assert cli("ingest").exit_code == 0
    assert cli("hourly").exit_code == 0
    assert cli("daily").exit_code == 0


def test_check_is_quiet_and_zero_when_all_is_well(home, cli):
    all_well(home, cli)
    result = cli("status", "--check")
    assert result.exit_code == 0, result.output
    assert result.output == "OK: nothing needs an operator\n"


def test_check_database_missing(home, cli):
    result = cli("status", "--check")
    assert result.exit_code == 1
    assert result.output == (f"database unreachable: database {database(home)} does not exist yet; "
                             "run `csvreport ingest` first\n")
    assert not (home / "data").exists() and not (home / "logs").exists()


def test_check_database_not_a_database(home, cli):
    database(home).parent.mkdir()
    database(home).write_bytes(b"this is not SQLite\n" * 100)
    result = cli("status", "--check")
    assert result.exit_code == 1
    assert result.output == (f"database unreachable: cannot read {database(home)}: file is not a database\n")
    facts = status_json(cli)
    assert facts["database"]["reachable"] is False
    assert facts["sources"][0]["files_pending"] == 0


def test_check_unexpected_schema_version(home, cli):
    all_well(home, cli)
    with sqlite3.connect(database(home)) as conn:
        conn.execute("INSERT INTO schema_migrations VALUES (99, '0099_from_the_future.sql', '2027-01-01T00:00:00Z')")
    result = cli("status", "--check")
    assert result.exit_code == 1
    assert result.output == (
        "database schema version 99 is newer than this csvreport knows "
        f"({status_json(cli)['database']['expected_schema_version']}; unknown migrations: "
        "0099_from_the_future.sql): install the csvreport version that wrote it, or restore the backup taken "
        "before the upgrade\n")


def test_check_last_run_failed(home, cli):
    all_well(home, cli)
    (home / "quarantine").write_text("a file where the folder should be", encoding="utf-8")
    write_csv(home / "inbox" / "sensors" / "bad.csv", "ts\n2026-03-10 10:00:00\n")
    assert cli("ingest").exit_code == 1
    with sqlite3.connect(database(home)) as conn:
        run_id, error, started = conn.execute(
            "SELECT id, error, started_at FROM run_history WHERE status = 'failed'").fetchone()

    result = cli("status", "--check")

    assert result.exit_code == 1
    assert result.output == (f"last ingest run failed: {error} (run {run_id}, started {started}); see "
                             "logs/csvreport.log and docs/operations.md\n")
    # A later run that goes well clears it.
    (home / "quarantine").unlink()
    assert cli("ingest").exit_code == 0
    assert cli("status", "--check").exit_code == 1  # now the bad file sits in quarantine
    assert "last ingest run failed" not in cli("status", "--check").output


def test_check_interrupted_run(home, cli):
    all_well(home, cli)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    pid = int(dead.stdout)
    with sqlite3.connect(database(home)) as conn:
        run_id = conn.execute("INSERT INTO run_history (command, pid, started_at, status) VALUES "
                              "('hourly', ?, '2026-03-10T10:00:00.000Z', 'running')", (pid,)).lastrowid
    result = cli("status", "--check")
    assert result.exit_code == 1
    assert result.output == (f"last hourly run was interrupted (pid {pid} is gone without recording an outcome) "
                             f"(run {run_id}, started 2026-03-10T10:00:00.000Z); see logs/csvreport.log and "
                             "docs/operations.md\n")


def test_check_quarantine_not_empty_until_replayed_or_deleted(home, cli):
    all_well(home, cli)
    write_csv(home / "inbox" / "sensors" / "bad.csv", "ts\n2026-03-10 10:00:00\n")
    assert cli("ingest").exit_code == 0
    result = cli("status", "--check")
    assert result.exit_code == 1
    assert result.output == (f"quarantine not empty: 1 file(s) of source sensors in {home / 'quarantine' / 'sensors'}"
                             "; see `csvreport recover list`\n")
    # Deleting a quarantined file (and its reason) is how an operator drops it for good.
    (home / "quarantine" / "sensors" / "bad.csv").unlink()
    (home / "quarantine" / "sensors" / "bad.csv.reason.json").unlink()
    assert cli("status", "--check").exit_code == 0


def test_check_due_workbook_missing(home, cli):
    all_well(home, cli)
    with sqlite3.connect(database(home)) as conn:
        path, label_start = conn.execute(
            "SELECT path, local_start FROM workbooks WHERE kind = 'hourly' AND window_end < ? "
            "ORDER BY window_start DESC LIMIT 1", (time.time() - 2 * 3600,)).fetchone()
    path = home / path  # stored relative to the home
    path.unlink()

    result = cli("status", "--check")

    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"hourly workbook {Path(path).name} is missing: {path} is gone (window "
                               f"{label_start[:10]} {label_start[11:16]} ")
    assert lines[0].endswith("); check that cron runs `csvreport hourly`, or run it")


def test_check_due_workbooks_of_a_cron_that_never_runs_hourly(home, cli):
    write_csv(home / "inbox" / "sensors" / "a.csv", HEADER + rows(10, "a", 3))
    assert cli("ingest").exit_code == 0
    result = cli("status", "--check")
    assert result.exit_code == 1
    hourly, daily = result.output.splitlines()
    assert re.match(r"2[234] hourly workbooks are not written, hourly_\d{8}_\d{4}\.xlsx to hourly_", hourly)
    assert daily.startswith("daily workbook") or " daily workbooks are not written, daily_" in daily
    for line in (hourly, daily):
        assert line.endswith(f"check that cron runs `csvreport {line.split(' workbook')[0].split()[-1]}`, or run it")


def test_check_stale_workbook_after_late_data(home, cli):
    from csvreport import status
    from csvreport.config import load_settings

    all_well(home, cli)
    with sqlite3.connect(database(home)) as conn:
        start, name = conn.execute(
            "SELECT local_start, path FROM workbooks WHERE kind = 'hourly' AND window_end < ? "
            "ORDER BY window_start DESC LIMIT 1", (time.time() - 3 * 3600,)).fetchone()
    late = f"{start[:10]} {start[11:13]}:30:00"
    write_csv(home / "inbox" / "sensors" / "late.csv", HEADER + f"{late},z,temp,1\n")
    assert cli("ingest").exit_code == 0

    facts = status_json(cli)
    stale = [d for d in facts["due_workbooks"] if d["state"] == "stale"]
    assert [d["path"] for d in stale if d["kind"] == "hourly"] == [str(home / name)]
    assert all(not d["overdue"] for d in stale)  # just arrived: cron's next hourly run rewrites it
    assert cli("status", "--check").exit_code == 0

    later = status.gather(load_settings(home), now=time.time() + 2 * 3600)
    assert any(p.startswith(f"hourly workbook {Path(name).name} is stale: ingestion 2 arrived")
               for p in later.problems)


def test_check_no_file_ingested_for_too_long(home, cli):
    from csvreport import status
    from csvreport.config import load_settings

    write_config(home, BASE_CONFIG.format(max_bad_rows=0, extra_source="") + "\n[monitor]\nmax_ingest_age_hours = 2\n")
    assert cli("ingest").exit_code == 0
    result = cli("status", "--check")
    assert result.exit_code == 1
    assert ("no file ever ingested for source sensors ([monitor] max_ingest_age_hours = 2); check that the "
            "exporter delivers into its pattern") in result.output.splitlines()

    all_well(home, cli)
    assert cli("status", "--check").exit_code == 0
    facts = status.gather(load_settings(home), now=time.time() + 3 * 3600)
    age = [p for p in facts.problems if p.startswith("no file ingested for source sensors for 3.0 hours (last at ")]
    assert len(age) == 1 and age[0].endswith(
        "; [monitor] max_ingest_age_hours = 2); check that the exporter still delivers")


# -- it only reads ---------------------------------------------------------------------------------


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "absent"


def test_status_reports_pending_migrations_and_never_writes(home, cli):
    from csvreport import db

    # A database as the oldest csvreport left it: only migration 0001.
    database(home).parent.mkdir()
    first = db.migrations()[0]
    with sqlite3.connect(database(home)) as conn:
        conn.executescript(first.sql)
        conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                     "applied_at TEXT NOT NULL)")
        conn.execute("INSERT INTO schema_migrations VALUES (1, ?, '2026-01-01T00:00:00Z')", (first.name,))
    os.chmod(database(home), 0o444)
    os.chmod(database(home).parent, 0o555)
    before = {p.name: _digest(p) for p in database(home).parent.iterdir()}
    try:
        facts = status_json(cli)
        check = cli("status", "--check")
        text = cli("status")
        listing = cli("recover", "list")
    finally:
        os.chmod(database(home).parent, 0o755)
    assert facts["database"]["schema_version"] == 1
    assert facts["database"]["pending_migrations"] == [m.name for m in db.migrations()[1:]]
    assert facts["workbooks"] == {"hourly": None, "daily": None} and facts["due_workbooks"] is None
    assert check.exit_code == 0, check.output
    assert "pending migrations (" in text.output and "applied by the next ingest/hourly/daily" in text.output
    assert listing.output == "No quarantined files.\n"
    # Not a byte of the database changed; no lock file, no log file appeared.
    assert {p.name: _digest(p) for p in database(home).parent.iterdir() if not p.name.endswith("-shm")
            and not p.name.endswith("-wal")} == before
    assert _digest(database(home).with_name("csvreport.sqlite3-wal")) in ("absent", _digest(Path("/dev/null")))
    assert not (home / "logs").exists()
    with sqlite3.connect(database(home)) as conn:
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == 1


def test_status_neither_takes_the_lock_nor_waits_for_a_writer(home, cli, monkeypatch):
    from csvreport.config import load_settings
    from csvreport.lock import exclusive

    def no_waiting(seconds: float) -> None:
        raise AssertionError(f"status slept {seconds} s")

    all_well(home, cli)
    settings = load_settings(home)
    writer = sqlite3.connect(database(home), isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO run_history (command, started_at) VALUES ('ingest', '2026-01-01T00:00:00Z')")
    try:
        with exclusive(settings.paths.database, "csvreport ingest (test)"), monkeypatch.context() as patch:
            patch.setattr(time, "sleep", no_waiting)  # the lock and any retry loop wait by sleeping
            result = cli("status", "--json")
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert result.exit_code == 0, result.output  # exit 3 had it tried the lock
    assert {r["command"]: r["status"] for r in json.loads(result.output)["runs"]}["ingest"] == "ok"


def test_status_never_scans_a_source_table(home, cli, monkeypatch):
    from csvreport import db, status
    from csvreport.config import load_settings

    all_well(home, cli)
    statements: list[str] = []
    real_connect = db.connect

    def traced(*args, **kwargs):
        conn = real_connect(*args, **kwargs)
        conn.set_trace_callback(statements.append)
        return conn

    monkeypatch.setattr(db, "connect", traced)
    facts = status.gather(load_settings(home))
    assert facts.sources[0].rows == 3
    assert statements
    offending = [s for s in statements if '"sensors"' in s or "FROM sensors" in s]
    # The only look at a source table is the staleness probe of reports.stale(), bounded by _ts and _ingestion_id.
    assert all("_ts >=" in s and "_ingestion_id =" in s and "LIMIT 1" in s for s in offending), offending
    assert not any("count(" in s.lower() and ("sensors" in s) for s in statements)


def test_rows_moved_to_the_archive_are_counted_apart(home, cli):
    pytest.importorskip("pyarrow")
    january = HEADER + "".join(f"2026-01-15 10:{m:02d}:00,a,temp,{m}\n" for m in range(7))
    february = HEADER + "".join(f"2026-02-15 10:{m:02d}:00,a,temp,{m}\n" for m in range(3))
    write_csv(home / "inbox" / "sensors" / "jan.csv", january)
    write_csv(home / "inbox" / "sensors" / "feb.csv", february, age=3000)
    assert cli("ingest").exit_code == 0
    result = cli("archive", "--before", "2026-02")
    assert result.exit_code == 0, result.output

    sensors = status_json(cli)["sources"][0]
    with sqlite3.connect(database(home)) as conn:
        assert sensors["rows"] == conn.execute("SELECT count(*) FROM sensors").fetchone()[0] == 3
    assert sensors["rows_archived"] == 7
    assert "rows 3 (+7 archived)" in cli("status").output


def test_check_workbook_unsent_by_email_for_more_than_an_hour(home, cli):
    import socket

    from csvreport import status
    from csvreport.config import load_settings

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once the socket is closed
    write_config(home, BASE_CONFIG.format(max_bad_rows=0, extra_source="") + f"""
[email]
host = "127.0.0.1"
port = {port}
security = "none"
sender = "reports@example.com"
hourly_to = ["ops@example.com"]
timeout = 2
""")
    write_csv(home / "inbox" / "sensors" / "a.csv", HEADER + rows(10, "a", 3))
    assert cli("ingest").exit_code == 0
    assert cli("hourly").exit_code == 0
    assert cli("daily").exit_code == 0

    facts = status_json(cli)
    waiting = facts["unsent_workbooks"]
    assert len(waiting) >= 23 and not any(u["overdue"] for u in waiting)  # the hours of the catch-up window
    assert cli("status", "--check").exit_code == 0  # the next hourly run retries: no alarm yet

    later = status.gather(load_settings(home), now=time.time() + 2 * 3600)
    unsent = [p for p in later.problems if " unsent by email since " in p]
    assert len(unsent) == 1  # one problem, however many workbooks wait
    assert unsent[0].startswith(f"{len(waiting)} workbooks (hourly_")
    assert unsent[0].endswith("fix [email] and run `csvreport send` (see docs/email.md)")


def test_status_and_recover_list_on_a_database_in_a_folder_nobody_may_write(home, cli, tmp_path):
    """An immutable file in an immutable folder: not even root may write there, nor create -shm."""
    all_well(home, cli)
    write_csv(home / "inbox" / "sensors" / "bad.csv", "ts\n2026-03-10 10:00:00\n")
    assert cli("ingest").exit_code == 0
    expected = status_json(cli)
    data = database(home).parent
    copy = tmp_path / "copy.sqlite3"
    with closing(sqlite3.connect(database(home))) as source, closing(sqlite3.connect(copy)) as target:
        source.backup(target)
    shutil.rmtree(data)
    data.mkdir()
    shutil.move(copy, database(home))  # as the last writer leaves it: no -wal, no -shm
    frozen = [database(home), data]
    if subprocess.run(["chattr", "+i", *map(str, frozen)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available here (needs root and a file system with immutable files)")
    try:
        with pytest.raises(OSError):
            (data / "probe").write_text("x")
        facts = status_json(cli)
        listing = cli("recover", "list")
    finally:
        subprocess.run(["chattr", "-i", *map(str, frozen)], check=True)
    assert facts["database"]["reachable"] is True
    assert facts["sources"] == expected["sources"]
    assert facts["runs"] == expected["runs"]
    assert listing.exit_code == 0, listing.output
    assert "quarantine/sensors/bad.csv" in listing.output
    assert sorted(p.name for p in data.iterdir()) == ["csvreport.sqlite3"]


def test_a_skipped_run_shows_how_the_last_real_one_ended(home, cli):
    from csvreport.config import load_settings
    from csvreport.lock import exclusive

    all_well(home, cli)
    with exclusive(load_settings(home).paths.database, "csvreport hourly (test)"):
        assert cli("ingest").exit_code == 3
    facts = status_json(cli)
    ingest = {r["command"]: r for r in facts["runs"]}["ingest"]
    assert ingest["status"] == "skipped" and ingest["last_completed"]["status"] == "ok"
    assert "  ingest  skipped (last completed: ok)  " in cli("status").output
    assert cli("status", "--check").exit_code == 0


def test_json_and_prometheus_together_are_a_usage_error(home, cli):
    mixed_scenario(home, cli)
    result = cli("status", "--json", "--prometheus")
    assert result.exit_code == 2
    assert result.output == "Error: status: --json and --prometheus are two output formats; give one of them\n"


def test_the_table_on_a_terminal_says_written_once(home, cli):
    import pty

    mixed_scenario(home, cli)
    main, secondary = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200", "TERM": "xterm"}
    with subprocess.Popen([sys.executable, "-m", "csvreport", "status"], stdin=secondary, stdout=secondary,
                          stderr=secondary, env=env) as proc:
        os.close(secondary)
        chunks = []
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # the terminal closed: the command is done
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.wait(timeout=60) == 0
    os.close(main)
    table = b"".join(chunks).decode("utf-8", errors="replace")
    assert "workbooks" in table and "hourly_" in table, table
    assert re.search(r"│ hourly\s+│ hourly_\d{8}_\d{4}\.xlsx\s+│ \S+ to \S+\s+│ 20\d\d-\d\d-\d\dT", table), table
    assert "│ written " not in table  # the column is titled "written": its cells hold the time alone


# -- the judging works on typed facts alone ------------------------------------------------------


def test_problems_are_judged_from_the_facts_alone(home):
    from csvreport import health, status_render
    from csvreport.config import load_settings
    from csvreport.status import DatabaseFacts, DueWorkbook, Facts, RunFacts, SourceFacts

    settings = load_settings(home)
    facts = Facts(
        generated_at="2026-03-10T12:00:00Z", home=str(home),
        database=DatabaseFacts(path="db", reachable=True, schema_version=5, expected_schema_version=5),
        sources=[SourceFacts(name="sensors", enabled=True, files_pending=0, files_waiting=0, files_loaded=1,
                             files_quarantined=2, rows=3, rows_exact=True, rows_archived=0, rows_rejected=0,
                             last_ingested_at="2026-03-10T11:00:00.000Z")],
        runs=[RunFacts(id=7, command="daily", status="skipped",
                       last_completed=RunFacts(id=6, command="daily", status="failed", error="disk full",
                                               started_at="2026-03-10T10:00:00.000Z"))],
        due_workbooks=[DueWorkbook(kind="hourly", path="/r/hourly_20260310_1000.xlsx", window="10:00-11:00",
                                   state="missing", detail="", due_since="2026-03-10T10:00:00Z", overdue=True)])
    expected = [
        "last daily run failed: disk full (run 6, started 2026-03-10T10:00:00.000Z); see logs/csvreport.log "
        "and docs/operations.md",
        f"quarantine not empty: 2 file(s) of source sensors in {home / 'quarantine' / 'sensors'}; "
        "see `csvreport recover list`",
        "hourly workbook hourly_20260310_1000.xlsx is missing (window 10:00-11:00, due since "
        "2026-03-10T10:00:00Z); check that cron runs `csvreport hourly`, or run it"]
    assert health.problems(facts, settings, now=0) == expected
    facts.problems = expected
    assert status_render.to_check(facts) == "\n".join(expected)
    assert json.loads(status_render.to_json(facts))["runs"][0]["last_completed"]["error"] == "disk full"

    facts.database = DatabaseFacts(path="db", error="cannot read db: file is not a database")
    assert health.problems(facts, settings, now=0) == ["database unreachable: cannot read db: file is not a database"]


def test_the_terminal_table_shows_bracketed_config_names_as_written(home, monkeypatch, capsys):
    """rich reads `[email]` as a style tag and drops it unless the cells are plain text."""
    from csvreport import status_render
    from csvreport.status import DatabaseFacts, Facts, RunFacts

    monkeypatch.setenv("COLUMNS", "250")
    facts = Facts(generated_at="2026-03-10T12:00:00Z", home=str(home),
                  database=DatabaseFacts(path="db", reachable=True, schema_version=8, expected_schema_version=8),
                  runs=[RunFacts(id=3, command="send", status="failed", error="fix [email] and run csvreport send",
                                 started_at="2026-03-10T10:00:00.000Z")])
    status_render.print_table(facts)
    assert "fix [email] and run csvreport send" in capsys.readouterr().out

    facts.database = DatabaseFacts(path="db", error="cannot read db: see [paths] database")
    status_render.print_table(facts)
    assert "database: UNREACHABLE: cannot read db: see [paths] database" in capsys.readouterr().out
