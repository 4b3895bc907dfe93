#!/usr/bin/env python3
"""The client the official conformance suite drives for its client auth scenarios: Portcullis.

    conformance client --command "<venv>/bin/python conformance_auth_client.py [--no-url-elicitation]" \
                       --suite auth --spec-version 2025-11-25

The suite starts a mock MCP server and a mock authorization server per scenario and runs this
command with the server's URL as the last argument (`MCP_CONFORMANCE_SCENARIO` names the
scenario; `MCP_CONFORMANCE_CONTEXT` carries pre-registered credentials when it has any). The
suite judges the OAuth client that talks to its servers, and that client is the gateway: this
script only puts the gateway between itself and the server and plays the two people a real
deployment has.

- The operator: it writes a config with the suite's server as `[servers.conf]` and
  `credential = { oauth = {} }` (or the pre-registered client of the context, its secret in
  an environment variable), opens loopback in `[egress]`, and starts `portcullis serve`
  (the binary named by `PORTCULLIS_BIN`) on a free loopback port with a scratch state store.
- The user: an MCP host (the official Python SDK over Streamable HTTP, handshake era) lists
  the tools of `/mcp/conf` and calls `test-tool`. Whenever the gateway answers that the user
  must connect first (error -32042 with a URL elicitation, a URL-mode `elicitation/create`,
  or, for a host without the `elicitation.url` capability, a tool result with `isError` and
  the link), it opens the link as a browser would: the gateway's consent page (GET; its
  cookies are kept by hand, since they are `Secure` and this is plain http), approve (POST,
  a 303 to the authorization server), the authorization server (which redirects at once to
  the gateway's callback), the callback (200). Then it retries the request.

For `auth/basic-cimd` the gateway gets `client_metadata_url =
"https://conformance-test.local/client-metadata.json"` (the client id the suite expects: the
operator publishes the gateway's metadata document there).

Every wait is bounded (`PORTCULLIS_CONFORMANCE_DEADLINE` seconds in all, default 25; 10 s per
HTTP exchange; at most 6 connect rounds); the gateway is always stopped (and dies with this
process if it is killed). The last line of stdout is a JSON summary; the exit status is 0
when `test-tool` answered, 1 otherwise (the reason on stderr and in the summary), 2 on a
setup error. No token, code, cookie or secret is printed.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import html.parser
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from typing import Any, Awaitable, Callable

import anyio
import mcp_types as types
from mcp import Client
from mcp.shared.exceptions import MCPError

warnings.simplefilter("ignore")

URL_ELICITATION_REQUIRED = -32042
ROUTE = "conf"
TOOL = "test-tool"
# The client id the suite's basic-cimd scenario expects lives on this origin.
CIMD_CLIENT_ID = "https://conformance-test.local/client-metadata.json"
SECRET_ENV = "PORTCULLIS_CONFORMANCE_CLIENT_SECRET"
MAX_CONNECT_ROUNDS = 6
HTTP_TIMEOUT = 10.0
MAX_BODY = 1 << 20
LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}
CONNECT_LINK = re.compile(r"https?://[^\s\"'<>]+/oauth/connect/[^\s\"'<>)\]]+")


class Failure(Exception):
    """Why the run did not reach `test-tool`, said for the person reading the suite's output."""


def log(message: str) -> None:
    print(f"conformance-auth-client: {message}", file=sys.stderr, flush=True)


def toml_string(value: str) -> str:
    # A JSON string is a valid TOML basic string for everything this script writes.
    return json.dumps(value)


