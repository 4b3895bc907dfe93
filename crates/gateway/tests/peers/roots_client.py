#!/usr/bin/env python3
"""The official Python SDK client (`mcp` 2.3.0) with roots of its own, or none, through Portcullis.

Run by `tests/roots.rs`; prints a JSON summary as the last line of stdout and asserts nothing.

    roots_client.py --mode legacy|2026-07-28 --roots JSON|none --calls JSON
                    (--url http://127.0.0.1:PORT/mcp/ROUTE | --stdio PROGRAM ARG...)

`--roots` is the client's list of roots (`[{"uri": "file:///…", "name": "…"}]`); `none`
leaves out the roots callback, so the client declares no `roots` capability. `--calls` are
the steps, in order:
    {"step": "name", "tool": "roots", "args": {}}         a tools/call
    {"step": "name", "set_roots": [{"uri": …}, …]}         new roots, then (legacy) the
                                                           roots/list_changed notification
The summary has `steps` (as `mcp_client.py` records them), `roots_requests` (how often the
client's roots callback ran) and `transport_errors`. Sampling and elicitation are answered
too (`hello`, and `Ada` in every form field), for servers that ask them with the roots.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import traceback
import warnings
from typing import Any

import anyio
import mcp_types as types
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from mcp_client import Steps

# Roots are deprecated by 2026-07-28 (SEP-2577); the legacy era still has them.
warnings.simplefilter("ignore")


class RootsPeer:
    """The client's roots, and how often it was asked for them."""

    def __init__(self, roots: list[dict[str, str]]) -> None:
        self.roots = roots
        self.requests = 0
        self.transport_errors: list[str] = []

    async def on_list_roots(self, context: Any) -> Any:
        self.requests += 1
        return types.ListRootsResult(roots=[types.Root(**r) for r in self.roots])

    async def on_sampling(self, context: Any, params: Any) -> Any:
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text="hello"),
            model="portcullis-e2e-model",
            stop_reason="endTurn",
        )

    async def on_elicitation(self, context: Any, params: Any) -> Any:
        fields = (params.requested_schema or {}).get("properties", {})
        return types.ElicitResult(action="accept", content={name: "Ada" for name in fields})

    async def on_message(self, message: Any) -> None:
        if isinstance(message, Exception):
            self.transport_errors.append(f"{type(message).__name__}: {message}")


async def run(client: Client, peer: RootsPeer, steps: Steps, calls: list[dict[str, Any]], mode: str) -> None:
    for call in calls:
        name = call["step"]
        if "tool" in call:
            await steps.run(name, lambda: client.call_tool(call["tool"], call.get("args", {})))
        elif "set_roots" in call:
            peer.roots = call["set_roots"]
            if mode == "legacy":
                await steps.run(name, lambda: client.send_roots_list_changed())
        else:
            raise ValueError(f"unknown call: {call}")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", required=True)
    parser.add_argument("--roots", required=True)
    parser.add_argument("--calls", required=True)
    parser.add_argument("--url")
    parser.add_argument("--step-timeout", type=float, default=30.0)
    parser.add_argument("--stdio", nargs=argparse.REMAINDER)
    opts = parser.parse_args()

    if opts.url:
        server: Any = opts.url
    elif opts.stdio:
        env = {k: os.environ[k] for k in ("XDG_STATE_HOME",) if k in os.environ}
        server = StdioServerParameters(command=opts.stdio[0], args=opts.stdio[1:], env=env)
    else:
        parser.error("one of --url or --stdio is required")

    with_roots = opts.roots != "none"
    peer = RootsPeer(json.loads(opts.roots) if with_roots else [])
    steps = Steps(opts.step_timeout)
    summary: dict[str, Any] = {"steps": steps.record}
    client = Client(
        server,
        mode=opts.mode,
        list_roots_callback=peer.on_list_roots if with_roots else None,
        sampling_callback=peer.on_sampling,
        elicitation_callback=peer.on_elicitation,
        message_handler=peer.on_message,
        client_info=types.Implementation(name="portcullis-e2e-roots", version="1"),
        cache=None,
    )
    phase = "connect"
    try:
        with anyio.fail_after(120):
            async with contextlib.AsyncExitStack() as stack:
                await stack.enter_async_context(client)
                phase = "run"
                summary["protocol_version"] = client.protocol_version
                await run(client, peer, steps, json.loads(opts.calls), opts.mode)
                phase = "close"
    except BaseException as e:  # noqa: BLE001 - reported, not raised: the summary is the output
        summary[phase] = f"{type(e).__name__}: {e}"
        summary[f"{phase}_trace"] = traceback.format_exc()
    summary["roots_requests"] = peer.requests
    summary["transport_errors"] = peer.transport_errors
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    anyio.run(main)
