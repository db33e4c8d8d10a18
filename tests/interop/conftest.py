"""Fixtures: a real `gatehouse serve` and real MCP servers on loopback ports."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx2
import pytest

import pages

ROOT = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug"
GATEHOUSE = TARGET / "gatehouse"
TODO_MCP = TARGET / "todo-mcp"
HERE = Path(__file__).resolve().parent
# Server logs, screenshots and conformance results of the interop run.
ARTIFACTS = ROOT / "test-artifacts" / "interop"
LOGS = ARTIFACTS / "logs"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve_http(port: int, handler: type, tls: ssl.SSLContext | None = None):
    """Serves `handler` (a `BaseHTTPRequestHandler`) on loopback `port` from a thread, over
    `tls` when given, until the block ends."""
    from http.server import ThreadingHTTPServer

    httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
    if tls is not None:
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()


def loopback_tls(tmp: Path) -> tuple[ssl.SSLContext, str]:
    """A server TLS context for 127.0.0.1 and localhost, with a certificate from a throwaway CA
    made in `tmp`; returns it and the CA's file (give it to Gatehouse as `SSL_CERT_FILE`)."""
    ca_key, ca, key, csr, cert = (tmp / n for n in ("ca.key", "ca.pem", "leaf.key", "leaf.csr", "leaf.pem"))
    ext = tmp / "leaf.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
            "-subj", "/CN=Gatehouse interop CA", "-keyout", str(ca_key), "-out", str(ca))
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(csr))
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
            "-days", "1", "-extfile", str(ext), "-out", str(cert))
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(str(cert), str(key))
    return tls, str(ca)


@dataclass
class DocumentHost:
    """An https server on loopback publishing JSON documents: metadata documents, key sets."""

    origin: str
    ca: str
    # Path (with its query, exactly as requested) -> the JSON document served there.
    documents: dict[str, object] = field(default_factory=dict)
    # Every path (with its query) requested, in order.
    fetches: list[str] = field(default_factory=list)

    def publish(self, path: str, document: object) -> str:
        """Serves `document` at `path`; returns its URL."""
        self.documents[path] = document
        return self.origin + path


@contextmanager
def document_host(tmp: Path):
    """A `DocumentHost` with its own CA (see `loopback_tls`), until the block ends."""
    tls, ca = loopback_tls(tmp)
    port = free_port()
    host = DocumentHost(origin=f"https://127.0.0.1:{port}", ca=ca)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            host.fetches.append(self.path)
            if self.path not in host.documents:
                self.send_error(404)
                return
            body = json.dumps(host.documents[self.path]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    with serve_http(port, Handler, tls):
        yield host


def wait_http(url: str, timeout: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            httpx2.get(url, timeout=1.0)
            return
        except httpx2.HTTPError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass
class Gatehouse:
    url: str
    data_dir: str

    def cli(self, *args: str, stdin: str | None = None) -> dict | list:
        """Runs a `gatehouse` subcommand with --json against this server's data directory."""
        out = subprocess.run(
            [str(GATEHOUSE), "--data-dir", self.data_dir, "--public-url", self.url, *args, "--json"],
            check=True,
            capture_output=True,
            text=True,
            input=stdin,
        )
        return json.loads(out.stdout)

    def add_person(self, email: str = pages.EMAIL, password: str = pages.PASSWORD) -> dict:
        """A person who signs in with `email` and `password` on the sign-in page."""
        return self.cli("users", "add", "--email", email, "--password-stdin", stdin=password + "\n")

    def add_server(self, url: str, *scopes: str, extra: tuple[str, ...] = ()) -> dict:
        args = ["servers", "add", "--name", "To-do list", "--url", url, *extra]
        for s in scopes:
            args += ["--scope", s]
        return self.cli(*args)

    def add_client(self, server_id: str, *scopes: str) -> dict:
        args = ["clients", "add", "--server", server_id, "--name", "interop agent"]
        for s in scopes:
            args += ["--scope", s]
        return self.cli(*args)

    def token(self, client: dict, issuer: str | None = None, **params: str) -> str:
        """A client-credentials token from `issuer`'s token endpoint (root by default)."""
        endpoint = f"{issuer or self.url}/oauth/token"
        resp = httpx2.post(
            endpoint,
            data={"grant_type": "client_credentials", **params},
            auth=(client["client_id"], client["client_secret"]),
        )
        assert resp.status_code == 200, resp.text
        return resp.json()["access_token"]


@contextmanager
def run_gatehouse(host: str = "127.0.0.1", **env: str):
    """A real `gatehouse serve` on a free loopback port with a fresh data directory. With
    `host="localhost"` its public URL is `http://localhost:{port}` (it still listens on
    127.0.0.1): browsers allow passkeys for a domain name, never for an IP address."""
    port = free_port()
    url = f"http://{host}:{port}"
    if host != "127.0.0.1":
        env = {"GATEHOUSE_PUBLIC_URL": url, **env}
    LOGS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gatehouse-interop-") as data_dir, open(
        LOGS / f"gatehouse-{port}.log", "w"
    ) as log:
        proc = subprocess.Popen(
            [str(GATEHOUSE), "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", data_dir],
            env={**os.environ, "GATEHOUSE_REFRESH_INTERVAL_MS": "100", **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_http(f"{url}/health", proc=proc)
            yield Gatehouse(url=url, data_dir=data_dir)
        finally:
            stop(proc)


@pytest.fixture
def gatehouse():
    with run_gatehouse() as g:
        yield g


@dataclass
class TodoServer:
    mcp_url: str
    server: dict
    issuer: str


@contextmanager
def run_todo(gatehouse: Gatehouse, *server_args: str, todo_args: tuple[str, ...] = ()):
    """The Rust to-do example behind the guard, registered with Gatehouse (`servers add` takes
    `server_args` too, the to-do server `todo_args`)."""
    port = free_port()
    mcp_url = f"http://127.0.0.1:{port}/mcp"
    server = gatehouse.add_server(mcp_url, *TODO_SCOPES, extra=server_args)
    proc = subprocess.Popen(
        [str(TODO_MCP), "--listen", f"127.0.0.1:{port}", "--authorization-server", server["issuer"],
         *todo_args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp", proc=proc)
        # Let the server notice the new registration (its refresh interval is 100 ms here).
        time.sleep(0.3)
        yield TodoServer(mcp_url=mcp_url, server=server, issuer=server["issuer"])
    finally:
        stop(proc)


TODO_SCOPES = ("todo:read=Read your to-dos", "todo:write=Change your to-dos")


@pytest.fixture
def todo_server(gatehouse: Gatehouse):
    with run_todo(gatehouse) as t:
        yield t


def python() -> str:
    return sys.executable
