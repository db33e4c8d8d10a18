"""The MCP Python SDK's own OAuth client (`OAuthClientProvider`) against Gatehouse and the guard.

Nothing is pre-registered but the MCP server and a person: the SDK meets a 401, discovers
Gatehouse, registers (Dynamic Client Registration, or a Client ID Metadata Document served over
https on loopback), sends the person through the real sign-in and consent pages, exchanges the
code, calls tools, and after the access token expires refreshes it and calls tools again.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

import pages
from conftest import document_host, run_gatehouse, run_todo
from replay import Replay

REDIRECT = "http://127.0.0.1:53682/callback"
# The shortest access-token lifetime Gatehouse allows, so the test sees one expire.
TOKEN_TTL = 60


class MemoryStorage:
    """The SDK's token storage, keeping every token set it was given."""

    def __init__(self) -> None:
        self.tokens: list[OAuthToken] = []
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens[-1] if self.tokens else None

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens.append(tokens)

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


class Person:
    """The SDK's redirect and callback handlers: a person who signs in and allows."""

    def __init__(self) -> None:
        self.callback: str | None = None
        self.authorize_urls: list[str] = []
        self.consent_pages: list[str] = []

    async def redirect(self, authorization_url: str) -> None:
        self.authorize_urls.append(authorization_url)
        self.callback = await asyncio.to_thread(pages.approve, authorization_url, consent_pages=self.consent_pages)

    async def come_back(self) -> AuthorizationCodeResult:
        assert self.callback and self.callback.startswith(REDIRECT), self.callback
        q = parse_qs(urlsplit(self.callback).query)
        return AuthorizationCodeResult(code=q["code"][0], state=q["state"][0], iss=q["iss"][0])


def provider(mcp_url: str, storage: MemoryStorage, person: Person, metadata_url: str | None = None):
    return OAuthClientProvider(
        server_url=mcp_url,
        client_metadata=OAuthClientMetadata(
            client_name="py-sdk interop", redirect_uris=[REDIRECT], grant_types=["authorization_code", "refresh_token"]
        ),
        storage=storage,
        redirect_handler=person.redirect,
        callback_handler=person.come_back,
        client_metadata_url=metadata_url,
    )


async def use_todos(mcp_url: str, auth: OAuthClientProvider, title: str) -> tuple[list[str], dict]:
    async with httpx2.AsyncClient(auth=auth, timeout=30.0) as http:
        async with Client(streamable_http_client(mcp_url, http_client=http)) as c:
            tools = sorted(t.name for t in (await c.list_tools()).tools)
            created = await c.call_tool("create_todo", {"title": title})
            assert not created.is_error, created
            return tools, json.loads(created.content[0].text)


async def sign_in_call_expire_refresh(mcp_url: str, metadata_url: str | None = None) -> dict:
    """The whole life of one client; returns what a test asserts on."""
    storage, person = MemoryStorage(), Person()
    auth = provider(mcp_url, storage, person, metadata_url)
    tools, first = await use_todos(mcp_url, auth, "before expiry")
    issued = storage.tokens[-1]

    # Wait until the access token has expired (its own `exp`, not the SDK's bookkeeping).
    await asyncio.sleep(TOKEN_TTL + 1)
    expired = claims(issued.access_token)["exp"] < time.time()

    # A new session: the SDK refreshes instead of sending the person through the pages again.
    _, second = await use_todos(mcp_url, auth, "after refresh")
    return {
        "tools": tools,
        "todos": (first, second),
        "expired_before_refresh": expired,
        "tokens": storage.tokens,
        "client": storage.client,
        "authorize_urls": person.authorize_urls,
    }


def claims(jwt: str) -> dict:
    """The payload of a JWT, unverified (the guard verified it; this only reads `exp`)."""
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def check_life(life: dict, client_id: str | None = None) -> None:
    assert life["tools"] == ["create_todo", "delete_todo", "get_todo", "list_todos", "update_todo"]
    assert [t["title"] for t in life["todos"]] == ["before expiry", "after refresh"]
    # One trip through the pages, then a refresh with rotation.
    assert len(life["authorize_urls"]) == 1, life["authorize_urls"]
    assert life["expired_before_refresh"]
    first, refreshed = life["tokens"]
    assert first.refresh_token and refreshed.refresh_token
    assert refreshed.access_token != first.access_token
    assert refreshed.refresh_token != first.refresh_token, "refresh tokens rotate"
    assert set(first.scope.split()) == {"todo:read", "todo:write", "offline_access"}
    assert first.expires_in == TOKEN_TTL
    query = parse_qs(urlsplit(life["authorize_urls"][0]).query)
    assert query["code_challenge_method"] == ["S256"]
    if client_id is not None:
        assert query["client_id"] == [client_id]


