"""The cron monitor pings ([monitor] ping_url) against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import socket
import sqlite3
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import BASE_CONFIG, write_config, write_csv

GOOD = """\
ts,site,metric,value
2026-03-29 10:00:00,berlin,temp,1.5
2026-03-29 10:30:00,berlin,temp,2.5
"""


class _Recorder(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.server.hits.append((self.command, self.path))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"OK")

    do_GET = do_POST = do_HEAD = _answer

    def log_message(self, *args) -> None:  # keep pytest's output clean
        pass


@pytest.fixture
def monitor_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.hits = []
    # A short poll, so that shutdown() does not wait out the default half second.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _config(home, url: str, timeout: float = 2.0, extra: str = "") -> None:
    body = BASE_CONFIG.format(max_bad_rows=0, extra_source="") + (
        f'\n[monitor]\nping_url = "{url}"\nping_timeout = {timeout}\n' + extra)
    write_config(home, body)


def _paths(server) -> list[str]:
    return [path for _, path in server.hits]


def test_good_run_pings_start_then_success(home, cli, monitor_server):
    port = monitor_server.server_address[1]
    _config(home, f"http://127.0.0.1:{port}/ping/abc123/")
    write_csv(home / "inbox" / "sensors" / "a.csv", GOOD)

    result = cli("ingest")

    assert result.exit_code == 0, result.output
    assert _paths(monitor_server) == ["/ping/abc123/start", "/ping/abc123"]


def test_failed_run_pings_start_then_fail(home, cli, monitor_server):
    port = monitor_server.server_address[1]
    _config(home, f"http://127.0.0.1:{port}/ping/abc123")
    # The quarantine folder is a file: quarantining the bad CSV fails, so the run fails (exit 1).
    (home / "quarantine").write_text("not a folder", encoding="utf-8")
    write_csv(home / "inbox" / "sensors" / "bad.csv", "site,metric\nberlin,temp\n")

    result = cli("ingest")

    assert result.exit_code == 1, result.output
    assert _paths(monitor_server) == ["/ping/abc123/start", "/ping/abc123/fail"]
    with sqlite3.connect(home / "data" / "csvreport.sqlite3") as conn:
        assert conn.execute("SELECT status FROM run_history").fetchall() == [("failed",)]


def test_a_run_that_found_the_lock_held_does_not_ping(home, cli, monitor_server):
    from csvreport.config import load_settings
    from csvreport.lock import exclusive

    port = monitor_server.server_address[1]
    _config(home, f"http://127.0.0.1:{port}/p")
    settings = load_settings(home)
    with exclusive(settings.paths.database, "csvreport test-holder"):
        result = cli("ingest")
    assert result.exit_code == 3, result.output
    assert monitor_server.hits == []


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_dead_monitor_is_a_warning_and_never_fails_the_run(home, cli):
    _config(home, f"http://127.0.0.1:{_closed_port()}/secret-token-123")
    write_csv(home / "inbox" / "sensors" / "a.csv", GOOD)

    result = cli("ingest")

    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if "level=WARNING" in line and "stage=monitor" in line]
    assert len(warnings) == 2  # start and success both failed to get through
    assert "ping to the cron monitor failed" in warnings[0]
    assert "secret-token-123" not in result.output  # the token is the monitor's secret
    with sqlite3.connect(home / "data" / "csvreport.sqlite3") as conn:
        assert conn.execute("SELECT status, rows_loaded FROM run_history").fetchall() == [("ok", 2)]


def _serve_once(handler) -> tuple[int, threading.Thread, socket.socket]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)

    def loop() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                handler(conn)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return listener.getsockname()[1], thread, listener


def test_a_monitor_answering_garbage_never_fails_the_run(home, cli):
    def garbage(conn: socket.socket) -> None:
        conn.recv(65536)
        conn.sendall(b"this is not HTTP\r\n\r\n")

    port, _, listener = _serve_once(garbage)
    try:
        _config(home, f"http://127.0.0.1:{port}/p")
        write_csv(home / "inbox" / "sensors" / "a.csv", GOOD)
        result = cli("ingest")
    finally:
        listener.close()
    assert result.exit_code == 0, result.output
    assert "ping to the cron monitor failed" in result.output


def test_a_monitor_that_hangs_times_out_and_the_run_goes_on(home, cli):
    release = threading.Event()

    def silent(conn: socket.socket) -> None:
        conn.recv(65536)
        release.wait(5)

    port, _, listener = _serve_once(silent)
    try:
        _config(home, f"http://127.0.0.1:{port}/p", timeout=0.3)
        write_csv(home / "inbox" / "sensors" / "a.csv", GOOD)
        result = cli("ingest")
    finally:
        release.set()
        listener.close()
    assert result.exit_code == 0, result.output
    assert "ping to the cron monitor failed" in result.output
    with sqlite3.connect(home / "data" / "csvreport.sqlite3") as conn:
        assert conn.execute("SELECT count(*) FROM sensors").fetchone()[0] == 2
