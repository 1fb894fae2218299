"""A stand-in for the Microsoft identity platform and Microsoft Graph, over TLS on 127.0.0.1.

Request and response bodies follow the Graph v1.0 documentation: the OpenID configuration and
the client-credentials token response of the v2.0 endpoint, `site` by path, `drive`
collections, `driveItem` with `file.hashes.quickXorHash`, `eTag`, `parentReference` and the
`@microsoft.graph.downloadUrl` annotation, collections paged with `@odata.nextLink`, and the
error body `{"error": {"code", "message", "innerError"}}`. Faults are injected per request:
throttling (429/503 with Retry-After), revoked tokens (401), a connection cut mid-file, an
item changed while it is read, and pauses that let a test kill the client at a chosen point.
"""

from __future__ import annotations

import base64
import itertools
import json
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import trustme

from csvreport.quickxor import QuickXorHash

TENANT = "11111111-2222-3333-4444-555555555555"
CLIENT_ID = "66666666-7777-8888-9999-000000000000"
SECRET = "s3cr3t~value"
HOSTNAME = "contoso.sharepoint.com"
SITE_PATH = "sites/Operations"


def qxh(data: bytes) -> str:
    hasher = QuickXorHash()
    hasher.update(data)
    return hasher.b64digest()


@dataclass
class Node:
    id: str
    name: str
    parent: str | None
    folder: bool = False
    content: bytes = b""
    version: int = 1

    @property
    def etag(self) -> str:
        return f'"{{{self.id}}},{self.version}"'


@dataclass
class Fault:
    """Answer the next `times` requests that `match` with `status` (and headers/body), or run `action`."""

    match: Callable[[str, str], bool]
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    times: int = 1
    action: Callable[[Handler], bool] | None = None  # True: the action answered the request itself


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "innerError": {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S"), "request-id": str(uuid.uuid4()),
        "client-request-id": str(uuid.uuid4())}}}


class Standin:
    def __init__(self, tmp: Path) -> None:
        self.ca = trustme.CA()
        cert = self.ca.issue_cert("127.0.0.1", "localhost")
        self.ca_file = tmp / "test-ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        self.lock = threading.RLock()
        self.nodes: dict[str, Node] = {}
        self.ids = itertools.count(1)
        self.drive_id = "b!" + "d" * 20
        self.root = self._add("root", None, folder=True)
        self.tokens: set[str] = set()
        self.token_requests = 0
        self.secret = SECRET
        self.client_assertions: list[str] = []
        self.faults: list[Fault] = []
        self.log: list[tuple[str, str, int]] = []
        self.downloads: dict[str, int] = {}
        self.page_size = 2
        self.honour_conflict_behavior = True
        self.honour_range = True
        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.socket = context.wrap_socket(server.socket, server_side=True)
        server.standin = self  # type: ignore[attr-defined]
        self.server = server
        self.base = f"https://127.0.0.1:{server.server_address[1]}"
        self.thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- the library

    def _add(self, name: str, parent: str | None, folder: bool = False, content: bytes = b"") -> Node:
        node = Node(id=f"01ITEM{next(self.ids):04d}", name=name, parent=parent, folder=folder, content=content)
        self.nodes[node.id] = node
        return node

    def folder(self, path: str) -> Node:
        """The folder at `path` (created with its parents)."""
        with self.lock:
            node = self.root
            for part in [p for p in path.split("/") if p]:
                child = self.child(node.id, part)
                node = child if child else self._add(part, node.id, folder=True)
            return node

    def put(self, path: str, content: bytes) -> Node:
        folder, _, name = path.rpartition("/")
        with self.lock:
            parent = self.folder(folder)
            existing = self.child(parent.id, name)
            if existing:
                existing.content = content
                existing.version += 1
                return existing
            return self._add(name, parent.id, content=content)

    def child(self, parent_id: str, name: str) -> Node | None:
        for node in self.nodes.values():
            if node.parent == parent_id and node.name.lower() == name.lower():
                return node
        return None

    def resolve(self, path: str) -> Node | None:
        node: Node | None = self.root
        for part in [p for p in path.split("/") if p]:
            node = self.child(node.id, part) if node else None
        return node

    def path_of(self, node: Node) -> str:
        parts = []
        while node.parent is not None:
            parts.append(node.name)
            node = self.nodes[node.parent]
        return "/".join(reversed(parts))

    def names_in(self, path: str) -> list[str]:
        folder = self.resolve(path)
        if folder is None:
            return []
        return sorted(n.name for n in self.nodes.values() if n.parent == folder.id)

    def item_json(self, node: Node) -> dict[str, Any]:
        parent_path = "/drive/root:" + ("/" + self.path_of(self.nodes[node.parent]) if node.parent and
                                         self.nodes[node.parent].parent else "")
        data: dict[str, Any] = {
            "id": node.id, "name": node.name, "eTag": node.etag, "cTag": f'"c:{{{node.id}}},{node.version}"',
            "createdDateTime": "2026-11-28T10:00:00Z", "lastModifiedDateTime": "2026-11-28T10:00:00Z",
            "webUrl": f"https://{HOSTNAME}/{SITE_PATH}/Shared%20Documents/{self.path_of(node)}",
            "size": len(node.content),
            "parentReference": {"driveType": "documentLibrary", "driveId": self.drive_id, "id": node.parent,
                                "path": parent_path},
        }
        if node.folder:
            data["folder"] = {"childCount": sum(1 for n in self.nodes.values() if n.parent == node.id)}
        else:
            data["file"] = {"mimeType": "text/csv", "hashes": {"quickXorHash": qxh(node.content)}}
            data["@microsoft.graph.downloadUrl"] = f"{self.base}/download/{node.id}?tempauth=v1.{uuid.uuid4().hex}"
        return data

    def add_fault(self, match: Callable[[str, str], bool], **kwargs: Any) -> Fault:
        fault = Fault(match=match, **kwargs)
        with self.lock:
            self.faults.append(fault)
        return fault

    def count(self, method: str, fragment: str) -> int:
        return sum(1 for m, p, _ in self.log if m == method and fragment in p)


