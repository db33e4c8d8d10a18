"""The unmodified Scalekit SDKs with Gatehouse as their environment URL."""

import json
import subprocess
from pathlib import Path

import jwt
import pytest
from scalekit import ScalekitClient
from scalekit.common.exceptions import ScalekitException, ScalekitValidateTokenFailureException
from scalekit.common.scalekit import TokenValidationOptions

HERE = Path(__file__).resolve().parent


def test_python_sdk_constructs_and_validates_our_tokens(gatehouse, todo_server):
    client = gatehouse.add_client(todo_server.server["id"], "todo:read", "todo:write")
    # The constructor POSTs client credentials to {env}/oauth/token and fails on non-2xx.
    sk = ScalekitClient(env_url=gatehouse.url, client_id=client["client_id"], client_secret=client["client_secret"])
    token = gatehouse.token(client, issuer=todo_server.issuer)

    claims = sk.validate_token(
        token,
        TokenValidationOptions(
            issuer=todo_server.issuer,
            audience=[todo_server.mcp_url],
            required_scopes=["todo:read", "todo:write"],
        ),
    )
    assert claims["client_id"] == client["client_id"]
    assert claims["aud"] == [todo_server.mcp_url, todo_server.server["id"]]
    assert sk.validate_access_token(token, TokenValidationOptions(issuer=[gatehouse.url, todo_server.issuer])) is True

    with pytest.raises(jwt.InvalidAudienceError):
        sk.validate_token(token, TokenValidationOptions(audience=["https://elsewhere.example/mcp"]))
    with pytest.raises(jwt.InvalidIssuerError):
        sk.validate_token(token, TokenValidationOptions(issuer="https://elsewhere.example"))
    assert sk.validate_access_token(token, TokenValidationOptions(audience=["https://elsewhere.example/mcp"])) is False

    read_only = gatehouse.token(client, scope="todo:read")
    with pytest.raises(ScalekitValidateTokenFailureException):
        sk.validate_token(read_only, TokenValidationOptions(required_scopes=["todo:write"]))


def test_python_sdk_constructor_fails_with_a_wrong_secret(gatehouse, todo_server):
    client = gatehouse.add_client(todo_server.server["id"], "todo:read")
    with pytest.raises(ScalekitException):
        ScalekitClient(env_url=gatehouse.url, client_id=client["client_id"], client_secret="ghs_wrong")


def node_validate(gatehouse, client, token, options):
    out = subprocess.run(
        ["node", str(HERE / "scalekit_validate.mjs"), gatehouse.url, client["client_id"], client["client_secret"], token, json.dumps(options)],
        check=True,
        capture_output=True,
        text=True,
        cwd=HERE,
        timeout=60,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_node_sdk_validates_our_tokens(gatehouse, todo_server):
    client = gatehouse.add_client(todo_server.server["id"], "todo:read", "todo:write")
    token = gatehouse.token(client, issuer=todo_server.issuer)

    ok = node_validate(gatehouse, client, token, {"issuer": todo_server.issuer, "audience": [todo_server.mcp_url], "requiredScopes": ["todo:write"]})
    assert ok["ok"] is True and ok["valid"] is True, ok
    assert ok["claims"]["scopes"] == ["todo:read", "todo:write"]

    wrong_aud = node_validate(gatehouse, client, token, {"audience": ["https://elsewhere.example/mcp"]})
    assert wrong_aud == {"ok": False, "error": "ScalekitValidateTokenFailureException", "message": wrong_aud["message"]}
    assert "aud" in wrong_aud["message"]

    read_only = gatehouse.token(client, scope="todo:read")
    missing = node_validate(gatehouse, client, read_only, {"requiredScopes": ["todo:write"]})
    assert missing["ok"] is False and "scope" in missing["message"], missing
