"""Sign-in methods with real clients: the MCP Python SDK completes the whole MCP authorization
flow with each method Gatehouse offers.

Bring your own auth: an MCP server that offers only an "Acme" connection. The SDK meets the 401,
discovers Gatehouse, registers, and sends the person to authorize; Gatehouse sends them straight
to Acme's own login application (`owner_login.py`), which signs them in its own way, posts their
claims to Gatehouse with an API key, and sends the browser back; the person consents and the SDK
calls tools with a token for the person Gatehouse created and linked.

Upstream OpenID Connect: node-oidc-provider on loopback plays the company's identity provider.
The SDK's person signs in there and comes back; Gatehouse exchanges the code (PKCE, client
secret), checks the ID token, and signs them in. The provider is then made to hand out ID tokens
with one flaw each (another sign-in's nonce, another audience, expired), and an account with an
unverified email signs in: each is refused with its own error.

GitHub: a loopback stand-in (`github_standin.py`) implements GitHub's documented OAuth web flow
and user API at a GitHub Enterprise Server's paths; real GitHub cannot be reached from here.

Email codes: Gatehouse sends the code through a real SMTP server on loopback (aiosmtpd, with
authentication); the person reads it from the message received and types it in.
"""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import hashlib
import html
import json
import re
import secrets
import subprocess
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx2
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from mcp.shared.auth import AuthorizationCodeResult

import pages
from conftest import LOGS, free_port, run_gatehouse, run_todo, stop, wait_http
from github_standin import run_github
from owner_login import run_owner_login
from test_conformance import NODE22
from test_oauth_python_sdk import REDIRECT, MemoryStorage, claims, provider, use_todos


class Person:
    """Someone the SDK sends to authorize; `redirect` walks the pages and keeps the callback."""

    callback: str | None = None

    async def come_back(self) -> AuthorizationCodeResult:
        assert self.callback and self.callback.startswith(REDIRECT), self.callback
        q = parse_qs(urlsplit(self.callback).query)
        return AuthorizationCodeResult(code=q["code"][0], state=q["state"][0], iss=q["iss"][0])


class OwnerPerson(Person):
    """A person who signs in at the owner's login application, then allows."""

    def __init__(self, owner_origin: str, account: tuple[str, str]) -> None:
        self.owner_origin = owner_origin
        self.account = account
        self.callback: str | None = None
        self.authorize_urls: list[str] = []

    async def redirect(self, authorization_url: str) -> None:
        self.authorize_urls.append(authorization_url)
        self.callback = await asyncio.to_thread(
            pages.approve, authorization_url, via=self.owner_origin, owner_account=self.account
        )



def test_bring_your_own_auth_with_the_mcp_python_sdk():
    with run_gatehouse() as g:
        g.cli("users", "add", "--email", "root@example.com", "--admin", "--password-stdin",
              stdin=pages.PASSWORD + "\n")
        key = g.cli("api-keys", "create", "--user", "root@example.com", "--name", "acme login")
        # The connection first (its id names the callback), then its login URL once the app runs.
        conn = g.cli("connections", "add-federated", "--name", "Acme", "--login-url", "http://127.0.0.1:9/login")
        with run_owner_login(g.url, conn["id"], key["secret"]) as owner:
            g.cli("connections", "update", conn["id"], "--login-url", owner.url)
            with run_todo(g, "--sign-in", conn["id"]) as todo:
                assert todo.server["sign_in_methods"] == [conn["id"]]
                storage = MemoryStorage()
                person = OwnerPerson(f"http://{urlsplit(owner.url).netloc}", ("alice", "wonderland"))
                auth = provider(todo.mcp_url, storage, person)
                tools, created = asyncio.run(use_todos(todo.mcp_url, auth, "from acme"))
        people = {u["email"]: u["id"] for u in g.cli("users", "list")}

    assert "create_todo" in tools and created["title"] == "from acme"
    assert len(person.authorize_urls) == 1
    # The owner's backend was heard once, and Gatehouse accepted the claims.
    assert owner.answers == [200]
    assert owner.posted[0]["email"] == "alice@acme.test"
    # The token is for the person Gatehouse created from Acme's claims.
    token = claims(storage.tokens[-1].access_token)
    assert token["sub"] == people["alice@acme.test"]


