"""Migrations: from a blank database, idempotent, atomic per file, numbered uniquely, and readable without writes."""

from __future__ import annotations

import sqlite3
from importlib import resources
from pathlib import Path

import pytest

from csvreport import db
from csvreport.config import load_settings
from csvreport.errors import CsvReportError


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
        assert conn.execute("SELECT command, status, note FROM run_history").fetchall() == [("ingest", "ok", "migrated")]
        assert db.schema_version(conn) == 9001
    finally:
        conn.close()


def test_failing_migration_rolls_back_and_stays_pending(home, monkeypatch):
    settings = load_settings()
    broken = FakeEntry("9002_broken.sql", "-- Why: test\nCREATE TABLE half_done (x);\nINSERT INTO no_such_table VALUES (1);\n")
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
    with pytest.raises(CsvReportError, match="two migrations share number 0001: 0001_a.sql and 0001_b.sql"):
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
