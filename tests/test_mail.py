"""Email delivery against a real SMTP server (aiosmtpd) on 127.0.0.1, started by the tests.

STARTTLS, implicit TLS and AUTH are exercised with certificates of a private CA that the
tests create with the openssl command; a refusing or absent server leads to a retry on the
next run and no workbook is lost.
"""

from __future__ import annotations

import shutil
import socket
import sqlite3
import ssl
import subprocess
from datetime import datetime, timezone
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from openpyxl import Workbook

from conftest import BASE_CONFIG, write_config, write_csv

aiosmtpd_controller = pytest.importorskip("aiosmtpd.controller", reason="aiosmtpd is a test dependency")
from aiosmtpd.smtp import AuthResult, LoginPassword  # noqa: E402

from csvreport import db, log, mail  # noqa: E402
from csvreport.config import load_settings  # noqa: E402
from csvreport.runs import recorded_run  # noqa: E402

PASSWORD = "s3cret-Pa55word!"
USER = "reports@example.com"
# 2026-03-28 10:00-11:00 Europe/Berlin (CET, UTC+1) = 09:00-10:00 UTC
HOUR_START = int(datetime(2026, 3, 28, 9, tzinfo=timezone.utc).timestamp())
HOUR_END = HOUR_START + 3600


# --- a private CA and a server certificate for 127.0.0.1 --------------------------------------

