"""Migrations: from a blank database, idempotent, atomic per file, numbered uniquely, and readable without writes."""

from __future__ import annotations

import sqlite3
import sys
from importlib import metadata, resources
from pathlib import Path

import pytest

import csvreport
from conftest import REPO
from csvreport import db
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
