"""Every real MCP host, replayed: what each one sends (`host_profiles.py`, from
`shared/interop/hosts.md`) goes over loopback to a real `gatehouse serve`, through the real
sign-in and consent pages, to tokens, and ends with a tool called on the real to-do MCP server
with the MCP Python SDK. Metadata documents and ChatGPT's key set are served over https on
loopback (a throwaway CA) at the hosts' own paths and queries. Then what must fail: ChatGPT's
assertions gone wrong, and the redirect URIs nobody may register.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import time
from dataclasses import dataclass
from urllib.parse import quote

import pytest

from conftest import (
    GATEHOUSE,
    DocumentHost,
    Gatehouse,
    TodoServer,
    document_host,
    free_port,
    run_gatehouse,
    run_todo,
)
from host_profiles import PROFILES, Profile, dcr
from replay import Registered, Replay, Signer, claims

JWKS_PATH = "/oauth/jwks.json"


@dataclass
class World:
    gatehouse: Gatehouse
    todo: TodoServer
    docs: DocumentHost
    # ChatGPT's signing key; its public half is at `JWKS_PATH` on the document host.
    chatgpt: Signer


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with document_host(tmp_path_factory.mktemp("hosts")) as docs:
        chatgpt = Signer.rsa("chatgpt-2026-12")
        docs.publish(JWKS_PATH, chatgpt.jwks)
        env = {"GATEHOUSE_DEV_LOOPBACK_METADATA_DOCUMENTS": "true", "SSL_CERT_FILE": docs.ca}
        with run_gatehouse(**env) as g, run_todo(g) as todo:
            g.add_person()
            yield World(g, todo, docs, chatgpt)


def codex_callback_id(server_url: str) -> str:
    """Codex: base64url of the first 9 bytes of SHA-256 of the MCP server's URL."""
    return base64.urlsafe_b64encode(hashlib.sha256(server_url.encode()).digest()[:9]).decode()


def fill(value, names: dict[str, str]):
    """`value` with the profile placeholders filled in, in every string it holds."""
    if isinstance(value, str):
        return value.format(**names)
    if isinstance(value, list):
        return [fill(v, names) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, names) for k, v in value.items()}
    return value


def connect(world: World, profile: Profile) -> tuple[Replay, Registered, str]:
    """Discovery and registration as `profile` does them; returns the host, its client and the
    redirect URI it will use."""
    names = {"port": str(free_port()), "origin": world.docs.origin,
             "callback_id": codex_callback_id(world.todo.mcp_url)}
    redirect = fill(profile.redirect_uri, names)
    names["redirect_q"] = quote(redirect, safe="")
    host = Replay(world.todo.mcp_url, profile.user_agent, profile.follows_challenge)
    metadata = host.discover()
    if profile.registration == "cimd":
        # What hosts check before they use a document instead of registering (hosts.md).
        assert metadata["client_id_metadata_document_supported"] is True
        assert "none" in metadata["token_endpoint_auth_methods_supported"]
        path = fill(profile.document_path, names)
        client_id = world.docs.publish(path, {"client_id": world.docs.origin + path, **fill(profile.document, names)})
        client = Registered(client_id)
    else:
        body = fill(profile.register, names)
        client = host.register(body)
        assert client.response["redirect_uris"] == body["redirect_uris"]
        assert client.response["token_endpoint_auth_method"] == profile.auth
    if profile.auth == "private_key_jwt":
        assert "private_key_jwt" in metadata["token_endpoint_auth_methods_supported"]
        assert "RS256" in metadata["token_endpoint_auth_signing_alg_values_supported"]
    return host, client, redirect


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
def test_each_host_signs_in_and_calls_a_tool(world, profile):
    host, client, redirect = connect(world, profile)
    try:
        scope = profile.scope or host.challenge.get("scope")
        code, verifier = host.authorize(client.client_id, redirect, scope)
        tokens = host.exchange(client, code, verifier, redirect, profile.auth, world.chatgpt)

        # Every token response says its scope; the token is for this MCP server and this host.
        granted = tokens["scope"].split()
        assert {"todo:read", "todo:write"} <= set(granted), granted
        c = claims(tokens["access_token"])
        assert world.todo.mcp_url in c["aud"] and c["client_id"] == client.client_id
        assert c["iss"] == host.metadata["issuer"]
        todo = host.call_tool(tokens["access_token"], "create_todo", {"title": f"from {profile.name}"})
        assert todo["title"] == f"from {profile.name}"
    finally:
        host.close()


