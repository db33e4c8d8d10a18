"""An MCP host's side of authorization, step by step over plain HTTP, for hosts that cannot run
here (Claude, ChatGPT, Cursor, …): what `host_profiles.py` says each one sends, replayed against
the real Gatehouse, its real pages (through `pages.approve`) and the real to-do MCP server.

Each step is a method, so that a test can stop at the one it is about, or send something of its
own in between: `discover` (the 401 and its challenge, Protected Resource Metadata, the
authorization server's metadata), `register` (DCR, or a metadata document's URL as client id),
`authorize` (a person signs in and allows), `token`, then `call_tool` with the MCP Python SDK.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import secrets
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2
import jwt
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

import pages

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "replay", "version": "1.0.0"},
    },
}


def challenge_params(header: str) -> dict[str, str]:
    """The parameters of a `WWW-Authenticate: Bearer k="v", …` challenge."""
    assert header.startswith("Bearer "), header
    return {k: v.replace('\\"', '"') for k, v in re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', header)}


def pkce() -> tuple[str, str]:
    """A PKCE verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass
class Signer:
    """A private key a client signs its `private_key_jwt` assertions with; `jwks` is its public
    half, as the client publishes it."""

    key: object
    kid: str
    alg: str = "RS256"
    jwks: dict = field(default_factory=dict)

    @staticmethod
    def rsa(kid: str) -> "Signer":
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
        public.update(kid=kid, use="sig", alg="RS256")
        return Signer(key=key, kid=kid, jwks={"keys": [public]})

    def assertion(self, client_id: str, aud: str, **claims: object) -> str:
        """RFC 7523 §3: `iss` = `sub` = the client id, `aud` the authorization server, a fresh
        `jti`; `claims` override any of them."""
        now = int(time.time())
        body = {"iss": client_id, "sub": client_id, "aud": aud, "iat": now, "exp": now + 60,
                "jti": str(uuid.uuid4()), **claims}
        return jwt.encode(body, self.key, algorithm=self.alg, headers={"kid": self.kid})


@dataclass
class Registered:
    client_id: str
    secret: str | None = None
    response: dict | None = None


