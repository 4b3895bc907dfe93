#!/usr/bin/env python3
"""The official Python SDK client over `portcullis stdio`, with a person at the gateway's
terminal: the gateway runs in a session of its own whose controlling terminal is a
pseudo-terminal this script holds, so its `/dev/tty` consent questions appear here and are
answered as `--answers` says (MCP itself still flows over the process's stdin and stdout).

Run by `tests/consent.rs`; prints a JSON summary as the last line of stdout and asserts
nothing.

    tty_client.py --answers "s,n" --calls JSON --stdio PORTCULLIS stdio ROUTE --config FILE

`--answers` are typed, in order, each after the next "Your answer:" prompt. `--calls` are
`{"step": name, "args": {...}}` calls of the `echo` tool. The summary has `steps` (as
`mcp_client.py` records them), `tty` (everything the gateway wrote on the terminal, and the
echo of what was typed) and `transport_errors`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import threading
import traceback
import warnings
from typing import Any

import anyio
import mcp_types as types
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from mcp_client import Steps

warnings.simplefilter("ignore")

# Runs in the child before the gateway: a new session, and the pseudo-terminal (opened
# without O_NOCTTY by a session leader) as its controlling terminal.
WRAPPER = (
    "import os, sys\n"
    "try:\n    os.setsid()\nexcept OSError:\n    pass\n"
    "fd = os.open(sys.argv[1], os.O_RDWR)\n"
    "os.close(fd)\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


class Terminal:
    """The person at the terminal: reads what the gateway writes, types the next answer
    after each prompt."""

    def __init__(self, master: int, answers: list[str]) -> None:
        self.master = master
        self.answers = answers
        self.transcript = b""
        self.answered = 0
        self.lock = threading.Lock()

    def run(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 4096)
            except OSError:
                return
            if not chunk:
                return
            with self.lock:
                self.transcript += chunk
                prompts = self.transcript.count(b"Your answer:")
                while self.answered < prompts and self.answered < len(self.answers):
                    os.write(self.master, self.answers[self.answered].encode() + b"\n")
                    self.answered += 1

    def text(self) -> str:
        with self.lock:
            return self.transcript.decode("utf-8", "replace")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--answers", required=True)
    parser.add_argument("--calls", required=True)
    parser.add_argument("--step-timeout", type=float, default=40.0)
    parser.add_argument("--stdio", nargs=argparse.REMAINDER, required=True)
    opts = parser.parse_args()

    master, slave = os.openpty()
    terminal = Terminal(master, [a for a in opts.answers.split(",")])
    threading.Thread(target=terminal.run, daemon=True).start()
    env = {k: os.environ[k] for k in ("XDG_STATE_HOME", "PATH") if k in os.environ}
    server = StdioServerParameters(
        command=sys.executable, args=["-c", WRAPPER, os.ttyname(slave), *opts.stdio], env=env
    )
    steps = Steps(opts.step_timeout)
    summary: dict[str, Any] = {"steps": steps.record}
    errors: list[str] = []

    async def on_message(message: Any) -> None:
        if isinstance(message, Exception):
            errors.append(f"{type(message).__name__}: {message}")

    client = Client(
        server,
        mode="legacy",
        message_handler=on_message,
        client_info=types.Implementation(name="portcullis-e2e-tty", version="1"),
        cache=None,
    )
    phase = "connect"
    try:
        with anyio.fail_after(150):
            async with contextlib.AsyncExitStack() as stack:
                await stack.enter_async_context(client)
                phase = "run"
                for call in json.loads(opts.calls):
                    await steps.run(call["step"], lambda: client.call_tool("echo", call["args"]))
                phase = "close"
    except BaseException as e:  # noqa: BLE001 - reported, not raised: the summary is the output
        summary[phase] = f"{type(e).__name__}: {e}"
        summary[f"{phase}_trace"] = traceback.format_exc()
    summary["tty"] = terminal.text()
    summary["transport_errors"] = errors
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    anyio.run(main)
