"""What each real MCP host sends, one profile per host, as `shared/interop/hosts.md` records it
(late 2026). `test_hosts.py` replays each one. Hosts change often: update them here.

Placeholders filled in when a profile is replayed: `{port}` is a free loopback port (the host's
own callback listener), `{origin}` the https host on loopback that serves the host's metadata
document and key set in place of claude.ai, chatgpt.com or vscode.dev (same paths, same
queries, same members), `{callback_id}` Codex's deterministic callback id for the MCP server,
`{redirect_q}` the redirect URI percent-encoded for a query.

`user_agent`: Claude's are the ones hosts.md records; hosts.md records no others, so theirs
only name the host (they reach the audit log and the Failures page, where a test looks).
"""

from __future__ import annotations

from dataclasses import dataclass

AUTH_CODE = ["authorization_code", "refresh_token"]


@dataclass(frozen=True)
class Profile:
    name: str
    # The redirect URI the host sends with the authorization request.
    redirect_uri: str
    # "dcr" (it posts `register`) or "cimd" (its client id is the URL of `document`).
    registration: str
    # How it authenticates at the token endpoint: none, client_secret_post or private_key_jwt.
    auth: str = "none"
    register: dict | None = None
    # Path and query of its metadata document, and the document's members (`client_id` is
    # added: the document's own URL).
    document_path: str | None = None
    document: dict | None = None
    user_agent: str = ""
    # False: it ignores `resource_metadata` in the 401 and reads the well-known URL (Codex).
    follows_challenge: bool = True
    # The `scope` it asks for; None: the scopes of the 401 challenge (SEP-835).
    scope: str | None = None


def dcr(name: str, redirect_uris: list[str], **extra: object) -> dict:
    """A registration body of the shape hosts post."""
    return {
        "client_name": name,
        "redirect_uris": redirect_uris,
        "grant_types": AUTH_CODE,
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        **extra,
    }


PROFILES = [
    Profile(
        name="Claude",
        registration="cimd",
        redirect_uri="https://claude.ai/api/mcp/auth_callback",
        document_path="/oauth/mcp-oauth-client-metadata",
        document={
            "client_name": "Claude",
            "client_uri": "https://claude.ai",
            "redirect_uris": ["https://claude.ai/api/mcp/auth_callback",
                              "https://claude.com/api/mcp/auth_callback"],
            "grant_types": AUTH_CODE,
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        },
        user_agent="Claude-User",
    ),
    Profile(
        # Claude falls back to DCR, as a confidential client, registering on every connection.
        name="Claude (DCR)",
        registration="dcr",
        auth="client_secret_post",
        redirect_uri="https://claude.ai/api/mcp/auth_callback",
        register=dcr("Claude", ["https://claude.ai/api/mcp/auth_callback",
                                "https://claude.com/api/mcp/auth_callback"],
                     token_endpoint_auth_method="client_secret_post"),
        user_agent="python-httpx/0.28.1",
    ),
    Profile(
        name="Claude Desktop, Code tab",
        registration="dcr",
        redirect_uri="claude://claude.ai/mcp-auth-callback/sdk",
        register=dcr("Claude Code", ["claude://claude.ai/mcp-auth-callback/sdk"]),
        user_agent="Claude-Desktop",
    ),
    Profile(
        # Its document lists port-less loopback URIs; it then sends one with a port.
        name="Claude Code",
        registration="cimd",
        redirect_uri="http://localhost:{port}/callback",
        document_path="/oauth/claude-code-client-metadata",
        document={
            "client_name": "Claude Code",
            "client_uri": "https://claude.ai",
            "redirect_uris": ["http://localhost/callback", "http://127.0.0.1/callback"],
            "grant_types": AUTH_CODE,
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        },
        user_agent="claude-code/2.1.0",
    ),
    Profile(
        # The shared document lists none and private_key_jwt; ChatGPT uses the stronger.
        name="ChatGPT",
        registration="cimd",
        auth="private_key_jwt",
        redirect_uri="https://chatgpt.com/connector_platform_oauth_redirect",
        document_path="/oauth/client.json",
        document={
            "client_name": "ChatGPT",
            "client_uri": "https://chatgpt.com",
            "redirect_uris": ["https://chatgpt.com/connector_platform_oauth_redirect"],
            "grant_types": AUTH_CODE,
            "response_types": ["code"],
            "token_endpoint_auth_method": "private_key_jwt",
            "token_endpoint_auth_methods_supported": ["none", "private_key_jwt"],
            "token_endpoint_auth_signing_alg": "RS256",
            "jwks_uri": "{origin}/oauth/jwks.json",
            # Members Gatehouse does not know are ignored.
            "application_type": "web",
            "software_id": "chatgpt-connectors",
        },
        user_agent="openai-mcp/1.0.0",
    ),
    Profile(
        # A per-app document: private_key_jwt only, never negotiated down.
        name="ChatGPT app",
        registration="cimd",
        auth="private_key_jwt",
        redirect_uri="https://chatgpt.com/connector/oauth/a1b2c3",
        document_path="/oauth/a1b2c3/client.json",
        document={
            "client_name": "ChatGPT",
            "redirect_uris": ["https://chatgpt.com/connector/oauth/a1b2c3"],
            "grant_types": AUTH_CODE,
            "response_types": ["code"],
            # hosts.md records the list only: the method is picked from it.
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "jwks_uri": "{origin}/oauth/jwks.json",
        },
        user_agent="openai-mcp/1.0.0",
    ),
    Profile(
        name="Cursor",
        registration="dcr",
        redirect_uri="cursor://anysphere.cursor-mcp/oauth/callback",
        register=dcr("Cursor", ["cursor://anysphere.cursor-mcp/oauth/callback"]),
        user_agent="Cursor/2.1.0",
    ),
    Profile(
        # It registers 127.0.0.1 without a port and with 33418, then uses another port.
        name="VS Code",
        registration="dcr",
        redirect_uri="http://127.0.0.1:{port}/",
        register=dcr("Visual Studio Code", ["https://insiders.vscode.dev/redirect", "https://vscode.dev/redirect",
                                            "http://127.0.0.1/", "http://127.0.0.1:33418/"]),
        user_agent="Visual Studio Code/1.107.0",
    ),
    Profile(
        name="GitHub Copilot CLI",
        registration="dcr",
        redirect_uri="http://127.0.0.1:{port}/",
        # No `scope` at registration.
        register=dcr("GitHub Copilot CLI", ["http://127.0.0.1:{port}/"]),
        user_agent="copilot-cli/0.0.360",
    ),
    Profile(
        # A document URL with a query; the discovery ignores resource_metadata.
        name="Codex",
        registration="cimd",
        redirect_uri="http://127.0.0.1:{port}/callback/{callback_id}",
        document_path="/oauth/codex/{callback_id}/client.json?redirect_uri={redirect_q}"
                      "&token_endpoint_auth_method=none",
        document={
            "client_name": "Codex",
            "redirect_uris": ["http://127.0.0.1:{port}/callback/{callback_id}"],
            "grant_types": AUTH_CODE,
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "application_type": "native",
        },
        user_agent="codex_cli_rs/0.60.1",
        follows_challenge=False,
    ),
    Profile(
        # Registers, and asks, for OpenID scopes the MCP server does not have.
        name="Windsurf",
        registration="dcr",
        redirect_uri="http://127.0.0.1:{port}/callback",
        register=dcr("Windsurf", ["http://127.0.0.1:{port}/callback"], scope="openid email profile"),
        user_agent="windsurf/1.12.0",
        scope="openid email profile",
    ),
]
