"""Email delivery of workbooks: one message per workbook, retried until it gets through.

Each written workbook is first *queued* (a row in `email_delivery`, in the same database
as everything else), then `send_unsent` mails every queued row over one SMTP session.
A send that fails is a warning, never a failure of the run: the row stays 'unsent' and
every later hourly/daily run tries again, for `RETRY_HOURS`, after which it is marked
'undeliverable' (and `status` keeps showing it until `csvreport send` gets it through).

Certificates are always verified (`ca_file` adds a private CA); the SMTP password comes
only from CSVREPORT_SMTP_PASSWORD and is scrubbed from every message this module logs.
"""

from __future__ import annotations

import hashlib
import smtplib
import socket
import sqlite3
import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any, Optional

from csvreport import db, log
from csvreport.aggregate import Window, offset_text
from csvreport.config import SMTP_PASSWORD_ENV, Email, Settings, title_of
from csvreport.errors import ConfigError, CsvReportError
from csvreport.runs import Run

RETRY_HOURS = 24
KINDS = ("hourly", "daily")
XLSX_TYPE = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")
CORRECTION_PREFIX = "Correction: "


class MailError(CsvReportError):
    """The SMTP server could not be reached or refused the message (exit 1 for `send --test`)."""


@dataclass(frozen=True)
class SendOutcome:
    sent: int = 0
    failed: int = 0
    undeliverable: int = 0


def enabled(settings: Settings) -> bool:
    return _enabled_email(settings) is not None


def _enabled_email(settings: Settings) -> Optional[Email]:
    """The [email] settings when mail delivery is on, else None."""
    email = settings.email
    return email if email is not None and email.enabled else None


def recipients(email: Email, kind: str) -> tuple[str, ...]:
    return email.hourly_to if kind == "hourly" else email.daily_to


def window_label(start_utc: int, end_utc: int, zone: str) -> str:
    """`2026-03-29 14:00-15:00` in local time; the offset is added only for a repeated hour."""
    window = Window(start_utc, end_utc, zone)
    start = window.local_start
    label = f"{start:%Y-%m-%d} " + "-".join(window.wall_clock())
    if start.replace(fold=1 - start.fold).utcoffset() != start.utcoffset():
        # At a DST fall-back the same wall-clock hour happens twice: say which one.
        label += f" (UTC{offset_text(start)})"
    return label


def subject_for(email: Email, kind: str, window: str, zone: str, file_name: str, correction: bool,
                title: str = "") -> str:
    subject = email.subject.format(kind=kind.capitalize(), window=window, zone=zone, file=file_name, title=title)
    return (CORRECTION_PREFIX + subject) if correction else subject


def queue(settings: Settings, conn: sqlite3.Connection, kind: str, path: Path, start_utc: int, end_utc: int,
          rewritten: bool = False, run_id: Optional[int] = None, sha256: Optional[str] = None) -> Optional[int]:
    """Record a written workbook for delivery; returns the row id, or None when it is not to be mailed.

    The checksum decides: workbooks are byte-identical when written again from the same
    rows, so a rewrite whose sha256 equals the one sent (a lost file written again) is not
    mailed a second time, and a rewrite that differs from what reached the recipients is a
    correction. An earlier version still unsent is superseded: only the newest is ever
    mailed. Without a checksum, `rewritten` decides whether a workbook sent before is a correction.
    """
    email = _enabled_email(settings)
    if email is None or kind not in KINDS or not recipients(email, kind):
        return None
    path = Path(path)
    stored = settings.stored_path(path)
    now = db.utcnow()
    label = window_label(start_utc, end_utc, settings.timezone)
    with db.transaction(conn):
        sent = conn.execute("SELECT sha256 FROM email_delivery WHERE path = ? AND status = 'sent' "
                            "ORDER BY id DESC LIMIT 1", (stored,)).fetchone()  # the last version sent
        if sha256 is not None and sent and sent[0] == sha256:
            return None  # the recipients have exactly this file
        correction = sent is not None and (sha256 is not None or rewritten)
        conn.execute("UPDATE email_delivery SET status = 'superseded' WHERE path = ? AND status = 'unsent'",
                     (stored,))
        subject = subject_for(email, kind, label, settings.timezone, path.name, correction,
                              title_of(settings.reports))
        body = _body(settings, conn, kind, path, start_utc, end_utc, label, correction)
        row_id = db.insert(
            conn,
            "INSERT INTO email_delivery (kind, path, window_start, window_end, window_label, subject, body, "
            "correction, status, queued_at, run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'unsent', ?, ?)",
            (kind, stored, start_utc, end_utc, label, subject, body, int(correction), now, run_id),
        )
    return row_id