class Mailbox:
    """An SMTP server's handler that keeps every message, and the person reading them."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.logins: list[str] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            b"gatehouse",
            b"smtp secret",
        )
        if ok:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok)

    def code_for(self, address: str) -> str:
        """The code in the last message to `address`, as the person reads it."""
        mine = [m for m in self.messages if m["To"] == address]
        assert mine, f"no message to {address}"
        text = mine[-1].get_content()
        match = re.search(r"^\s+(\d{4} \d{4})\s*$", text, re.M)
        assert match, text
        return match.group(1)


@contextmanager
def run_smtp():
    box = Mailbox()
    port = free_port()
    controller = Controller(
        box, hostname="127.0.0.1", port=port, authenticator=box.authenticate, auth_require_tls=False
    )
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


class CodePerson(Person):
    """A person who asks for a sign-in code by email, reads it, types it, then allows."""

    def __init__(self, box: Mailbox, address: str) -> None:
        self.box = box
        self.address = address
        self.callback: str | None = None

    async def redirect(self, authorization_url: str) -> None:
        self.callback = await asyncio.to_thread(
            pages.approve, authorization_url, email=self.address, mailbox=self.box.code_for
        )



def test_email_codes_over_smtp_with_the_mcp_python_sdk():
    with run_smtp() as (box, smtp_port):
        with run_gatehouse(
            GATEHOUSE_SMTP_HOST="127.0.0.1",
            GATEHOUSE_SMTP_PORT=str(smtp_port),
            GATEHOUSE_SMTP_TLS="none",
            GATEHOUSE_SMTP_USERNAME="gatehouse",
            GATEHOUSE_SMTP_PASSWORD="smtp secret",
            GATEHOUSE_EMAIL_FROM="Todo sign-in <signin@gatehouse.test>",
        ) as g:
            with run_todo(g, "--sign-in", "email_code") as todo:
                storage = MemoryStorage()
                person = CodePerson(box, "grace@example.com")
                auth = provider(todo.mcp_url, storage, person)
                tools, created = asyncio.run(use_todos(todo.mcp_url, auth, "from my inbox"))
            people = {u["email"]: u["id"] for u in g.cli("users", "list")}

    assert "create_todo" in tools and created["title"] == "from my inbox"
    # One message, sent with the configured sender, after logging in to the SMTP server.
    assert len(box.messages) == 1 and box.logins == ["gatehouse"]
    message = box.messages[0]
    assert message["From"] == "Todo sign-in <signin@gatehouse.test>"
    assert message["Subject"].startswith("Your sign-in code: ")
    assert "/login/email/link?token=" in message.get_content()
    # The token is for the person the code signed in (an account made for the address).
    token = claims(storage.tokens[-1].access_token)
    assert token["sub"] == people["grace@example.com"]


HERE = Path(__file__).parent


@contextmanager
def run_idp(port: int, redirect_uri: str):
    """node-oidc-provider on `port`, with one client (Gatehouse) redirecting to `redirect_uri`."""
    opts = {"port": port, "redirect_uri": redirect_uri, "client_secret": "upstream secret"}
    with open(LOGS / f"idp-{port}.log", "w") as log:
        proc = subprocess.Popen(
            [NODE22, str(HERE / "upstream_idp.mjs"), json.dumps(opts)], cwd=HERE, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            wait_http(f"http://127.0.0.1:{port}/.well-known/openid-configuration", proc=proc)
            yield f"http://127.0.0.1:{port}"
        finally:
            stop(proc)


class IdpPerson(Person):
    """A person who signs in at the upstream provider as `login`, consents there, then allows."""

    def __init__(self, idp: str, login: str) -> None:
        self.idp = idp
        self.login = login
        self.callback: str | None = None

    async def redirect(self, authorization_url: str) -> None:
        self.callback = await asyncio.to_thread(
            pages.approve, authorization_url, via=self.idp, upstream_login=self.login
        )



def authorization_url(issuer: str) -> str:
    """A fresh registration's authorization request at `issuer` (what a host would open)."""
    reg = httpx2.post(
        f"{issuer}/oauth/register",
        json={"client_name": "Test host", "redirect_uris": [REDIRECT], "application_type": "native"},
    ).json()
    verifier = secrets.token_urlsafe(32)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    q = urlencode({
        "response_type": "code", "client_id": reg["client_id"], "redirect_uri": REDIRECT,
        "code_challenge": challenge, "code_challenge_method": "S256", "state": "s", "scope": "todo:read",
    })
    return f"{issuer}/oauth/authorize?{q}"