class Replay:
    """One host connecting to one MCP server: `user_agent` on every request it makes itself."""

    def __init__(self, mcp_url: str, user_agent: str, follows_challenge: bool = True) -> None:
        self.mcp_url = mcp_url
        self.follows_challenge = follows_challenge
        self.http = httpx2.Client(headers={"User-Agent": user_agent}, timeout=10.0)
        self.user_agent = user_agent
        self.challenge: dict[str, str] = {}
        self.prm: dict = {}
        self.metadata: dict = {}

    def close(self) -> None:
        self.http.close()

    # -- discovery -------------------------------------------------------------------------

    def discover(self) -> dict:
        """The 401 challenge, Protected Resource Metadata (from the challenge, or from the
        path-inserted well-known URL when the host ignores `resource_metadata`, as Codex does)
        and the RFC 8414 metadata of the authorization server it names; returns the latter."""
        r = self.http.post(self.mcp_url, json=INITIALIZE,
                           headers={"Accept": "application/json, text/event-stream"})
        assert r.status_code == 401, (r.status_code, r.text)
        self.challenge = challenge_params(r.headers["www-authenticate"])
        u = urlsplit(self.mcp_url)
        prm_url = (self.challenge["resource_metadata"] if self.follows_challenge
                   else f"{u.scheme}://{u.netloc}/.well-known/oauth-protected-resource{u.path}")
        self.prm = self._json(prm_url)
        assert self.prm["resource"] == self.mcp_url, self.prm
        issuer = self.prm["authorization_servers"][0]
        i = urlsplit(issuer)
        self.metadata = self._json(f"{i.scheme}://{i.netloc}/.well-known/oauth-authorization-server{i.path}")
        assert self.metadata["issuer"] == issuer, self.metadata
        return self.metadata

    def _json(self, url: str) -> dict:
        r = self.http.get(url)
        assert r.status_code == 200, (url, r.status_code, r.text)
        return r.json()

    # -- registration ----------------------------------------------------------------------

    def register(self, body: dict) -> Registered:
        """Dynamic Client Registration with the host's own body."""
        r = self.register_raw(body)
        assert r.status_code == 201, (r.status_code, r.text)
        reply = r.json()
        return Registered(reply["client_id"], reply.get("client_secret"), reply)

    def register_raw(self, body: dict) -> httpx2.Response:
        return self.http.post(self.metadata["registration_endpoint"], json=body)

    # -- authorization ---------------------------------------------------------------------

    def authorize_url(self, client_id: str, redirect_uri: str, scope: str | None,
                      challenge: str, state: str) -> str:
        params = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "state": state,
            "resource": self.mcp_url,
        }
        if scope:
            params["scope"] = scope
        return f"{self.metadata['authorization_endpoint']}?{urlencode(params)}"

    def authorize(self, client_id: str, redirect_uri: str, scope: str | None,
                  consent_pages: list[str] | None = None) -> tuple[str, str]:
        """A person signs in and allows on the real pages; returns the code and its verifier,
        after checking the redirect back: the exact redirect URI, `state`, and `iss` equal to
        the discovered issuer (RFC 9207)."""
        verifier, challenge = pkce()
        state = secrets.token_urlsafe(16)
        back = pages.approve(self.authorize_url(client_id, redirect_uri, scope, challenge, state),
                             consent_pages=consent_pages)
        assert back.split("?", 1)[0] == redirect_uri, (back, redirect_uri)
        q = parse_qs(urlsplit(back).query)
        assert "error" not in q, q
        assert q["state"] == [state]
        assert q["iss"] == [self.metadata["issuer"]]
        return q["code"][0], verifier

    # -- tokens ----------------------------------------------------------------------------

    def token(self, form: dict, client: Registered, auth: str = "none",
              signer: Signer | None = None, assertion: str | None = None) -> httpx2.Response:
        """A token request authenticated as the host does: `none` (client id in the body),
        `client_secret_post`, or `private_key_jwt` (a fresh assertion, or `assertion`)."""
        form = {**form, "client_id": client.client_id}
        if auth == "client_secret_post":
            form["client_secret"] = client.secret
        elif auth == "private_key_jwt":
            form["client_assertion_type"] = JWT_BEARER
            form["client_assertion"] = assertion or signer.assertion(client.client_id, self.metadata["issuer"])
        return self.http.post(self.metadata["token_endpoint"], data=form)

    def exchange(self, client: Registered, code: str, verifier: str, redirect_uri: str,
                 auth: str = "none", signer: Signer | None = None) -> dict:
        r = self.token({"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
                        "redirect_uri": redirect_uri, "resource": self.mcp_url}, client, auth, signer)
        assert r.status_code == 200, (r.status_code, r.text)
        return r.json()

    def grant(self, client_name: str, redirect_uri: str, scope: str) -> tuple[Registered, dict]:
        """A whole earlier session of a public DCR client: discovery, registration, a person
        allowing `scope`, and the tokens; returns the client and the token response."""
        self.discover()
        client = self.register({"client_name": client_name, "redirect_uris": [redirect_uri],
                                "grant_types": ["authorization_code", "refresh_token"],
                                "response_types": ["code"], "token_endpoint_auth_method": "none"})
        code, verifier = self.authorize(client.client_id, redirect_uri, scope)
        return client, self.exchange(client, code, verifier, redirect_uri)

    # -- the MCP server --------------------------------------------------------------------

    def call_tool(self, access_token: str, tool: str, arguments: dict) -> dict:
        """Calls `tool` with the MCP Python SDK, sending `access_token`; returns its JSON result."""

        async def call() -> dict:
            headers = {"Authorization": f"Bearer {access_token}", "User-Agent": self.user_agent}
            async with httpx2.AsyncClient(headers=headers, timeout=30.0) as http:
                async with Client(streamable_http_client(self.mcp_url, http_client=http)) as c:
                    result = await c.call_tool(tool, arguments)
                    assert not result.is_error, result
                    return json.loads(result.content[0].text)

        return asyncio.run(call())


def claims(token: str) -> dict:
    """A JWT's payload, unverified (only to read what it says)."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