def loopback_url(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme in ("http", "https") and (parts.hostname or "") in LOOPBACK_HOSTS


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def die_with_parent() -> None:
    """Runs in the gateway's child process: SIGKILL it when this script dies (Linux)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Gateway:
    """`portcullis serve` in front of the suite's server, configured as an operator would."""

    def __init__(self, binary: str, server_url: str, scenario: str, context: dict[str, Any], work: str) -> None:
        self.binary = binary
        self.server_url = server_url
        self.work = work
        # The gateway's pages stay on loopback; only its client id is the suite's URL.
        self.public_url = None
        self.client_metadata_url = CIMD_CLIENT_ID if scenario == "auth/basic-cimd" else None
        self.env = dict(os.environ)
        oauth = "{}"
        client_id = context.get("client_id")
        if isinstance(client_id, str) and client_id:
            fields = [f"client_id = {toml_string(client_id)}"]
            secret = context.get("client_secret")
            if isinstance(secret, str) and secret:
                self.env[SECRET_ENV] = secret
                fields.append(f"secret_env = {toml_string(SECRET_ENV)}")
            oauth = "{ " + ", ".join(fields) + " }"
        self.pre_registered = oauth != "{}"
        self.oauth = oauth
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = os.path.join(work, "gateway.log")

    def config(self) -> str:
        lines = ["[gateway]", "max_sessions = 100"]
        if self.public_url:
            lines.append(f"public_url = {toml_string(self.public_url)}")
        if self.client_metadata_url:
            lines.append(f"client_metadata_url = {toml_string(self.client_metadata_url)}")
        lines += [
            "",
            f"[servers.{ROUTE}]",
            f"url = {toml_string(self.server_url)}",
            f"credential = {{ oauth = {self.oauth} }}",
            "",
            "[egress]",
            'allow = ["127.0.0.0/8", "::1/128"]',
            'http = ["localhost", "127.0.0.1", "::1"]',
            "",
            "[[rules]]",
            f"server = {toml_string(ROUTE)}",
            'effect = "allow"',
            "",
        ]
        return "\n".join(lines)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def mcp_url(self) -> str:
        return f"{self.base}/mcp/{ROUTE}"

    def local(self, url: str) -> str:
        """A link the gateway gave out, at the address this script reaches the gateway on."""
        url = urllib.parse.urljoin((self.public_url or self.base) + "/", url)
        for origin in filter(None, [self.public_url, self.base]):
            if url == origin or url.startswith(origin + "/"):
                return self.base + url[len(origin) :]
        raise Failure(f"the gateway linked to {url}, which is not the gateway ({self.public_url or self.base})")

    def owns(self, url: str) -> bool:
        try:
            self.local(url)
            return True
        except Failure:
            return False

    def start(self, deadline: float) -> None:
        path = os.path.join(self.work, "portcullis.toml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.config())
        self.env["PORTCULLIS_STATE"] = "sqlite:" + os.path.join(self.work, "state.db")
        self.env.setdefault("PORTCULLIS_LOG", "info")
        for attempt in range(3):
            self.port = free_port()
            with open(self.log_path, "wb") as out:
                self.proc = subprocess.Popen(
                    [self.binary, "serve", "--config", path, "--listen", f"127.0.0.1:{self.port}"],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=self.env,
                    preexec_fn=die_with_parent,
                )
            limit = min(deadline, time.monotonic() + 15)
            while time.monotonic() < limit:
                if "Portcullis is listening on" in self.log_tail():
                    return
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
            exited = self.proc.poll() is not None
            self.stop()
            # Another process may have taken the port between the probe and the bind.
            if not (exited and "in use" in self.log_tail()) or attempt == 2:
                raise Failure(f"the gateway did not start listening:\n{self.log_tail()}")
        raise Failure("the gateway did not start")

    def log_tail(self, limit: int = 6000) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - limit))
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect())


def http(method: str, url: str, headers: dict[str, str], body: bytes | None = None) -> tuple[int, Any, str]:
    """One exchange, redirects not followed: (status, headers, body text)."""
    if not loopback_url(url):
        raise Failure(f"refusing to open {url}: test traffic stays on loopback")
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with HTTP.open(request, timeout=HTTP_TIMEOUT) as resp:
            return resp.status, resp.headers, resp.read(MAX_BODY).decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read(MAX_BODY).decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as e:
        raise Failure(f"{method} {url.split('?')[0]}: {e}") from e