def refused(issuer: str, idp: str, login: str) -> tuple[int, str]:
    """Signs in at the provider as `login`; returns the status and text of Gatehouse's refusal."""
    try:
        to = pages.approve(authorization_url(issuer), via=idp, upstream_login=login)
    except pages.PageError as e:
        return e.status, html.unescape(e.body)
    raise AssertionError(f"the sign-in went through to {to}")


def cancelled(issuer: str) -> tuple[int, str]:
    """Goes to the provider's sign-in page and cancels there (its "abort" link); returns the
    status and text of where the browser lands."""
    with httpx2.Client(follow_redirects=True, timeout=10.0) as browser:
        at_idp = browser.get(authorization_url(issuer))
        abort = re.search(r'href="([^"]*/interaction/[^"]+/abort)"', at_idp.text)
        assert abort, at_idp.text
        back = browser.get(urljoin(str(at_idp.url), html.unescape(abort.group(1))))
        return back.status_code, html.unescape(back.text)


def test_upstream_openid_connect_with_the_mcp_python_sdk():
    port = free_port()
    with run_gatehouse() as g:
        conn = g.cli(
            "connections", "add-oidc", "--name", "Acme IdP", "--issuer", f"http://127.0.0.1:{port}",
            "--client-id", "gatehouse", "--client-secret-stdin", stdin="upstream secret\n",
        )
        assert conn["kind"] == "oidc" and conn["client_secret_set"] is True
        assert conn["scopes"] == ["openid", "email", "profile"]
        assert conn["callback_url"] == f"{g.url}/sso/v1/connections/{conn['id']}/callback"
        with run_idp(port, conn["callback_url"]) as idp, run_todo(g, "--sign-in", conn["id"]) as todo:
            storage = MemoryStorage()
            person = IdpPerson(idp, "grace")
            auth = provider(todo.mcp_url, storage, person)
            tools, created = asyncio.run(use_todos(todo.mcp_url, auth, "from the idp"))

            # One flaw each, with the provider's own signature: each check catches its own.
            issuer = todo.issuer
            seen = {}
            for mode in ("wrong_nonce", "wrong_aud", "expired"):
                httpx2.get(f"{idp}/__test/mode/{mode}").raise_for_status()
                seen[mode] = refused(issuer, idp, "grace")
            httpx2.get(f"{idp}/__test/mode/ok").raise_for_status()
            seen["unverified"] = refused(issuer, idp, "mallory")
            seen["cancelled"] = cancelled(issuer)
        people = {u["email"]: u["id"] for u in g.cli("users", "list")}

    assert "create_todo" in tools and created["title"] == "from the idp"
    token = claims(storage.tokens[-1].access_token)
    assert token["sub"] == people["grace@idp.test"]
    status, page = seen["wrong_nonce"]
    assert status == 502 and "invalid_id_token" in page and "its nonce is not the one sent" in page, page
    status, page = seen["wrong_aud"]
    assert status == 502 and "invalid_id_token" in page and "not for this client (audience)" in page, page
    status, page = seen["expired"]
    assert status == 502 and "invalid_id_token" in page and "it has expired" in page, page
    status, page = seen["unverified"]
    assert status == 403 and "email_not_verified" in page and "did not say mallory@idp.test is verified" in page
    assert "mallory@idp.test" not in people
    status, page = seen["cancelled"]
    assert status == 403 and "access_denied" in page and "was cancelled or refused" in page, page


