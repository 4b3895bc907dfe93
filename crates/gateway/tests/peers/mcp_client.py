#!/usr/bin/env python3
"""A real MCP client (the official Python SDK, `mcp` 2.3.0) driven through Portcullis.

The Rust end-to-end tests run this script with the venv that `scripts/install-peers` built
and assert on the JSON summary it prints as the last line of stdout. The script itself
asserts nothing: every step is recorded as what the client saw, so a failing test shows the
whole conversation rather than the first exception.

    mcp_client.py --scenario fixture|everything|everything-asks|echo|calls
                  --mode legacy|2026-07-28|auto [--calls JSON]
                  [--oauth-client-id ID --oauth-client-secret SECRET
                   [--oauth-scope "a b"] [--oauth-issuer URL]]
                  (--url http://127.0.0.1:PORT/mcp/ROUTE | --stdio PROGRAM ARG...)

With `--oauth-client-id` (HTTP only) the client authenticates with the SDK's own
client-credentials provider (`ClientCredentialsOAuthProvider`, tokens held in memory) on the
transport's httpx client: everything is discovered from the server's 401 (RFC 9728 protected
resource metadata, then RFC 8414 / OIDC metadata, then a token request with `resource`), and a
403 `insufficient_scope` makes it ask for a token with the union of the scopes (step-up). The
summary then has `"oauth"`: the token requests made (`token_requests`, and each one's `scope`
and `resource`), the scope each token was granted (`token_scopes`), and every HTTP exchange
(`http`: method, URL, status, `WWW-Authenticate`). Never a token or a secret.

The `calls` scenario makes the requests `--calls` lists, in order, one step each:
    [{"step": "name", "tool": "read_file", "args": {...}},
     {"step": "name", "prompt": "greeting", "args": {...}},
     {"step": "name", "resource": "fixture://static/hello"},
     {"step": "name", "list": "tools"}]

Every step has its own deadline (`--step-timeout`), so a gateway that never answers turns
into a recorded `timeout` for that step, not a hung test.

A step's record is one of:
    {"ok": <the result as JSON, by alias>}
    {"error": {"code": int, "message": str, "data": any}}     a JSON-RPC error
    {"exception": "Type: text"}                                anything else (transport, validation)
    {"timeout": seconds}
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import gzip
import json
import os
import traceback
import warnings
from typing import Any, Awaitable, Callable

import anyio
import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

# Deprecated (2026-07-28) features are exactly what the legacy runs exercise.
warnings.simplefilter("ignore")

ROOT_URI = "file:///tmp/portcullis-e2e-root"


def to_json(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        # exclude_unset: what was on the wire, not the model's defaults (e.g. resultType).
        return value.model_dump(by_alias=True, mode="json", exclude_unset=True)
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    return value


class Peer:
    """The client-side callbacks, recording every server→client interaction they see."""

    def __init__(self) -> None:
        self.sampling: list[Any] = []
        self.elicitation: list[Any] = []
        self.roots: int = 0
        self.logs: list[Any] = []
        self.notifications: list[Any] = []
        self.transport_errors: list[str] = []

    async def on_sampling(self, context: Any, params: types.CreateMessageRequestParams) -> Any:
        self.sampling.append(to_json(params))
        prompt = ""
        for message in params.messages:
            content = message.content
            blocks = content if isinstance(content, list) else [content]
            for block in blocks:
                if getattr(block, "type", None) == "text":
                    prompt += block.text
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text=f"sampled reply to: {prompt}"),
            model="portcullis-e2e-model",
            stop_reason="endTurn",
        )

    async def on_elicitation(self, context: Any, params: Any) -> Any:
        self.elicitation.append(to_json(params))
        if getattr(params, "mode", "form") == "url":
            return types.ElicitResult(action="accept")
        properties = (to_json(params.requested_schema) or {}).get("properties", {})
        content: dict[str, Any] = {}
        for name, schema in properties.items():
            if name == "answer":
                content[name] = "blue"
            elif name == "name":
                content[name] = "Ada Lovelace"
            elif name == "email":
                content[name] = "ada@example.com"
            elif schema.get("type") == "boolean":
                content[name] = True
            elif schema.get("type") == "integer":
                content[name] = 7
        return types.ElicitResult(action="accept", content=content)

    async def on_list_roots(self, context: Any) -> Any:
        self.roots += 1
        return types.ListRootsResult(roots=[types.Root(uri=ROOT_URI, name="e2e-root")])

    async def on_log(self, params: types.LoggingMessageNotificationParams) -> None:
        self.logs.append(to_json(params))

    async def on_message(self, message: Any) -> None:
        if isinstance(message, Exception):
            self.transport_errors.append(f"{type(message).__name__}: {message}")
        else:
            self.notifications.append(to_json(message))

    def client(self, server: Any, mode: str, **extra: Any) -> Client:
        return Client(
            server,
            mode=mode,
            sampling_callback=self.on_sampling,
            elicitation_callback=self.on_elicitation,
            list_roots_callback=self.on_list_roots,
            logging_callback=self.on_log,
            message_handler=self.on_message,
            client_info=types.Implementation(name="portcullis-e2e-python", version="1"),
            # Every list goes to the wire: the tests are about what the gateway answers.
            cache=None,
            **extra,
        )

    def summary(self) -> dict[str, Any]:
        return {
            "sampling_requests": self.sampling,
            "elicitation_requests": self.elicitation,
            "roots_requests": self.roots,
            "logs": self.logs,
            "notifications": self.notifications,
            "transport_errors": self.transport_errors,
        }


class Steps:
    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.record: dict[str, Any] = {}

    async def run(self, name: str, fn: Callable[[], Awaitable[Any]], timeout: float | None = None) -> Any:
        """Runs one step under its deadline; returns the result (or None) and records it."""
        limit = timeout or self.timeout
        try:
            with anyio.fail_after(limit):
                result = await fn()
        except MCPError as e:
            self.record[name] = {"error": {"code": e.code, "message": e.message, "data": to_json(e.data)}}
            return None
        except TimeoutError:
            self.record[name] = {"timeout": limit}
            return None
        except Exception as e:  # noqa: BLE001 - every failure is data for the Rust side
            self.record[name] = {"exception": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()}
            return None
        self.record[name] = {"ok": to_json(result)}
        return result


async def wait_for(predicate: Callable[[], bool], seconds: float) -> bool:
    """Polls `predicate` until it holds or `seconds` pass (for unsolicited notifications)."""
    with anyio.move_on_after(seconds):
        while not predicate():
            await anyio.sleep(0.05)
    return predicate()


# --------------------------------------------------------------------------------------------
# The bundled fixture server as upstream.
# --------------------------------------------------------------------------------------------


async def fixture(client: Client, peer: Peer, steps: Steps, mode: str) -> None:
    run = steps.run
    await run("tools/list", lambda: client.list_tools())
    await run("tools/call echo", lambda: client.call_tool("echo", {"message": "hello through portcullis"}))
    await run("tools/call add", lambda: client.call_tool("add", {"a": 2, "b": 40}))

    progress: list[Any] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append({"progress": value, "total": total, "message": message})

    await run(
        "tools/call slow",
        lambda: client.call_tool("slow", {"steps": 3, "delay_ms": 20}, progress_callback=on_progress),
    )
    steps.record["progress"] = progress

    await run("tools/call sample", lambda: client.call_tool("sample", {"prompt": "is the portcullis up?"}))
    await run("tools/call elicit", lambda: client.call_tool("elicit", {"message": "favourite colour?"}))

    await run("resources/list", lambda: client.list_resources())
    await run("resources/templates/list", lambda: client.list_resource_templates())
    await run("resources/read hello", lambda: client.read_resource("fixture://static/hello"))
    await run("resources/read blob", lambda: client.read_resource("fixture://static/blob"))
    await run("resources/read item 42", lambda: client.read_resource("fixture://items/42"))

    await run("prompts/list", lambda: client.list_prompts())
    await run("prompts/get greeting", lambda: client.get_prompt("greeting", {"name": "Ada"}))

    await run(
        "completion/complete greeting",
        lambda: client.complete(types.PromptReference(name="greeting"), {"name": "name", "value": "A"}),
    )
    await run(
        "completion/complete items",
        lambda: client.complete(
            types.ResourceTemplateReference(uri="fixture://items/{id}"), {"name": "id", "value": "4"}
        ),
    )

    if mode == "legacy":
        await run("logging/setLevel", lambda: client.set_logging_level("debug"))
    await run("tools/call log", lambda: client.call_tool("log", {"level": "warning", "message": "logged through portcullis"}))
    # A log is sent before the tool's result, on the same stream; give a slow relay a moment.
    await wait_for(lambda: any(l.get("data") == "logged through portcullis" for l in peer.logs), 5)


# --------------------------------------------------------------------------------------------
# @modelcontextprotocol/server-everything as upstream.
# --------------------------------------------------------------------------------------------

GZIP_SOURCE = b"Portcullis carried this file through gzip-file-as-resource.\n"
GZIP_NAME = "portcullis-e2e.txt.gz"
URL_ELICITATION = "http://127.0.0.1:9/portcullis-e2e-consent"  # never opened: the callback only accepts

# Arguments for each tool of server-everything 2026.8.31, chosen from its source (dist/tools).
EVERYTHING_TOOL_ARGS: dict[str, dict[str, Any]] = {
    "echo": {"message": "hello everything"},
    "get-annotated-message": {"messageType": "success", "includeImage": True},
    "get-env": {},
    "get-resource-links": {"count": 4},
    "get-resource-reference": {"resourceType": "Blob", "resourceId": 3},
    "get-structured-content": {"location": "Chicago"},
    "get-sum": {"a": 19, "b": 23},
    "get-tiny-image": {},
    # A data: URL, so nothing leaves the machine (the default argument is a GitHub URL).
    "gzip-file-as-resource": {
        "name": GZIP_NAME,
        "data": "data:text/plain;base64," + base64.b64encode(GZIP_SOURCE).decode(),
        "outputType": "resourceLink",
    },
    "toggle-simulated-logging": {},
    "toggle-subscriber-updates": {},
    "trigger-long-running-operation": {"duration": 0.3, "steps": 3},
    "get-roots-list": {},
    "trigger-elicitation-request": {},
    "trigger-url-elicitation": {"url": URL_ELICITATION, "message": "Please confirm in the browser."},
    "trigger-sampling-request": {"prompt": "say hi through the gateway", "maxTokens": 20},
    "simulate-research-query": {"topic": "portcullis gateways", "ambiguous": False},
    "trigger-sampling-request-async": {"prompt": "async hi", "maxTokens": 20},
    "trigger-elicitation-request-async": {},
}

EVERYTHING_PROMPT_ARGS: dict[str, dict[str, str]] = {
    "simple-prompt": {},
    "args-prompt": {"city": "Lisbon", "state": "Portugal"},
    "completable-prompt": {"department": "Engineering", "name": "Alice"},
    "resource-prompt": {"resourceType": "Text", "resourceId": "2"},
}


def args_from_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Valid-looking arguments for a tool this script has no table entry for."""
    args: dict[str, Any] = {}
    properties = schema.get("properties", {})
    for name in schema.get("required", []):
        prop = properties.get(name, {})
        if "default" in prop:
            args[name] = prop["default"]
        elif prop.get("enum"):
            args[name] = prop["enum"][0]
        else:
            args[name] = {"string": "x", "number": 1, "integer": 1, "boolean": False, "array": [], "object": {}}.get(
                prop.get("type", "string"), "x"
            )
    return args


