#!/usr/bin/env python3
"""An MCP server (the official Python SDK's low-level `Server`, `mcp` 2.3.0) whose tools
declare hostile input schemas, over stdio.

    hostile_upstream.py --journal FILE --remote-ref URL

- `regex_bomb`: a `pattern` that takes exponential time in a backtracking regex engine;
- `ref_loop`: a `$ref` that points at itself;
- `remote_ref`: a `$ref` to `URL` (a trap listener of the test: nothing may connect to it);
- `plain`: an ordinary schema, to show the server works.

Every call that arrives is appended to the journal, so a test can prove what was forwarded.
"""

import argparse
import json

import anyio
import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

parser = argparse.ArgumentParser()
parser.add_argument("--journal", required=True)
parser.add_argument("--remote-ref", required=True)
opts = parser.parse_args()

SCHEMAS = {
    "regex_bomb": {
        "type": "object",
        "properties": {"s": {"type": "string", "pattern": "^(a+)+$"}},
        "required": ["s"],
    },
    "ref_loop": {"type": "object", "$ref": "#/$defs/a", "$defs": {"a": {"$ref": "#/$defs/a"}}},
    "remote_ref": {"type": "object", "properties": {"x": {"$ref": opts.remote_ref}}},
    "plain": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]},
}


async def list_tools(ctx, params):
    return types.ListToolsResult(
        tools=[types.Tool(name=name, description=name, input_schema=schema) for name, schema in SCHEMAS.items()]
    )


async def call_tool(ctx, params):
    with open(opts.journal, "a", encoding="utf-8") as f:
        f.write(json.dumps({"tool": params.name, "args": params.arguments}) + "\n")
    return types.CallToolResult(content=[types.TextContent(type="text", text=f"{params.name} ran")])


server = Server("portcullis-e2e-hostile", on_list_tools=list_tools, on_call_tool=call_tool)


async def main():
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


anyio.run(main)
