"""A small login application playing the owner's existing system in "bring your own auth".

It has its own accounts and its own login form. Gatehouse sends the browser to `/login` with
`login_request_id` and `state`; the person types their user name and passcode; the app's
backend POSTs the person's claims to Gatehouse with an admin API key as bearer, then sends the
browser back to Gatehouse's callback with the same `state`, exactly as the seed product's guide
says. A wrong passcode stays on the app's page and tells Gatehouse nothing.
"""

from __future__ import annotations

import html
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2

from conftest import free_port, serve_http

# The owner's own accounts: user name -> (passcode, claims it sends for them).
ACCOUNTS = {
    "alice": (
        "wonderland",
        {
            "sub": "acme-1001",
            "email": "alice@acme.test",
            "email_verified": True,
            "name": "Alice Doe",
            "given_name": "Alice",
            "family_name": "Doe",
            "picture": "https://acme.test/alice.jpg",
            "locale": "en-US",
        },
    ),
}


@dataclass
class OwnerLogin:
    url: str
    posted: list[dict] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)


@contextmanager
def run_owner_login(gatehouse_url: str, connection_id: str, api_key: str):
    """The owner's login app on a free loopback port; yields its `/login` URL and a record of
    what its backend posted to Gatehouse."""
    port = free_port()
    owner = OwnerLogin(url=f"http://127.0.0.1:{port}/login")

    class Handler(BaseHTTPRequestHandler):
        def _page(self, status: int, body: str) -> None:
            data = f"<!doctype html><title>Acme login</title>{body}".encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _form(self, request_id: str, state: str, error: str = "") -> str:
            esc = html.escape
            return (
                f"<h1>Acme</h1>{f'<p>{esc(error)}</p>' if error else ''}"
                '<form method="post" action="/login">'
                f'<input type="hidden" name="login_request_id" value="{esc(request_id)}">'
                f'<input type="hidden" name="state" value="{esc(state)}">'
                '<input name="username"><input name="passcode" type="password">'
                '<button type="submit">Log in to Acme</button></form>'
            )

        def do_GET(self) -> None:
            u = urlsplit(self.path)
            q = {k: v[0] for k, v in parse_qs(u.query).items()}
            if u.path != "/login" or "login_request_id" not in q or "state" not in q:
                self._page(400, "<p>Start from the application.</p>")
                return
            self._page(200, self._form(q["login_request_id"], q["state"]))

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            request_id, state = form.get("login_request_id", ""), form.get("state", "")
            account = ACCOUNTS.get(form.get("username", ""))
            if account is None or account[0] != form.get("passcode"):
                self._page(401, self._form(request_id, state, "Wrong user name or passcode."))
                return
            claims = account[1]
            # Backend to backend: tell Gatehouse who signed in.
            resp = httpx2.post(
                f"{gatehouse_url}/api/v1/connections/{connection_id}/auth-requests/{request_id}/user",
                json=claims,
                headers={"Authorization": f"Bearer {api_key}"},
                timeout=10.0,
            )
            owner.posted.append(claims)
            owner.answers.append(resp.status_code)
            if resp.status_code != 200:
                self._page(502, f"<p>Gatehouse refused: {html.escape(resp.text)}</p>")
                return
            back = f"{gatehouse_url}/sso/v1/connections/{connection_id}/partner:callback?{urlencode({'state': state})}"
            self.send_response(303)
            self.send_header("Location", back)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    with serve_http(port, Handler):
        yield owner