class ConsentForm(html.parser.HTMLParser):
    """The consent page's form: where it posts, its hidden fields, and the decisions offered."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.hidden: dict[str, str] = {}
        self.decisions: set[str] = set()
        self._in_form = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("method", "").lower() == "post" and self.action is None:
            self.action, self._in_form = a.get("action", ""), True
        elif self._in_form and tag in ("input", "button"):
            if a.get("type", "").lower() == "hidden" and a.get("name"):
                self.hidden[a["name"]] = a.get("value", "")
            elif a.get("name") == "decision":
                self.decisions.add(a.get("value", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False


class User:
    """The person behind the MCP host: opens the gateway's connect link and approves."""

    def __init__(self, gateway: Gateway, summary: dict[str, Any]) -> None:
        self.gateway = gateway
        self.rounds: list[dict[str, Any]] = summary.setdefault("connect_rounds", [])

    async def connect(self, link: str, came_as: str, during: str) -> None:
        if len(self.rounds) >= MAX_CONNECT_ROUNDS:
            raise Failure(f"the gateway asked the user to connect more than {MAX_CONNECT_ROUNDS} times")
        record: dict[str, Any] = {"during": during, "came_as": came_as, "link": link}
        self.rounds.append(record)
        log(f"{during}: the gateway asks the user to connect ({came_as}): {link}")
        await anyio.to_thread.run_sync(self._connect, link, record)

    def _connect(self, link: str, record: dict[str, Any]) -> None:
        gw = self.gateway
        cookies: dict[str, str] = {}
        # What a browser on the gateway's page sends as Origin (the page's own origin).
        origin = urllib.parse.urlunsplit(urllib.parse.urlsplit(urllib.parse.urljoin(gw.public_url or gw.base, link))[:2] + ("", "", ""))

        def keep(headers: Any) -> None:
            for value in headers.get_all("Set-Cookie") or []:
                pair = value.split(";", 1)[0]
                if "=" in pair:
                    name, val = pair.split("=", 1)
                    cookies[name.strip()] = val.strip()

        def cookie_header() -> dict[str, str]:
            return {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())} if cookies else {}

        page = gw.local(link)
        status, headers, body = http("GET", page, {"Accept": "text/html"})
        keep(headers)
        record["page"] = status
        if status != 200:
            raise Failure(f"the connect page answered {status}: {body[:500]}")
        form = ConsentForm()
        form.feed(body)
        if form.action is None or "approve" not in form.decisions:
            raise Failure(f"the connect page has no approve form: {body[:1000]}")
        fields = dict(form.hidden)
        fields["decision"] = "approve"
        status, headers, body = http(
            "POST",
            urllib.parse.urljoin(page, form.action),
            {"Content-Type": "application/x-www-form-urlencoded", "Origin": origin, "Referer": link, **cookie_header()},
            urllib.parse.urlencode(fields).encode(),
        )
        keep(headers)
        record["approve"] = status
        authorize = headers.get("Location") if headers else None
        if status not in (302, 303) or not authorize:
            raise Failure(f"approving answered {status} without a redirect to the authorization server: {body[:500]}")
        parts = urllib.parse.urlsplit(authorize)
        query = urllib.parse.parse_qs(parts.query)
        record["authorization_server"] = f"{parts.scheme}://{parts.netloc}{parts.path}"
        record["scope"] = query.get("scope", [None])[0]
        status, headers, body = http("GET", authorize, {"Accept": "text/html"})
        callback = headers.get("Location") if headers else None
        record["authorize"] = status
        if status not in (301, 302, 303, 307) or not callback:
            raise Failure(f"the authorization server answered {status}, not a redirect: {body[:500]}")
        if not gw.owns(callback):
            raise Failure(f"the authorization server redirected to {callback.split('?')[0]}, not the gateway")
        status, headers, body = http("GET", gw.local(callback), {"Accept": "text/html", **cookie_header()})
        record["callback"] = status
        if status != 200:
            raise Failure(f"the gateway's callback answered {status}: {body[:1000]}")


def connect_link_of_error(error: MCPError) -> str | None:
    data = error.data if isinstance(error.data, dict) else {}
    for e in data.get("elicitations") or []:
        if isinstance(e, dict) and e.get("mode", "url") == "url" and isinstance(e.get("url"), str):
            return e["url"]
    found = CONNECT_LINK.search(error.message or "")
    return found.group(0) if found else None


def text_of(result: Any) -> str:
    return "\n".join(getattr(b, "text", "") for b in getattr(result, "content", []) or [])


