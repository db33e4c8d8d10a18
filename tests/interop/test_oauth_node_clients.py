"""Node MCP hosts against Gatehouse and the guard, each registering itself (DCR) and sending a
person through the real sign-in and consent pages: the TypeScript SDK client, mcp-remote and the
MCP Inspector CLI. Each prints the authorization URL; the test plays the person at the browser
and lands on the host's own callback, exactly where a browser would."""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx2

import pages
from conftest import HERE, free_port, run_todo
from replay import Replay

NODE_BIN = HERE / "node_modules" / ".bin"
TOOLS = ["create_todo", "delete_todo", "get_todo", "list_todos", "update_todo"]


class Host:
    """A Node host process whose output lines are read as they come."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            args,
            cwd=HERE,
            env={**os.environ, **(env or {})},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[tuple[str, str]] = queue.Queue()
        self.seen: list[str] = []
        self.stdout: list[str] = []
        for name, stream in (("out", self.proc.stdout), ("err", self.proc.stderr)):
            threading.Thread(target=self._pump, args=(name, stream), daemon=True).start()

    def _pump(self, name: str, stream) -> None:
        for line in stream:
            self.lines.put((name, line.rstrip("\n")))
        self.lines.put((name, None))

    def wait_for(self, pattern: str, timeout: float = 60.0) -> re.Match:
        """The first output line (stdout or stderr) matching `pattern`."""
        closed = 0
        while True:
            try:
                name, line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern!r} in {timeout}s:\n" + "\n".join(self.seen))
            if line is None:
                closed += 1
                if closed == 2:
                    raise AssertionError(f"exited before {pattern!r}:\n" + "\n".join(self.seen))
                continue
            self.seen.append(line)
            if name == "out":
                self.stdout.append(line)
            if m := re.search(pattern, line):
                return m

    def finish(self, timeout: float = 60.0) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def land(callback_url: str) -> None:
    """The browser following the last redirect to the host's own loopback callback."""
    resp = httpx2.get(callback_url, timeout=30.0)
    assert resp.status_code < 400, f"{callback_url} -> {resp.status_code}: {resp.text[:300]}"


def check_authorize_url(url: str, issuer: str, resource: str) -> dict:
    q = parse_qs(urlsplit(url).query)
    assert url.startswith(issuer + "/oauth/authorize?") or url.startswith(issuer.split("/resources/")[0] + "/"), url
    assert q["code_challenge_method"] == ["S256"]
    assert q["resource"] == [resource]
    assert q["client_id"][0].startswith("dcr_")
    return q


def run_ts_sdk_client(mcp_url: str, redirect: str, env: dict | None = None,
                      consent_pages: list[str] | None = None) -> tuple[str, str, dict]:
    """Runs `ts_sdk_client.mjs` with a person who allows where it sends them; returns the
    authorization URL, the callback the person came back to, and what the client printed."""
    host = Host(["node", "ts_sdk_client.mjs", mcp_url, redirect], env=env)
    try:
        url = json.loads(host.wait_for(r'^\{"authorize"').string)["authorize"]
        callback = pages.approve(url, consent_pages=consent_pages)
        host.proc.stdin.write(callback + "\n")
        host.proc.stdin.flush()
        result = json.loads(host.wait_for(r'^\{"tools"').string)
        assert host.finish() == 0, "\n".join(host.seen)
        return url, callback, result
    finally:
        host.stop()


def test_typescript_sdk_client_registers_signs_in_and_calls_tools(gatehouse):
    with run_todo(gatehouse) as todo:
        gatehouse.add_person()
        redirect = f"http://127.0.0.1:{free_port()}/callback"
        url, callback, result = run_ts_sdk_client(todo.mcp_url, redirect)
        check_authorize_url(url, todo.issuer, todo.mcp_url)
        assert callback.startswith(redirect + "?"), callback
        assert parse_qs(urlsplit(callback).query)["iss"] == [todo.issuer]
        assert result["tools"] == TOOLS
        assert result["created"]["title"] == "from typescript"
        assert result["client"]["client_id"].startswith("dcr_")
        assert result["client"]["redirect_uris"] == [redirect]
        assert result["tokens"]["token_type"] == "Bearer"
        assert set(result["tokens"]["scope"].split()) == {"todo:read", "todo:write"}


