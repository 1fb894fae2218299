"""`csvreport sync` against a stand-in for the identity platform and Graph, over TLS on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import BASE_CONFIG, REPO, write_config
from graph_standin import (
    CLIENT_ID,
    SECRET,
    TENANT,
    Standin,
    cut_after,
    error_body,
    hold,
    on,
    qxh,
)

pytest.importorskip("msal")
pytest.importorskip("trustme")

CSV = "ts,site,metric,value\n2026-11-28 10:{m:02d}:00,plant{n},temp,{v}\n"

REMOTE = """
[[sharepoint]]
name = "plant_exports"
site = "https://contoso.sharepoint.com/sites/Operations"
library = "Documents"
folder = "Exports/Sensors"
pattern = "*.csv"
download_to = "inbox/sensors"
processed_folder = "Exports/Sensors/Processed"
tenant_id = "{tenant}"
client_id = "{client}"
authority_host = "{base}"
graph_endpoint = "{base}"
timeout = 10
max_retry_seconds = {budget}
{extra}
"""


def csv_bytes(n: int, rows: int = 1) -> bytes:
    lines = [CSV.format(m=(n + r) % 60, n=n, v=n * 1.5 + r).encode().split(b"\n", 1)[1] for r in range(rows)]
    return b"ts,site,metric,value\n" + b"".join(lines)


@pytest.fixture(autouse=True)
def local_only(monkeypatch):
    """Every connection these tests open goes to 127.0.0.1 (MSAL's instance discovery included)."""
    import socket

    real = socket.socket.connect

    def connect(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            assert address[0] in ("127.0.0.1", "::1"), f"a test tried to reach {address}"
        return real(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)


@pytest.fixture
def graph(tmp_path, monkeypatch, home):
    standin = Standin(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(standin.ca_file))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(standin.ca_file))
    monkeypatch.setenv("CSVREPORT_SHAREPOINT_SECRET", SECRET)
    configure(home, standin)
    yield standin
    standin.close()


def configure(home: Path, standin: Standin, budget: float = 5, extra: str = "", base: str | None = None,
              tenant: str = TENANT, client: str = CLIENT_ID, monitor: str = "") -> None:
    body = BASE_CONFIG.format(max_bad_rows=0, extra_source="") + monitor + REMOTE.format(
        tenant=tenant, client=client, base=base or standin.base, budget=budget, extra=extra)
    write_config(home, body)


def drop(home: Path) -> list[str]:
    return sorted(p.name for p in (home / "inbox" / "sensors").iterdir())


def database(home: Path) -> sqlite3.Connection:
    return sqlite3.connect(home / "data" / "csvreport.sqlite3")


def items(home: Path) -> dict[str, tuple]:
    with database(home) as conn:
        return {row[0]: row[1:] for row in conn.execute(
            "SELECT name, state, local_path, etag, quick_xor_hash FROM sharepoint_items ORDER BY name")}


def last_run(home: Path) -> dict:
    with database(home) as conn:
        conn.row_factory = sqlite3.Row
        return dict(conn.execute("SELECT * FROM run_history WHERE command = 'sync' ORDER BY id DESC LIMIT 1")
                    .fetchone())


def test_sync_downloads_verifies_and_moves_every_page_then_ingest_loads(graph, home, cli):
    for n in range(5):  # page size 2: three pages of children
        graph.put(f"Exports/Sensors/export_{n}.csv", csv_bytes(n))
    graph.put("Exports/Sensors/readme.txt", b"not a csv")
    result = cli("sync")
    assert result.exit_code == 0, result.output
    assert drop(home) == [f"export_{n}.csv" for n in range(5)]
    for n in range(5):
        assert (home / "inbox" / "sensors" / f"export_{n}.csv").read_bytes() == csv_bytes(n)
    # Dated as SharePoint dates it (lastModifiedDateTime), so ingest's settle rule takes it at once.
    assert (home / "inbox" / "sensors" / "export_0.csv").stat().st_mtime == 1795860000.0
    assert graph.names_in("Exports/Sensors") == ["Processed", "readme.txt"]
    assert graph.names_in("Exports/Sensors/Processed") == [f"export_{n}.csv" for n in range(5)]
    assert graph.count("GET", "skiptoken") == 2  # @odata.nextLink followed to the last page
    assert all(state == "marked" for state, *_ in items(home).values())
    assert items(home)["export_3.csv"][3] == qxh(csv_bytes(3))
    run = last_run(home)
    assert (run["status"], run["files_seen"], run["files_loaded"], run["files_marked"]) == ("ok", 5, 5, 5)
    assert "created the processed folder" in result.output

    result = cli("ingest")
    assert result.exit_code == 0, result.output
    with database(home) as conn:
        assert conn.execute("SELECT count(*) FROM sensors").fetchone()[0] == 5

    downloads = dict(graph.downloads)
    result = cli("sync")
    assert result.exit_code == 0, result.output
    assert graph.downloads == downloads
    run = last_run(home)
    assert (run["status"], run["files_seen"], run["files_loaded"], run["files_marked"]) == ("ok", 0, 0, 0)


def test_download_url_gets_no_token_and_the_token_is_asked_for_once(graph, home, cli):
    graph.put("Exports/Sensors/a.csv", csv_bytes(1))
    graph.put("Exports/Sensors/b.csv", csv_bytes(2))
    result = cli("sync")
    assert result.exit_code == 0, result.output
    assert graph.token_requests == 1
    assert all(status in (200, 206) for m, p, status in graph.log if p.startswith("/download/"))


def test_throttling_waits_for_retry_after_and_goes_on(graph, home, cli):
    graph.put("Exports/Sensors/a.csv", csv_bytes(1))
    graph.add_fault(on("GET", ":/children"), status=429, headers={"Retry-After": "1"}, times=1,
                    body=error_body("activityLimitReached", "The request has been throttled"))
    graph.add_fault(on("PATCH", "/items/"), status=503, headers={"Retry-After": "0"}, times=2)
    graph.add_fault(on("GET", "/download/"), status=503, headers={"Retry-After": "0"}, times=1)
    started = time.monotonic()
    result = cli("sync")
    assert result.exit_code == 0, result.output
    assert time.monotonic() - started >= 1
    assert "HTTP 429; retrying in 1 s as Retry-After asks" in result.output
    assert drop(home) == ["a.csv"] and graph.names_in("Exports/Sensors/Processed") == ["a.csv"]
    assert last_run(home)["status"] == "ok"


def test_throttling_beyond_the_budget_is_a_warning_and_ingest_goes_on(graph, home, cli):
    configure(home, graph, budget=1)
    graph.put("Exports/Sensors/a.csv", csv_bytes(1))
    graph.add_fault(on("GET", "/sites/"), status=503, headers={"Retry-After": "1"}, times=10)
    local = home / "inbox" / "sensors" / "local.csv"
    local.write_bytes(csv_bytes(9))
    os.utime(local, (time.time() - 3600,) * 2)
    result = cli("ingest", "--sync")
    assert result.exit_code == 0, result.output
    assert "SharePoint unreachable for remote plant_exports" in result.output
    assert last_run(home)["status"] == "warn"
    with database(home) as conn:
        assert conn.execute("SELECT count(*) FROM sensors").fetchone()[0] == 1
        assert conn.execute("SELECT status FROM run_history WHERE command = 'ingest'").fetchone()[0] == "ok"


def test_unreachable_host_is_a_warning(graph, home, cli):
    configure(home, graph, budget=0, base="https://127.0.0.1:9")  # nothing listens on the discard port
    result = cli("sync")
    assert result.exit_code == 0, result.output
    assert "WARNING" in result.output and "SharePoint unreachable" in result.output
    assert last_run(home)["status"] == "warn"
    with database(home) as conn:
        row = conn.execute("SELECT last_status, last_success_at FROM sharepoint_remotes").fetchone()
    assert row == ("warn", None)


def test_revoked_token_is_replaced_once(graph, home, cli):
    graph.put("Exports/Sensors/a.csv", csv_bytes(1))

    def revoke(handler):
        handler.standin.tokens.clear()
        return False  # then answer as usual: 401, the token is no longer valid

    graph.add_fault(on("GET", "/drives"), action=revoke)
    result = cli("sync")
    assert result.exit_code == 0, result.output
    assert graph.token_requests == 2
    assert "401 InvalidAuthenticationToken" in result.output and "acquiring a new token" in result.output
    assert graph.names_in("Exports/Sensors/Processed") == ["a.csv"]


def test_connection_cut_mid_file_resumes_with_range(graph, home, cli):
    content = b"ts,site,metric,value\n" + b"".join(
        f"2026-11-28 10:00:{s:02d},p,t,{s}\n".encode() for s in range(60)) * 125
    graph.put("Exports/Sensors/big.csv", content)
    graph.add_fault(on("GET", "/download/"), action=cut_after(150000))
    result = cli("sync")
    assert result.exit_code == 0, result.output
    assert "the connection broke after 131072 of 201271 bytes" in result.output
    assert (home / "inbox" / "sensors" / "big.csv").read_bytes() == content
    assert any(status == 206 for m, p, status in graph.log if p.startswith("/download/"))


def test_item_changed_while_read_is_not_taken_until_the_next_run(graph, home, cli):
    node = graph.put("Exports/Sensors/a.csv", csv_bytes(1))

    def change(handler):
        node.content, node.version = csv_bytes(2), node.version + 1  # the exporter rewrites it meanwhile
        return False

    graph.add_fault(on("GET", "/download/"), action=change)
    result = cli("sync")
    assert result.exit_code == 0, result.output
    assert "changed in SharePoint while it was downloaded" in result.output
    assert drop(home) == [] and graph.names_in("Exports/Sensors") == ["a.csv"]
    assert last_run(home)["status"] == "warn"
    result = cli("sync")
    assert result.exit_code == 0, result.output
    assert (home / "inbox" / "sensors" / "a.csv").read_bytes() == csv_bytes(2)
    assert graph.names_in("Exports/Sensors/Processed") == ["a.csv"]


def test_item_changed_after_download_is_not_marked_and_is_taken_again(graph, home, cli):
    node = graph.put("Exports/Sensors/a.csv", csv_bytes(1))

    def change(handler):
        node.content, node.version = csv_bytes(3), node.version + 1
        return False

    graph.add_fault(on("PATCH", f"/items/{node.id}"), action=change)
    result = cli("sync")
    assert result.exit_code == 0, result.output
    assert "changed in SharePoint after it was downloaded" in result.output
    assert graph.names_in("Exports/Sensors") == ["Processed", "a.csv"]
    result = cli("sync")
    assert result.exit_code == 0, result.output
    # The same item's new version replaces its file (ingest then replaces the rows of the old one).
    assert drop(home) == ["a.csv"] and (home / "inbox" / "sensors" / "a.csv").read_bytes() == csv_bytes(3)
    assert graph.names_in("Exports/Sensors/Processed") == ["a.csv"]


def test_name_clash_in_processed_folder_and_in_drop_folder(graph, home, cli):
    graph.put("Exports/Sensors/Processed/a.csv", b"older")
    graph.put("Exports/Sensors/a.csv", csv_bytes(1))
    result = cli("sync")
    assert result.exit_code == 0, result.output
    assert graph.names_in("Exports/Sensors/Processed") == ["a 1.csv", "a.csv"]
    # A new item under a name already used gets its own file: ingest must not take it for a rewrite.
    graph.put("Exports/Sensors/a.csv", csv_bytes(2))
    graph.honour_conflict_behavior = False  # a library that ignores conflictBehavior on a move
    result = cli("sync")
    assert result.exit_code == 0, result.output
    assert drop(home) == ["a (2).csv", "a.csv"]
    assert (home / "inbox" / "sensors" / "a (2).csv").read_bytes() == csv_bytes(2)
    assert len(graph.names_in("Exports/Sensors/Processed")) == 3


def test_dry_run_changes_nothing(graph, home, cli):
    graph.put("Exports/Sensors/a.csv", csv_bytes(1))
    result = cli("sync", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "would download a.csv" in result.output
    assert drop(home) == [] and graph.names_in("Exports/Sensors") == ["a.csv"]
    assert not (home / "data" / "csvreport.sqlite3").exists()


def test_wrong_secret_names_the_variable(graph, home, cli, monkeypatch):
    monkeypatch.setenv("CSVREPORT_SHAREPOINT_SECRET", "wrong")
    result = cli("sync")
    assert result.exit_code == 1
    assert "invalid_client: AADSTS7000215" in result.output
    assert "check the client secret in CSVREPORT_SHAREPOINT_SECRET" in result.output
    assert last_run(home)["status"] == "failed"


def test_wrong_tenant_client_and_site_name_their_keys(graph, home, cli):
    configure(home, graph, tenant="00000000-0000-0000-0000-000000000000")
    result = cli("sync")
    assert result.exit_code == 1 and "check sharepoint.plant_exports.tenant_id" in result.output
    configure(home, graph, client="00000000-0000-0000-0000-000000000001")
    result = cli("sync")
    assert result.exit_code == 1 and "check sharepoint.plant_exports.client_id" in result.output
    write_config(home, (home / "config" / "settings.toml").read_text().replace(
        'client_id = "00000000-0000-0000-0000-000000000001"', f'client_id = "{CLIENT_ID}"').replace(
        "sites/Operations", "sites/Nowhere"))
    result = cli("sync")
    assert result.exit_code == 1
    assert "sharepoint.plant_exports.site: no site at https://contoso.sharepoint.com/sites/Nowhere" in result.output
    write_config(home, (home / "config" / "settings.toml").read_text().replace(
        "sites/Nowhere", "sites/Operations").replace('library = "Documents"', 'library = "Exports"'))
    result = cli("sync")
    assert result.exit_code == 1
    assert "sharepoint.plant_exports.library: no document library named 'Exports'" in result.output


def test_missing_secret_is_a_configuration_error_before_any_run(graph, home, cli, monkeypatch):
    monkeypatch.delenv("CSVREPORT_SHAREPOINT_SECRET")
    result = cli("sync")
    assert result.exit_code == 2
    assert "sharepoint.plant_exports: no client secret: set CSVREPORT_SHAREPOINT_SECRET" in result.output
    assert not (home / "data" / "csvreport.sqlite3").exists()
    (home / ".env").write_text(f"CSVREPORT_SHAREPOINT_SECRET='{SECRET}'\n")
    graph.put("Exports/Sensors/a.csv", csv_bytes(1))
    result = cli("sync")
    assert result.exit_code == 0, result.output
    assert drop(home) == ["a.csv"]


def test_without_the_extra_sync_exits_2_saying_what_to_install(graph, home, cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "msal", None)
    result = cli("sync")
    assert result.exit_code == 2
    assert "pip install 'csvreport[sharepoint]'" in result.output
    assert not (home / "data" / "csvreport.sqlite3").exists()


def test_secret_in_settings_is_refused(graph, home, cli):
    configure(home, graph, extra='secret = "x"')
    result = cli("sync")
    assert result.exit_code == 2
    assert "sharepoint.plant_exports.secret: secrets never go in settings.toml" in result.output


def test_certificate_credentials(graph, home, cli, monkeypatch, tmp_path):
    import jwt
    import trustme
    from cryptography import x509

    monkeypatch.delenv("CSVREPORT_SHAREPOINT_SECRET")
    pem = home / "config" / "sharepoint.pem"
    configure(home, graph, extra='certificate = "config/sharepoint.pem"')
    result = cli("sync")
    assert result.exit_code == 2
    assert f"sharepoint.plant_exports.certificate: [Errno 2] No such file or directory: '{pem}'" in result.output
    ec = graph.ca.issue_cert("csvreport-app")
    pem.write_bytes(ec.private_key_pem.bytes() + ec.cert_chain_pems[0].bytes())
    result = cli("sync")
    assert result.exit_code == 2 and "the private key is not an RSA key" in result.output
    cert = trustme.CA(key_type=trustme.KeyType.RSA).issue_cert("csvreport-app", key_type=trustme.KeyType.RSA)
    pem.write_bytes(cert.private_key_pem.bytes() + cert.cert_chain_pems[0].bytes())
    graph.put("Exports/Sensors/a.csv", csv_bytes(1))
    result = cli("sync")
    assert result.exit_code == 0, result.output
    assertion = graph.client_assertions[0]
    public = x509.load_pem_x509_certificate(cert.cert_chain_pems[0].bytes()).public_key()
    claims = jwt.decode(assertion, public, algorithms=["RS256", "PS256"],
                        audience=f"{graph.base}/{TENANT}/oauth2/v2.0/token")
    assert claims["iss"] == claims["sub"] == CLIENT_ID
    assert drop(home) == ["a.csv"]


def test_killed_between_record_and_rename_is_finished_next_run(graph, home, cli, monkeypatch):
    from csvreport import sharepoint

    graph.put("Exports/Sensors/a.csv", csv_bytes(1))

    def killed(temp, final):
        raise SystemExit(137)

    monkeypatch.setattr(sharepoint, "replace_durably", killed)
    assert cli("sync").exit_code == 137
    assert items(home)["a.csv"][0] == "placing" and drop(home)[0].endswith(".part")
    monkeypatch.undo()
    monkeypatch.setenv("SSL_CERT_FILE", str(graph.ca_file))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(graph.ca_file))
    monkeypatch.setenv("CSVREPORT_SHAREPOINT_SECRET", SECRET)
    monkeypatch.setenv("CSVREPORT_HOME", str(home))
    result = cli("sync")
    assert result.exit_code == 0, result.output
    assert "finished placing" in result.output
    assert drop(home) == ["a.csv"] and graph.downloads[graph.resolve("Exports/Sensors/Processed/a.csv").id] == 1


# ---------------------------------------------------------------------------------------------
# A real process, killed with SIGKILL at several points


def start_sync(home: Path, graph: Standin) -> subprocess.Popen:
    env = dict(os.environ, CSVREPORT_HOME=str(home), SSL_CERT_FILE=str(graph.ca_file),
               REQUESTS_CA_BUNDLE=str(graph.ca_file), CSVREPORT_SHAREPOINT_SECRET=SECRET)
    return subprocess.Popen([sys.executable, "-m", "csvreport", "sync"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def kill_at(home: Path, graph: Standin, fragment: str, method: str = "GET", **hold_args) -> None:
    reached, release = threading.Event(), threading.Event()
    graph.add_fault(on(method, fragment), action=hold(reached, release, **hold_args))
    process = start_sync(home, graph)
    try:
        assert reached.wait(60), process.communicate(timeout=5)[0].decode()
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
    finally:
        release.set()
        if process.poll() is None:
            process.kill()
        process.stdout.close()


def run_sync(home: Path, graph: Standin) -> str:
    process = start_sync(home, graph)
    out = process.communicate(timeout=120)[0].decode()
    assert process.returncode == 0, out
    return out


def test_sigkill_anywhere_downloads_nothing_twice_and_marks_nothing_half(graph, home, cli):
    nodes = [graph.put(f"Exports/Sensors/export_{n}.csv", csv_bytes(n, rows=40)) for n in range(4)]
    # 1. Killed during the download of the first file: half of it sits in a hidden .part file.
    kill_at(home, graph, f"/download/{nodes[0].id}", partial=300)
    assert [n for n in drop(home) if not n.startswith(".")] == []
    assert graph.names_in("Exports/Sensors/Processed") == []
    # 2. Killed between download and move: the first file is in the drop folder, not yet moved.
    kill_at(home, graph, f"/items/{nodes[0].id}", method="PATCH")
    assert drop(home) == ["export_0.csv"] and items(home)["export_0.csv"][0] == "downloaded"
    assert graph.names_in("Exports/Sensors/Processed") == []
    # 3. Killed after SharePoint moved the second file but before the answer arrived.
    def move(handler):
        node = nodes[1]
        node.parent = graph.resolve("Exports/Sensors/Processed").id
        node.version += 1
    kill_at(home, graph, f"/items/{nodes[1].id}", method="PATCH", before=move)
    assert graph.names_in("Exports/Sensors/Processed") == ["export_0.csv", "export_1.csv"]
    assert items(home)["export_1.csv"][0] == "downloaded"
    downloads = dict(graph.downloads)
    out = run_sync(home, graph)
    assert "already moved to Exports/Sensors/Processed" in out
    assert drop(home) == [f"export_{n}.csv" for n in range(4)]  # no .part left, no "(2)" copies
    for n in range(4):
        assert (home / "inbox" / "sensors" / f"export_{n}.csv").read_bytes() == csv_bytes(n, rows=40)
    assert graph.names_in("Exports/Sensors/Processed") == [f"export_{n}.csv" for n in range(4)]
    # Files already placed were not fetched again.
    assert graph.downloads[nodes[0].id] == downloads[nodes[0].id]
    assert graph.downloads[nodes[1].id] == downloads[nodes[1].id]
    assert all(state == "marked" for state, *_ in items(home).values())
    with database(home) as conn:
        interrupted = conn.execute("SELECT count(*) FROM run_history WHERE command = 'sync' AND status = 'failed'"
                                   ).fetchone()[0]
    assert interrupted == 3

    result = cli("ingest")
    assert result.exit_code == 0, result.output
    with database(home) as conn:
        assert conn.execute("SELECT count(*) FROM sensors").fetchone()[0] == 4 * 40
    downloads = dict(graph.downloads)
    run_sync(home, graph)
    assert graph.downloads == downloads and drop(home) == [f"export_{n}.csv" for n in range(4)]
    assert last_run(home)["files_loaded"] == 0


# ---------------------------------------------------------------------------------------------
# status


def test_status_shows_each_remote_and_check_flags_a_stale_one(graph, home, cli, capsys):
    graph.put("Exports/Sensors/a.csv", csv_bytes(1))
    assert cli("ingest").exit_code == 0  # a database, so that status judges the remotes
    result = cli("status", "--check")
    assert result.exit_code == 1
    assert "SharePoint remote plant_exports has never synced" in result.output
    assert cli("sync").exit_code == 0
    result = cli("status", "--json")
    assert result.exit_code == 0, result.output
    remote = json.loads(result.output)["remotes"][0]
    assert remote["name"] == "plant_exports" and remote["last_status"] == "ok"
    assert remote["last_success_at"] and remote["files_downloaded"] == 1 and remote["files_unmarked"] == 0
    result = cli("status")
    assert "plant_exports" in result.output and "last success" in result.output
    from csvreport import status, status_render
    from csvreport.config import load_settings

    facts = status.gather(load_settings(home))
    status_render.print_table(facts)  # the terminal table, as rich draws it
    table = capsys.readouterr().out
    assert "sharepoint remotes" in table and "plant_expo" in table
    result = cli("status", "--prometheus")
    assert 'csvreport_sharepoint_last_success_timestamp_seconds{remote="plant_exports"}' in result.output
    assert 'csvreport_sharepoint_up{remote="plant_exports"} 1' in result.output
    from prometheus_client.parser import text_string_to_metric_families

    families = {f.name: f for f in text_string_to_metric_families(result.output)}
    assert families["csvreport_sharepoint_files_unmarked"].samples[0].value == 0
    result = cli("status", "--check")  # other problems (workbooks due) aside, the remote is fine
    assert "SharePoint" not in result.output, result.output
    with database(home) as conn:
        conn.execute("UPDATE sharepoint_remotes SET last_success_at = '2026-01-01T00:00:00.000Z'")
    result = cli("status", "--check")
    assert result.exit_code == 1
    assert "SharePoint remote plant_exports has not synced successfully since 2026-01-01T00:00:00.000Z" in \
        result.output
    assert "max_sync_age_hours = 6" in result.output


def test_ingest_sync_loads_local_files_even_when_sharepoint_refuses(graph, home, cli, monkeypatch):
    monkeypatch.setenv("CSVREPORT_SHAREPOINT_SECRET", "wrong")
    local = home / "inbox" / "sensors" / "local.csv"
    local.write_bytes(csv_bytes(9))
    os.utime(local, (time.time() - 3600,) * 2)
    result = cli("ingest", "--sync", "--dry-run")  # the dry run says so too, and loads nothing
    assert result.exit_code == 1
    assert "Error: the token endpoint refused the app (invalid_client" in result.output
    assert "dry run: nothing was changed; 1 files seen" in result.output
    result = cli("ingest", "--sync")
    assert result.exit_code == 1
    assert "Error: the token endpoint refused the app (invalid_client" in result.output
    with database(home) as conn:
        assert conn.execute("SELECT count(*) FROM sensors").fetchone()[0] == 1
        runs = conn.execute("SELECT command, status FROM run_history ORDER BY id").fetchall()
    assert runs == [("sync", "failed"), ("ingest", "ok")]


def test_sharepoint_configuration_is_validated_as_a_whole(graph, home, cli):
    body = BASE_CONFIG.format(max_bad_rows=0, extra_source="") + """
[monitor]
max_sync_age_hours = 0

[[sharepoint]]
name = "Bad Name"
site = "http://contoso.sharepoint.com/sites/x"
library = "Documents"
folder = "Exports"
processed_folder = "/Exports/"
download_to = "inbox/sensors"
tenant_id = "t"
client_id = "c"
graph_endpoint = "https://graph.microsoft.us/v1.0"
pattern = "sub/*.csv"
"""
    write_config(home, body)
    result = cli("sync")
    assert result.exit_code == 2
    for line in ("monitor.max_sync_age_hours: must be more than 0",
                 "sharepoint.Bad Name.name: 'Bad Name' must match",
                 "sharepoint.remote0.site: 'http://contoso.sharepoint.com/sites/x' must be the site's https URL",
                 "sharepoint.remote0.processed_folder: must differ from folder",
                 ("sharepoint.remote0.graph_endpoint: 'https://graph.microsoft.us/v1.0' must be an https URL "
                 "without a path"),
                 "sharepoint.remote0.pattern: 'sub/*.csv' must be a file name pattern"):
        assert line in result.output, line
    configure(home, graph)
    assert cli("sync", "--remote", "other").exit_code == 2
    assert "--remote other: no [[sharepoint]] table named 'other'" in cli("sync", "--remote", "other").output
    write_config(home, BASE_CONFIG.format(max_bad_rows=0, extra_source=""))
    result = cli("sync")
    assert result.exit_code == 2 and "no [[sharepoint]] table, so there is nothing to sync" in result.output


def test_a_processed_file_moved_back_is_downloaded_again_over_its_own_file(graph, home, cli):
    node = graph.put("Exports/Sensors/a.csv", csv_bytes(1))
    assert cli("sync").exit_code == 0
    node.parent = graph.resolve("Exports/Sensors").id  # an operator moves it back to take it again
    node.version += 1
    before = graph.downloads[node.id]
    result = cli("sync")
    assert result.exit_code == 0, result.output
    assert graph.downloads[node.id] == before + 1
    assert drop(home) == ["a.csv"] and graph.names_in("Exports/Sensors/Processed") == ["a.csv"]
    assert items(home)["a.csv"][0] == "marked"


def test_token_endpoint_outage_is_retried(graph, home, cli):
    graph.put("Exports/Sensors/a.csv", csv_bytes(1))
    graph.add_fault(on("POST", "/oauth2/v2.0/token"), status=503, headers={"Retry-After": "0"}, times=2,
                    body={"error": "temporarily_unavailable", "error_description": "AADSTS50196: try again"})
    result = cli("sync")
    assert result.exit_code == 0, result.output
    assert drop(home) == ["a.csv"]


def test_missing_folder_names_its_key_and_a_foreign_next_page_is_not_followed(graph, home, cli):
    configure(home, graph, extra="")
    write_config(home, (home / "config" / "settings.toml").read_text().replace(
        'folder = "Exports/Sensors"', 'folder = "Exports/Nope"'))
    result = cli("sync")
    assert result.exit_code == 1
    assert "sharepoint.plant_exports.folder: no folder 'Exports/Nope' in library 'Documents'" in result.output
    configure(home, graph)
    graph.put("Exports/Sensors/a.csv", csv_bytes(1))
    graph.add_fault(on("GET", ":/children"), status=200,
                    body={"value": [], "@odata.nextLink": "https://example.invalid/v1.0/drives/x/children"})
    result = cli("sync")
    assert result.exit_code == 1
    assert "Graph pointed to example.invalid, outside graph_endpoint" in result.output


def test_an_item_deleted_before_its_download_is_passed_over(graph, home, cli):
    gone = graph.put("Exports/Sensors/a.csv", csv_bytes(1))
    graph.put("Exports/Sensors/b.csv", csv_bytes(2))

    def delete(handler):
        del handler.standin.nodes[gone.id]
        return False  # the download URL then answers 404, and so does the item

    graph.add_fault(on("GET", f"/download/{gone.id}"), action=delete)
    result = cli("sync")
    assert result.exit_code == 0, result.output
    assert "a.csv was deleted in SharePoint before it could be downloaded" in result.output
    assert drop(home) == ["b.csv"]


def test_certificates_are_verified_against_the_named_bundle_or_the_system_store(monkeypatch, tmp_path):
    from csvreport.sharepoint import ca_bundle

    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    assert ca_bundle() == str(tmp_path / "ca.pem")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "other.pem"))
    assert ca_bundle() == str(tmp_path / "other.pem")
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    monkeypatch.delenv("SSL_CERT_FILE")
    chosen = ca_bundle()
    assert chosen is True or Path(chosen).is_file()  # never False: verification is never turned off


def test_retry_after_reads_seconds_and_http_dates():
    from datetime import datetime, timedelta, timezone
    from email.utils import format_datetime

    from csvreport.sharepoint import retry_after

    class Answer:
        def __init__(self, value):
            self.headers = {"Retry-After": value} if value is not None else {}

    assert retry_after(Answer("7")) == 7.0
    assert retry_after(Answer(None)) is None and retry_after(Answer("soon")) is None
    later = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    assert 25 <= retry_after(Answer(later)) <= 30
    assert retry_after(Answer("Wed, 21 Oct 2015 07:28:00 GMT")) == 0.0


def test_processed_folder_created_meanwhile_by_someone_else(graph, home, cli):
    graph.put("Exports/Sensors/a.csv", csv_bytes(1))

    def race(handler):
        handler.standin.folder("Exports/Sensors/Processed")  # another client wins the race
        return False  # so this creation answers 409 nameAlreadyExists

    graph.add_fault(on("POST", "/children"), action=race)
    result = cli("sync")
    assert result.exit_code == 0, result.output
    assert graph.count("POST", "/children") == 1
    assert graph.names_in("Exports/Sensors/Processed") == ["a.csv"]


def test_a_server_that_ignores_range_makes_the_download_start_over(graph, home, cli):
    content = csv_bytes(1, rows=4000)
    graph.put("Exports/Sensors/a.csv", content)
    graph.honour_range = False
    graph.add_fault(on("GET", "/download/"), action=cut_after(100000))
    result = cli("sync")
    assert result.exit_code == 0, result.output
    assert "the server sent the whole file again; starting over" in result.output
    assert (home / "inbox" / "sensors" / "a.csv").read_bytes() == content


def test_an_expired_download_url_is_asked_for_again(graph, home, cli):
    node = graph.put("Exports/Sensors/a.csv", csv_bytes(1))
    graph.add_fault(on("GET", "/download/"), status=401,
                    body=error_body("unauthenticated", "Token has expired"))
    result = cli("sync")
    assert result.exit_code == 0, result.output
    assert "the download URL expired (HTTP 401); asking for a new one" in result.output
    assert graph.count("GET", f"/items/{node.id}") == 1 and drop(home) == ["a.csv"]
