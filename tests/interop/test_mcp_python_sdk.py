"""The MCP Python SDK client against the guard-protected Rust to-do server."""

import asyncio
import json

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client


async def session_calls(mcp_url: str, token: str, calls):
    """Opens an MCP session with `token` and runs `calls(client)`."""
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http:
        async with Client(streamable_http_client(mcp_url, http_client=http)) as client:
            return await calls(client)


def test_lists_and_calls_tools_with_a_client_credentials_token(gatehouse, todo_server):
    client = gatehouse.add_client(todo_server.server["id"], "todo:read", "todo:write")
    token = gatehouse.token(client, issuer=todo_server.issuer)

    async def calls(c):
        tools = sorted(t.name for t in (await c.list_tools()).tools)
        created = await c.call_tool("create_todo", {"title": "ship gatehouse"})
        listed = await c.call_tool("list_todos", {})
        updated = await c.call_tool("update_todo", {"id": json.loads(created.content[0].text)["id"], "done": True})
        return tools, created, listed, updated

    tools, created, listed, updated = asyncio.run(session_calls(todo_server.mcp_url, token, calls))
    assert tools == ["create_todo", "delete_todo", "get_todo", "list_todos", "update_todo"]
    assert not created.is_error
    todo = json.loads(created.content[0].text)
    assert todo["title"] == "ship gatehouse"
    assert json.loads(listed.content[0].text) == [todo]
    assert json.loads(updated.content[0].text)["done"] is True


def test_no_token_gets_401_with_a_challenge_and_the_sdk_fails(gatehouse, todo_server):
    resp = httpx2.post(todo_server.mcp_url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert resp.status_code == 401
    challenge = resp.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="OAuth", resource_metadata="')
    prm_url = challenge.split('resource_metadata="')[1].split('"')[0]
    prm = httpx2.get(prm_url).json()
    assert prm["resource"] == todo_server.mcp_url
    assert prm["authorization_servers"] == [todo_server.issuer]

    async def connect():
        async with httpx2.AsyncClient() as http:
            async with Client(streamable_http_client(todo_server.mcp_url, http_client=http)) as c:
                await c.list_tools()

    with pytest.raises(Exception):
        asyncio.run(connect())


def test_a_read_only_token_reads_but_a_write_gets_403(gatehouse, todo_server):
    client = gatehouse.add_client(todo_server.server["id"], "todo:read", "todo:write")
    token = gatehouse.token(client, scope="todo:read")

    async def reads(c):
        return await c.call_tool("list_todos", {})

    listed = asyncio.run(session_calls(todo_server.mcp_url, token, reads))
    assert not listed.is_error

    async def writes(c):
        return await c.call_tool("create_todo", {"title": "not allowed"})

    # The SDK surfaces the 403 as an error (it would try to step up scopes if it had an
    # OAuth provider; with a fixed token it cannot).
    with pytest.raises(Exception):
        asyncio.run(session_calls(todo_server.mcp_url, token, writes))

    # The same call on the wire: 403 insufficient_scope naming the missing scope, and in the
    # challenge's `scope` the ones the token has too (what a host asks for next).
    resp = httpx2.post(
        todo_server.mcp_url,
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"},
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "create_todo", "arguments": {"title": "x"}}},
    )
    assert resp.status_code == 403
    assert 'error="insufficient_scope"' in resp.headers["www-authenticate"]
    assert 'scope="todo:read todo:write"' in resp.headers["www-authenticate"]
    assert 'error_description="this request needs the scopes: todo:write"' in resp.headers["www-authenticate"]
