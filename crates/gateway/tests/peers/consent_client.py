#!/usr/bin/env python3
"""The official Python SDK client (`mcp` 2.3.0) answering Portcullis's consent questions.

Run by `tests/consent.rs`; prints a JSON summary as the last line of stdout and asserts
nothing. The client's elicitation callback answers each consent form with what the current
step says; in 2026-07-28 mode the SDK itself turns the gateway's `input_required` result into
a callback and a retry.

    consent_client.py --mode legacy|2026-07-28 --steps JSON
                      (--url http://127.0.0.1:PORT/mcp/ROUTE | --stdio PROGRAM ARG...)

Steps, in order:
    {"step": "name", "tool": "echo", "args": {...},
     "answer": {"action": "accept", "content": {"decision": "approve", "remember": "session"}}
               | "hang"                   (never answer: the gateway's timeout decides)
               | null                     (the form must not be asked: answer decline),
     "progress": true,                    (send a progressToken and record progress)
     "timeout": s, "pause": s}            (give up on the call after s, cancelling it;
                                          wait s after the step)
    {"step": "name", "manual": true, "tool": "echo", "args": {...}, "answer": {...},
     "retry_args": {...}, "tamper": true, "replay": true}
        2026-07-28 only: drives the input_required exchange by hand — the first call's
        result, then the retry with `retry_args` (default: `args`) and the state (one
        character changed with `tamper`), then (with `replay`) the same retry again.

The summary: `steps` (each `{"ok": result}`, `{"error": {...}}`, `{"exception": …}` or
`{"timeout": s}`), `elicitations` (each form's params and the step it came in), `progress`
and `logs` per step, and `transport_errors`.
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

from mcp_client import Steps, to_json

warnings.simplefilter("ignore")


class ConsentPeer:
    """Answers each consent form as the current step says, and records what it saw."""

    def __init__(self) -> None:
        self.step = ""
        self.answer: Any = None
        self.elicitations: list[dict[str, Any]] = []
        self.logs: list[dict[str, Any]] = []
        self.transport_errors: list[str] = []

    async def on_elicitation(self, context: Any, params: Any) -> Any:
        self.elicitations.append({"step": self.step, "params": to_json(params)})
        if self.answer == "hang":
            await anyio.sleep_forever()
        if isinstance(self.answer, dict):
            return types.ElicitResult(**self.answer)
        return types.ElicitResult(action="decline")

    async def on_log(self, params: types.LoggingMessageNotificationParams) -> None:
        self.logs.append({"step": self.step, "params": to_json(params)})

    async def on_message(self, message: Any) -> None:
        if isinstance(message, Exception):
            self.transport_errors.append(f"{type(message).__name__}: {message}")


def tampered(state: str) -> str:
    """The state with one character of its signed part changed."""
    i = len(state) // 2
    return state[:i] + ("A" if state[i] != "A" else "B") + state[i + 1 :]


async def manual(client: Client, steps: Steps, step: dict[str, Any]) -> None:
    name = step["step"]
    first = await steps.run(
        f"{name}: first",
        lambda: client.session.call_tool(step["tool"], step.get("args", {}), allow_input_required=True),
    )
    if first is None or not isinstance(first, types.InputRequiredResult):
        return
    responses = {key: types.ElicitResult(**step["answer"]) for key in (first.input_requests or {})}
    state = first.request_state or ""
    if step.get("tamper"):
        state = tampered(state)
    retry_args = step.get("retry_args", step.get("args", {}))

    async def retry() -> Any:
        return await client.session.call_tool(
            step["tool"], retry_args, input_responses=responses, request_state=state, allow_input_required=True
        )

    await steps.run(f"{name}: retry", retry)
    if step.get("replay"):
        await steps.run(f"{name}: replay", retry)


async def run(client: Client, peer: ConsentPeer, steps: Steps, plan: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    progress: dict[str, list[Any]] = {}
    summary["progress"] = progress
    for step in plan:
        name = step["step"]
        peer.step = name
        peer.answer = step.get("answer")
        if step.get("manual"):
            await manual(client, steps, step)
            continue
        seen: list[Any] = []
        progress[name] = seen

        async def on_progress(value: float, total: float | None, message: str | None, seen: list[Any] = seen) -> None:
            seen.append({"progress": value, "total": total, "message": message})

        callback = on_progress if step.get("progress") else None
        await steps.run(
            name,
            lambda: client.call_tool(step["tool"], step.get("args", {}), progress_callback=callback),
            timeout=step.get("timeout"),
        )
        if step.get("pause"):
            # Lets the gateway act on what the step left behind (a cancellation) before
            # the next step, or the end of the session, says anything else.
            await anyio.sleep(step["pause"])


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", required=True)
    parser.add_argument("--steps", required=True)
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

    peer = ConsentPeer()
    steps = Steps(opts.step_timeout)
    summary: dict[str, Any] = {"steps": steps.record}
    client = Client(
        server,
        mode=opts.mode,
        elicitation_callback=peer.on_elicitation,
        logging_callback=peer.on_log,
        message_handler=peer.on_message,
        client_info=types.Implementation(name="portcullis-e2e-consent", version="1"),
        cache=None,
    )
    phase = "connect"
    try:
        with anyio.fail_after(150):
            async with contextlib.AsyncExitStack() as stack:
                await stack.enter_async_context(client)
                phase = "run"
                summary["protocol_version"] = client.protocol_version
                await run(client, peer, steps, json.loads(opts.steps), summary)
                phase = "close"
    except BaseException as e:  # noqa: BLE001 - reported, not raised: the summary is the output
        summary[phase] = f"{type(e).__name__}: {e}"
        summary[f"{phase}_trace"] = traceback.format_exc()
    summary["elicitations"] = peer.elicitations
    summary["logs"] = peer.logs
    summary["transport_errors"] = peer.transport_errors
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    anyio.run(main)
