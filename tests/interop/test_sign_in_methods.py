"""Sign-in methods with real clients: the MCP Python SDK completes the whole MCP authorization
flow with each method Gatehouse offers.

Bring your own auth: an MCP server that offers only an "Acme" connection. The SDK meets the 401,
discovers Gatehouse, registers, and sends the person to authorize; Gatehouse sends them straight
to Acme's own login application (`owner_login.py`), which signs them in its own way, posts their
claims to Gatehouse with an API key, and sends the browser back; the person consents and the SDK
calls tools with a token for the person Gatehouse created and linked.
"""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlsplit

from mcp.shared.auth import AuthorizationCodeResult

import pages
from conftest import run_gatehouse, run_todo
from owner_login import run_owner_login
from test_oauth_python_sdk import REDIRECT, MemoryStorage, claims, provider, use_todos


class OwnerPerson:
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

    async def come_back(self) -> AuthorizationCodeResult:
        assert self.callback and self.callback.startswith(REDIRECT), self.callback
        q = parse_qs(urlsplit(self.callback).query)
        return AuthorizationCodeResult(code=q["code"][0], state=q["state"][0], iss=q["iss"][0])


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