def to_json(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(by_alias=True, mode="json", exclude_none=True)
    return value


class Host:
    """The MCP host: asks, and sends its user to connect whenever the gateway says so."""

    def __init__(self, gateway: Gateway, user: User, url_capable: bool, summary: dict[str, Any]) -> None:
        self.gateway = gateway
        self.user = user
        self.url_capable = url_capable
        self.summary = summary

    async def on_elicitation(self, context: Any, params: Any) -> Any:
        link = getattr(params, "url", None)
        if getattr(params, "mode", "form") == "url" and isinstance(link, str) and self.gateway.owns(link):
            await self.user.connect(link, "elicitation/create", "elicitation")
            return types.ElicitResult(action="accept")
        return types.ElicitResult(action="decline")

    async def until_connected(self, what: str, ask: Callable[[], Awaitable[Any]]) -> Any:
        while True:
            try:
                result = await ask()
            except MCPError as e:
                link = connect_link_of_error(e) if e.code == URL_ELICITATION_REQUIRED else None
                if link is None:
                    self.summary["gateway_error"] = {"during": what, "code": e.code, "message": e.message}
                    raise Failure(f"{what}: the gateway answered error {e.code}: {e.message}") from e
                await self.user.connect(link, "error -32042", what)
                continue
            if getattr(result, "is_error", False):
                found = CONNECT_LINK.search(text_of(result))
                if found:
                    await self.user.connect(found.group(0), "tool result", what)
                    continue
            return result

    def client(self) -> Client:
        return Client(
            self.gateway.mcp_url,
            mode="legacy",
            elicitation_callback=self.on_elicitation if self.url_capable else None,
            client_info=types.Implementation(name="portcullis-conformance-auth-client", version="1"),
            cache=None,
        )

    async def run(self) -> None:
        # A -32042 that escapes `until_connected` came from the handshake: connect, reconnect.
        while True:
            try:
                await self.converse()
                return
            except BaseException as raised:  # noqa: BLE001 - task groups wrap what was raised
                e = innermost(raised)
                if not isinstance(e, MCPError):
                    raise e from None
                link = connect_link_of_error(e) if e.code == URL_ELICITATION_REQUIRED else None
                if link is None:
                    self.summary["gateway_error"] = {"during": "initialize", "code": e.code, "message": e.message}
                    raise Failure(f"initialize: the gateway answered error {e.code}: {e.message}") from e
                await self.user.connect(link, "error -32042", "initialize")

    async def converse(self) -> None:
        async with self.client() as client:
            tools = await self.until_connected("tools/list", client.list_tools)
            names = [t.name for t in tools.tools]
            self.summary["tools"] = names
            if TOOL not in names:
                raise Failure(f"tools/list through the gateway has no {TOOL!r}: {names}")
            result = await self.until_connected("tools/call", lambda: client.call_tool(TOOL, {}))
            self.summary["call"] = to_json(result)
            if result.is_error:
                self.summary["gateway_error"] = {"during": "tools/call", "tool_error": text_of(result)}
                raise Failure(f"tools/call {TOOL} came back as a tool error: {text_of(result)}")


def innermost(e: BaseException) -> BaseException:
    """What was raised, out of the exception groups anyio's task groups wrap it in."""
    while isinstance(e, BaseExceptionGroup) and e.exceptions:
        leaves = list(e.exceptions)
        e = next((x for x in leaves if isinstance(x, (Failure, MCPError))), leaves[0])
    return e


async def run_within(host: Host, deadline: float) -> None:
    seconds = max(1.0, deadline - time.monotonic())
    try:
        with anyio.fail_after(seconds):
            await host.run()
    except BaseException as raised:  # noqa: BLE001 - unwrapped and said plainly
        e = innermost(raised)
        if isinstance(e, TimeoutError):
            raise Failure(f"no answer from {TOOL} within the deadline ({seconds:.0f} s)") from None
        if isinstance(e, (Failure, KeyboardInterrupt, SystemExit)):
            raise e from None
        raise Failure(f"the MCP host failed: {type(e).__name__}: {e}") from None


def parse_context() -> dict[str, Any]:
    raw = os.environ.get("MCP_CONFORMANCE_CONTEXT")
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError as e:
        raise Failure(f"MCP_CONFORMANCE_CONTEXT is not JSON: {e}") from e
    return value if isinstance(value, dict) else {}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-url-elicitation", action="store_true", help="declare no elicitation capability")
    parser.add_argument("server_url", help="the suite's MCP server (given last by the suite)")
    opts = parser.parse_args()
    scenario = os.environ.get("MCP_CONFORMANCE_SCENARIO", "")
    summary: dict[str, Any] = {"scenario": scenario, "url_elicitation": not opts.no_url_elicitation}
    binary = os.environ.get("PORTCULLIS_BIN", "")
    deadline_s = float(os.environ.get("PORTCULLIS_CONFORMANCE_DEADLINE", "25"))
    deadline = time.monotonic() + deadline_s
    if not binary or not os.access(binary, os.X_OK):
        log("PORTCULLIS_BIN must name the portcullis binary")
        return 2
    if not loopback_url(opts.server_url):
        log(f"{opts.server_url} is not a loopback URL: test traffic stays on this machine")
        return 2

    # The suite stops a client that runs too long with SIGTERM: stop the gateway on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    code = 1
    with tempfile.TemporaryDirectory(prefix="portcullis-conformance-") as work:
        gateway: Gateway | None = None
        try:
            gateway = Gateway(binary, opts.server_url, scenario, parse_context(), work)
            summary["pre_registered"] = gateway.pre_registered
            summary["public_url"] = gateway.public_url
            gateway.start(deadline)
            host = Host(gateway, User(gateway, summary), not opts.no_url_elicitation, summary)
            anyio.run(run_within, host, deadline)
            code = 0
            log(f"{TOOL} answered through the gateway after {len(summary['connect_rounds'])} connect round(s)")
        except Failure as e:
            summary["failure"] = str(e)
            log(str(e))
        except Exception as e:  # noqa: BLE001 - a transport failure is a finding, said plainly
            summary["failure"] = f"{type(e).__name__}: {e}"
            log(f"the MCP host failed: {type(e).__name__}: {e}")
        finally:
            if gateway is not None:
                gateway.stop()
                if code != 0:
                    print(f"--- gateway log (tail)\n{gateway.log_tail()}", file=sys.stderr)
    summary["outcome"] = "ok" if code == 0 else "failed"
    print(json.dumps(summary), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
