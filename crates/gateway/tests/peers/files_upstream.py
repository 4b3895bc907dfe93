#!/usr/bin/env python3
"""An MCP server with real file tools, on the official Python SDK (`mcp` 2.3.0), over stdio.

    files_upstream.py --journal FILE

What the policy tests guard: `read_file` really reads the file it is given and
`write_note` really writes one, so a call the gateway should have refused shows up as a
secret in a result or a file on disk. Every call that reaches this server is also appended to
the journal (one JSON line: tool and arguments), so a test can prove a refused call never
arrived.
"""

import argparse
import json
from pathlib import Path

from mcp.server.mcpserver import MCPServer

parser = argparse.ArgumentParser()
parser.add_argument("--journal", required=True)
opts = parser.parse_args()

app = MCPServer("portcullis-e2e-files")


def journal(tool: str, **args: object) -> None:
    with open(opts.journal, "a", encoding="utf-8") as f:
        f.write(json.dumps({"tool": tool, "args": args}) + "\n")


@app.tool()
def read_file(path: str) -> str:
    """Returns the text of the file at `path` (at most 64 KiB)."""
    journal("read_file", path=path)
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read(65536)


@app.tool()
def write_note(path: str, text: str) -> str:
    """Writes `text` to the file at `path`."""
    journal("write_note", path=path, text=text)
    Path(path).write_text(text, encoding="utf-8")
    return f"wrote {len(text)} characters"


@app.tool()
def open_url(url: str) -> str:
    """Says which URL it was asked to open (it opens nothing: the tests stay on loopback)."""
    journal("open_url", url=url)
    return f"opened {url}"


@app.tool()
def search(query: str, limit: int = 10) -> str:
    """Pretends to search: echoes the query and limit."""
    journal("search", query=query, limit=limit)
    return f"{limit} results for {query}"


@app.resource("file:///{+path}")
def file_resource(path: str) -> str:
    """A file, read as a resource."""
    journal("file_resource", path=path)
    with open("/" + path, encoding="utf-8", errors="replace") as f:
        return f.read(65536)


if __name__ == "__main__":
    app.run()