def test_chatgpt_assertions_that_must_fail_are_refused_and_the_code_survives(world):
    """ChatGPT's per-app document (private_key_jwt only). A replayed assertion, another key
    under ChatGPT's kid, a wrong `aud`, a far `exp`, `alg: none` and HMAC keyed with the public
    key are each `401 invalid_client`, audited with their reason; none of them uses up the
    code, which the right assertion then exchanges. The key set was fetched once."""
    profile = next(p for p in PROFILES if p.name == "ChatGPT app")
    host, client, redirect = connect(world, profile)
    me, issuer = client.client_id, host.metadata["issuer"]
    signer = world.chatgpt
    try:
        code, verifier = host.authorize(client.client_id, redirect, host.challenge.get("scope"))
        used = signer.assertion(me, issuer)
        exchange = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
                    "redirect_uri": redirect, "resource": world.todo.mcp_url}
        assert host.token(exchange, client, "private_key_jwt", assertion=used).status_code == 200

        code, verifier = host.authorize(client.client_id, redirect, host.challenge.get("scope"))
        exchange.update(code=code, code_verifier=verifier)
        other = Signer.rsa(signer.kid)
        now = int(time.time())
        bad = {
            "replayed": used,
            "another key": other.assertion(me, issuer),
            "wrong aud": signer.assertion(me, "https://chatgpt.com"),
            "far exp": signer.assertion(me, issuer, exp=now + 3600),
            "alg none": unsigned(me, issuer, signer.kid),
            "HMAC with the public key": hmac_with_public_key(me, issuer, signer),
        }
        for why, assertion in bad.items():
            r = host.token(exchange, client, "private_key_jwt", assertion=assertion)
            assert r.status_code == 401 and r.json()["error"] == "invalid_client", (why, r.status_code, r.text)
        r = host.token(exchange, client, "private_key_jwt", signer=signer)
        assert r.status_code == 200, r.text
    finally:
        host.close()

    reasons = audited(world.gatehouse, "client_assertion.refused", me, len(bad))
    for needle in ("used before", "signature", "aud", "exp", "alg `none`", "alg `HS256`"):
        assert any(needle in r for r in reasons), (needle, reasons)
    # The reasons never carry the assertion itself.
    assert all(a not in json.dumps(reasons) for a in bad.values())
    assert world.docs.fetches.count(JWKS_PATH) == 1, world.docs.fetches


def unsigned(client_id: str, aud: str, kid: str) -> str:
    now = int(time.time())
    header = {"alg": "none", "typ": "JWT", "kid": kid}
    body = {"iss": client_id, "sub": client_id, "aud": aud, "iat": now, "exp": now + 60, "jti": f"none-{now}"}
    return f"{b64(json.dumps(header))}.{b64(json.dumps(body))}."


def hmac_with_public_key(client_id: str, aud: str, signer: Signer) -> str:
    """The forgery an attacker makes with the published key as an HMAC secret."""
    from cryptography.hazmat.primitives import serialization

    pem = signer.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    now = int(time.time())
    header = {"alg": "HS256", "typ": "JWT", "kid": signer.kid}
    body = {"iss": client_id, "sub": client_id, "aud": aud, "iat": now, "exp": now + 60, "jti": f"hs-{now}"}
    signing_input = f"{b64(json.dumps(header))}.{b64(json.dumps(body))}"
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def b64(data: str | bytes) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def events_of(g: Gatehouse, event: str, client_id: str, at_least: int = 1) -> list[dict]:
    """The `event`s about `client_id`, once at least `at_least` are stored (the server writes
    its audit log in batches, a moment after the request)."""
    for _ in range(50):
        events = g.cli("audit", "--event", event, "--client", client_id, "--limit", "100")
        if len(events) >= at_least:
            return events
        time.sleep(0.1)
    raise AssertionError(f"only {len(events)} {event} events for {client_id}: {events}")


def audited(g: Gatehouse, event: str, client_id: str, at_least: int) -> list[str]:
    """The reasons of the `event`s about `client_id` (see `events_of`)."""
    return [e["details"]["reason"] for e in events_of(g, event, client_id, at_least)]


REFUSED = {
    "javascript:alert(1)": "javascript",
    "data:text/html,<script>alert(1)</script>": "data",
    "file:///etc/passwd": "file",
    "vbscript:msgbox(1)": "vbscript",
    "about:blank": "about",
    "blob:https://evil.example/0c8f": "blob",
    "http://evil.example/callback": "http",
    "https://app.example/callback#frag": "fragment",
    "https://user:pass@app.example/callback": "credentials",
    "https://app.example/call back": "whitespace",
    "https://app.example/callback\r\nSet-Cookie: a=b": "control",
    "cursor://anysphere.cursor-mcp/oauth/callback\t": "whitespace",
}


