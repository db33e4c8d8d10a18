"""A person in a real browser (Debian's Chromium, driven by Playwright) signs in and consents on
Gatehouse's pages, at desktop and phone widths; the code the browser brings back is exchanged for
a token. Screenshots of the sign-in and consent pages are kept in test-artifacts/interop/screenshots/."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import subprocess
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2
import pytest

import pages
from conftest import ARTIFACTS, HERE, free_port, run_gatehouse, run_todo

SHOTS = ARTIFACTS / "screenshots"
VIEWPORTS = {
    "desktop": {"width": 1280, "height": 800, "mobile": False},
    "phone": {"width": 390, "height": 844, "mobile": True},
}


@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
def test_a_person_signs_in_and_consents_in_chromium(gatehouse, viewport: str):
    with run_todo(gatehouse) as todo:
        gatehouse.add_person()
        metadata = httpx2.get(
            f"{gatehouse.url}/.well-known/oauth-authorization-server{todo.issuer[len(gatehouse.url):]}"
        ).json()
        redirect = f"http://127.0.0.1:{free_port()}/callback"
        reg = httpx2.post(
            metadata["registration_endpoint"],
            json={"client_name": "Claude Desktop", "redirect_uris": [redirect]},
        )
        assert reg.status_code == 201, reg.text
        client_id = reg.json()["client_id"]

        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        state = secrets.token_urlsafe(16)
        authorize = metadata["authorization_endpoint"] + "?" + urlencode({
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect,
            "scope": "todo:read todo:write",
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "resource": todo.mcp_url,
        })

        SHOTS.mkdir(parents=True, exist_ok=True)
        run = subprocess.run(
            ["node", "browser_consent.mjs", json.dumps({
                "authorizeUrl": authorize,
                "redirectUri": redirect,
                "email": pages.EMAIL,
                "password": pages.PASSWORD,
                "viewport": VIEWPORTS[viewport],
                "shots": str(SHOTS),
                "name": viewport,
            })],
            cwd=HERE,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, run.stderr
        seen = json.loads(run.stdout.strip().splitlines()[-1])

    # The pages as the person saw them.
    assert seen["signIn"]["heading"] == "Sign in"
    assert seen["signIn"]["lead"] == "to continue to To-do list"
    assert urlsplit(seen["signIn"]["url"]).path == "/login"
    assert seen["consent"]["heading"] == "Claude Desktop wants to use To-do list as you"
    assert [s.split("\n")[0] for s in seen["consent"]["scopes"]] == ["Read your to-dos", "Change your to-dos"]
    assert "runs on your own computer" in seen["consent"]["warning"]
    assert not seen["consent"]["overflows"], "the consent page scrolls sideways"
    assert seen["problems"] == [], "console errors or CSP violations"
    for page in ("sign-in", "consent"):
        shot = SHOTS / f"{viewport}-{page}.png"
        assert shot.stat().st_size > 5_000, shot

    # The browser came back to the client with a code, the state and the issuer.
    q = parse_qs(urlsplit(seen["callback"]).query)
    assert q["state"] == [state]
    assert q["iss"] == [todo.issuer]
    token = httpx2.post(metadata["token_endpoint"], data={
        "grant_type": "authorization_code",
        "code": q["code"][0],
        "redirect_uri": redirect,
        "code_verifier": verifier,
        "client_id": client_id,
        "resource": todo.mcp_url,
    })
    assert token.status_code == 200, token.text
    assert token.json()["scope"] == "todo:read todo:write"


def mcp_status(mcp_url: str, token: str) -> int:
    """What the guard-protected to-do server answers a `tools/list` with `token`."""
    return httpx2.post(
        mcp_url,
        headers={
            "authorization": f"Bearer {token}",
            "accept": "application/json, text/event-stream",
            "mcp-protocol-version": "2026-07-28",
            "mcp-method": "tools/list",
        },
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
        }}},
    ).status_code


def kid_of(token: str) -> str:
    header = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]


def test_an_administrator_works_through_the_dashboard_in_chromium():
    # Keys are published 3 s ahead here (a day by default) so that the rotation completes
    # while the test waits; the to-do server caches the JWKS for as long, as the rule goes
    # (publish-ahead at least the cache age of resource servers).
    with run_gatehouse(GATEHOUSE_KEY_PUBLISH_AHEAD_SECS="3") as gatehouse, run_todo(
        gatehouse, todo_args=("--jwks-max-age-secs", "3")
    ) as todo:
        # An agent of the to-do server holds a token signed by the key in use before rotation.
        agent = gatehouse.add_client(todo.server["id"], "todo:read")
        old_token = gatehouse.token(agent, todo.issuer)
        assert mcp_status(todo.mcp_url, old_token) == 200
        gatehouse.add_person()
        gatehouse.add_person("root@example.com")
        gatehouse.cli("users", "set-admin", "root@example.com", "on")
        metadata = httpx2.get(
            f"{gatehouse.url}/.well-known/oauth-authorization-server{todo.issuer[len(gatehouse.url):]}"
        ).json()

        # A person consents to a host through the real pages and gets a refresh token.
        redirect = f"http://127.0.0.1:{free_port()}/callback"
        client_id = httpx2.post(
            metadata["registration_endpoint"],
            json={"client_name": "Claude Desktop", "redirect_uris": [redirect]},
        ).json()["client_id"]
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        back = pages.approve(metadata["authorization_endpoint"] + "?" + urlencode({
            "response_type": "code", "client_id": client_id, "redirect_uri": redirect,
            "scope": "todo:read offline_access", "code_challenge": challenge,
            "code_challenge_method": "S256", "resource": todo.mcp_url,
        }))
        tokens = httpx2.post(metadata["token_endpoint"], data={
            "grant_type": "authorization_code", "code": parse_qs(urlsplit(back).query)["code"][0],
            "redirect_uri": redirect, "code_verifier": verifier, "client_id": client_id,
        }).json()
        assert tokens.get("refresh_token"), tokens

        SHOTS.mkdir(parents=True, exist_ok=True)
        run = subprocess.run(
            ["node", "browser_dashboard.mjs", json.dumps({
                "base": gatehouse.url,
                "email": "root@example.com",
                "password": pages.PASSWORD,
                "consentServer": todo.server["id"],
                "personEmail": pages.EMAIL,
                "shots": str(SHOTS),
            })],
            cwd=HERE, capture_output=True, text=True, timeout=180,
        )
        assert run.returncode == 0, run.stderr
        seen = json.loads(run.stdout.strip().splitlines()[-1])

        # The server registered in the browser is live, and the agent's secret works there.
        assert '"resource": "https://calendar.example/mcp"' in seen["prm"]
        token = httpx2.post(
            f"{gatehouse.url}/oauth/token",
            data={"grant_type": "client_credentials", "resource": "https://calendar.example/mcp"},
            auth=(seen["agentFacts"].split("client_id")[1].split()[0], seen["agentSecret"]),
        )
        assert token.status_code == 200, token.text
        assert token.json()["scope"] == "calendar:read"

        # The revoked consent: gone from the page, and the host's refresh token is dead.
        assert (seen["consentsBefore"], seen["consentsAfter"]) == (1, 0)
        refreshed = httpx2.post(metadata["token_endpoint"], data={
            "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": client_id,
        })
        assert refreshed.status_code == 400
        assert refreshed.json()["error"] == "invalid_grant"

        # Rotated in the browser: a next key appeared beside the active one. Once it signs,
        # the token signed by the old key still passes the guard, and so does a new one.
        assert seen["keyStatesBefore"] == ["active"], seen
        assert sorted(seen["keyStatesAfter"]) == ["active", "next"], seen
        deadline = time.monotonic() + 15
        while (new_token := gatehouse.token(agent, todo.issuer)) and kid_of(new_token) == kid_of(old_token):
            assert time.monotonic() < deadline, "the next key never started signing"
            time.sleep(0.25)
        assert mcp_status(todo.mcp_url, old_token) == 200
        assert mcp_status(todo.mcp_url, new_token) == 200
        keys = gatehouse.cli("keys", "list")
        assert sorted(k["state"] for k in keys) == ["active", "retired"], keys

        assert "consent.revoked" in seen["auditEvents"]
        assert "admin.change" in seen["auditEvents"]
        assert not seen["phoneOverflows"], "the dashboard scrolls sideways on a phone"
        assert seen["problems"] == []
        assert "key.rotated" in seen["auditEvents"]
        for name in ("servers", "server", "agent-secret", "consents", "people", "person",
                     "signing-keys", "audit", "servers-phone"):
            assert (SHOTS / f"dashboard-{name}.png").stat().st_size > 5_000, name
