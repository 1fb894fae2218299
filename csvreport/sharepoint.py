"""`csvreport sync`: pull files from SharePoint document libraries into drop folders.

Per [[sharepoint]] table: an app-only token (MSAL, client credentials), the site by its URL,
the library (drive) by its name, the folder listed page by page (`@odata.nextLink`). Each file
matching the pattern that is new or changed (item id and eTag) is downloaded through its
pre-authenticated `@microsoft.graph.downloadUrl` into a hidden `.part` file in `download_to`,
checked against the size and quickXorHash SharePoint reports, fsynced, recorded as `placing`,
renamed into place and recorded as `downloaded`. Only then is the item moved to
`processed_folder` (`If-Match` its eTag, renamed on a name clash) and recorded as `marked`.

A run killed anywhere is finished by the next one: a `placing` row's rename is completed or
found done; a `downloaded` row is marked when its item is still in the folder with the same
eTag, or recorded as marked when an earlier move went through; a half-written `.part` file
is removed and the file downloaded again. Nothing reaches the drop folder twice, and nothing
is moved that did not arrive whole.

Faults are handled as Microsoft documents them: 429/503 (and 502/504) wait for
`Retry-After` (or back off exponentially), a 401 gets a fresh token once, a connection cut
mid-file resumes with `Range` (or starts again when the server sends the whole file), a
file whose hash does not match is checked for a new eTag (changed while read: taken next
run), a missing processed folder is created. Waiting is bounded by the remote's
`max_retry_seconds`; SharePoint that cannot be reached within it is a WARNING, not a failure.

msal and requests are imported only here, and only when `sync` runs (the `sharepoint` extra).
"""

from __future__ import annotations

import email.utils
import fnmatch
import hashlib
import os
import re
import sqlite3
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from csvreport import db, log, quickxor
from csvreport.config import SHAREPOINT_SECRET_ENV, Remote, Settings
from csvreport.errors import ConfigError, CsvReportError
from csvreport.runs import Run
from csvreport.files import replace_durably

INSTALL_HINT = "pip install 'csvreport[sharepoint]'"
STAGE = "sync"
CHUNK = 1 << 16  # what a cut connection can lose of the bytes in flight; the rest resumes with Range
PAGE_SIZE = 200
MAX_ATTEMPTS = 8  # per request, before SharePoint counts as unreachable (also bounded by max_retry_seconds)
MAX_BACKOFF = 60.0  # seconds, when no Retry-After says how long
RETRY_STATUSES = (429, 502, 503, 504)
TEMP_RE = re.compile(r"\..+\.[0-9a-f]{10}\.part\Z")


class Unreachable(Exception):
    """SharePoint did not answer usefully within the retry budget: a WARNING, the run goes on."""


class Vanished(Exception):
    """The item was deleted in SharePoint between the listing and its download."""


@dataclass(frozen=True)
class Item:
    id: str
    name: str
    etag: str
    size: int
    quick_xor_hash: str | None
    download_url: str | None
    parent_id: str | None
    modified: float | None = None  # lastModifiedDateTime, Unix time

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Item:
        hashes = (data.get("file") or {}).get("hashes") or {}
        return cls(id=data["id"], name=data["name"], etag=data.get("eTag") or data.get("cTag") or "",
                   size=int(data.get("size") or 0), quick_xor_hash=hashes.get("quickXorHash"),
                   download_url=data.get("@microsoft.graph.downloadUrl"),
                   parent_id=(data.get("parentReference") or {}).get("id"),
                   modified=db.utc_epoch(data.get("lastModifiedDateTime")))


@dataclass
class Tally:
    seen: int = 0
    downloaded: int = 0
    skipped: int = 0
    marked: int = 0
    warnings: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Before the run: everything that can be checked without the network


def prepare(settings: Settings, only: str | None = None) -> list[Remote]:
    """The remotes to sync, with their libraries and credentials checked; ConfigError (exit 2) otherwise."""
    remotes = [settings.remote(only)] if only else list(settings.remotes)
    if not remotes:
        raise ConfigError(f"{settings.config_path}: sharepoint: no [[sharepoint]] table, so there is nothing to "
                          "sync; add one (see docs/sharepoint.md)")
    try:
        import msal  # type: ignore[import-untyped]  # noqa: F401
        import requests  # noqa: F401
    except ImportError as exc:
        raise ConfigError(f"sync needs the msal and requests packages ({exc.name} is not installed); install "
                          f"them with: {INSTALL_HINT}") from None
    problems = [p for remote in remotes for p in _credential_problems(settings, remote)]
    if problems:
        raise ConfigError("SharePoint credentials are not usable:\n" + "\n".join(problems))
    return remotes


