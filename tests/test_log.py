"""Log lines: key=value or JSON, on stdout and in logs/csvreport.log; --quiet; warnings and errors."""

from __future__ import annotations

import json
import re


from conftest import write_csv

KV = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')


def parse_kv(line: str) -> dict[str, str]:
    return {k: json.loads(v) if v.startswith('"') else v for k, v in KV.findall(line)}


def prepare(home):
    write_csv(home / "inbox" / "sensors" / "good file.csv", "ts,site,metric,value\n2026-03-28 10:00:00,a,t,1\n")
    write_csv(home / "inbox" / "sensors" / "bad.csv", "ts,site,value\n2026-03-28 10:00:00,a,1\n")


def test_key_value_lines_on_stdout_and_in_the_log_file(home, cli):
    prepare(home)
    result = cli("ingest")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    events = [parse_kv(line) for line in lines]
    assert all(list(e)[:3] == ["ts", "level", "stage"] for e in events), lines
    loaded = next(e for e in events if e.get("msg") == "loaded 1 rows")
    assert loaded["level"] == "INFO" and loaded["stage"] == "ingest"
    good = str(home / "inbox/sensors/good file.csv")
    assert (loaded["source"], loaded["file"], loaded["rows"]) == ("sensors", good, "1")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", loaded["ts"])
    warning = next(e for e in events if e["level"] == "WARNING")
    assert warning["file"] == str(home / "inbox/sensors/bad.csv")
    assert warning["msg"].startswith("quarantined: the header lacks column 'metric'")
    assert (home / "logs" / "csvreport.log").read_text(encoding="utf-8").splitlines() == lines


def test_json_format(home, cli):
    prepare(home)
    result = cli("--log-format", "json", "ingest")
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    loaded = next(e for e in events if e["msg"] == "loaded 1 rows")
    assert (loaded["level"], loaded["stage"], loaded["source"], loaded["rows"]) == ("INFO", "ingest", "sensors", 1)
    assert list(loaded)[:3] == ["ts", "level", "stage"]
    in_file = [json.loads(line) for line in (home / "logs" / "csvreport.log").read_text().splitlines()]
    assert [e["msg"] for e in in_file] == [e["msg"] for e in events]


def test_bad_log_format_is_a_usage_error(cli):
    result = cli("--log-format", "xml", "ingest")
    assert result.exit_code == 2
    assert "must be kv or json" in result.output


def test_quiet_keeps_only_warnings_and_errors(home, cli):
    prepare(home)
    result = cli("--quiet", "ingest")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and "level=WARNING" in lines[0] and "bad.csv" in lines[0]
    logged = (home / "logs" / "csvreport.log").read_text().splitlines()
    assert any("level=INFO" in line and "loaded 1 rows" in line for line in logged)


def test_unexpected_exception_is_an_error_with_its_stack_in_the_log_file(home, cli, monkeypatch):
    prepare(home)

    def broken(*args, **kwargs):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr("csvreport.ingest.load_rows", broken)
    result = cli("ingest")
    assert result.exit_code == 1
    assert result.stderr == ("Error: unexpected RuntimeError: simulated bug "
                             f"(the stack is in {home / 'logs' / 'csvreport.log'})\n")
    assert "Traceback" not in result.stdout
    assert "level=ERROR stage=main" in result.stdout
    logged = (home / "logs" / "csvreport.log").read_text()
    assert 'level=ERROR stage=main msg="unexpected error: RuntimeError: simulated bug"' in logged
    assert "Traceback (most recent call last):" in logged and 'raise RuntimeError("simulated bug")' in logged
    import sqlite3
    with sqlite3.connect(home / "data" / "csvreport.sqlite3") as conn:
        assert conn.execute("SELECT status, error FROM run_history").fetchall() == [
            ("failed", "RuntimeError: simulated bug")]


def test_known_failure_is_one_line_without_stack(home, cli, monkeypatch):
    prepare(home)
    (home / "data").mkdir()
    (home / "data" / "csvreport.sqlite3").write_bytes(b"this is not a database, it is a text file" * 100)
    result = cli("ingest")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: ")
    assert str(home / "data" / "csvreport.sqlite3") in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_log_file_rotates_by_size(tmp_path):
    from csvreport import log

    folder = tmp_path / "logs"
    log.setup(folder, max_bytes=2000, backups=2)
    try:
        for i in range(200):
            log.info("test", f"event number {i}", rows=i)
    finally:
        log.setup(None)
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["csvreport.log", "csvreport.log.1", "csvreport.log.2"]
    assert all(p.stat().st_size <= 2000 for p in folder.iterdir())