def on(method: str, fragment: str) -> Callable[[str, str], bool]:
    return lambda m, path: m == method and fragment in path


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in several small writes: without TCP_NODELAY each response
    # waits out the client's delayed ACK (tens of milliseconds a request).
    disable_nagle_algorithm = True

    def log_message(self, *args: Any) -> None:  # quiet: the test output is the log
        pass

    @property
    def standin(self) -> Standin:
        return self.server.standin  # type: ignore[attr-defined]

    def send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)
        self.standin.log.append((self.command, self.path, status))

    def body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def handle_any(self) -> None:
        standin = self.standin
        path = urlsplit(self.path).path
        request_body = self.body()
        with standin.lock:
            fault = next((f for f in standin.faults if f.times > 0 and f.match(self.command, self.path)), None)
            if fault:
                fault.times -= 1
        if fault:
            if fault.action is not None:
                if fault.action(self):
                    return
            else:
                self.send_json(fault.status, fault.body or error_body("serviceNotAvailable", "injected"),
                               fault.headers)
                return
        if path.startswith(f"/{TENANT}/") or (path.count("/") >= 2 and "/v2.0/.well-known" in path) or \
                path.endswith("/oauth2/v2.0/token"):
            self.identity(path, request_body)
        elif path.startswith("/download/"):
            self.download(path.rsplit("/", 1)[1])
        elif path.startswith("/v1.0/"):
            auth = self.headers.get("Authorization", "")
            if auth.removeprefix("Bearer ") not in standin.tokens:
                self.send_json(401, error_body("InvalidAuthenticationToken",
                                               "Access token has expired or is not yet valid."),
                               {"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'})
                return
            self.graph(path, request_body)
        else:
            self.send_json(404, error_body("itemNotFound", f"no route {path}"))

    do_GET = do_POST = do_PATCH = handle_any

    # -- the identity platform

    def identity(self, path: str, request_body: bytes) -> None:
        standin = self.standin
        tenant = path.split("/")[1]
        if tenant != TENANT:
            self.send_json(400, {"error": "invalid_tenant", "error_description":
                                 f"AADSTS90002: Tenant '{tenant}' not found. Check to make sure you have the correct "
                                 "tenant ID and are signing into the correct cloud.", "error_codes": [90002]})
            return
        if path.endswith("/.well-known/openid-configuration"):
            issuer = f"{standin.base}/{TENANT}/v2.0"
            self.send_json(200, {
                "token_endpoint": f"{standin.base}/{TENANT}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt",
                                                          "client_secret_basic"],
                "jwks_uri": f"{standin.base}/{TENANT}/discovery/v2.0/keys",
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "issuer": issuer,
                "authorization_endpoint": f"{standin.base}/{TENANT}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{standin.base}/{TENANT}/oauth2/v2.0/devicecode",
                "end_session_endpoint": f"{standin.base}/{TENANT}/oauth2/v2.0/logout",
                "tenant_region_scope": "EU", "cloud_instance_name": "microsoftonline.com",
            })
            return
        if path.endswith("/oauth2/v2.0/token") and self.command == "POST":
            form = {k: v[0] for k, v in parse_qs(request_body.decode()).items()}
            standin.token_requests += 1
            if form.get("grant_type") != "client_credentials" or not form.get("scope", "").endswith("/.default"):
                self.send_json(400, {"error": "invalid_request", "error_description": "AADSTS900144: bad request"})
                return
            if form.get("client_id") != CLIENT_ID:
                self.send_json(400, {"error": "unauthorized_client", "error_description":
                                     f"AADSTS700016: Application with identifier '{form.get('client_id')}' was not "
                                     f"found in the directory '{TENANT}'.", "error_codes": [700016]})
                return
            if "client_assertion" in form:
                standin.client_assertions.append(form["client_assertion"])
            elif form.get("client_secret") != standin.secret:
                self.send_json(401, {"error": "invalid_client", "error_description":
                                     f"AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in "
                                     f"the request is the client secret value, not the client secret ID, for a secret "
                                     f"added to app '{CLIENT_ID}'.", "error_codes": [7000215],
                                     "timestamp": "2026-11-28 10:00:00Z", "trace_id": str(uuid.uuid4()),
                                     "correlation_id": str(uuid.uuid4())})
                return
            token = "eyJ0eXAiOiJKV1QifQ." + base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            standin.tokens.add(token)
            self.send_json(200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
                                 "access_token": token})
            return
        self.send_json(404, {"error": "not_found"})

    # -- Graph

    def graph(self, path: str, request_body: bytes) -> None:
        standin = self.standin
        rest = unquote(path[len("/v1.0"):])
        query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
        site_id = f"{HOSTNAME},{uuid.UUID(int=1)},{uuid.UUID(int=2)}"
        with standin.lock:
            if rest.startswith("/sites/") and rest.endswith("/drives"):
                if rest != f"/sites/{site_id}/drives":
                    self.send_json(404, error_body("itemNotFound", "The requested site was not found"))
                    return
                drives = [{"id": "b!" + "o" * 20, "name": "Site Assets", "driveType": "documentLibrary"},
                          {"id": standin.drive_id, "name": "Documents", "driveType": "documentLibrary",
                           "webUrl": f"https://{HOSTNAME}/{SITE_PATH}/Shared%20Documents"}]
                self.page(drives, rest)
                return
            if rest.startswith("/sites/"):
                if rest.lower() == f"/sites/{HOSTNAME}:/{SITE_PATH}".lower():
                    self.send_json(200, {"id": site_id, "name": "Operations", "displayName": "Operations",
                                         "webUrl": f"https://{HOSTNAME}/{SITE_PATH}",
                                         "createdDateTime": "2026-01-01T00:00:00Z"})
                else:
                    self.send_json(404, error_body("itemNotFound", "Requested site could not be found"))
                return
            prefix = f"/drives/{standin.drive_id}"
            if not rest.startswith(prefix):
                self.send_json(404, error_body("itemNotFound", "The resource could not be found."))
                return
            rest = rest[len(prefix):]
            if rest in ("/root", "/root:", "/root:/:"):
                self.send_json(200, standin.item_json(standin.root))
                return
            if rest.startswith("/root:/"):
                inner = rest[len("/root:/"):]
                children = inner.endswith(":/children")
                inner = inner.removesuffix(":/children").rstrip(":")
                node = standin.resolve(inner)
                if node is None:
                    self.send_json(404, error_body("itemNotFound", "The resource could not be found."))
                elif children:
                    self.children(node, query, rest)
                else:
                    self.send_json(200, standin.item_json(node))
                return
            if rest == "/root/children":
                self.children(standin.root, query, rest)
                return
            parts = rest.split("/")  # ['', 'items', id, ...]
            if len(parts) >= 3 and parts[1] == "items":
                node = standin.nodes.get(parts[2])
                if node is None:
                    self.send_json(404, error_body("itemNotFound", "The resource could not be found."))
                elif len(parts) == 4 and parts[3] == "children" and self.command == "POST":
                    self.create(node, json.loads(request_body))
                elif len(parts) == 4 and parts[3] == "children":
                    self.children(node, query, rest)
                elif self.command == "PATCH":
                    self.update(node, json.loads(request_body), query)
                else:
                    self.send_json(200, standin.item_json(node))
                return
        self.send_json(400, error_body("invalidRequest", f"unsupported {rest}"))

    def page(self, entries: list[dict[str, Any]], rest: str, query: dict[str, str] | None = None) -> None:
        standin = self.standin
        query = query or {}
        size = min(int(query.get("$top", standin.page_size)), standin.page_size)
        start = int(query.get("$skiptoken", 0))
        body: dict[str, Any] = {"@odata.context": f"{standin.base}/v1.0/$metadata#Collection(driveItem)",
                                "value": entries[start:start + size]}
        if start + size < len(entries):
            body["@odata.nextLink"] = f"{standin.base}{urlsplit(self.path).path}?$top={size}" \
                                      f"&$skiptoken={start + size}"
        self.send_json(200, body)

    def children(self, folder: Node, query: dict[str, str], rest: str) -> None:
        standin = self.standin
        entries = [standin.item_json(n) for n in sorted(standin.nodes.values(), key=lambda n: n.id)
                   if n.parent == folder.id]
        self.page(entries, rest, query)

    def create(self, parent: Node, body: dict[str, Any]) -> None:
        standin = self.standin
        if standin.child(parent.id, body["name"]):
            self.send_json(409, error_body("nameAlreadyExists", "The specified item name already exists."))
            return
        node = standin._add(body["name"], parent.id, folder=True)
        self.send_json(201, standin.item_json(node))

    def update(self, node: Node, body: dict[str, Any], query: dict[str, str]) -> None:
        standin = self.standin
        match = self.headers.get("If-Match")
        if match and match != node.etag:
            self.send_json(412, error_body("preconditionFailed", "ETag does not match current item's value"))
            return
        parent_id = (body.get("parentReference") or {}).get("id", node.parent)
        name = body.get("name", node.name)
        clash = standin.child(parent_id, name)
        if clash and clash is not node:
            if query.get("@microsoft.graph.conflictBehavior") != "rename" or not standin.honour_conflict_behavior:
                self.send_json(409, error_body("nameAlreadyExists", "The specified item name already exists."))
                return
            stem, _, suffix = name.rpartition(".")
            for n in itertools.count(1):
                name = f"{stem} {n}.{suffix}"
                if not standin.child(parent_id, name):
                    break
        node.parent, node.name = parent_id, name
        node.version += 1
        self.send_json(200, standin.item_json(node))

    # -- the pre-authenticated download URL

    def download(self, item_id: str) -> None:
        standin = self.standin
        if self.headers.get("Authorization"):
            # The real download URL rejects a bearer token it does not expect; the client must not send one.
            self.send_json(401, error_body("unauthenticated", "no Authorization header on a download URL"))
            return
        with standin.lock:
            node = standin.nodes.get(item_id)
            content = node.content if node else None
            standin.downloads[item_id] = standin.downloads.get(item_id, 0) + 1
        if content is None:
            self.send_json(404, error_body("itemNotFound", "gone"))
            return
        start = 0
        ranged = self.headers.get("Range") if standin.honour_range else None
        if ranged and ranged.startswith("bytes="):
            start = int(ranged[6:].split("-")[0])
        part = content[start:]
        self.send_response(206 if ranged else 200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(part)))
        if ranged:
            self.send_header("Content-Range", f"bytes {start}-{len(content) - 1}/{len(content)}")
        self.end_headers()
        self.wfile.write(part)
        standin.log.append((self.command, self.path, 206 if ranged else 200))