async def everything(client: Client, peer: Peer, steps: Steps, mode: str) -> None:
    run = steps.run
    await run("ping", lambda: client.send_ping())
    tools = await run("tools/list", lambda: client.list_tools())
    await run("resources/list", lambda: client.list_resources())
    templates = await run("resources/templates/list", lambda: client.list_resource_templates())
    prompts = await run("prompts/list", lambda: client.list_prompts())
    await run("logging/setLevel", lambda: client.set_logging_level("debug"))

    # Subscribe first, so that toggle-subscriber-updates has something to report.
    watched = "demo://resource/dynamic/text/1"
    await run("resources/subscribe", lambda: client.subscribe_resource(watched))

    progress: list[Any] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append({"progress": value, "total": total, "message": message})

    synthesized: list[str] = []
    for tool in tools.tools if tools else []:
        name = tool.name
        args = EVERYTHING_TOOL_ARGS.get(name)
        if args is None:
            args = args_from_schema(tool.input_schema)
            synthesized.append(name)
        callback = on_progress if name == "trigger-long-running-operation" else None
        await run(f"tools/call {name}", lambda: client.call_tool(name, args, progress_callback=callback))
        if name == "toggle-simulated-logging":
            # Its first message is sent at once; then one every 5 s until toggled off. They read
            # "Debug-level message", …, "Alert level-message" (other logs came before).
            simulated = lambda: any(  # noqa: E731
                "level message" in str(l.get("data")) or "level-message" in str(l.get("data")) for l in peer.logs
            )
            steps.record["simulated log seen"] = await wait_for(simulated, 10)
            await run(f"tools/call {name} (off)", lambda: client.call_tool(name, {}))
        if name == "toggle-subscriber-updates":
            updated = lambda: any(  # noqa: E731
                n.get("method") == "notifications/resources/updated" and n.get("params", {}).get("uri") == watched
                for n in peer.notifications
            )
            steps.record["resource update seen"] = await wait_for(updated, 10)
            await run(f"tools/call {name} (off)", lambda: client.call_tool(name, {}))
    steps.record["progress"] = progress
    steps.record["synthesized arguments for"] = synthesized

    # URL elicitation's other path: a -32042 error first, then the retry goes through.
    url_args = {"url": URL_ELICITATION, "errorPath": True, "elicitationId": "portcullis-e2e"}
    if tools and any(t.name == "trigger-url-elicitation" for t in tools.tools):
        await run("tools/call trigger-url-elicitation errorPath", lambda: client.call_tool("trigger-url-elicitation", url_args))
        await run(
            "tools/call trigger-url-elicitation errorPath retry",
            lambda: client.call_tool("trigger-url-elicitation", url_args),
        )

    await run("resources/unsubscribe", lambda: client.unsubscribe_resource(watched))

    # The list again: gzip-file-as-resource registered a session resource meanwhile.
    resources = await run("resources/list (after tools)", lambda: client.list_resources())
    for resource in resources.resources if resources else []:
        uri = str(resource.uri)
        await run(f"resources/read {uri}", lambda: client.read_resource(uri))
    for template in templates.resource_templates if templates else []:
        uri = template.uri_template.replace("{resourceId}", "5")
        await run(f"resources/read {uri}", lambda: client.read_resource(uri))

    for prompt in prompts.prompts if prompts else []:
        args = EVERYTHING_PROMPT_ARGS.get(prompt.name)
        if args is None:
            args = {a.name: "x" for a in prompt.arguments or [] if a.required}
        await run(f"prompts/get {prompt.name}", lambda: client.get_prompt(prompt.name, args))

    await run(
        "completion/complete completable-prompt department",
        lambda: client.complete(
            types.PromptReference(name="completable-prompt"), {"name": "department", "value": "Eng"}
        ),
    )
    await run(
        "completion/complete completable-prompt name",
        lambda: client.complete(
            types.PromptReference(name="completable-prompt"),
            {"name": "name", "value": ""},
            context_arguments={"department": "Sales"},
        ),
    )
    await run(
        "completion/complete resource template",
        lambda: client.complete(
            types.ResourceTemplateReference(uri="demo://resource/dynamic/text/{resourceId}"),
            {"name": "resourceId", "value": "3"},
        ),
    )

    # Decode the session resource the gzip tool made: it must be our file, byte for byte.
    gz_uri = f"demo://resource/session/{GZIP_NAME}"
    record = steps.record.get(f"resources/read {gz_uri}", {})
    try:
        blob = record["ok"]["contents"][0]["blob"]
        steps.record["gzip round trip"] = gzip.decompress(base64.b64decode(blob)) == GZIP_SOURCE
    except Exception as e:  # noqa: BLE001
        steps.record["gzip round trip"] = f"{type(e).__name__}: {e}"


