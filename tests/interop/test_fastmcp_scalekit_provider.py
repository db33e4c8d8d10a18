"""An unmodified FastMCP ScalekitProvider server accepts Gatehouse tokens."""

import asyncio
import subprocess
import sys
from pathlib import Path

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from conftest import free_port, stop, wait_http

HERE = Path(__file__).resolve().parent


@pytest.fixture
def fastmcp_server(gatehouse):
    port = free_port()
    mcp_url = f"http://127.0.0.1:{port}/mcp"
    server = gatehouse.add_server(mcp_url, "todo:read", "todo:write")
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "fastmcp_server.py"), gatehouse.url, server["id"], str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp", timeout=60, proc=proc)
        yield mcp_url, server
    finally:
        stop(proc)


async def whoami(mcp_url, token):
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http:
        async with Client(streamable_http_client(mcp_url, http_client=http)) as c:
            return await c.call_tool("whoami", {})


def test_fastmcp_accepts_tokens_from_both_issuers(gatehouse, fastmcp_server):
    mcp_url, server = fastmcp_server
    client = gatehouse.add_client(server["id"], "todo:read")
    for issuer in (server["issuer"], gatehouse.url):
        token = gatehouse.token(client, issuer=issuer)
        result = asyncio.run(whoami(mcp_url, token))
        assert not result.is_error, result
        assert client["client_id"] in result.content[0].text


def test_fastmcp_refuses_a_token_for_another_server(gatehouse, fastmcp_server):
    mcp_url, _ = fastmcp_server
    other = gatehouse.add_server("https://other.example/mcp", "todo:read")
    client = gatehouse.add_client(other["id"], "todo:read")
    token = gatehouse.token(client)
    resp = httpx2.post(mcp_url, headers={"Authorization": f"Bearer {token}"}, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert resp.status_code == 401
    assert 'error="invalid_token"' in resp.headers["www-authenticate"]


def test_fastmcp_metadata_proxy_reaches_gatehouse(gatehouse, fastmcp_server):
    mcp_url, server = fastmcp_server
    origin = mcp_url.rsplit("/mcp", 1)[0]
    prm = httpx2.get(f"{origin}/.well-known/oauth-protected-resource/mcp").json()
    assert prm["authorization_servers"] == [server["issuer"]]
    # FastMCP proxies {env}/.well-known/oauth-authorization-server/resources/{id} verbatim.
    meta = httpx2.get(f"{origin}/.well-known/oauth-authorization-server").json()
    assert meta["issuer"] == server["issuer"]