def cut_after(half: int) -> Callable[[Handler], bool]:
    """A download answered with its full Content-Length whose connection closes after `half` bytes."""
    def action(handler: Handler) -> bool:
        node = handler.standin.nodes[urlsplit(handler.path).path.rsplit("/", 1)[1]]
        handler.standin.downloads[node.id] = handler.standin.downloads.get(node.id, 0) + 1
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(node.content)))
        handler.end_headers()
        handler.wfile.write(node.content[:half])
        handler.wfile.flush()
        handler.close_connection = True
        handler.standin.log.append((handler.command, handler.path, 200))
        return True
    return action


def hold(reached: threading.Event, release: threading.Event, before: Callable[[Handler], None] | None = None,
         partial: int | None = None) -> Callable[[Handler], bool]:
    """Signal `reached` and wait for `release` (the test kills the client meanwhile).

    With `partial`, half a download is sent first; with `before`, the request's effect is applied first
    (a move that went through but whose answer never arrived).
    """
    def action(handler: Handler) -> bool:
        if before is not None:
            before(handler)
        if partial is not None:
            node = handler.standin.nodes[urlsplit(handler.path).path.rsplit("/", 1)[1]]
            handler.send_response(200)
            handler.send_header("Content-Length", str(len(node.content)))
            handler.end_headers()
            handler.wfile.write(node.content[:partial])
            handler.wfile.flush()
        reached.set()
        release.wait(30)
        handler.close_connection = True
        return True
    return action