async def everything_asks(client: Client, peer: Peer, steps: Steps, mode: str) -> None:
    """Only the server-everything tools that send the client requests of their own."""
    run = steps.run
    await run("tools/list", lambda: client.list_tools())
    await run("tools/call echo", lambda: client.call_tool("echo", EVERYTHING_TOOL_ARGS["echo"]))
    for name in ["trigger-sampling-request", "trigger-elicitation-request", "get-roots-list"]:
        await run(f"tools/call {name}", lambda: client.call_tool(name, EVERYTHING_TOOL_ARGS[name]))


async def echo_only(client: Client, peer: Peer, steps: Steps, mode: str) -> None:
    """The smallest conversation: list the tools, call `echo`."""
    await steps.run("tools/list", lambda: client.list_tools())
    await steps.run("tools/call echo", lambda: client.call_tool("echo", {"message": "hello through portcullis"}))


async def calls(client: Client, peer: Peer, steps: Steps, mode: str) -> None:
    """The requests of `--calls`, in order (see the module docs)."""
    for call in CALLS:
        step, args = call["step"], call.get("args")
        if "tool" in call:
            await steps.run(step, lambda: client.call_tool(call["tool"], args))
        elif "prompt" in call:
            await steps.run(step, lambda: client.get_prompt(call["prompt"], args))
        elif "resource" in call:
            await steps.run(step, lambda: client.read_resource(call["resource"]))
        elif call.get("list") == "tools":
            await steps.run(step, lambda: client.list_tools())
        else:
            raise ValueError(f"unknown call: {call}")


