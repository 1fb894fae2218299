"""Migrations: from a blank database, idempotent, atomic per file, numbered uniquely, and readable without writes."""

from __future__ import annotations

import json
import sqlite3
import sys
from contextlib import closing
from datetime import datetime
from importlib import metadata, resources
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import csvreport
from conftest import REPO, write_csv
from csvreport import db, files
from csvreport.config import load_settings
from csvreport.errors import CsvReportError

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib


class FakeEntry:
    """A migration file as `importlib.resources` hands it out."""

    def __init__(self, name: str, text: str):
        self.name = name
        self._text = text

    def read_text(self, encoding: str = "utf-8") -> str:
        return self._text


def use_migrations(monkeypatch, entries: list[FakeEntry]) -> None:
    real = resources.files

    class Folder:
        def iterdir(self):
            return iter(entries)

    monkeypatch.setattr(db.resources, "files", lambda pkg: Folder() if pkg == "csvreport.migrations" else real(pkg))


def shipped() -> list[FakeEntry]:
    return [FakeEntry(m.name, m.sql) for m in db.migrations()]


def tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_migrations_ship_as_a_package_of_the_distribution():
    import csvreport.migrations

    # A regular package (a namespace package has no __file__), so wheels and zip imports carry it.
    assert csvreport.migrations.__file__ is not None
    folder = Path(csvreport.migrations.__file__).parent
    assert {m.name for m in db.migrations()} == {p.name for p in folder.glob("*.sql")}


def test_the_version_is_kept_once():
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert metadata.version("csvreport") == csvreport.__version__


def test_shipped_migrations_are_numbered_and_explain_why():
    found = db.migrations()
    assert found and [m.version for m in found] == sorted({m.version for m in found})
    for migration in found:
        assert migration.sql.lstrip().startswith("-- Why:"), migration.name


def test_from_a_blank_database(home):
    settings = load_settings()
    conn = db.connect(settings)
    try:
        assert {"run_history", "ingestion_log", "seen_files", "schema_migrations"} <= tables(conn)
        assert db.schema_version(conn) == db.migrations()[-1].version
        assert db.pending(conn) == []
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_a_new_database_has_16_kb_pages_and_an_older_one_keeps_its_own(home, cli):
    settings = load_settings()
    with closing(db.connect(settings)) as conn:
        assert conn.execute("PRAGMA page_size").fetchone()[0] == db.PAGE_SIZE == 16384
        assert conn.execute("PRAGMA cache_size").fetchone()[0] == -db.CACHE_KIB  # a writer's: 8 MB
    with closing(db.connect(settings, readonly=True)) as conn:
        assert conn.execute("PRAGMA cache_size").fetchone()[0] == -2000  # SQLite's own
    older = settings.paths.database
    older.unlink()
    with closing(sqlite3.connect(older)) as conn:  # as csvreport created databases before: SQLite's 4 KB
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE earlier (x)")
    write_csv(home / "inbox" / "sensors" / "a.csv", "ts,site,metric,value\n2026-03-29 10:00:00,a,t,1\n")
    result = cli("ingest")
    assert result.exit_code == 0, result.output
    with closing(db.connect(settings)) as conn:
        assert conn.execute("PRAGMA page_size").fetchone()[0] == 4096
        assert conn.execute("SELECT count(*) FROM sensors").fetchone()[0] == 1
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_rerun_is_idempotent(home):
    settings = load_settings()
    db.connect(settings).close()
    conn = db.connect(settings)
    try:
        assert db.migrate(conn) == []
        applied = conn.execute("SELECT version FROM schema_migrations").fetchall()
        assert len(applied) == len(db.migrations())
    finally:
        conn.close()


def test_from_the_oldest_schema_with_data_in_it(home, monkeypatch):
    settings = load_settings()
    everything = shipped()
    use_migrations(monkeypatch, everything[:1])
    conn = db.connect(settings)
    conn.execute("INSERT INTO run_history (command, started_at, status) VALUES ('ingest', '2026-01-01', 'ok')")
    conn.close()
    extra = FakeEntry("9001_add_note.sql", "-- Why: a later change\nALTER TABLE run_history ADD COLUMN note TEXT;\n"
                      "UPDATE run_history SET note = 'migrated';\n")
    use_migrations(monkeypatch, everything + [extra])
    conn = db.connect(settings)
    try:
        history = conn.execute("SELECT command, status, note FROM run_history").fetchall()
        assert history == [("ingest", "ok", "migrated")]
        assert db.schema_version(conn) == 9001
    finally:
        conn.close()