def _credential_problems(settings: Settings, remote: Remote) -> list[str]:
    where = f"{settings.config_path}: sharepoint.{remote.name}"
    if remote.certificate is None:
        if not remote.secret:
            return [(f"{where}: no client secret: set {SHAREPOINT_SECRET_ENV} in the environment or in "
                    f"{settings.home / '.env'}, or set certificate = \"config/….pem\"")]
        return []
    try:
        _read_certificate(remote.certificate)
    except (OSError, ValueError, TypeError) as exc:
        return [f"{where}.certificate: {exc}"]
    return []


def _read_certificate(path: Path) -> dict[str, str]:
    """MSAL's certificate credential from one PEM file holding the private key and the certificate."""
    text = path.read_text(encoding="ascii", errors="replace")
    key = re.search(r"-----BEGIN (?:RSA |EC )?PRIVATE KEY-----.+?-----END (?:RSA |EC )?PRIVATE KEY-----", text,
                    re.DOTALL)
    cert = re.search(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", text, re.DOTALL)
    if not key or not cert:
        missing = " and ".join(w for w, m in (("a private key", key), ("a certificate", cert)) if not m)
        raise ValueError(f"{path} holds no {missing} in PEM form; put both in the file (see docs/sharepoint.md)")
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        private_key = load_pem_private_key(key.group(0).encode("ascii"), password=None)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: the private key cannot be read ({exc}); it must be unencrypted PEM") from None
    if not isinstance(private_key, RSAPrivateKey):
        raise TypeError(f"{path}: the private key is not an RSA key; Microsoft Entra ID takes RSA certificates "
                         "(see docs/sharepoint.md)")
    der = ssl.PEM_cert_to_DER_cert(cert.group(0))
    return {"private_key": key.group(0), "thumbprint": hashlib.sha1(der).hexdigest(),
            "public_certificate": cert.group(0)}


# ---------------------------------------------------------------------------------------------
# Microsoft Graph


def ca_bundle() -> str | bool:
    """Certificates are always verified: against REQUESTS_CA_BUNDLE or SSL_CERT_FILE when set, else the
    system's store (a corporate CA installed there is trusted), else the bundle requests ships."""
    named = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE")
    if named:
        return named
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile):
        if candidate and Path(candidate).is_file():
            return candidate
    return True