def test_redirect_uris_nobody_may_use_are_refused_at_every_entry_point(world, tmp_path):
    """Each refused form, as a host would send it: in a registration (DCR), in a metadata
    document, and straight at the authorization endpoint for a client that registered a good
    one. Registration and documents name the URI and the rule; the authorization endpoint
    shows an error page and redirects nowhere. The refused registrations are in the audit log
    with the host's User-Agent."""
    host = Replay(world.todo.mcp_url, "evil-host/6.6.6")
    try:
        host.discover()
        for uri, rule in REFUSED.items():
            r = host.register_raw(dcr("Evil", [uri]))
            body = r.json()
            assert r.status_code == 400 and body["error"] == "invalid_redirect_uri", (uri, r.text)
            assert rule in body["error_description"], (uri, rule, body)

        good = host.register(dcr("Good", ["cursor://anysphere.cursor-mcp/oauth/callback"]))
        for uri in REFUSED:
            url = host.authorize_url(good.client_id, uri, None, "x" * 43, "s")
            r = host.http.get(url)
            assert r.status_code == 400 and "location" not in r.headers, (uri, r.status_code)

        documents = {}
        for n, uri in enumerate(("javascript:alert(1)", "http://evil.example/callback")):
            path = f"/oauth/evil{n}/client.json"
            doc_id = world.docs.publish(path, {"client_id": world.docs.origin + path, "client_name": "Evil",
                                               "redirect_uris": [uri], "token_endpoint_auth_method": "none"})
            documents[doc_id] = REFUSED[uri]
            url = host.authorize_url(doc_id, uri, None, "x" * 43, "s")
            r = host.http.get(url)
            assert r.status_code in (400, 401) and "location" not in r.headers, (uri, r.status_code)
            assert path in world.docs.fetches, "the document was fetched, and refused for what it says"
    finally:
        host.close()

    # At the authorization endpoint each was refused at the redirect URI step…
    steps = [e["details"]["step"] for e in events_of(world.gatehouse, "authorization.refused", good.client_id)]
    assert steps.count("redirect_uri") == len(REFUSED), steps
    # …and each document for the URI it lists, with the rule.
    for doc_id, rule in documents.items():
        [reason] = audited(world.gatehouse, "metadata_document.failed", doc_id, 1)
        assert rule in reason, (doc_id, reason)

    events = world.gatehouse.cli("audit", "--event", "client.registration_refused", "--limit", "100")
    agents = {e["details"].get("user_agent") for e in events}
    assert "evil-host/6.6.6" in agents, events
    assert len([e for e in events if e["details"].get("user_agent") == "evil-host/6.6.6"]) >= len(REFUSED)


def test_a_host_that_registers_on_every_connection_is_never_locked_out(tmp_path):
    """Claude registers a new client on every fresh connection: each one works, and the first
    still works after the later ones registered (housekeeping removes unused ones, later)."""
    with run_gatehouse() as g, run_todo(g) as todo:
        g.add_person()
        profile = next(p for p in PROFILES if p.name == "Claude (DCR)")

        def connect_with(client: Registered | None, title: str) -> Registered:
            host = Replay(todo.mcp_url, profile.user_agent)
            try:
                host.discover()
                client = client or host.register(profile.register)
                code, verifier = host.authorize(client.client_id, profile.redirect_uri, host.challenge.get("scope"))
                tokens = host.exchange(client, code, verifier, profile.redirect_uri, profile.auth)
                host.call_tool(tokens["access_token"], "create_todo", {"title": title})
                return client
            finally:
                host.close()

        clients = [connect_with(None, f"connection {n}") for n in range(3)]
        connect_with(clients[0], "the first registration, again")
        ids = {c.client_id for c in clients}
        assert len(ids) == 3
        listed = {c["client_id"] for c in g.cli("clients", "list", "--server", todo.server["id"])}
        assert ids <= listed


def test_doctor_walks_the_hosts_path_to_the_real_servers(world):
    """`gatehouse doctor` against the real to-do server and Gatehouse: every step passes; with
    the MCP server's URL as hosts would mistype it (another path), it names the step and exits
    non-zero."""
    doctor = [str(GATEHOUSE), "doctor", "--authorization-server", world.todo.issuer, "--json"]
    ok = subprocess.run([*doctor, world.todo.mcp_url], capture_output=True, text=True, timeout=60)
    report = json.loads(ok.stdout)
    assert ok.returncode == 0 and report["ok"], ok.stdout + ok.stderr
    assert len(report["checks"]) >= 8 and all(c["ok"] for c in report["checks"])

    wrong = subprocess.run([*doctor, world.todo.mcp_url + "/other"], capture_output=True, text=True, timeout=60)
    report = json.loads(wrong.stdout)
    assert wrong.returncode != 0 and not report["ok"], wrong.stdout
    failed = [c for c in report["checks"] if not c["ok"]]
    assert failed and all(c.get("fix") for c in failed), failed