def test_failing_migration_rolls_back_and_stays_pending(home, monkeypatch):
    settings = load_settings()
    broken = FakeEntry("9002_broken.sql",
                       "-- Why: test\nCREATE TABLE half_done (x);\nINSERT INTO no_such_table VALUES (1);\n")
    use_migrations(monkeypatch, shipped() + [broken])
    with pytest.raises(CsvReportError, match=r"migration 9002_broken.sql failed and was rolled back: no such table"):
        db.connect(settings)
    conn = sqlite3.connect(settings.paths.database)
    try:
        assert "half_done" not in tables(conn)
        assert [m.name for m in db.pending(conn)] == ["9002_broken.sql"]
        assert "run_history" in tables(conn)  # the good ones before it stay applied
    finally:
        conn.close()


def test_duplicate_numbers_are_refused(monkeypatch):
    use_migrations(monkeypatch, [FakeEntry("0001_a.sql", "-- Why: a\n"), FakeEntry("0001_b.sql", "-- Why: b\n")])
    with pytest.raises(CsvReportError, match=r"two migrations share number 0001: 0001_a\.sql and 0001_b\.sql"):
        db.migrations()


def test_pending_never_writes(home):
    settings = load_settings()
    path = settings.paths.database
    path.parent.mkdir(parents=True)
    sqlite3.connect(path).close()
    path.chmod(0o444)
    before = path.read_bytes()
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        assert [m.version for m in db.pending(conn)] == [m.version for m in db.migrations()]
        assert db.schema_version(conn) == 0
    finally:
        conn.close()
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_readonly_connect_does_not_migrate(home):
    settings = load_settings()
    with pytest.raises(CsvReportError, match="does not exist yet; run `csvreport ingest` first"):
        db.connect(settings, readonly=True)
    settings.paths.database.parent.mkdir(parents=True)
    sqlite3.connect(settings.paths.database).close()
    conn = db.connect(settings, readonly=True)
    try:
        assert db.pending(conn) and db.schema_version(conn) == 0
    finally:
        conn.close()


def test_0008_stores_workbook_paths_inside_the_home_relative_to_it(home, monkeypatch, tmp_path):
    settings = load_settings()
    everything = shipped()
    use_migrations(monkeypatch, [m for m in everything if m.name < "0008"])
    conn = db.connect(settings)
    inside, outside = home / "reports" / "hourly_20260310_1000.xlsx", tmp_path / "elsewhere" / "daily.xlsx"
    sibling = Path(f"{home}2") / "reports" / "hourly.xlsx"  # shares the home's name as a prefix, not its folder
    for i, path in enumerate((inside, outside, sibling)):
        conn.execute("INSERT INTO workbooks (kind, window_start, window_end, local_start, local_end, zone, path, "
                     "sha256, size, rows, files, data_mark, layout, reason, first_written_at, written_at) "
                     "VALUES ('hourly', ?, ?, '', '', 'UTC', ?, '', 0, 0, 0, 0, '', 'new', '', '')",
                     (i * 3600, i * 3600 + 3600, str(path)))
        conn.execute("INSERT INTO email_delivery (kind, path, window_start, window_end, window_label, subject, body, "
                     "status, queued_at) VALUES ('hourly', ?, 0, 3600, '', '', '', 'unsent', '')", (str(path),))
    conn.close()
    use_migrations(monkeypatch, everything)
    conn = db.connect(settings)
    try:
        expected = ["reports/hourly_20260310_1000.xlsx", str(outside), str(sibling)]
        assert [r[0] for r in conn.execute("SELECT path FROM workbooks ORDER BY id")] == expected
        assert [r[0] for r in conn.execute("SELECT path FROM email_delivery ORDER BY id")] == expected
        assert [settings.from_stored(p) for p in expected] == [inside, outside, sibling]
    finally:
        conn.close()