class Graph:
    """Graph v1.0 requests for one remote, with its token, retries and time budget."""

    def __init__(self, remote: Remote, sleep: Any = time.sleep) -> None:
        import requests

        self.remote = remote
        self.where = f"sharepoint.{remote.name}"
        self.base = f"{remote.graph_endpoint}/v1.0"
        self.session = requests.Session()
        self.session.verify = ca_bundle()
        self.session.headers["User-Agent"] = "csvreport-sync"
        self.sleep = sleep
        self.slept = 0.0
        self._token: str | None = None
        self._processed_id: str | None = None

    # -- tokens

    def token(self, fresh: bool = False) -> str:
        if self._token is None or fresh:
            self._token = self._acquire()
        return self._token

    def _acquire(self) -> str:
        import msal
        import requests

        remote = self.remote
        credential: Any = _read_certificate(remote.certificate) if remote.certificate else remote.secret
        host = urlsplit(remote.authority_host).hostname or ""
        known = host in getattr(msal.authority, "WELL_KNOWN_AUTHORITY_HOSTS", ())
        attempt = 0
        while True:
            try:
                # A new application each time: a fresh token must not come from MSAL's cache.
                app = msal.ConfidentialClientApplication(
                    remote.client_id, client_credential=credential,
                    authority=f"{remote.authority_host}/{remote.tenant_id}", http_client=self.session,
                    timeout=remote.timeout, instance_discovery=None if known else False)
                result = app.acquire_token_for_client(scopes=[f"{remote.graph_endpoint}/.default"])
            except (requests.RequestException, msal.exceptions.MsalServiceError) as exc:
                # MSAL raises its service error for an HTTP error status it cannot read as an answer.
                status = re.search(r"HTTP Error: (\d+)", str(exc))
                if status and not (int(status.group(1)) in RETRY_STATUSES or int(status.group(1)) >= 500):
                    raise CsvReportError(f"{self.where}: the token endpoint at {remote.authority_host} answered "
                                         f"{exc}; check {self.where}.authority_host and {self.where}.tenant_id"
                                         ) from None
                self._pause(attempt, None, f"token request to {remote.authority_host}: {_short(exc)}")
                attempt += 1
                continue
            except ValueError as exc:
                # MSAL could not read the tenant's OpenID configuration: the tenant or authority is wrong.
                raise CsvReportError(
                    f"{self.where}: the authority {remote.authority_host}/{remote.tenant_id} is unknown "
                    f"({str(exc)[:300]}); check {self.where}.tenant_id and {self.where}.authority_host") from None
            if "access_token" in result:
                return str(result["access_token"])
            error = result.get("error", "")
            if error == "temporarily_unavailable" or "timeout" in error:
                self._pause(attempt, None, f"token endpoint: {error}")
                attempt += 1
                continue
            raise CsvReportError(self._token_error(result))

    def _token_error(self, result: dict[str, Any]) -> str:
        where = self.where
        error = result.get("error", "unknown error")
        description = (result.get("error_description") or "").splitlines()[0] if result.get(
            "error_description") else ""
        codes = set(result.get("error_codes") or [])
        said = f"the token endpoint refused the app ({error}: {description})"
        if codes & {90002, 900023} or ("tenant" in description.lower() and error == "invalid_request"):
            fix = f"check {where}.tenant_id (the directory (tenant) id of the app registration)"
        elif codes & {700016} or error == "unauthorized_client":
            fix = f"check {where}.client_id and {where}.tenant_id (the app registration must exist in that tenant)"
        elif error == "invalid_client":
            fix = (f"check {where}.certificate (the certificate uploaded to the app registration)"
                   if self.remote.certificate else
                   f"check the client secret in {SHAREPOINT_SECRET_ENV} (expired or mistyped?) and "
                   f"{where}.client_id")
        else:
            fix = f"check {where}.tenant_id, {where}.client_id and the credentials (docs/sharepoint.md)"
        return f"{said}; {fix}"

    # -- requests

    def request(self, method: str, url: str, *, auth: bool = True, **kwargs: Any) -> Any:
        """One request with Microsoft's retry rules; a response of any other status is the caller's to judge."""
        import requests

        if not url.startswith("https://"):
            url = self.base + url
        elif auth and not url.startswith(self.remote.graph_endpoint + "/"):
            # Our token goes to Graph only (a next page elsewhere would be a bug or an attack).
            raise CsvReportError(f"{self.where}: Graph pointed to {urlsplit(url).netloc}, outside graph_endpoint "
                                 f"{self.remote.graph_endpoint}; not following it")
        refreshed = False
        attempt = 0
        what = f"{method} {urlsplit(url).path}"
        while True:
            headers = dict(kwargs.pop("headers", None) or {})
            kwargs["headers"] = headers
            if auth:
                headers["Authorization"] = f"Bearer {self.token()}"
            try:
                response = self.session.request(method, url, timeout=self.remote.timeout, **kwargs)
            except requests.RequestException as exc:
                self._pause(attempt, None, f"{what}: {_short(exc)}")
                attempt += 1
                continue
            if response.status_code == 401 and auth and not refreshed:
                # An expired or revoked token: Microsoft's answer is to get a new one, once.
                log.warning(STAGE, f"{what}: 401 {_graph_error(response)}; acquiring a new token",
                            remote=self.remote.name)
                response.close()
                self.token(fresh=True)
                refreshed = True
                continue
            if response.status_code in RETRY_STATUSES:
                wait = retry_after(response)
                response.close()
                self._pause(attempt, wait, f"{what}: HTTP {response.status_code}")
                attempt += 1
                continue
            return response

    def _pause(self, attempt: int, wait: float | None, what: str) -> None:
        """Wait before the next attempt, as asked (Retry-After) or backing off; Unreachable when out of budget."""
        delay = wait if wait is not None else min(2.0 ** attempt - 1, MAX_BACKOFF)
        if attempt + 1 >= MAX_ATTEMPTS or self.slept + delay > self.remote.max_retry_seconds:
            raise Unreachable(f"{what}; gave up after {attempt + 1} attempts and {self.slept:g} s of waiting "
                              f"(max_retry_seconds = {self.remote.max_retry_seconds:g})")
        log.warning(STAGE, f"{what}; retrying in {delay:g} s" + (" as Retry-After asks" if wait is not None else ""),
                    remote=self.remote.name)
        self.sleep(delay)
        self.slept += delay

    def get_json(self, path: str, missing: str | None = None) -> dict[str, Any] | None:
        """GET a Graph resource; None on 404 when `missing` is None, else a CsvReportError saying `missing`."""
        response = self.request("GET", path)
        if response.status_code == 404:
            if missing:
                raise CsvReportError(f"{missing} (Graph: {_graph_error(response)})")
            return None
        self._check(response, path)
        return response.json()

    def pages(self, path: str, missing: str) -> Iterator[dict[str, Any]]:
        """Every entry of a collection, following @odata.nextLink until there is none."""
        url: str | None = path
        while url:
            page = self.get_json(url, missing)
            assert page is not None
            yield from page.get("value", [])
            url = page.get("@odata.nextLink")

    def _check(self, response: Any, what: str) -> None:
        if response.status_code in (200, 201):
            return
        detail = _graph_error(response)
        if response.status_code == 403:
            raise CsvReportError(
                f"{self.where}: access denied to {what} ({detail}); grant the app registration {self.remote.client_id} "
                f"Sites.Selected on {self.remote.site} (or Sites.ReadWrite.All); see docs/sharepoint.md")
        if response.status_code == 401:
            raise CsvReportError(f"{self.where}: Graph refused the token for {what} ({detail}); check the app "
                                 f"registration's API permissions and {self.where}.graph_endpoint")
        if response.status_code >= 500:
            raise Unreachable(f"{what}: HTTP {response.status_code} {detail}")
        raise CsvReportError(f"{self.where}: {what}: HTTP {response.status_code} {detail}")

    # -- the resources sync uses

    def site_id(self) -> str:
        parts = urlsplit(self.remote.site)
        path = parts.path.strip("/")
        resource = f"/sites/{parts.hostname}" + (f":/{quote(path)}" if path else "")
        site = self.get_json(resource, f"{self.where}.site: no site at {self.remote.site}; check the URL "
                             "(as shown in the browser, e.g. https://contoso.sharepoint.com/sites/Operations)")
        assert site is not None
        return str(site["id"])

    def drive_id(self, site_id: str) -> str:
        drives = list(self.pages(f"/sites/{quote(site_id, safe='')}/drives",
                                 f"{self.where}.site: {self.remote.site} has no document libraries"))
        for drive in drives:
            if drive.get("name") == self.remote.library:
                return str(drive["id"])
        for drive in drives:
            if str(drive.get("name", "")).casefold() == self.remote.library.casefold():
                return str(drive["id"])
        names = ", ".join(repr(d.get("name")) for d in drives) or "none"
        raise CsvReportError(f"{self.where}.library: no document library named {self.remote.library!r} on "
                             f"{self.remote.site} (found: {names})")

    def folder(self, drive_id: str, folder: str) -> dict[str, Any] | None:
        return self.get_json(_path_resource(drive_id, folder))

    def children(self, drive_id: str, folder: str) -> Iterator[Item]:
        resource = _path_resource(drive_id, folder).rstrip(":")
        resource += (":/children" if folder else "/children") + f"?$top={PAGE_SIZE}"
        for entry in self.pages(resource, f"{self.where}.folder: no folder {folder!r} in library "
                                f"{self.remote.library!r}; check the path (folders separated by /)"):
            if "file" in entry:
                yield Item.from_json(entry)

    def item(self, drive_id: str, item_id: str) -> Item | None:
        data = self.get_json(f"/drives/{quote(drive_id, safe='')}/items/{quote(item_id, safe='')}")
        return Item.from_json(data) if data is not None else None

    def processed_folder_id(self, drive_id: str) -> str:
        """The id of the remote's processed folder, created when missing; asked for once per run."""
        if self._processed_id is None:
            self._processed_id = self.ensure_folder(drive_id, self.remote.processed_folder)
        return self._processed_id

    def ensure_folder(self, drive_id: str, folder: str) -> str:
        """The id of `folder` in the drive, created (with its parents) when missing."""
        found = self.folder(drive_id, folder)
        if found is not None:
            return str(found["id"])
        parent_id = self._folder_id(drive_id, "")
        done: list[str] = []
        for part in folder.split("/"):
            done.append(part)
            path = "/".join(done)
            existing = self.folder(drive_id, path)
            if existing is not None:
                parent_id = str(existing["id"])
                continue
            response = self.request(
                "POST", f"/drives/{quote(drive_id, safe='')}/items/{quote(parent_id, safe='')}/children",
                json={"name": part, "folder": {}, "@microsoft.graph.conflictBehavior": "fail"})
            if response.status_code == 409:  # created meanwhile by someone else
                parent_id = self._folder_id(drive_id, path)
                continue
            self._check(response, f"creating folder {path}")
            parent_id = str(response.json()["id"])
            log.info(STAGE, f"created the processed folder {path!r} in library {self.remote.library!r}",
                     remote=self.remote.name)
        return parent_id

    def _folder_id(self, drive_id: str, folder: str) -> str:
        found = self.folder(drive_id, folder)
        if found is None:
            raise CsvReportError(f"{self.where}: folder {folder or '/'!r} of library {self.remote.library!r} "
                                 "vanished while sync was creating the processed folder; the next sync tries again")
        return str(found["id"])

    def move(self, drive_id: str, item: Item, folder_id: str) -> tuple[str, str | None]:
        """Move `item` into `folder_id` if it is still the version downloaded: ('moved', name), ('changed', None)
        when its eTag moved on, ('gone', None) when it no longer exists."""
        url = f"/drives/{quote(drive_id, safe='')}/items/{quote(item.id, safe='')}"
        body: dict[str, Any] = {"parentReference": {"id": folder_id}}
        for attempt in range(2):
            response = self.request("PATCH", url + "?@microsoft.graph.conflictBehavior=rename", json=body,
                                    headers={"If-Match": item.etag})
            if response.status_code == 200:
                return "moved", str(response.json().get("name", item.name))
            if response.status_code == 412:
                return "changed", None
            if response.status_code == 404:
                return "gone", None
            if response.status_code == 409 and attempt == 0:
                # Some libraries ignore conflictBehavior on a move: choose a free name ourselves.
                stem, dot, suffix = item.name.rpartition(".")
                stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
                body["name"] = f"{stem} ({stamp}).{suffix}" if dot and stem else f"{item.name} ({stamp})"
                log.info(STAGE, f"{item.name} exists in the processed folder; moving it as {body['name']}",
                         remote=self.remote.name)
                continue
            self._check(response, f"moving {item.name}")
        raise AssertionError("unreachable")  # pragma: no cover

    def download(self, drive_id: str, item: Item, target: Path) -> None:
        """Write the item's content to `target`, resuming with Range after a cut connection."""
        import requests

        url = item.download_url
        written = 0
        attempt = 0
        fresh_url = False
        with open(target, "wb") as handle:
            while True:
                if written and written >= item.size:
                    break  # the connection broke after the last byte: nothing is left to ask for
                if url is None:
                    current = self.item(drive_id, item.id)
                    if current is None:
                        raise Vanished(item.name)
                    url = current.download_url
                    if url is None:
                        raise CsvReportError(f"{self.where}: Graph gave no download URL for {item.name} "
                                             f"(item {item.id})")
                headers = {"Range": f"bytes={written}-"} if written else {}
                # The download URL is pre-authenticated and short-lived: it must not carry our token.
                response = self.request("GET", url, auth=False, headers=headers, stream=True)
                if response.status_code in (401, 403, 404, 410) and not fresh_url:
                    response.close()
                    log.info(STAGE, f"{item.name}: the download URL expired (HTTP {response.status_code}); "
                             "asking for a new one", remote=self.remote.name)
                    url, fresh_url = None, True
                    continue
                if response.status_code == 206 and written:
                    handle.seek(written)
                elif response.status_code == 200:
                    if written:
                        log.info(STAGE, f"{item.name}: the server sent the whole file again; starting over",
                                 remote=self.remote.name)
                    handle.seek(0)
                    handle.truncate()
                    written = 0
                else:
                    self._check(response, f"downloading {item.name}")
                try:
                    for chunk in response.iter_content(CHUNK):
                        handle.write(chunk)
                        written += len(chunk)
                except requests.RequestException as exc:  # a full disk (OSError) is not retried
                    response.close()
                    self._pause(attempt, None, f"{item.name}: the connection broke after {written} of {item.size} "
                                f"bytes ({_short(exc)}); resuming with Range")
                    attempt += 1
                    continue
                finally:
                    response.close()
                if written < item.size and response.status_code in (200, 206):
                    self._pause(attempt, None, f"{item.name}: the transfer ended after {written} of {item.size} "
                                "bytes; resuming with Range")
                    attempt += 1
                    continue
                break
            handle.flush()
            os.fsync(handle.fileno())


