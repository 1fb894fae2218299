"""A large file shared with a helper process gives exactly what one process gives.

Each test loads the same file twice into fresh databases, once in one process and once with
the helper (the size threshold set to 0 so small test files are shared), and compares the
stored rows, their SQLite types, the bad rows with line numbers and reasons, the counts, the
time span and the rowid range; or, for a file that cannot load, the quarantine reason.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import CORPUS, REPO, write_config, write_csv
from csvreport import db, helper, load
from csvreport.rows import FileRejected
from csvreport.config import load_settings
from csvreport.errors import ConfigError
from csvreport.timeconv import TimestampParser
from test_fast_paths import HEADER, SOURCE, tricky_csv

pytestmark = pytest.mark.skipif(not helper.usable(), reason="the helper needs Linux and two usable cores")

TYPED = """
    timestamp = "ts"
    columns = ["ts", "note", "value", "qty", "k"]
    types = { value = "real", qty = "integer" }
"""


@pytest.fixture
def shared(monkeypatch):
    """Share every file, however small, and record what each helper's work came to."""
    monkeypatch.setenv(helper.MIN_BYTES_VARIABLE, "0")
    taken: list[bool] = []
    real = helper.take_helper_rows

    def spy(*args):
        taken.append(real(*args))
        return taken[-1]

    monkeypatch.setattr(helper, "take_helper_rows", spy)
    return taken