def send_unsent(settings: Settings, conn: sqlite3.Connection, run: Run, include_undeliverable: bool = False
                ) -> SendOutcome:
    """Mail every queued workbook over one SMTP session; failures are warnings, retried next run."""
    email = _enabled_email(settings)
    if email is None:
        return SendOutcome()
    undeliverable = _expire(settings, conn, run)
    states = ("unsent", "undeliverable") if include_undeliverable else ("unsent",)
    rows = conn.execute(
        f"SELECT id, kind, path, subject, body FROM email_delivery WHERE status IN ({','.join('?' * len(states))}) "
        "ORDER BY id", states).fetchall()
    if not rows:
        return SendOutcome(undeliverable=undeliverable)
    sent = failed = 0
    password = None
    try:
        password = _password(settings, email)
        session = _open(email, password)
    except Exception as exc:  # noqa: BLE001 - any failure to connect is a warning, retried next run
        reason = _describe(exc, email, password)
        for row in rows:
            _failed(conn, row[0], reason, recipients(email, row[1]))
        failed = len(rows)
        log.warning("mail", f"{failed} workbooks not mailed: {reason}; the next hourly or daily run tries again",
                    host=email.host, port=email.port)
    else:
        try:
            for index, (row_id, kind, stored_path, subject, body) in enumerate(rows):
                to = recipients(email, kind)
                path = str(settings.from_stored(stored_path))
                try:
                    digest = _send_one(session, email, to, subject, body, Path(path))
                except Exception as exc:  # noqa: BLE001 - same: a warning, retried next run
                    reason = _describe(exc, email, password)
                    log.warning("mail", f"not mailed: {reason}; the next hourly or daily run tries again",
                                file=path)
                    broken = isinstance(exc, (smtplib.SMTPServerDisconnected, OSError))
                    # A broken connection fails the rest too; they are tried again on the next run.
                    for later in rows[index:] if broken else [rows[index]]:
                        _failed(conn, later[0], reason, recipients(email, later[1]))
                        failed += 1
                    if broken:
                        break
                else:
                    _sent(conn, row_id, digest, to)
                    sent += 1
                    log.info("mail", f"mailed to {', '.join(to)}: {subject}", file=path)
        finally:
            _close(session)
    if failed:
        run.warn(f"{failed} workbooks could not be mailed (retried for {RETRY_HOURS} hours)")
    return SendOutcome(sent=sent, failed=failed, undeliverable=undeliverable)


def send_test(settings: Settings) -> tuple[str, ...]:
    """Send one test message to every recipient of both lists; raise MailError when it fails."""
    email = settings.email
    if email is None:
        raise ConfigError(f"{settings.config_path}: email: there is no [email] section; add one "
                          "(see docs/email.md) and try again")
    to = tuple(dict.fromkeys(email.hourly_to + email.daily_to))
    if not to:
        raise ConfigError(f"{settings.config_path}: email.hourly_to, email.daily_to: no recipients; "
                          "list at least one address")
    password = _password(settings, email)
    body = (f"This is a test message from csvreport in {settings.home}.\n\n"
            f"Server: {email.host}:{email.port} ({email.security})\n"
            f"Hourly workbooks go to: {', '.join(email.hourly_to) or 'nobody'}\n"
            f"Daily workbooks go to: {', '.join(email.daily_to) or 'nobody'}\n"
            f"Mail delivery is {'enabled' if email.enabled else 'disabled (email.enabled = false)'}.\n")
    message = _message(email, to, "csvreport test message", body)
    try:
        session = _open(email, password)
        try:
            refused = session.send_message(message, from_addr=email.sender, to_addrs=list(to))
        finally:
            _close(session)
    except Exception as exc:  # noqa: BLE001 - reported to the operator as one line
        raise MailError(f"the test message was not sent: {_describe(exc, email, password)}") from None
    if refused:
        raise MailError(f"the server refused {', '.join(sorted(refused))}: "
                        f"{_scrub(str(refused), password)}; the others got the test message")
    log.info("mail", f"test message sent to {', '.join(to)}", host=email.host)
    return to