@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> dict[str, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make test certificates")
    d = tmp_path_factory.mktemp("pki")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=csvreport test CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    (d / "ext.cnf").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")
    return {"ca": d / "ca.pem", "cert": d / "server.pem", "key": d / "server.key"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Collector:
    """aiosmtpd handler: keeps every message, or refuses them all while `refuse` is set."""

    def __init__(self) -> None:
        self.messages: list[dict] = []
        self.refuse = False

    async def handle_DATA(self, server, session, envelope):
        if self.refuse:
            return "554 5.7.1 mailbox unavailable (refused by the test)"
        self.messages.append({
            "from": envelope.mail_from, "to": list(envelope.rcpt_tos),
            "message": message_from_bytes(envelope.original_content or envelope.content, policy=policy.default),
            "tls": session.ssl is not None, "authenticated": session.authenticated,
        })
        return "250 2.0.0 OK"


def _authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == USER.encode() \
        and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself


@pytest.fixture
def smtp(pki):
    """Start servers: smtp(security='starttls'|'tls'|'none', port=None) -> (controller, collector)."""
    started = []

    def start(security: str = "starttls", port: int | None = None):
        collector = Collector()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(pki["cert"], pki["key"])
        kwargs: dict = {"hostname": "127.0.0.1", "port": port or free_port()}
        if security == "starttls":
            kwargs.update(tls_context=context, require_starttls=True, auth_required=True,
                          authenticator=_authenticator)
        elif security == "tls":
            # The whole connection is TLS; aiosmtpd only knows that of STARTTLS, so say it here.
            kwargs.update(ssl_context=context, auth_required=True, auth_require_tls=False,
                          authenticator=_authenticator)
        controller = aiosmtpd_controller.Controller(collector, **kwargs)
        controller.start()
        started.append(controller)
        return controller, collector

    yield start
    for controller in started:
        controller.stop()


def configure(home: Path, port: int, security: str = "starttls", ca: Path | None = None, extra: str = "",
              hourly_to: str = '["ops@example.com", "night@example.com"]') -> None:
    login = f'username = "{USER}"\n' if security != "none" else ""
    ca_line = f'ca_file = "{ca}"\n' if ca else ""
    write_config(home, BASE_CONFIG.format(max_bad_rows=0, extra_source="") + f"""
[email]
enabled = true
host = "127.0.0.1"
port = {port}
security = "{security}"
{ca_line}{login}sender = "{USER}"
hourly_to = {hourly_to}
daily_to = ["ops@example.com", "lead@example.com"]
timeout = 5
{extra}""")


def workbook(home: Path, name: str = "hourly_20260328_1000.xlsx", value: str = "first") -> Path:
    path = home / "reports" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    book = Workbook()
    book.active["A1"] = value
    book.save(path)
    return path


def ingest_hour(home: Path, cli) -> None:
    write_csv(home / "inbox" / "sensors" / "a.csv",
              "ts,site,metric,value\n2026-03-28 10:05:00,a,t,1.5\n2026-03-28 10:10:00,b,t,2.5\n")
    result = cli("ingest")
    assert result.exit_code == 0, result.output


def deliver(home: Path, path: Path, rewritten: bool = False, kind: str = "hourly",
            start: int = HOUR_START, end: int = HOUR_END) -> tuple[mail.SendOutcome, list[str]]:
    """What hourly does for each workbook it writes: queue it, then mail everything unsent."""
    settings = load_settings(home)
    log.setup(settings.paths.logs)  # as the CLI does; an earlier CliRunner's stdout is closed
    with recorded_run(settings, kind, {}) as (conn, run):
        mail.queue(settings, conn, kind, path, start, end, rewritten=rewritten, run_id=run.id)
        outcome = mail.send_unsent(settings, conn, run)
        warnings = list(run.warnings)
    return outcome, warnings


def deliveries(home: Path) -> list[dict]:
    conn = sqlite3.connect(home / "data" / "csvreport.sqlite3")
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM email_delivery ORDER BY id")]
    finally:
        conn.close()


def attachment(message) -> tuple[str, bytes]:
    parts = list(message.iter_attachments())
    assert len(parts) == 1
    return parts[0].get_filename(), parts[0].get_content()


# --- delivery ----------------------------------------------------------------------------------

def test_starttls_and_auth_deliver_one_message_with_the_workbook_byte_identical(home, cli, smtp, pki,
                                                                               monkeypatch):
    controller, server = smtp("starttls")
    configure(home, controller.port, "starttls", ca=pki["ca"])
    monkeypatch.setenv("CSVREPORT_SMTP_PASSWORD", PASSWORD)
    ingest_hour(home, cli)
    path = workbook(home)

    outcome, warnings = deliver(home, path)

    assert (outcome.sent, outcome.failed, warnings) == (1, 0, [])
    assert len(server.messages) == 1
    got = server.messages[0]
    assert got["tls"] and got["authenticated"]
    assert got["from"] == USER
    assert sorted(got["to"]) == ["night@example.com", "ops@example.com"]
    message = got["message"]
    assert message["Subject"] == "sensor_summary: Hourly report 2026-03-28 10:00-11:00 (Europe/Berlin)"
    assert message["To"] == "ops@example.com, night@example.com"
    name, data = attachment(message)
    assert name == "hourly_20260328_1000.xlsx"
    assert data == path.read_bytes()
    body = message.get_body(("plain",)).get_content()
    assert "Window: 2026-03-28 10:00-11:00 Europe/Berlin (2026-03-28 09:00 to 2026-03-28 10:00 UTC)" in body
    assert "Rows: 2 from 1 files (source sensors)" in body
    assert "Quarantined: none" in body
    row = deliveries(home)[0]
    assert (row["status"], row["attempts"], row["correction"]) == ("sent", 1, 0)
    assert path.exists()
    assert PASSWORD not in (home / "logs" / "csvreport.log").read_text()


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_password_from_dotenv_and_implicit_tls(home, smtp, pki):
    controller, server = smtp("tls")
    configure(home, controller.port, "tls", ca=pki["ca"])
    (home / ".env").write_text(f'CSVREPORT_SMTP_PASSWORD="{PASSWORD}"\n')
    path = workbook(home)

    outcome, _ = deliver(home, path)

    assert outcome.sent == 1
    assert server.messages[0]["authenticated"]  # over a listener that speaks only TLS
    assert attachment(server.messages[0]["message"])[1] == path.read_bytes()


def test_daily_goes_to_daily_recipients_and_plain_smtp_works_without_login(home, smtp):
    controller, server = smtp("none")
    configure(home, controller.port, "none")
    path = workbook(home, "daily_20260328_1200.xlsx")
    day_start = int(datetime(2026, 3, 27, 23, tzinfo=timezone.utc).timestamp())

    outcome, _ = deliver(home, path, kind="daily", start=day_start, end=day_start + 12 * 3600)

    assert outcome.sent == 1
    got = server.messages[0]
    assert sorted(got["to"]) == ["lead@example.com", "ops@example.com"]
    assert got["message"]["Subject"] == "sensor_summary: Daily report 2026-03-28 00:00-12:00 (Europe/Berlin)"
    assert not got["tls"]


def test_a_certificate_from_an_unknown_ca_is_refused_and_the_workbook_stays_unsent(home, smtp, monkeypatch):
    controller, server = smtp("starttls")
    configure(home, controller.port, "starttls")  # no ca_file: the private CA is not trusted
    monkeypatch.setenv("CSVREPORT_SMTP_PASSWORD", PASSWORD)
    path = workbook(home)

    outcome, warnings = deliver(home, path)

    assert (outcome.sent, outcome.failed) == (0, 1)
    assert warnings == ["1 workbooks could not be mailed (retried for 24 hours)"]
    assert server.messages == []
    row = deliveries(home)[0]
    assert row["status"] == "unsent"
    assert row["last_error"].startswith(f"127.0.0.1:{controller.port} (starttls): the server's certificate is "
                                        "not trusted (")
    assert row["last_error"].endswith("); for a private CA set email.ca_file to its certificate")


def test_a_refusing_server_is_retried_on_the_next_run_and_no_workbook_is_lost(home, smtp, pki, monkeypatch):
    controller, server = smtp("starttls")
    configure(home, controller.port, "starttls", ca=pki["ca"])
    monkeypatch.setenv("CSVREPORT_SMTP_PASSWORD", PASSWORD)
    first = workbook(home)
    server.refuse = True

    outcome, warnings = deliver(home, first)

    assert (outcome.sent, outcome.failed) == (0, 1)
    assert warnings == ["1 workbooks could not be mailed (retried for 24 hours)"]
    row = deliveries(home)[0]
    assert (row["status"], row["attempts"]) == ("unsent", 1)
    assert row["first_failure_at"] and "554" in row["last_error"]
    assert first.exists()

    # The next run writes another workbook; the server accepts again: both go out, in order.
    server.refuse = False
    second = workbook(home, "hourly_20260328_1100.xlsx", "second")
    outcome, warnings = deliver(home, second, start=HOUR_END, end=HOUR_END + 3600)

    assert (outcome.sent, outcome.failed, warnings) == (2, 0, [])
    assert [attachment(m["message"]) for m in server.messages] == [
        ("hourly_20260328_1000.xlsx", first.read_bytes()), ("hourly_20260328_1100.xlsx", second.read_bytes())]
    assert [(r["status"], r["attempts"]) for r in deliveries(home)] == [("sent", 2), ("sent", 1)]


def test_a_server_that_is_down_warns_exit_0_and_send_delivers_later(home, cli, smtp, pki, monkeypatch):
    port = free_port()  # nothing listens there yet
    configure(home, port, "starttls", ca=pki["ca"])
    monkeypatch.setenv("CSVREPORT_SMTP_PASSWORD", PASSWORD)
    path = workbook(home)
    outcome, _ = deliver(home, path)
    assert outcome.failed == 1

    result = cli("send")
    assert result.exit_code == 0, result.output
    assert "cannot reach the server (ConnectionRefusedError" in result.output

    _controller, server = smtp("starttls", port=port)
    result = cli("send")
    assert result.exit_code == 0, result.output
    assert "1 workbooks mailed, 0 not" in result.output
    assert attachment(server.messages[0]["message"])[1] == path.read_bytes()
    conn = sqlite3.connect(home / "data" / "csvreport.sqlite3")
    statuses = [r[0] for r in conn.execute("SELECT status FROM run_history WHERE command = 'send' ORDER BY id")]
    conn.close()
    assert statuses == ["warn", "ok"]
    assert [(r["status"], r["attempts"]) for r in deliveries(home)] == [("sent", 3)]


def test_a_rewritten_workbook_is_sent_again_as_a_correction(home, smtp):
    controller, server = smtp("none")
    configure(home, controller.port, "none")
    path = workbook(home)
    deliver(home, path)
    path = workbook(home, value="with late rows")

    outcome, _ = deliver(home, path, rewritten=True)

    assert outcome.sent == 1
    subjects = [m["message"]["Subject"] for m in server.messages]
    assert subjects == ["sensor_summary: Hourly report 2026-03-28 10:00-11:00 (Europe/Berlin)",
                        "Correction: sensor_summary: Hourly report 2026-03-28 10:00-11:00 (Europe/Berlin)"]
    body = server.messages[1]["message"].get_body(("plain",)).get_content()
    assert "This is a correction: rows for this window arrived after the earlier workbook was sent." in body
    assert attachment(server.messages[1]["message"])[1] == path.read_bytes()


def test_an_unsent_version_is_superseded_by_its_rewrite_which_is_no_correction(home, smtp):
    controller, server = smtp("none")
    configure(home, controller.port, "none")
    server.refuse = True
    path = workbook(home)
    deliver(home, path)
    server.refuse = False
    path = workbook(home, value="rewritten")

    outcome, _ = deliver(home, path, rewritten=True)

    assert outcome.sent == 1  # only the newest version goes out, once
    assert [m["message"]["Subject"] for m in server.messages] == [
        "sensor_summary: Hourly report 2026-03-28 10:00-11:00 (Europe/Berlin)"]
    assert [r["status"] for r in deliveries(home)] == ["superseded", "sent"]


def test_after_24_hours_unsent_becomes_undeliverable_and_send_still_gets_it_through(home, cli, smtp):
    controller, server = smtp("none")
    configure(home, controller.port, "none")
    server.refuse = True
    path = workbook(home)
    deliver(home, path)
    conn = sqlite3.connect(home / "data" / "csvreport.sqlite3")
    with conn:
        conn.execute("UPDATE email_delivery SET queued_at = '2026-01-01T00:00:00.000Z'")
    conn.close()

    outcome, warnings = deliver(home, workbook(home, "hourly_20260328_1100.xlsx"), start=HOUR_END,
                                end=HOUR_END + 3600)

    assert outcome.undeliverable == 1
    assert "1 workbooks undeliverable by email" in warnings
    with db.connect(load_settings(home), readonly=True) as ro:
        pending = mail.unsent(ro, load_settings(home))
    assert [(p["path"], p["status"]) for p in pending] == [
        (str(path), "undeliverable"), (str(home / "reports" / "hourly_20260328_1100.xlsx"), "unsent")]
    assert pending[0]["window"] == "2026-03-28 10:00-11:00"

    server.refuse = False
    result = cli("send")
    assert result.exit_code == 0, result.output
    assert len(server.messages) == 2
    assert [r["status"] for r in deliveries(home)] == ["sent", "sent"]


def test_a_deleted_workbook_stays_unsent_with_the_fix_in_its_error(home, smtp):
    controller, _server = smtp("none")
    configure(home, controller.port, "none")
    path = workbook(home)
    settings = load_settings(home)
    log.setup(settings.paths.logs)
    with recorded_run(settings, "hourly", {}) as (conn, run):
        mail.queue(settings, conn, "hourly", path, HOUR_START, HOUR_END)
    path.unlink()
    with recorded_run(settings, "hourly", {}) as (conn, run):
        outcome = mail.send_unsent(settings, conn, run)
    assert outcome.failed == 1
    assert deliveries(home)[0]["last_error"] == (
        f"127.0.0.1:{controller.port} (none): the workbook {path} is missing; "
        "`csvreport recover reports` writes it again")


def test_the_second_of_a_repeated_hour_is_named_by_its_offset():
    first = int(datetime(2026, 10, 25, 0, tzinfo=timezone.utc).timestamp())  # 02:00 CEST
    assert mail.window_label(first, first + 3600, "Europe/Berlin") == "2026-10-25 02:00-03:00 (UTC+02:00)"
    assert mail.window_label(first + 3600, first + 7200, "Europe/Berlin") == "2026-10-25 02:00-03:00 (UTC+01:00)"
    day = int(datetime(2026, 10, 24, 22, tzinfo=timezone.utc).timestamp())
    assert mail.window_label(day, day + 25 * 3600, "Europe/Berlin") == "2026-10-25 00:00-24:00"
    spring = int(datetime(2026, 3, 29, 0, tzinfo=timezone.utc).timestamp())  # 01:00 CET, then 03:00 CEST
    assert mail.window_label(spring, spring + 3600, "Europe/Berlin") == "2026-03-29 01:00-02:00"
    assert mail.window_label(spring + 3600, spring + 7200, "Europe/Berlin") == "2026-03-29 03:00-04:00"
    assert mail.window_label(spring - 3600, spring + 11 * 3600, "Europe/Berlin") == "2026-03-29 00:00-13:00"


# --- send --test and configuration --------------------------------------------------------------

def test_send_test_reaches_every_recipient_of_both_lists_once(home, cli, smtp, pki, monkeypatch):
    controller, server = smtp("starttls")
    configure(home, controller.port, "starttls", ca=pki["ca"])
    monkeypatch.setenv("CSVREPORT_SMTP_PASSWORD", PASSWORD)

    result = cli("send", "--test")

    assert result.exit_code == 0, result.output
    assert len(server.messages) == 1
    assert sorted(server.messages[0]["to"]) == ["lead@example.com", "night@example.com", "ops@example.com"]
    assert server.messages[0]["message"]["Subject"] == "csvreport test message"
    assert "test message sent to ops@example.com, night@example.com, lead@example.com" in result.output


def test_send_test_with_a_wrong_password_exits_1_and_never_shows_the_password(home, cli, smtp, pki, monkeypatch):
    controller, server = smtp("starttls")
    configure(home, controller.port, "starttls", ca=pki["ca"])
    wrong = "wrong-Pa55word-XYZ"
    monkeypatch.setenv("CSVREPORT_SMTP_PASSWORD", wrong)

    result = cli("send", "--test")

    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (
        f"Error: the test message was not sent: 127.0.0.1:{controller.port} (starttls): the server refused the "
        f"login of '{USER}': check email.username and CSVREPORT_SMTP_PASSWORD")
    assert wrong not in result.output
    assert wrong not in (home / "logs" / "csvreport.log").read_text()
    assert server.messages == []


def test_send_test_without_a_password_exits_2(home, cli, pki):
    configure(home, free_port(), "starttls", ca=pki["ca"])
    result = cli("send", "--test")
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == (
        f"Error: {home / 'config' / 'settings.toml'}: email.username is set but CSVREPORT_SMTP_PASSWORD is not; "
        f"set it in the environment or in {home / '.env'}")


def test_send_without_an_email_section_exits_2(home, cli):
    result = cli("send", "--test")
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == (
        f"Error: {home / 'config' / 'settings.toml'}: email: there is no [email] section; add one "
        "(see docs/email.md) and try again")
    result = cli("send")
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == (
        f"Error: {home / 'config' / 'settings.toml'}: email: mail delivery is not enabled; set enabled = true "
        "in [email] (see docs/email.md)")


def test_a_password_in_settings_and_a_bad_subject_are_configuration_errors(home, cli):
    configure(home, 2525, "none", extra='password = "hunter2"\nsubject = "{kind} {when}"\n')
    result = cli("send", "--test")
    assert result.exit_code == 2
    config = home / "config" / "settings.toml"
    assert result.output.splitlines()[-2:] == [
        f"{config}: email.password: secrets never go in settings.toml; set CSVREPORT_SMTP_PASSWORD in the "
        "environment or in .env in the home folder",
        f"{config}: email.subject: '{{kind}} {{when}}': bad placeholder 'when'; use {{title}}, {{kind}}, {{window}}, "
        "{zone} and {file}",
    ]
    assert "hunter2" not in result.output


def test_mail_disabled_queues_nothing(home):
    write_config(home, BASE_CONFIG.format(max_bad_rows=0, extra_source="") + """
[email]
enabled = false
host = "127.0.0.1"
sender = "reports@example.com"
hourly_to = ["ops@example.com"]
""")
    settings = load_settings(home)
    with recorded_run(settings, "hourly", {}) as (conn, run):
        assert mail.queue(settings, conn, "hourly", workbook(home), HOUR_START, HOUR_END) is None
        assert mail.send_unsent(settings, conn, run) == mail.SendOutcome()
    assert deliveries(home) == []


# --- through hourly and daily -------------------------------------------------------------------

def test_hourly_mails_its_workbook_and_a_failed_send_is_retried_by_the_next_daily(home, cli, smtp):
    controller, server = smtp("none")
    configure(home, controller.port, "none")
    ingest_hour(home, cli)
    server.refuse = True

    result = cli("hourly", "--hour", "2026-03-28 10:00")

    assert result.exit_code == 0, result.output
    assert "1 workbooks not mailed" not in result.output  # per workbook, not for the connection
    assert "not mailed: 127.0.0.1:" in result.output
    hourly_book = home / "reports" / "hourly_20260328_1000.xlsx"
    assert hourly_book.exists()
    assert [(r["status"], r["kind"]) for r in deliveries(home)] == [("unsent", "hourly")]

    server.refuse = False
    result = cli("daily", "--date", "2026-03-28", "--until", "12:00")

    assert result.exit_code == 0, result.output
    got = {m["message"]["Subject"]: m for m in server.messages}
    assert sorted(got) == ["sensor_summary: Daily report 2026-03-28 00:00-12:00 (Europe/Berlin)",
                           "sensor_summary: Hourly report 2026-03-28 10:00-11:00 (Europe/Berlin)"]
    assert attachment(got["sensor_summary: Hourly report 2026-03-28 10:00-11:00 (Europe/Berlin)"]["message"]) == (
        hourly_book.name, hourly_book.read_bytes())
    assert sorted(got["sensor_summary: Daily report 2026-03-28 00:00-12:00 (Europe/Berlin)"]["to"]) == [
        "lead@example.com", "ops@example.com"]
    conn = sqlite3.connect(home / "data" / "csvreport.sqlite3")
    runs = conn.execute("SELECT command, status FROM run_history WHERE command IN ('hourly', 'daily') "
                        "ORDER BY id").fetchall()
    conn.close()
    assert runs == [("hourly", "warn"), ("daily", "ok")]


def test_late_rows_rewrite_the_hour_and_it_is_mailed_as_a_correction(home, cli, smtp):
    controller, server = smtp("none")
    configure(home, controller.port, "none")
    ingest_hour(home, cli)
    assert cli("hourly", "--hour", "2026-03-28 10:00").exit_code == 0
    # Written again from the same rows: the same bytes, so the checksum says the recipients have it.
    assert cli("hourly", "--hour", "2026-03-28 10:00").exit_code == 0
    assert len(server.messages) == 1
    write_csv(home / "inbox" / "sensors" / "late.csv", "ts,site,metric,value\n2026-03-28 10:30:00,c,t,7\n")
    assert cli("ingest").exit_code == 0

    result = cli("hourly", "--hour", "2026-03-28 10:00")

    assert result.exit_code == 0, result.output
    assert [m["message"]["Subject"] for m in server.messages] == [
        "sensor_summary: Hourly report 2026-03-28 10:00-11:00 (Europe/Berlin)",
        "Correction: sensor_summary: Hourly report 2026-03-28 10:00-11:00 (Europe/Berlin)"]
    sent = [r["sha256"] for r in deliveries(home) if r["status"] == "sent"]
    assert len(sent) == 2 and sent[0] != sent[1]  # the correction is a different file from the first
    body = server.messages[1]["message"].get_body(("plain",)).get_content()
    assert "Rows: 3 from 2 files (source sensors)" in body
    assert attachment(server.messages[1]["message"])[1] == (home / "reports" / "hourly_20260328_1000.xlsx").read_bytes()