def test_dcr_and_metadata_document_clients_sign_in_call_tools_and_refresh(tmp_path):
    """Both registrations in one event loop, so the wait for the tokens to expire is shared."""
    with document_host(tmp_path) as docs:
        doc_url = docs.publish("/oauth/client.json", {
            "client_id": f"{docs.origin}/oauth/client.json",
            "client_name": "py-sdk metadata document",
            "client_uri": f"{docs.origin}/",
            "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        })
        env = {"GATEHOUSE_DEV_LOOPBACK_METADATA_DOCUMENTS": "true", "SSL_CERT_FILE": docs.ca}
        with run_gatehouse(**env) as gatehouse, run_todo(gatehouse, "--token-ttl", str(TOKEN_TTL)) as todo:
            gatehouse.add_person()

            async def both():
                return await asyncio.gather(
                    sign_in_call_expire_refresh(todo.mcp_url),
                    sign_in_call_expire_refresh(todo.mcp_url, metadata_url=doc_url),
                )

            dcr, cimd = asyncio.run(both())

            # Dynamic Client Registration: a public client with a dcr_ id.
            assert dcr["client"].client_id.startswith("dcr_")
            assert dcr["client"].token_endpoint_auth_method == "none"
            check_life(dcr, dcr["client"].client_id)

            # Metadata document: the URL is the client id, fetched by Gatehouse over https.
            check_life(cimd, doc_url)
            assert "/oauth/client.json" in docs.fetches

            clients = gatehouse.cli("clients", "list", "--server", todo.server["id"])
            ids = {c["client_id"] for c in clients}
            assert dcr["client"].client_id in ids


def causes(error: BaseException, kind: type) -> bool:
    """Whether `kind` is `error`, among its causes, or inside its exception groups."""
    if isinstance(error, kind):
        return True
    inner = list(getattr(error, "exceptions", ())) + [e for e in (error.__cause__, error.__context__) if e]
    return any(causes(e, kind) for e in inner)


def test_deny_on_the_consent_page_reaches_the_sdk_as_access_denied(gatehouse):
    with run_todo(gatehouse) as todo:
        gatehouse.add_person()
        storage = MemoryStorage()
        callbacks: list[str] = []

        async def deny(url: str) -> None:
            callbacks.append(await asyncio.to_thread(pages.approve, url, decision="deny"))

        async def come_back() -> AuthorizationCodeResult:
            q = parse_qs(urlsplit(callbacks[-1]).query)
            assert q["error"] == ["access_denied"], q
            assert q["iss"] == [todo.issuer]
            raise PermissionError("the person said no")

        auth = OAuthClientProvider(
            server_url=todo.mcp_url,
            client_metadata=OAuthClientMetadata(client_name="py-sdk interop", redirect_uris=[REDIRECT]),
            storage=storage,
            redirect_handler=deny,
            callback_handler=come_back,
        )
        with pytest.raises(BaseException) as failure:
            asyncio.run(use_todos(todo.mcp_url, auth, "never"))
        assert causes(failure.value, PermissionError), failure.value
        assert storage.tokens == []
        assert len(callbacks) == 1


def test_step_up_asks_only_for_the_new_scope_and_a_refresh_never_widens(gatehouse):
    """The SDK holds a read-only grant from an earlier session. Reading works; a write tool
    answers `403 insufficient_scope`; the SDK authorizes again with the union (the challenge
    names the token's scopes too, so this does not tell whether the SDK made the union
    itself), with `prompt=consent` because it asks for `offline_access`; the consent page asks
    only for the write scope and shows the others as already allowed, and the call passes. The
    old read-only refresh token cannot be widened."""
    with run_todo(gatehouse) as todo:
        gatehouse.add_person()
        replay = Replay(todo.mcp_url, "py-sdk interop")
        try:
            client, read_only = replay.grant("py-sdk interop", REDIRECT, "todo:read offline_access")
            assert set(read_only["scope"].split()) == {"todo:read", "offline_access"}

            storage, person = MemoryStorage(), Person()
            storage.client = OAuthClientInformationFull.model_validate(client.response)
            storage.tokens = [OAuthToken.model_validate(read_only)]
            tools, created = asyncio.run(use_todos(todo.mcp_url, provider(todo.mcp_url, storage, person), "stepped up"))

            # One trip through the pages, for the union; the person was asked only for what is new.
            [url] = person.authorize_urls
            assert set(parse_qs(urlsplit(url).query)["scope"][0].split()) == {"todo:read", "todo:write", "offline_access"}
            [page] = person.consent_pages
            assert pages.consent_scopes(page) == (["todo:write"], ["todo:read", "offline_access"])
            assert created["title"] == "stepped up" and "create_todo" in tools
            assert {"todo:read", "todo:write"} <= set(storage.tokens[-1].scope.split())

            # A refresh keeps its own grant's scopes: the read-only one cannot ask for more.
            r = replay.token({"grant_type": "refresh_token", "refresh_token": read_only["refresh_token"],
                              "scope": "todo:read todo:write", "resource": todo.mcp_url}, client)
            assert r.status_code == 400 and r.json()["error"] == "invalid_scope", r.text
        finally:
            replay.close()