CALLS: list[dict[str, Any]] = []


# --------------------------------------------------------------------------------------------
# OAuth (client credentials), on request.
# --------------------------------------------------------------------------------------------

# Bounds the exchanges recorded, so a client stuck in a 401 loop cannot grow the summary forever.
MAX_RECORDED_EXCHANGES = 500


class MemoryTokenStorage:
    """The SDK's `TokenStorage`, in memory: every run starts without a token."""

    def __init__(self) -> None:
        self.tokens: Any = None
        self.client_info: Any = None

    async def get_tokens(self) -> Any:
        return self.tokens

    async def set_tokens(self, tokens: Any) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> Any:
        return self.client_info

    async def set_client_info(self, client_info: Any) -> None:
        self.client_info = client_info


class OAuthRecord:
    """What the OAuth provider did, with no token or secret in it."""

    def __init__(self) -> None:
        self.token_requests: list[dict[str, Any]] = []
        self.token_scopes: list[str | None] = []
        self.http: list[dict[str, Any]] = []

    async def on_response(self, response: httpx2.Response) -> None:
        if len(self.http) < MAX_RECORDED_EXCHANGES:
            self.http.append(
                {
                    "method": response.request.method,
                    "url": str(response.request.url),
                    "status": response.status_code,
                    "www_authenticate": response.headers.get("www-authenticate"),
                }
            )

    def summary(self) -> dict[str, Any]:
        return {
            "token_requests": len(self.token_requests),
            "token_request_params": self.token_requests,
            "token_scopes": self.token_scopes,
            "http": self.http,
        }