def load_twice(tmp_path: Path, home: Path, source_text: str, path: Path, max_bad_rows: int = 10**6):
    write_config(home, text=SOURCE + source_text)
    source = load_settings(home, None).sources[0]
    parser = TimestampParser(source.timezone, source.timestamp_format) if source.timestamp else None
    out = []
    for way in ("one process", "helper"):
        database = tmp_path / f"{way}.sqlite3"
        conn = sqlite3.connect(database, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        db.ensure_source_table(conn, source)
        with helper.Scratch(conn, database) as scratch:
            conn.execute("BEGIN IMMEDIATE")
            try:
                outcome = load.load_rows(conn, source, path, 7, parser, 1774688400, max_bad_rows,
                                         scratch=scratch if way == "helper" else None)
                conn.execute("COMMIT")
            except FileRejected as exc:
                conn.execute("ROLLBACK")
                outcome = exc
        assert not list(tmp_path.glob("*-load-*")), "the scratch database outlived its run"
        stored = conn.execute(f"SELECT * FROM {db.quote(source.name)} ORDER BY _id").fetchall()
        kinds = conn.execute(f"SELECT {', '.join(f'typeof({db.quote(c)})' for c in source.columns)} "
                             f"FROM {db.quote(source.name)} ORDER BY _id").fetchall()
        conn.close()
        out.append((outcome, stored, kinds))
    (one, one_rows, one_kinds), (two, two_rows, two_kinds) = out
    assert two_rows == one_rows
    assert two_kinds == one_kinds
    if isinstance(one, FileRejected):
        assert isinstance(two, FileRejected)
        assert (two.reason, two.first_bad_line, two.rows_read) == (one.reason, one.first_bad_line, one.rows_read)
    else:
        def bad(result):
            return [(b.line, b.reason, b.fields) for b in result.bad_rows]

        assert bad(two) == bad(one)
        for name in ("rows_read", "rows_loaded", "bad_count", "min_ts", "max_ts", "first_row_id", "last_row_id"):
            assert getattr(two, name) == getattr(one, name), name
    return one, one_rows


def test_a_shared_file_gives_the_same_rows_bad_rows_and_counts(tmp_path, home, shared):
    path = tricky_csv(tmp_path / "tricky.csv", HEADER, rows=3000)
    result, stored = load_twice(tmp_path, home, TYPED, path)
    assert shared == [True], "the helper's rows were not used"
    lines = [b.line for b in result.bad_rows]
    size, half = path.stat().st_size, len(path.read_bytes()[:path.stat().st_size // 2].splitlines())
    assert min(lines) < half < max(lines), "bad rows on both sides of the split"
    assert size and result.rows_loaded > 1500 and len(stored) == result.rows_loaded


def test_a_key_repeated_across_the_split_keeps_the_last_row(tmp_path, home, shared):
    path = tricky_csv(tmp_path / "tricky.csv", HEADER, rows=3000)
    _, stored = load_twice(tmp_path, home, """
        timestamp = "ts"
        columns = ["ts", "k", "note", "value"]
        types = { value = "real" }
        key = ["k"]
    """, path)
    assert shared == [True] and len(stored) == 50


def test_a_quoted_field_across_the_split_makes_the_parent_read_on(tmp_path, home, shared):
    # Lines inside the long quoted note look like records of three fields, so the helper is
    # started there; the parent's own record runs across the split and it reads on alone.
    inner = "\n".join(f"2026-03-28 10:{i // 60 % 60:02d}:{i % 60:02d},inner,{i}" for i in range(3000))
    rows = [f"2026-03-28 09:{i // 60:02d}:{i % 60:02d},before,{i}" for i in range(300)]
    rows.append(f'2026-03-28 09:59:59,"{inner}",0')
    rows += [f"2026-03-28 11:{i // 60:02d}:{i % 60:02d},after,{i}" for i in range(300)]
    path = write_csv(tmp_path / "quoted.csv", "ts,note,value\n" + "\n".join(rows) + "\n")
    _, stored = load_twice(tmp_path, home, 'timestamp = "ts"\ncolumns = ["ts", "note", "value"]\n'
                           'types = { value = "integer" }\n', path)
    assert shared == [False]
    assert len(stored) == 601 and stored[300][4].count("\n") == 2999


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252"])
def test_crlf_endings_a_byte_order_mark_and_single_byte_codecs_are_shared_too(tmp_path, home, shared, encoding):
    source_path = tricky_csv(tmp_path / "tricky.csv", HEADER, rows=3000)
    with open(source_path, encoding="utf-8", newline="") as handle:
        records = list(csv.reader(handle))
    records[2000][3] = "\ufeffZeile mit BOM"  # a U+FEFF after the split: data, not a byte order mark
    path = tmp_path / "crlf.csv"
    with open(path, "w", encoding="cp1252" if encoding == "cp1252" else "utf-8-sig", newline="",
              errors="replace") as handle:
        csv.writer(handle, lineterminator="\r\n").writerows(records)
    load_twice(tmp_path, home, TYPED + f'encoding = "{encoding}"\n', path)
    assert shared == [True]


def test_too_many_bad_rows_on_both_sides_quarantine_as_one_process_does(tmp_path, home, shared):
    lines = ["ts,note,value"]
    for i in range(4000):
        bad = i in (100, 200, 2900, 3000, 3100)  # two before the split, three after: 5 > max_bad_rows = 4
        lines.append(f"2026-03-28 10:{i // 60 % 60:02d}:{i % 60:02d},n{i},{'x' if bad else i}")
    path = write_csv(tmp_path / "bad.csv", "\n".join(lines) + "\n")
    one, stored = load_twice(tmp_path, home, 'timestamp = "ts"\ncolumns = ["ts", "note", "value"]\n'
                             'types = { value = "integer" }\n', path, max_bad_rows=4)
    assert isinstance(one, FileRejected) and one.first_bad_line == 102 and stored == []
    assert shared == [False]


@pytest.mark.parametrize("at", [3500, 3950])  # in the helper's first rows; in its tail, after those were copied
def test_bytes_that_do_not_decode_after_the_split_quarantine_as_one_process_does(tmp_path, home, shared, at):
    lines = [f"2026-03-28 10:{i // 60 % 60:02d}:{i % 60:02d},n{i},{i}" for i in range(4000)]
    lines[at] = lines[at].replace(f",n{at},", ",K\xf6ln,")
    path = tmp_path / "latin.csv"
    path.write_bytes(("ts,note,value\n" + "\n".join(lines) + "\n").encode("latin-1"))
    one, _ = load_twice(tmp_path, home, 'timestamp = "ts"\ncolumns = ["ts", "note", "value"]\n'
                        'types = { value = "integer" }\n', path)
    assert isinstance(one, FileRejected) and one.first_bad_line == at + 2
    assert shared == [False]


def test_a_helper_failing_in_its_tail_undoes_the_copy_and_the_parent_reads_on(tmp_path, home, shared, monkeypatch):
    # The helper's first rows are copied, then its tail fails (here: its scratch file); the copy is
    # rolled back to its savepoint and the parent reads on, so nothing is stored twice.
    real = helper._scratch_table

    def no_tail(database, table, source):
        if database.name.endswith("-tail"):
            raise sqlite3.OperationalError("disk I/O error")
        return real(database, table, source)

    monkeypatch.setattr(helper, "_scratch_table", no_tail)  # before the fork: the helper inherits it
    path = tricky_csv(tmp_path / "tricky.csv", HEADER, rows=3000)
    result, stored = load_twice(tmp_path, home, TYPED, path)
    assert shared == [False]
    assert result.rows_loaded == len(stored) > 1500
    assert len({row[0] for row in stored}) == len(stored) and stored[-1][0] - stored[0][0] + 1 == len(stored)


def test_the_split_count_of_lines_matches_the_csv_reader(tmp_path):
    # "\n", "\r\n" and a lone "\r" all end a line for open(newline=""); find_split counts the same way.
    for ending in ("\n", "\r\n", "\r"):
        body = "".join(f"{i},x{ending}" for i in range(4000)).replace(f"17,x{ending}", f'17,"a{ending}b"{ending}')
        path = tmp_path / "endings.csv"
        path.write_bytes(("a,b" + ending + body).encode())
        split = helper.find_split(path, path.stat().st_size, "utf-8", ",", 2)
        if ending == "\r":
            assert split is None  # no newline byte: one process
            continue
        with open(path, encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            while reader.line_num < split.lines:
                next(reader)
            assert reader.line_num == split.lines
            rest = list(reader)
        with open(path, "rb") as handle:
            handle.seek(split.offset)
            assert list(csv.reader(handle.read().decode().splitlines(keepends=True))) == rest


def test_a_wrong_threshold_in_the_environment_is_named(monkeypatch):
    monkeypatch.setenv(helper.MIN_BYTES_VARIABLE, "8MB")
    with pytest.raises(ConfigError, match="CSVREPORT_HELPER_MIN_BYTES='8MB'"):
        helper.min_bytes()


def test_ingest_shares_a_large_file_and_leaves_no_scratch_behind(home, cli, shared):
    write_config(home, text=SOURCE.replace('name = "data"', 'name = "sensors"').replace(
        "inbox/data/*.csv", "inbox/sensors/*.csv").replace("max_bad_rows = 1000", "max_bad_rows = 100000") + TYPED)
    for name, rows in (("big1.csv", 3000), ("big2.csv", 2000)):  # the second helper clears the first's table
        path = tricky_csv(home / "inbox" / "sensors" / name, HEADER, rows=rows)
        os.utime(path, (time.time() - 3600, time.time() - 3600))
    result = cli("ingest")
    assert result.exit_code == 0, result.output
    assert shared == [True, True]
    assert not list((home / "data").glob("*-load-*"))
    with sqlite3.connect(home / "data" / "csvreport.sqlite3") as conn:
        logged = conn.execute("SELECT id, rows_loaded, rows_rejected, first_row_id, last_row_id FROM ingestion_log "
                              "ORDER BY id").fetchall()
        assert len(logged) == 2 and all(rejected > 0 and last - first + 1 == loaded > 1000
                                        for _, loaded, rejected, first, last in logged)
        per_load = dict(conn.execute("SELECT _ingestion_id, count(*) FROM sensors GROUP BY _ingestion_id"))
        assert per_load == {i: loaded for i, loaded, *_ in logged}


def test_a_run_killed_while_sharing_loads_the_file_once_on_the_next_run(home):
    lines = ["ts,site,metric,value"] + [f"2026-03-28 {i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d},s,m,{i}"
                                        for i in range(300_000)]
    write_csv(home / "inbox" / "sensors" / "big.csv", "\n".join(lines) + "\n", age=3600)
    env = {**os.environ, "CSVREPORT_HOME": str(home), "PYTHONPATH": str(REPO), helper.MIN_BYTES_VARIABLE: "0"}
    argv = [sys.executable, "-m", "csvreport", "--quiet", "ingest"]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    scratch = None
    deadline = time.monotonic() + 60
    while scratch is None and time.monotonic() < deadline and proc.poll() is None:
        scratch = next((p for p in (home / "data").glob("*-load-*") if p.stat().st_size), None)
        time.sleep(0.005)
    assert scratch is not None, "the helper never wrote its scratch database"
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert not list((home / "data").glob("*-load-*"))
    with sqlite3.connect(home / "data" / "csvreport.sqlite3") as conn:
        assert conn.execute("SELECT count(*), count(DISTINCT value) FROM sensors").fetchone() == (300_000, 300_000)
        assert conn.execute("SELECT count(*) FROM ingestion_log WHERE status = 'loaded'").fetchone()[0] == 1


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"the CSV corpus is not beside the checkout ({CORPUS})")
def test_every_corpus_file_loads_the_same_when_shared(tmp_path, home, shared):
    from test_corpus import corpus_files, derive_allowlist

    for n, original in enumerate(corpus_files()):
        columns, _ = derive_allowlist(original.read_bytes())
        where = tmp_path / f"c{n:03d}"
        where.mkdir()
        load_twice(where, home, f"columns = {json.dumps(columns, ensure_ascii=False)}\nnull_values = []\n",
                   original, max_bad_rows=10)
    assert shared.count(True) >= 30, f"the helper's rows were used for only {shared.count(True)} files"
