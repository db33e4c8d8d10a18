"""The official MCP conformance tool (`@modelcontextprotocol/conformance`, Node 22) in
`authorization` mode, against the root issuer and a per-MCP-server issuer, with and without
`--resource`. The whole authorization suite runs (no `--scenario`); every check it writes to
`checks.json` must be SUCCESS, never SKIPPED, WARNING or FAILURE. The results are kept under
test-artifacts/interop/conformance/."""

from __future__ import annotations

import json
import shutil

import httpx2
import pytest

import pages
from conftest import ARTIFACTS, HERE, free_port, run_todo
from test_oauth_node_clients import Host, land

CONFORMANCE_DIR = ARTIFACTS / "conformance"
# Node 22, which the tool needs, comes from npm (the `node` package) beside the tool.
NODE22 = str(HERE / "node_modules" / "node" / "bin" / "node")
CONFORMANCE = str(HERE / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js")


def register(registration_endpoint: str, redirect: str) -> str:
    """A public client for the tool, registered the way any host registers (RFC 7591)."""
    resp = httpx2.post(
        registration_endpoint,
        json={"client_name": "MCP conformance", "redirect_uris": [redirect], "token_endpoint_auth_method": "none"},
    )
    assert resp.status_code == 201, resp.text
    return resp.json()["client_id"]


@pytest.mark.parametrize("issuer_kind", ["root", "per-server"])
@pytest.mark.parametrize("with_resource", [False, True], ids=["no-resource", "resource"])
def test_conformance_authorization_suite_passes_every_check(gatehouse, issuer_kind: str, with_resource: bool):
    with run_todo(gatehouse) as todo:
        gatehouse.add_person()
        issuer = gatehouse.url if issuer_kind == "root" else todo.issuer
        metadata = httpx2.get(f"{gatehouse.url}/.well-known/oauth-authorization-server{issuer[len(gatehouse.url):]}").json()
        assert metadata["issuer"] == issuer
        port = free_port()
        client_id = register(metadata["registration_endpoint"], f"http://127.0.0.1:{port}/callback")

        case = f"{issuer_kind}-{'resource' if with_resource else 'no-resource'}"
        out = CONFORMANCE_DIR / case
        shutil.rmtree(out, ignore_errors=True)
        args = [NODE22, CONFORMANCE, "authorization", "--url", issuer, "--client-id", client_id,
                "--port", str(port), "--output-dir", str(out)]
        if with_resource:
            args += ["--resource", todo.mcp_url]
        tool = Host(args)
        try:
            url = tool.wait_for(r"^(http\S+/oauth/authorize\?\S+)$").group(1)
            land(pages.approve(url))
            exit_code = tool.finish(timeout=120)
        finally:
            tool.stop()

        results = sorted(out.rglob("checks.json"))
        assert results, f"no checks.json under {out}:\n" + "\n".join(tool.seen)
        checks = [c for path in results for c in json.loads(path.read_text())]
        ids = {c["id"] for c in checks}
        assert {"authorization-server-metadata", "authorization-server-metadata-cimd", "authorization-code-grant"} <= ids, ids
        not_passed = [(c["id"], c["status"], c.get("errorMessage")) for c in checks if c["status"] != "SUCCESS"]
        assert not not_passed, not_passed
        assert exit_code == 0, "\n".join(tool.seen)