def unsent(conn: sqlite3.Connection, settings: Settings) -> list[dict[str, Any]]:
    """Workbooks not (yet) delivered, oldest first; reads only, so `status` may call it."""
    if not db.has_table(conn, "email_delivery"):
        return []  # the database predates migration 0004
    rows = conn.execute(
        "SELECT id, kind, path, window_label, status, attempts, queued_at, first_failure_at, "
        "last_attempt_at, last_error FROM email_delivery WHERE status IN ('unsent', 'undeliverable') "
        "ORDER BY id").fetchall()
    keys = ("id", "kind", "path", "window", "status", "attempts", "queued_at", "first_failure_at",
            "last_attempt_at", "last_error")
    return [{**dict(zip(keys, row)), "path": str(settings.from_stored(row[2]))} for row in rows]


def _expire(settings: Settings, conn: sqlite3.Connection, run: Run) -> int:
    cutoff = (datetime.now(timezone.utc) - timedelta(hours=RETRY_HOURS)).isoformat(timespec="milliseconds")
    cutoff = cutoff.replace("+00:00", "Z")
    with db.transaction(conn):
        expired = conn.execute("SELECT id, path, attempts, last_error FROM email_delivery "
                               "WHERE status = 'unsent' AND queued_at < ?", (cutoff,)).fetchall()
        conn.execute("UPDATE email_delivery SET status = 'undeliverable' WHERE status = 'unsent' AND queued_at < ?",
                     (cutoff,))
    for _id, path, attempts, error in expired:
        log.warning("mail", f"undeliverable: not mailed within {RETRY_HOURS} hours ({attempts} attempts, last "
                    f"error: {error}); fix [email] and run `csvreport send` to try again",
                    file=str(settings.from_stored(path)))
    if expired:
        run.warn(f"{len(expired)} workbooks undeliverable by email")
    return len(expired)


def _password(settings: Settings, email: Email) -> Optional[str]:
    password = settings.env.get(SMTP_PASSWORD_ENV) or email.password
    if email.username and not password:
        raise ConfigError(f"{settings.config_path}: email.username is set but {SMTP_PASSWORD_ENV} is not; "
                          f"set it in the environment or in {settings.home / '.env'}")
    return password


def _open(email: Email, password: Optional[str]) -> smtplib.SMTP:
    context = ssl.create_default_context(cafile=str(email.ca_file) if email.ca_file else None)
    session: smtplib.SMTP
    if email.security == "tls":
        session = smtplib.SMTP_SSL(email.host, email.port, timeout=email.timeout, context=context)
    else:
        session = smtplib.SMTP(email.host, email.port, timeout=email.timeout)
    try:
        if email.security == "starttls":
            session.starttls(context=context)
        if email.username:
            _login(session, email.username, password or "")
    except BaseException:
        session.close()
        raise
    return session


def _login(session: smtplib.SMTP, username: str, password: str) -> None:
    session.ehlo_or_helo_if_needed()
    if "PLAIN" in session.esmtp_features.get("auth", "").upper().split():
        # One attempt with the standard mechanism: smtplib's login() would try the password
        # again with every other mechanism, which lockout policies count as more failures.
        session.user, session.password = username, password
        session.auth("PLAIN", session.auth_plain)
    else:
        session.login(username, password)


def _close(session: smtplib.SMTP) -> None:
    try:
        session.quit()
    except (smtplib.SMTPException, OSError):
        pass  # the message was handed over (or not) before; a failed goodbye changes nothing
    finally:
        session.close()


def _send_one(session: smtplib.SMTP, email: Email, to: tuple[str, ...], subject: str, body: str,
              path: Path) -> str:
    if not to:
        raise MailError("no recipients for this kind of workbook in email.hourly_to / email.daily_to")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise MailError(f"the workbook {path} is missing; `csvreport recover reports` writes it again") from None
    message = _message(email, to, subject, body)
    message.add_attachment(data, maintype=XLSX_TYPE[0], subtype=XLSX_TYPE[1], filename=path.name)
    refused = session.send_message(message, from_addr=email.sender, to_addrs=list(to))
    if refused:
        log.warning("mail", f"the server refused {', '.join(sorted(refused))}; the others got the workbook",
                    file=str(path))
    return hashlib.sha256(data).hexdigest()