def github_cancelled(issuer: str) -> tuple[int, str]:
    """Goes to the GitHub stand-in's "Authorize" page and presses Cancel; returns the status and
    text of where the browser lands."""
    with httpx2.Client(follow_redirects=True, timeout=10.0) as browser:
        at_github = browser.get(authorization_url(issuer))
        (form,) = pages.parse(at_github.text).forms
        back = browser.post(urljoin(str(at_github.url), form.action), data={**form.fields, "cancel": "1"})
        return back.status_code, html.unescape(back.text)


def test_github_with_the_mcp_python_sdk():
    """GitHub through a stand-in: real GitHub cannot be reached from here, so `github_standin.py`
    implements GitHub's documented OAuth web flow and REST API at a GitHub Enterprise Server's
    paths on loopback, and the connection is made with `--preset github --tenant <its URL>`."""
    with run_github("Iv1.gatehouse", "github secret") as gh, run_gatehouse() as g:
        conn = g.cli(
            "connections", "add-oidc", "--name", "GitHub", "--preset", "github", "--tenant", gh.url,
            "--client-id", gh.client_id, "--client-secret-stdin", stdin=gh.client_secret + "\n",
        )
        assert conn["kind"] == "github" and conn["base_url"] == gh.url, conn
        assert conn["scopes"] == ["read:user", "user:email"] and conn["client_secret_set"] is True
        gh.redirect_uri = conn["callback_url"]
        with run_todo(g, "--sign-in", conn["id"]) as todo:
            storage = MemoryStorage()
            person = IdpPerson(gh.url, "octocat")
            auth = provider(todo.mcp_url, storage, person)
            tools, created = asyncio.run(use_todos(todo.mcp_url, auth, "from github"))
            flow = list(gh.seen)

            issuer = todo.issuer
            seen = {"unverified": refused(issuer, gh.url, "unverified")}
            for mode in ("bad_code", "narrow_scope"):
                httpx2.get(f"{gh.url}/__test/mode/{mode}").raise_for_status()
                seen[mode] = refused(issuer, gh.url, "octocat")
            httpx2.get(f"{gh.url}/__test/mode/ok").raise_for_status()
            seen["cancelled"] = github_cancelled(issuer)
        people = {u["email"]: u["id"] for u in g.cli("users", "list")}

    assert "create_todo" in tools and created["title"] == "from github"
    token = claims(storage.tokens[-1].access_token)
    assert token["sub"] == people["octocat@github.test"]
    # What Gatehouse sent GitHub: the fixed scopes, PKCE S256 and a state; the code back with
    # its verifier, asking for JSON; the user API with a User-Agent and the token as bearer.
    (authorize,) = [q for m, path, q, _ in flow if (m, path) == ("GET", "/login/oauth/authorize")]
    assert authorize["scope"] == "read:user user:email" and authorize["code_challenge_method"] == "S256"
    assert authorize["state"] and authorize["redirect_uri"] == conn["callback_url"]
    (exchange,) = [(q, h) for m, path, q, h in flow if path == "/login/oauth/access_token"]
    assert exchange[0]["code_verifier"] and exchange[1]["accept"] == "application/json"
    api = [(path, h) for m, path, q, h in flow if path.startswith("/api/v3/")]
    assert [p for p, _ in api] == ["/api/v3/user", "/api/v3/user/emails"]
    assert all(h["user-agent"].startswith("Gatehouse/") and h["authorization"].startswith("Bearer gho_") for _, h in api)

    status, page = seen["unverified"]
    assert status == 403 and "email_not_verified" in page and "nobody@github.test" in page, page
    assert "nobody@github.test" not in people
    status, page = seen["bad_code"]
    assert status == 502 and "GitHub refused the authorization code" in page and "bad_verification_code" in page, page
    status, page = seen["narrow_scope"]
    assert status == 502 and "GET /user/emails" in page and "user:email scope" in page, page
    status, page = seen["cancelled"]
    assert status == 403 and "access_denied" in page and "was cancelled or refused" in page, page