def oauth_http_client(opts: argparse.Namespace, record: OAuthRecord) -> httpx2.AsyncClient:
    """An httpx client whose auth is the SDK's client-credentials provider, recording its work."""
    from urllib.parse import parse_qs

    from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
    from mcp.shared._httpx_utils import create_mcp_http_client

    class RecordingProvider(ClientCredentialsOAuthProvider):
        async def _exchange_token_client_credentials(self) -> httpx2.Request:
            request = await super()._exchange_token_client_credentials()
            form = parse_qs(request.content.decode())
            record.token_requests.append(
                {
                    "url": str(request.url),
                    "scope": form.get("scope", [None])[0],
                    "resource": form.get("resource", [None])[0],
                }
            )
            return request

        async def _handle_token_response(self, response: httpx2.Response) -> None:
            await super()._handle_token_response(response)
            tokens = self.context.current_tokens
            record.token_scopes.append(tokens.scope if tokens else None)

    provider = RecordingProvider(
        server_url=opts.url,
        storage=MemoryTokenStorage(),
        client_id=opts.oauth_client_id,
        client_secret=opts.oauth_client_secret,
        scope=opts.oauth_scope,
        issuer=opts.oauth_issuer,
    )
    client = create_mcp_http_client(auth=provider)
    client.event_hooks = {"request": [], "response": [record.on_response]}
    return client