def _schema(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    """The bookkeeping schema as SQLite stores it (source tables are not made by migrations)."""
    return conn.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' AND tbl_name NOT LIKE 'sensors%' "
        "ORDER BY type, name").fetchall()


def test_a_database_of_the_oldest_schema_upgrades_with_its_data(home, cli, tmp_path):
    """As the first release left it (migration 0001 only) with a load in it, brought to today's schema."""
    settings = load_settings()
    source = settings.sources[0]
    csv = write_csv(home / "inbox" / "sensors" / "old.csv",
                    "ts,site,metric,value\n" + "".join(f"2026-03-10 10:{m:02d}:00,a,temp,{m}.5\n" for m in range(3)))
    info = csv.stat()
    with pytest.MonkeyPatch.context() as patch:
        use_migrations(patch, shipped()[:1])
        conn = db.connect(settings)
    try:
        assert db.schema_version(conn) == 1 and not db.has_table(conn, "workbooks")
        db.ensure_source_table(conn, source)
        zone = ZoneInfo(settings.timezone)
        with db.transaction(conn):
            run_id = db.insert(conn, "INSERT INTO run_history (command, arguments, pid, started_at, finished_at, "
                               "status, files_seen, files_loaded, rows_loaded) VALUES ('ingest', '{}', 1, "
                               "'2026-03-10T09:15:00.000Z', '2026-03-10T09:15:01.000Z', 'ok', 1, 1, 3)", ())
            stamps = [int(datetime(2026, 3, 10, 10, m, tzinfo=zone).timestamp()) for m in range(3)]
            ingestion_id = db.insert(
                conn, "INSERT INTO ingestion_log (source, path, sha256, size, mtime_ns, status, rows_read, "
                "rows_loaded, first_row_id, last_row_id, min_ts, max_ts, started_at, finished_at, run_id) "
                "VALUES ('sensors', ?, ?, ?, ?, 'loaded', 3, 3, 1, 3, ?, ?, '2026-03-10T09:15:00.500Z', "
                "'2026-03-10T09:15:01.000Z', ?)",
                (str(csv), files.sha256_of(csv), info.st_size, info.st_mtime_ns, stamps[0], stamps[-1], run_id))
            conn.executemany("INSERT INTO sensors (_ingestion_id, _ts, ts, site, metric, value) "
                             "VALUES (?, ?, ?, ?, ?, ?)",
                             [(ingestion_id, ts, f"2026-03-10 10:{m:02d}:00", "a", "temp", m + 0.5)
                              for m, ts in enumerate(stamps)])
            conn.execute("INSERT INTO seen_files VALUES ('sensors', ?, ?, ?, ?, ?)",
                         (str(csv), info.st_size, info.st_mtime_ns, files.sha256_of(csv), ingestion_id))
        before = {table: conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
                  for table in ("ingestion_log", "seen_files", "sensors")}
    finally:
        conn.close()

    # The next run brings it to today's schema: exactly what a blank database gets.
    result = cli("ingest")
    assert result.exit_code == 0, result.output
    fresh = sqlite3.connect(tmp_path / "fresh.sqlite3", isolation_level=None)
    upgraded = sqlite3.connect(settings.paths.database, isolation_level=None)
    try:
        db.migrate(fresh)
        assert _schema(upgraded) == _schema(fresh) and len(_schema(fresh)) > 10
        assert db.schema_version(upgraded) == db.migrations()[-1].version
        # Nothing that was there is lost or changed; the unchanged file is not loaded again.
        for table, rows in before.items():
            assert upgraded.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall() == rows, table
        assert upgraded.execute("SELECT command, status, rows_loaded, rows_deleted FROM run_history ORDER BY id"
                                ).fetchall() == [("ingest", "ok", 3, 0), ("ingest", "ok", 0, 0)]
    finally:
        fresh.close()
        upgraded.close()

    # And every stage works on it.
    assert cli("hourly", "--hour", "2026-03-10 10:00").exit_code == 0
    status = json.loads(cli("status", "--json").output)
    assert status["sources"][0]["rows"] == 3 and status["database"]["pending_migrations"] == []
    with closing(sqlite3.connect(settings.paths.database)) as conn:
        assert conn.execute("SELECT kind, rows FROM workbooks").fetchall() == [("hourly", 3)]
