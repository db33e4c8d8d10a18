"""An unmodified FastMCP server using ScalekitProvider, pointed at Gatehouse.

Usage: fastmcp_server.py ENVIRONMENT_URL RESOURCE_ID PORT
"""

import sys

from fastmcp import FastMCP
from fastmcp.server.auth.providers.scalekit import ScalekitProvider
from fastmcp.server.dependencies import get_access_token

env_url, resource_id, port = sys.argv[1], sys.argv[2], int(sys.argv[3])

auth = ScalekitProvider(
    environment_url=env_url,
    resource_id=resource_id,
    base_url=f"http://127.0.0.1:{port}",
    required_scopes=["todo:read"],
)
mcp = FastMCP("fastmcp-behind-gatehouse", auth=auth)


@mcp.tool
def whoami() -> dict:
    """Who the token speaks for."""
    token = get_access_token()
    return {"client_id": token.client_id, "scopes": sorted(token.scopes)}


if __name__ == "__main__":
    mcp.run(transport="http", host="127.0.0.1", port=port, show_banner=False, log_level="warning")
