#!/usr/bin/env python3
"""A minimal MCP server on the official Python SDK (`mcp` 2.3.0), served over stdio.

The SDK's server is dual-era and strict about it: a stdio connection is locked to the era of
its first request, and a request of the other era is refused (-32600). That makes it the
upstream that shows whether the gateway really speaks one era per upstream connection.
"""

from mcp.server.mcpserver import MCPServer

app = MCPServer("portcullis-e2e-python-upstream")


@app.tool()
def echo(message: str) -> str:
    """Returns `message` unchanged."""
    return message


if __name__ == "__main__":
    app.run()
