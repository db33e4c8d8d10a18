"""A loopback stand-in for a GitHub Enterprise Server, playing GitHub in the sign-in tests.

Real GitHub cannot be reached from the test machines, so this implements the parts of GitHub's
documented OAuth web flow and REST API that Gatehouse uses, with GitHub's own paths and
answers, at an Enterprise Server's layout (`/login/oauth/…` and `/api/v3/…`):

- `GET /login/oauth/authorize`: checks the client id, the exact redirect URI, the scope and a
  PKCE S256 challenge, then shows an "Authorize" page (sign in as an account, or cancel).
  Cancelling sends the browser back with `error=access_denied`, as GitHub does.
- `POST /login/oauth/access_token`: the code, once, with the client secret and the PKCE
  verifier. Like GitHub, a refused code is `200 OK` with an `error` body
  (`bad_verification_code`, `incorrect_client_credentials`, `redirect_uri_mismatch`), and JSON
  only with `Accept: application/json`.
- `GET /api/v3/user` and `GET /api/v3/user/emails` with the access token; without a
  `User-Agent` GitHub answers 403, and `/user/emails` needs the `user:email` scope (404 here
  without it, as GitHub does for a token lacking it).

It is a stand-in, not GitHub: what it checks is what GitHub's documentation says, and the
tests that use it say so.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlencode, urlsplit

from conftest import free_port, serve_http

# GitHub accounts: login -> (user object, email list).
ACCOUNTS = {
    "octocat": (
        {"login": "octocat", "id": 583231, "name": "The Octocat",
         "avatar_url": "https://avatars.github.test/u/583231", "html_url": "https://github.test/octocat"},
        [{"email": "octocat@github.test", "primary": True, "verified": True, "visibility": "public"},
         {"email": "old@github.test", "primary": False, "verified": False, "visibility": None}],
    ),
    "unverified": (
        {"login": "unverified", "id": 9001, "name": None, "avatar_url": None, "html_url": None},
        [{"email": "nobody@github.test", "primary": True, "verified": False, "visibility": "private"}],
    ),
}


@dataclass
class GitHub:
    url: str
    client_id: str
    client_secret: str
    redirect_uri: str = ""
    # "ok", "narrow_scope" (grant only read:user), "bad_code" (refuse every code).
    mode: str = "ok"
    codes: dict = field(default_factory=dict)
    tokens: dict = field(default_factory=dict)
    seen: list = field(default_factory=list)


def _challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


@contextmanager
def run_github(client_id: str, client_secret: str):
    """The stand-in on a free loopback port; set `redirect_uri` on what it yields before use."""
    port = free_port()
    gh = GitHub(url=f"http://127.0.0.1:{port}", client_id=client_id, client_secret=client_secret)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: bytes, ctype: str, headers: dict | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, value) -> None:
            self._send(status, json.dumps(value).encode(), "application/json; charset=utf-8")

        def _page(self, status: int, body: str) -> None:
            self._send(status, f"<!doctype html><title>GitHub</title>{body}".encode(), "text/html; charset=utf-8")

        def _back(self, query: dict) -> None:
            self._send(302, b"", "text/plain", {"Location": f"{gh.redirect_uri}?{urlencode(query)}"})

        def _form(self) -> dict:
            n = int(self.headers.get("Content-Length") or 0)
            return {k: v[0] for k, v in parse_qs(self.rfile.read(n).decode()).items()}

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            u = urlsplit(self.path)
            q = {k: v[0] for k, v in parse_qs(u.query).items()}
            gh.seen.append(("GET", u.path, q, {k.lower(): v for k, v in self.headers.items()}))
            if u.path == "/login/oauth/authorize":
                return self._authorize_page(q)
            if u.path in ("/api/v3/user", "/api/v3/user/emails"):
                return self._api(u.path)
            if u.path.startswith("/__test/mode/"):
                gh.mode = u.path.rsplit("/", 1)[1]
                return self._json(200, {"mode": gh.mode})
            self._json(404, {"message": "Not Found"})

        def _authorize_page(self, q: dict) -> None:
            if q.get("client_id") != gh.client_id:
                return self._page(404, "<p>Not Found</p>")
            if q.get("redirect_uri") != gh.redirect_uri:
                return self._page(400, "<p>The redirect_uri is not associated with this application.</p>")
            if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
                return self._page(400, "<p>code_challenge with S256 expected</p>")
            hidden = "".join(
                f'<input type="hidden" name="{k}" value="{html.escape(q.get(k, ""))}">'
                for k in ("client_id", "redirect_uri", "scope", "state", "code_challenge")
            )
            self._page(200, (
                "<h1>Authorize Gatehouse</h1>"
                f'<form method="post" action="/login/oauth/authorize">{hidden}'
                '<input name="login" autocomplete="username">'
                '<button name="authorize" value="1">Authorize</button>'
                '<button name="cancel" value="1">Cancel</button></form>'
            ))

        def do_POST(self) -> None:  # noqa: N802
            u = urlsplit(self.path)
            form = self._form()
            gh.seen.append(("POST", u.path, {k: v for k, v in form.items() if k != "client_secret"}, {k.lower(): v for k, v in self.headers.items()}))
            if u.path == "/login/oauth/authorize":
                if form.get("cancel"):
                    return self._back({
                        "error": "access_denied",
                        "error_description": "The user has denied your application access.",
                        "state": form.get("state", ""),
                    })
                if form.get("login") not in ACCOUNTS:
                    return self._page(200, "<p>Incorrect username or password.</p>")
                code = secrets.token_hex(10)
                with lock:
                    gh.codes[code] = {
                        "login": form["login"], "redirect_uri": form["redirect_uri"],
                        "challenge": form["code_challenge"], "scope": form.get("scope", ""),
                    }
                return self._back({"code": code, "state": form.get("state", "")})
            if u.path == "/login/oauth/access_token":
                return self._token(form)
            self._json(404, {"message": "Not Found"})

        def _token(self, form: dict) -> None:
            def answer(value: dict) -> None:
                # GitHub answers 200 either way, form-encoded unless JSON is asked for.
                if "application/json" in self.headers.get("Accept", ""):
                    return self._json(200, value)
                self._send(200, urlencode(value).encode(), "application/x-www-form-urlencoded")

            if form.get("client_id") != gh.client_id or form.get("client_secret") != gh.client_secret:
                return answer({"error": "incorrect_client_credentials",
                               "error_description": "The client_id and/or client_secret passed are incorrect."})
            with lock:
                grant = gh.codes.pop(form.get("code", ""), None)
            bad = {"error": "bad_verification_code", "error_description": "The code passed is incorrect or expired."}
            if grant is None or gh.mode == "bad_code":
                return answer(bad)
            if form.get("redirect_uri") != grant["redirect_uri"]:
                return answer({"error": "redirect_uri_mismatch",
                               "error_description": "The redirect_uri MUST match the registered callback URL for this application."})
            if _challenge(form.get("code_verifier", "")) != grant["challenge"]:
                return answer(bad)
            scope = "read:user" if gh.mode == "narrow_scope" else grant["scope"].replace(" ", ",")
            token = "gho_" + secrets.token_hex(18)
            with lock:
                gh.tokens[token] = {"login": grant["login"], "scope": scope.split(",")}
            answer({"access_token": token, "token_type": "bearer", "scope": scope})

        def _api(self, path: str) -> None:
            if not self.headers.get("User-Agent"):
                return self._json(403, {"message": "Request forbidden by administrative rules. Please make sure your request has a User-Agent header."})
            auth = self.headers.get("Authorization", "")
            scheme, _, token = auth.partition(" ")
            grant = gh.tokens.get(token) if scheme.lower() in ("bearer", "token") else None
            if grant is None:
                return self._json(401, {"message": "Bad credentials"})
            user, emails = ACCOUNTS[grant["login"]]
            if path == "/api/v3/user":
                return self._json(200, user)
            if "user:email" not in grant["scope"]:
                return self._json(404, {"message": "Not Found"})
            self._json(200, emails)

        def log_message(self, *args) -> None:
            pass

    with serve_http(port, Handler):
        yield gh