SCENARIOS = {
    "calls": calls,
    "fixture": fixture,
    "everything": everything,
    "everything-asks": everything_asks,
    "echo": echo_only,
}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), required=True)
    parser.add_argument("--mode", required=True)
    parser.add_argument("--url")
    parser.add_argument("--step-timeout", type=float, default=30.0)
    parser.add_argument("--total-timeout", type=float, default=240.0)
    parser.add_argument("--calls", default="[]")
    parser.add_argument("--oauth-client-id")
    parser.add_argument("--oauth-client-secret")
    parser.add_argument("--oauth-scope")
    parser.add_argument("--oauth-issuer")
    parser.add_argument("--stdio", nargs=argparse.REMAINDER)
    opts = parser.parse_args()
    CALLS.extend(json.loads(opts.calls))

    oauth: OAuthRecord | None = None
    http_client: httpx2.AsyncClient | None = None
    if opts.oauth_client_id is not None:
        if not opts.url or opts.oauth_client_secret is None:
            parser.error("--oauth-client-id needs --oauth-client-secret and --url")
        oauth = OAuthRecord()
        http_client = oauth_http_client(opts, oauth)
        server: Any = streamable_http_client(opts.url, http_client=http_client)
    elif opts.url:
        server = opts.url
    elif opts.stdio:
        # The SDK passes a launched server only a few safe variables; the tests' state
        # directory must reach the gateway too (see `support::isolate_state`).
        env = {k: os.environ[k] for k in ("XDG_STATE_HOME",) if k in os.environ}
        server = StdioServerParameters(command=opts.stdio[0], args=opts.stdio[1:], env=env)
    else:
        parser.error("one of --url or --stdio is required")

    peer = Peer()
    steps = Steps(opts.step_timeout)
    summary: dict[str, Any] = {"steps": steps.record}
    # The log level rides on every 2026-07-28 request (ignored by handshake-era connections).
    client = peer.client(server, opts.mode, log_level="debug")
    phase = "connect"
    try:
        with anyio.fail_after(opts.total_timeout):
            async with contextlib.AsyncExitStack() as stack:
                if http_client is not None:
                    # Given to the transport, which leaves closing it to its owner.
                    await stack.enter_async_context(http_client)
                await stack.enter_async_context(client)
                phase = "run"
                summary["protocol_version"] = client.protocol_version
                summary["server_info"] = to_json(client.server_info)
                summary["server_capabilities"] = to_json(client.server_capabilities)
                await SCENARIOS[opts.scenario](client, peer, steps, opts.mode)
                phase = "close"
    except BaseException as e:  # noqa: BLE001 - reported, not raised: the summary is the output
        summary[phase] = f"{type(e).__name__}: {e}"
        summary[f"{phase}_trace"] = traceback.format_exc()
    summary.update(peer.summary())
    if oauth is not None:
        summary["oauth"] = oauth.summary()
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    anyio.run(main)
