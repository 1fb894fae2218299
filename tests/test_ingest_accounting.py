"""Every input row is accounted for; names never reach SQL raw; --dry-run and --source."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

from conftest import write_config, write_csv

HEADER = "ts,site,metric,value\n"


def row(i: int, value: str | None = None) -> str:
    return f"2026-03-28 10:{i // 60 % 60:02d}:{i % 60:02d},s,m,{value if value is not None else i}\n"


def query(home: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(home / "data" / "csvreport.sqlite3") as conn:
        return conn.execute(sql).fetchall()


def test_every_input_row_is_accounted_for(home, cli):
    write_config(home, max_bad_rows=2)
    inbox = home / "inbox" / "sensors"
    write_csv(inbox / "clean.csv", HEADER + "".join(row(i) for i in range(10)))
    write_csv(inbox / "some_bad.csv", HEADER + row(0) + row(1, "x") + "\n,,,\n" + row(2) + row(3, "y"))
    write_csv(inbox / "too_bad.csv", HEADER + row(0, "a") + row(1, "b") + row(2, "c") + row(3))
    write_csv(inbox / "latin.csv", (HEADER + row(0) + "2026-03-28 10:00:01,K\xf6ln,m,1\n").encode("latin-1"))
    write_csv(inbox / "no_metric.csv", "ts,site,value\n" + "2026-03-28 10:00:00,s,1\n" * 3)
    input_rows = 10 + 4 + 4 + 2 + 3
    result = cli("ingest")
    assert result.exit_code == 0, result.output

    in_tables = query(home, "SELECT count(*) FROM sensors")[0][0]
    in_rejects = 0
    for path in (home / "quarantine" / "sensors").glob("*.rejects.csv"):
        with open(path, newline="", encoding="utf-8") as handle:
            in_rejects += sum(1 for _ in csv.reader(handle)) - 1
    in_quarantine = 0
    for reason in (home / "quarantine" / "sensors").glob("*.reason.json"):
        quarantined = reason.with_name(reason.name[: -len(".reason.json")])
        with open(quarantined, newline="", encoding="latin-1") as handle:
            in_quarantine += sum(1 for r in csv.reader(handle) if any(f.strip() for f in r)) - 1
    assert (in_tables, in_rejects, in_quarantine) == (12, 2, 9)
    assert in_tables + in_rejects + in_quarantine == input_rows

    (run,) = query(home, "SELECT status, files_seen, files_loaded, files_quarantined, rows_loaded, rows_rejected, "
                         "rows_quarantined FROM run_history")
    assert run == ("warn", 5, 2, 3, in_tables, in_rejects, in_quarantine)
    logged = query(home, "SELECT sum(rows_loaded), sum(rows_rejected), "
                         "sum(CASE WHEN status = 'quarantined' THEN rows_read END) FROM ingestion_log")
    assert logged == [(in_tables, in_rejects, in_quarantine)]
    assert query(home, "SELECT count(*) FROM ingestion_log WHERE status = 'loaded' AND "
                       "rows_read != rows_loaded + rows_rejected") == [(0,)]


def test_hostile_header_and_quoted_configured_names_are_harmless(home, cli):
    write_config(home, text="""
        [ingest]
        settle_seconds = 0
        [[sources]]
        name = "evil"
        pattern = "inbox/evil/*.csv"
        columns = ['we"ird', "x'; DROP TABLE ingestion_log; --", "plain"]
        types = { plain = "integer" }
    """)
    header = ['x"; DROP TABLE run_history; --', 'WE"IRD', "x'; DROP TABLE ingestion_log; --", "plain",
              "y]; DELETE FROM evil; --"]
    path = home / "inbox" / "evil" / "a.csv"
    path.parent.mkdir(parents=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerow(["1", "q\"uote", "semi;colon", "7", "z"])
    write_csv(path, path.read_bytes())
    result = cli("ingest")
    assert result.exit_code == 0, result.output
    names = [r[1] for r in query(home, "PRAGMA table_info(evil)")]
    assert names == ["_id", "_ingestion_id", "_ts", 'we"ird', "x'; DROP TABLE ingestion_log; --", "plain"]
    assert query(home, 'SELECT "we""ird", "x\'; DROP TABLE ingestion_log; --", plain FROM evil') == [
        ('q"uote', "semi;colon", 7)]
    assert query(home, "SELECT count(*) FROM run_history") == [(1,)]
    assert query(home, "SELECT count(*) FROM ingestion_log") == [(1,)]


def _snapshot(home: Path) -> dict[str, bytes]:
    return {str(p.relative_to(home)): p.read_bytes() for p in sorted(home.rglob("*"))
            if p.is_file() and "data" not in p.parts and "logs" not in p.parts}


def test_dry_run_changes_nothing_and_says_what_it_would_do(home, cli):
    write_config(home, max_bad_rows=1)
    inbox = home / "inbox" / "sensors"
    write_csv(inbox / "good.csv", HEADER + row(0) + row(1, "x") + row(2))
    write_csv(inbox / "broken.csv", "nothing,useful\n1,2\n")
    before = _snapshot(home)
    result = cli("ingest", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "would load 2 rows" in result.output
    assert "1 bad rows would be rejected; first at line 3" in result.output
    assert "would be quarantined: the header lacks column 'ts'" in result.output
    assert "dry run: nothing was changed; 2 files seen, 0 known already, 1 would load (2 rows, 1 rejected), " \
           "1 would be quarantined (1 rows)" in result.output
    assert _snapshot(home) == before
    assert not (home / "quarantine").exists()
    assert not (home / "data").exists()  # not even an empty database
    # with a database in place: still no rows, no run_history, no bookkeeping, no table
    from csvreport import db
    from csvreport.config import load_settings
    db.connect(load_settings()).close()
    result = cli("ingest", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "would load 2 rows" in result.output
    assert _snapshot(home) == before
    for table in ("run_history", "ingestion_log", "seen_files"):
        assert query(home, f"SELECT count(*) FROM {table}") == [(0,)]
    assert query(home, "SELECT count(*) FROM sqlite_master WHERE name = 'sensors'") == [(0,)]
    # and the real run afterwards does all of it
    result = cli("ingest")
    assert result.exit_code == 0, result.output
    assert query(home, "SELECT count(*) FROM sensors") == [(2,)]
    assert (home / "quarantine" / "sensors" / "broken.csv").exists()


def test_dry_run_does_not_apply_pending_migrations(home, cli, monkeypatch):
    from csvreport import db
    from csvreport.config import load_settings

    db.connect(load_settings()).close()
    real = db.migrations()
    later = db.Migration(9001, "9001_note.sql", "-- Why: test\nALTER TABLE run_history ADD COLUMN note TEXT;\n")
    monkeypatch.setattr(db, "migrations", lambda: real + [later])
    write_csv(home / "inbox" / "sensors" / "a.csv", HEADER + row(1))
    result = cli("ingest", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "would load 1 rows" in result.output
    assert query(home, "SELECT count(*) FROM schema_migrations WHERE version = 9001") == [(0,)]
    assert "note" not in [r[1] for r in query(home, "PRAGMA table_info(run_history)")]


def test_source_option_limits_the_run(home, cli):
    write_config(home, extra_source="""
        [[sources]]
        name = "meters"
        pattern = "inbox/meters/*.csv"
        columns = ["id"]
    """)
    write_csv(home / "inbox" / "sensors" / "a.csv", HEADER + row(0))
    write_csv(home / "inbox" / "meters" / "m.csv", "id\n1\n2\n")
    result = cli("ingest", "--source", "meters")
    assert result.exit_code == 0, result.output
    assert query(home, "SELECT count(*) FROM meters") == [(2,)]
    assert query(home, "SELECT count(*) FROM sqlite_master WHERE name = 'sensors'") == [(0,)]
    (arguments,) = query(home, "SELECT arguments FROM run_history")[0]
    assert json.loads(arguments)["source"] == "meters"
    result = cli("ingest", "--source", "sensor")
    assert result.exit_code == 2
    assert f"Error: no source named 'sensor' in {home / 'config' / 'settings.toml'}; did you mean 'sensors'? " \
           "(known: sensors, meters)" \
        in result.output


def test_no_enabled_source_is_a_warning(home, cli):
    text = (home / "config" / "settings.toml").read_text()
    write_config(home, text=text.replace('name = "sensors"', 'name = "sensors"\nenabled = false'))
    write_csv(home / "inbox" / "sensors" / "a.csv", HEADER + row(0))
    result = cli("ingest")
    assert result.exit_code == 0, result.output
    assert f"no enabled source in {home / 'config' / 'settings.toml'}: nothing to load" in result.output
    assert query(home, "SELECT status, files_seen FROM run_history") == [("warn", 0)]
    result = cli("ingest", "--source", "sensors")  # asked for by name, a disabled source still loads
    assert result.exit_code == 0, result.output
    assert "source is disabled in the configuration; loading it because --source asked" in result.output
    assert query(home, "SELECT count(*) FROM sensors") == [(1,)]