def retry_after(response: Any) -> float | None:
    """The Retry-After header in seconds (a number or an HTTP date), None when absent or unreadable."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def _graph_error(response: Any) -> str:
    """`code: message` of a Graph error body ({"error": {"code", "message", "innerError"}})."""
    try:
        error = response.json().get("error") or {}
    except ValueError:
        return f"HTTP {response.status_code}"
    if isinstance(error, dict):
        return f"{error.get('code', response.status_code)}: {error.get('message', '')}".rstrip(": ")
    return str(error)


def _short(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text[:200]}"


def _path_resource(drive_id: str, folder: str) -> str:
    root = f"/drives/{quote(drive_id, safe='')}/root"
    return f"{root}:/{quote(folder.strip('/'))}:" if folder.strip("/") else root


# ---------------------------------------------------------------------------------------------
# The sync


def sync(settings: Settings, conn: sqlite3.Connection, run: Run, remotes: list[Remote],
         dry_run: bool = False) -> None:
    """Sync every remote; an unreachable one is a warning, a refused one an error raised after the others."""
    errors: list[str] = []
    for remote in remotes:
        tally = Tally()
        try:
            _sync_remote(conn, run, remote, tally, dry_run)
        except Unreachable as exc:
            message = f"SharePoint unreachable for remote {remote.name}: {exc}; files already local are ingested " \
                      "as usual, the next sync tries again"
            log.warning(STAGE, message, remote=remote.name)
            tally.warnings.append(message)
        except CsvReportError as exc:
            errors.append(str(exc))
            _record_remote(conn, run, remote, tally, dry_run, error=str(exc))
            log.error(STAGE, str(exc), remote=remote.name)
            continue
        for warning in tally.warnings:
            run.warn(warning)
        _record_remote(conn, run, remote, tally, dry_run)
    if errors:
        raise CsvReportError("; ".join(errors))


def _record_remote(conn: sqlite3.Connection, run: Run, remote: Remote, tally: Tally, dry_run: bool,
                   error: str | None = None) -> None:
    run.add(files_seen=tally.seen, files_loaded=tally.downloaded, files_skipped=tally.skipped,
            files_marked=tally.marked)
    verb = "would download" if dry_run else "downloaded"
    log.info(STAGE, f"{remote.name}: {tally.seen} files seen, {tally.downloaded} {verb}, {tally.skipped} already "
             f"downloaded, {tally.marked} {'would be ' if dry_run else ''}marked processed", remote=remote.name)
    if dry_run:
        return
    status = "failed" if error else "warn" if tally.warnings else "ok"
    now = db.utcnow()
    with db.transaction(conn):
        conn.execute(
            "INSERT INTO sharepoint_remotes (name, last_attempt_at, last_status, last_error, last_success_at, "
            "files_seen, files_downloaded, files_marked, run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET last_attempt_at = excluded.last_attempt_at, "
            "last_status = excluded.last_status, last_error = excluded.last_error, "
            "last_success_at = coalesce(excluded.last_success_at, last_success_at), "
            "files_seen = excluded.files_seen, files_downloaded = excluded.files_downloaded, "
            "files_marked = excluded.files_marked, run_id = excluded.run_id",
            (remote.name, now, status, error or ("; ".join(tally.warnings)[:2000] or None),
             now if status == "ok" else None, tally.seen, tally.downloaded, tally.marked, run.id or None))


def _sync_remote(conn: sqlite3.Connection, run: Run, remote: Remote, tally: Tally, dry_run: bool) -> None:
    if not dry_run:
        _finish_placing(conn, remote)
        _remove_stale_temps(remote)
    graph = Graph(remote)
    try:
        _sync_items(conn, run, graph, remote, tally, dry_run)
    finally:
        graph.session.close()  # its pooled TLS connections


def _sync_items(conn: sqlite3.Connection, run: Run, graph: Graph, remote: Remote, tally: Tally,
                dry_run: bool) -> None:
    drive_id = graph.drive_id(graph.site_id())
    items = [i for i in graph.children(drive_id, remote.folder)
             if fnmatch.fnmatchcase(i.name, remote.pattern) and not i.name.startswith(".")]
    tally.seen = len(items)
    listed = set()
    for item in items:
        listed.add(item.id)
        row = conn.execute("SELECT etag, state, local_path FROM sharepoint_items WHERE remote = ? AND item_id = ?",
                           (remote.name, item.id)).fetchone()
        # A marked item back in the folder was put there to be taken again (docs/sharepoint.md).
        known = row is not None and row[0] == item.etag and row[1] == "downloaded"
        if known:
            tally.skipped += 1
        if dry_run:
            if not known:
                log.info(STAGE, f"would download {item.name} ({item.size} bytes) into {remote.download_to}",
                         remote=remote.name, file=item.name)
                tally.downloaded += 1
            tally.marked += 1
        elif known or _download(conn, run, graph, remote, drive_id, item, tally, row):
            _mark(conn, graph, remote, drive_id, item, tally)
    if not dry_run:
        _reconcile(conn, graph, remote, drive_id, listed, tally)


def _download(conn: sqlite3.Connection, run: Run, graph: Graph, remote: Remote, drive_id: str, item: Item,
              tally: Tally, row: tuple[Any, ...] | None) -> bool:
    """Bring one item into the drop folder, complete and verified; False when it was not taken this run."""
    folder = remote.download_to
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CsvReportError(f"sharepoint.{remote.name}.download_to: cannot create {folder}: {exc}") from None
    final = Path(row[2]) if row is not None else _free_name(conn, remote, item)
    tag = hashlib.sha1(f"{remote.name}/{item.id}".encode()).hexdigest()[:10]
    temp = folder / f".{final.name}.{tag}.part"
    verdict = ""
    for _ in range(2):
        try:
            graph.download(drive_id, item, temp)
        except Vanished:
            temp.unlink(missing_ok=True)
            log.info(STAGE, f"{item.name} was deleted in SharePoint before it could be downloaded", remote=remote.name,
                     file=item.name)
            return False
        verdict = _verify(temp, item)
        if not verdict:
            break
        current = graph.item(drive_id, item.id)
        if current is None or current.etag != item.etag:
            temp.unlink(missing_ok=True)
            message = (f"{item.name} changed in SharePoint while it was downloaded ({verdict}); not taken, the next "
                       "sync downloads the new version")
            log.warning(STAGE, message, remote=remote.name, file=item.name)
            tally.warnings.append(message)
            return False
        log.warning(STAGE, f"{item.name}: {verdict}; downloading it again", remote=remote.name, file=item.name)
    if verdict:
        temp.unlink(missing_ok=True)
        message = f"{item.name}: {verdict} twice; not taken, the next sync tries again"
        log.warning(STAGE, message, remote=remote.name, file=item.name)
        tally.warnings.append(message)
        return False
    now = db.utcnow()
    with db.transaction(conn):
        conn.execute(
            "INSERT INTO sharepoint_items (remote, item_id, drive_id, etag, name, size, quick_xor_hash, state, "
            "local_path, temp_path, run_id) VALUES (?, ?, ?, ?, ?, ?, ?, 'placing', ?, ?, ?) "
            "ON CONFLICT (remote, item_id) DO UPDATE SET drive_id = excluded.drive_id, etag = excluded.etag, "
            "name = excluded.name, size = excluded.size, quick_xor_hash = excluded.quick_xor_hash, "
            "state = 'placing', local_path = excluded.local_path, temp_path = excluded.temp_path, "
            "downloaded_at = NULL, marked_at = NULL, processed_name = NULL, last_error = NULL, "
            "run_id = excluded.run_id",
            (remote.name, item.id, drive_id, item.etag, item.name, item.size, item.quick_xor_hash, str(final),
             str(temp), run.id or None))
    if item.modified is not None and item.modified < time.time():
        # The file arrives whole, so it need not settle: dated as SharePoint dates it, ingest takes it at once.
        os.utime(temp, (item.modified, item.modified))
    replace_durably(temp, final)  # the drop folder sees the verified file whole or not at all
    _set_downloaded(conn, remote, item.id, now)
    tally.downloaded += 1
    log.info(STAGE, f"downloaded {item.name} ({item.size} bytes, quickXorHash verified) to {final}",
             remote=remote.name, file=str(final))
    return True


def _verify(path: Path, item: Item) -> str:
    """'' when the file has the size and quickXorHash SharePoint reported, else what differs."""
    size = path.stat().st_size
    if size != item.size:
        return f"{size} bytes arrived, SharePoint reported {item.size}"
    if item.quick_xor_hash:
        got = quickxor.of_file(path)
        if got != item.quick_xor_hash:
            return f"quickXorHash {got} differs from SharePoint's {item.quick_xor_hash}"
    return ""


def _free_name(conn: sqlite3.Connection, remote: Remote, item: Item) -> Path:
    """The item's name in the drop folder, or `name (2).csv` ... when that name is taken on disk or was
    ever given to another item (ingest would take a new file at an old path for a rewrite of the old one)."""
    stem, dot, suffix = item.name.rpartition(".")
    if not dot or not stem:
        stem, suffix = item.name, ""
    n = 1
    while True:
        name = item.name if n == 1 else (f"{stem} ({n}).{suffix}" if suffix else f"{stem} ({n})")
        candidate = remote.download_to / name
        taken = candidate.exists() or conn.execute(
            "SELECT 1 FROM sharepoint_items WHERE local_path = ? LIMIT 1", (str(candidate),)).fetchone()
        if not taken:
            return candidate
        n += 1


def _mark(conn: sqlite3.Connection, graph: Graph, remote: Remote, drive_id: str, item: Item, tally: Tally) -> None:
    outcome, name = graph.move(drive_id, item, graph.processed_folder_id(drive_id))
    if outcome == "moved":
        _set_marked(conn, remote, item.id, name)
        tally.marked += 1
        log.info(STAGE, f"moved {item.name} to {remote.processed_folder}/{name}", remote=remote.name, file=item.name)
    elif outcome == "changed":
        message = (f"{item.name} changed in SharePoint after it was downloaded; left in {remote.folder or '/'}, "
                   "the next sync downloads the new version")
        log.warning(STAGE, message, remote=remote.name, file=item.name)
        tally.warnings.append(message)
        with db.transaction(conn):
            conn.execute("UPDATE sharepoint_items SET last_error = ? WHERE remote = ? AND item_id = ?",
                         (message, remote.name, item.id))
    else:
        _set_gone(conn, remote, item.id, "deleted in SharePoint before it was marked processed")


def _set_downloaded(conn: sqlite3.Connection, remote: Remote, item_id: str, when: str) -> None:
    with db.transaction(conn):
        conn.execute("UPDATE sharepoint_items SET state = 'downloaded', temp_path = NULL, downloaded_at = ? "
                     "WHERE remote = ? AND item_id = ?", (when, remote.name, item_id))


def _set_marked(conn: sqlite3.Connection, remote: Remote, item_id: str, name: str | None) -> None:
    with db.transaction(conn):
        conn.execute("UPDATE sharepoint_items SET state = 'marked', marked_at = ?, processed_name = ?, "
                     "last_error = NULL WHERE remote = ? AND item_id = ?", (db.utcnow(), name, remote.name, item_id))


def _set_gone(conn: sqlite3.Connection, remote: Remote, item_id: str, why: str) -> None:
    log.info(STAGE, f"item {item_id}: {why}; the downloaded file stays", remote=remote.name)
    with db.transaction(conn):
        conn.execute("UPDATE sharepoint_items SET state = 'gone', last_error = ? WHERE remote = ? AND item_id = ?",
                     (why, remote.name, item_id))


def _reconcile(conn: sqlite3.Connection, graph: Graph, remote: Remote, drive_id: str, listed: set[str],
               tally: Tally) -> None:
    """Downloaded items no longer in the folder: an earlier run's move went through before it could say so."""
    rows = conn.execute("SELECT item_id FROM sharepoint_items WHERE remote = ? AND state = 'downloaded'",
                        (remote.name,)).fetchall()
    for (item_id,) in rows:
        if item_id in listed:
            continue
        current = graph.item(drive_id, item_id)
        if current is None:
            _set_gone(conn, remote, item_id, "deleted in SharePoint before it was marked processed")
        elif current.parent_id == graph.processed_folder_id(drive_id):
            _set_marked(conn, remote, item_id, current.name)
            tally.marked += 1
            log.info(STAGE, f"{current.name} was already moved to {remote.processed_folder} (by an earlier run that "
                     "ended before recording it)", remote=remote.name, file=current.name)
        else:
            _set_gone(conn, remote, item_id, f"moved out of {remote.folder or '/'} by someone else")


def _finish_placing(conn: sqlite3.Connection, remote: Remote) -> None:
    """Rows a killed run left between recording and renaming: finish the rename, or see it was done."""
    rows = conn.execute("SELECT item_id, temp_path, local_path FROM sharepoint_items WHERE remote = ? AND "
                        "state = 'placing'", (remote.name,)).fetchall()
    for item_id, temp, local in rows:
        if temp and Path(temp).exists():
            replace_durably(Path(temp), Path(local))
            log.info(STAGE, f"finished placing {local} (verified before an earlier run ended)", remote=remote.name,
                     file=local)
        _set_downloaded(conn, remote, item_id, db.utcnow())


def _remove_stale_temps(remote: Remote) -> None:
    """Half-written .part files of a killed run: never in the drop folder's view, downloaded again."""
    if not remote.download_to.is_dir():
        return
    for path in remote.download_to.iterdir():
        if TEMP_RE.match(path.name) and path.is_file():
            path.unlink(missing_ok=True)
            log.info(STAGE, f"removed {path.name}, left half-written by an earlier run", remote=remote.name)
