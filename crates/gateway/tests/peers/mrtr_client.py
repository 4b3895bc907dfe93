"""Calls the fixture's `sample` tool through the gateway with the official Python SDK, in one
protocol era, answering the sampling request itself. Prints one JSON line:
{"text": <the tool's text>, "is_error": <bool>, "sampled": <how often the callback ran>}.

usage: mrtr_client.py (http URL | stdio PORTCULLIS CONFIG ROUTE) MODE
"""
import asyncio
import json
import os
import sys

from mcp import Client, StdioServerParameters, types

calls = 0


async def sampling(ctx, params):
    global calls
    calls += 1
    prompt = params.messages[0].content.text
    return types.CreateMessageResult(
        role="assistant",
        content=types.TextContent(type="text", text=f"sampled: {prompt}"),
        model="portcullis-test",
        stop_reason="endTurn",
    )


async def main():
    args = sys.argv[1:]
    if args[0] == "http":
        target, mode = args[1], args[2]
    else:
        exe, config, route, mode = args[1], args[2], args[3], args[4]
        # The tests' state directory must reach the gateway (see `support::isolate_state`).
        env = {k: os.environ[k] for k in ("XDG_STATE_HOME",) if k in os.environ}
        target = StdioServerParameters(command=exe, args=["stdio", route, "--config", config], env=env)
    async with Client(target, mode=mode, sampling_callback=sampling) as client:
        result = await client.call_tool("sample", {"prompt": "hello"})
        text = "".join(c.text for c in result.content if getattr(c, "type", "") == "text")
        print(json.dumps({"text": text, "is_error": bool(result.is_error), "sampled": calls}))


asyncio.run(main())