def _message(email: Email, to: tuple[str, ...], subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = email.sender
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=email.sender.rpartition("@")[2] or None)
    message.set_content(body)
    return message


def _body(settings: Settings, conn: sqlite3.Connection, kind: str, path: Path, start_utc: int, end_utc: int,
          label: str, correction: bool) -> str:
    start_utc_text = datetime.fromtimestamp(start_utc, timezone.utc).strftime("%Y-%m-%d %H:%M")
    end_utc_text = datetime.fromtimestamp(end_utc, timezone.utc).strftime("%Y-%m-%d %H:%M")
    lines = [f"{title_of(settings.reports)}: {kind} report for {label} ({settings.timezone}).", ""]
    if correction:
        lines += ["This is a correction: rows for this window arrived after the earlier workbook was sent.",
                  "It replaces that workbook; its Summary sheet says Correction.", ""]
    lines.append(f"Window: {label} {settings.timezone} ({start_utc_text} to {end_utc_text} UTC)")
    for name, rows, files in _window_counts(settings, conn, start_utc, end_utc):
        lines.append(f"Rows: {rows:,} from {files:,} files (source {name})")
    quarantined = conn.execute("SELECT count(*) FROM ingestion_log WHERE status = 'quarantined'").fetchone()[0]
    if quarantined:
        lines.append(f"Quarantined: {quarantined} files wait for an operator (csvreport recover list); "
                     "their rows are not in this workbook")
    else:
        lines.append("Quarantined: none")
    lines += ["", f"Attached: {path.name}", "", f"-- \ncsvreport on {socket.gethostname()}"]
    return "\n".join(lines) + "\n"


def _window_counts(settings: Settings, conn: sqlite3.Connection, start_utc: int, end_utc: int
                   ) -> list[tuple[str, int, int]]:
    counts = []
    for source in settings.sources:
        if not db.table_columns(conn, source.name):
            continue
        rows, files = conn.execute(
            f"SELECT count(*), count(DISTINCT _ingestion_id) FROM {db.quote(source.name)} "
            "WHERE _ts >= ? AND _ts < ?", (start_utc, end_utc)).fetchone()
        counts.append((source.name, rows, files))
    return counts


def _failed(conn: sqlite3.Connection, row_id: int, reason: str, to: tuple[str, ...]) -> None:
    now = db.utcnow()
    with db.transaction(conn):
        conn.execute(
            "UPDATE email_delivery SET attempts = attempts + 1, first_failure_at = coalesce(first_failure_at, ?), "
            "last_attempt_at = ?, last_error = ?, recipients = ? WHERE id = ?",
            (now, now, reason[:1000], ", ".join(to), row_id))


def _sent(conn: sqlite3.Connection, row_id: int, digest: str, to: tuple[str, ...]) -> None:
    now = db.utcnow()
    with db.transaction(conn):
        conn.execute(
            "UPDATE email_delivery SET status = 'sent', attempts = attempts + 1, last_attempt_at = ?, sent_at = ?, "
            "sha256 = ?, recipients = ? WHERE id = ?", (now, now, digest, ", ".join(to), row_id))


def _describe(exc: BaseException, email: Email, password: Optional[str]) -> str:
    where = f"{email.host}:{email.port} ({email.security})"
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        hint = f"the server refused the login of {email.username!r}: check email.username and {SMTP_PASSWORD_ENV}"
    elif isinstance(exc, ssl.SSLCertVerificationError):
        hint = (f"the server's certificate is not trusted ({exc.verify_message}); for a private CA set "
                "email.ca_file to its certificate")
    elif isinstance(exc, smtplib.SMTPNotSupportedError) and email.security == "starttls":
        hint = "the server does not offer STARTTLS: set email.security to \"tls\" (port 465) or ask its admin"
    elif isinstance(exc, (ConnectionRefusedError, socket.timeout, TimeoutError, socket.gaierror)):
        hint = f"cannot reach the server ({type(exc).__name__}: {exc}): check email.host and email.port"
    elif isinstance(exc, CsvReportError):
        hint = str(exc)
    else:
        hint = f"{type(exc).__name__}: {exc}"
    return _scrub(f"{where}: {hint}", password)


def _scrub(text: str, password: Optional[str]) -> str:
    return text.replace(password, "***") if password else text