def test_mcp_remote_registers_signs_in_and_lists_tools(gatehouse, tmp_path: Path):
    with run_todo(gatehouse) as todo:
        gatehouse.add_person()
        port = free_port()
        host = Host(
            [str(NODE_BIN / "mcp-remote-client"), todo.mcp_url, str(port), "--allow-http"],
            env={"MCP_REMOTE_CONFIG_DIR": str(tmp_path), "BROWSER": "true"},
        )
        try:
            url = host.wait_for(r"^(https?://\S+/oauth/authorize\?\S+)$").group(1)
            q = check_authorize_url(url, todo.issuer, todo.mcp_url)
            assert q["redirect_uri"] == [f"http://localhost:{port}/oauth/callback"]
            callback = pages.approve(url)
            assert parse_qs(urlsplit(callback).query)["iss"] == [todo.issuer]
            land(callback)
            # mcp-remote-client prints the tools/list result once connected.
            for tool in TOOLS:
                host.wait_for(f'"name": "{tool}"')
        finally:
            host.stop()


def test_inspector_cli_registers_signs_in_and_lists_tools(gatehouse, tmp_path: Path):
    with run_todo(gatehouse) as todo:
        gatehouse.add_person()
        callback_url = f"http://127.0.0.1:{free_port()}/oauth/callback"
        host = Host(
            [str(NODE_BIN / "inspector"), "--cli", todo.mcp_url, "--method", "tools/list",
             "--callback-url", callback_url],
            env={"MCP_AUTO_OPEN_ENABLED": "true", "HOME": str(tmp_path), "BROWSER": "true"},
        )
        try:
            url = host.wait_for(r"Please navigate to: (\S+)").group(1)
            q = check_authorize_url(url, todo.issuer, todo.mcp_url)
            assert q["redirect_uri"] == [callback_url]
            callback = pages.approve(url)
            land(callback)
            # The CLI prints the tools/list result as JSON on stdout, then exits.
            host.wait_for(r"^\}$")
            assert host.finish(timeout=60) == 0, "\n".join(host.seen)
            listed = json.loads("\n".join(host.stdout))
        finally:
            host.stop()
        assert sorted(t["name"] for t in listed["tools"]) == TOOLS


def test_typescript_sdk_steps_up_when_a_tool_needs_more_scope(gatehouse):
    """The SDK holds a read-only grant from an earlier session (no refresh token: the server
    issues them for `offline_access`, which it did not ask for). A write tool answers
    `403 insufficient_scope`; the SDK authorizes again, the consent page asks only for the write
    scope and shows the read scope as already allowed, and the call passes."""
    with run_todo(gatehouse) as todo:
        gatehouse.add_person()
        redirect = f"http://127.0.0.1:{free_port()}/callback"
        replay = Replay(todo.mcp_url, "ts-sdk interop")
        try:
            client, read_only = replay.grant("ts-sdk interop", redirect, "todo:read")
        finally:
            replay.close()
        assert read_only["scope"] == "todo:read" and "refresh_token" not in read_only
        preload = json.dumps({"client": client.response, "tokens": read_only})
        consent: list[str] = []
        url, _, result = run_ts_sdk_client(todo.mcp_url, redirect, {"PRELOAD": preload}, consent)
        # The SDK asks for the challenge's scopes, which name what the token had too (the SDK
        # makes no union itself); the person was asked only for what is new.
        assert parse_qs(urlsplit(url).query)["scope"] == ["todo:read todo:write"]
        assert pages.consent_scopes(consent[-1]) == (["todo:write"], ["todo:read"])
        assert result["created"]["title"] == "from typescript"
        assert result["tokens"]["scope"] == "todo:read todo:write"