class PasskeyPerson(Person):
    """Someone in Chromium with a virtual authenticator (`browser_passkeys.mjs`): adds a passkey
    on their account page, then signs in with it where the SDK sends them."""

    def __init__(self, gatehouse: str) -> None:
        self.callback: str | None = None
        self.proc = subprocess.Popen(
            ["node", "browser_passkeys.mjs", json.dumps({
                "gatehouse": gatehouse,
                "email": pages.EMAIL,
                "password": pages.PASSWORD,
                "redirectUri": REDIRECT,
            })],
            cwd=HERE,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.registered = self.answer("registered")
        self.signed_in: dict = {}

    def answer(self, step: str) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(timeout=10)
            raise AssertionError(f"the browser stopped before `{step}`: {self.proc.stderr.read()}")
        seen = json.loads(line)
        assert seen["step"] == step, seen
        return seen

    def tell(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    async def redirect(self, authorization_url: str) -> None:
        def walk() -> dict:
            self.tell(authorization_url)
            return self.answer("authorized")

        self.signed_in = await asyncio.to_thread(walk)
        self.callback = self.signed_in["callback"]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


def test_passkeys_in_chromium_with_the_mcp_python_sdk():
    # A domain name: browsers refuse passkeys for an IP address.
    with run_gatehouse(host="localhost") as g:
        assert g.url.startswith("http://localhost:")
        g.add_person()
        person = PasskeyPerson(g.url)
        try:
            registered = person.registered
            with run_todo(g, "--sign-in", "passkey") as todo:
                assert todo.server["sign_in_methods"] == ["passkey"]
                storage = MemoryStorage()
                auth = provider(todo.mcp_url, storage, person)
                tools, created = asyncio.run(use_todos(todo.mcp_url, auth, "from my passkey"))
            person.tell("remove")
            removed = person.answer("removed")
        finally:
            person.close()
        people = {u["email"]: u["id"] for u in g.cli("users", "list")}
        events = g.cli("audit", "--limit", "100")

    # The account page listed the new passkey, and the authenticator holds a discoverable
    # credential for this relying party, under a user handle that is not the email.
    assert registered["passkeys"] == ["Test laptop"]
    [cred] = registered["credentials"]
    assert cred["isResidentCredential"] is True and cred["rpId"] == "localhost"
    assert pages.EMAIL not in base64.b64decode(cred["userHandle"]).decode("latin-1")
    # Where the SDK sent the person, the server offers passkeys only: one button, no password.
    assert person.signed_in["signIn"] == {"buttons": ["Sign in with a passkey"], "hasPasswordField": False}
    assert person.signed_in["credentials"][0]["signCount"] > cred["signCount"]
    # The SDK called tools with a token for the person whose passkey it was.
    assert "create_todo" in tools and created["title"] == "from my passkey"
    assert claims(storage.tokens[-1].access_token)["sub"] == people[pages.EMAIL]
    # Once removed, the authenticator's passkey is refused with the reason.
    assert "not registered here" in removed["refused"], removed
    # No script error or CSP violation on any page (the refusal page's 401 is the one console
    # line Chromium writes for an error status).
    for seen in (registered, person.signed_in):
        assert seen["problems"] == [], seen["problems"]
    assert [p for p in removed["problems"] if "status of 401" not in p] == [], removed["problems"]
    # Adding, using and removing it are in the audit log.
    kinds = [(e["event"], e.get("details", {}).get("method")) for e in events]
    assert ("passkey.added", None) in kinds and ("passkey.removed", None) in kinds
    assert ("sign_in.succeeded", "passkey") in kinds
