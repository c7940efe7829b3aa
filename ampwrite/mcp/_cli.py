"""`ampwrite mcp`: its flags and what runs it. Importing this module does not import the `mcp`
package, so `ampwrite --help` works without the extra; running the command without it exits 2
saying how to install it."""

from __future__ import annotations

import argparse
import importlib.util
import ipaddress
import logging
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from ..core import Core
    from ._tools import Tool, ToolSettings

__all__ = ["INSTALL_HINT", "add_arguments", "run"]

INSTALL_HINT: Final = 'ampwrite mcp needs the mcp extra: pip install "ampwrite[mcp]"'
DEFAULT_HTTP_PORT: Final = 8765
EXIT_OK: Final = 0
EXIT_USAGE: Final = 2

EPILOG: Final = """The API key comes from --api-key or AMPERSAND_API_KEY (prefer the variable: a
flag is visible to other users of the machine), the servers from --server-url/--platform-url or
AMPERSAND_SERVER_URL/AMPERSAND_PLATFORM_URL. With --sandbox the tools write into an embedded
sandbox (no account needed); its address is printed on stderr. Nothing but the protocol is
written to stdout; log lines go to stderr and never hold the key.

exit status: 0 the client closed the connection (stdio) or the server was stopped,
2 usage error or the mcp extra is not installed, 130 interrupted"""


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0 <= value <= 1_000_000:
        raise argparse.ArgumentTypeError(f"expected seconds from 0 to 1,000,000, got {text!r}")
    return value


def _positive_seconds(text: str) -> float:
    value = _seconds(text)
    if value == 0:
        raise argparse.ArgumentTypeError("expected seconds above 0, got 0")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `ampwrite mcp`."""
    from ..sandbox._cli import add_fault_arguments
    from ._repeats import DEFAULT_REPEAT_WINDOW
    from ._tools import DEFAULT_MAX_WAIT, TOOL_NAMES

    parser.add_argument(
        "--transport",
        choices=("stdio", "http"),
        default="stdio",
        help="stdio (default: the client starts this command) or streamable HTTP",
    )
    parser.add_argument("--host", default="127.0.0.1", help="http: address (default: 127.0.0.1)")
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_HTTP_PORT,
        help=f"http: port, 0 for any free one (default: {DEFAULT_HTTP_PORT}); served at /mcp",
    )
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="http: allow a --host other than loopback (anyone who reaches it writes with your "
        "key: put it behind your own authentication)",
    )
    parser.add_argument(
        "--tool",
        action="append",
        choices=TOOL_NAMES,
        metavar="NAME",
        help=f"expose only this tool; repeatable ({', '.join(TOOL_NAMES)})",
    )
    parser.add_argument(
        "--read-only", action="store_true", help="expose no tool that writes (no write_records)"
    )
    parser.add_argument(
        "--max-wait",
        type=_positive_seconds,
        default=DEFAULT_MAX_WAIT,
        help=f"the most seconds one wait_for_operation call waits (default: {DEFAULT_MAX_WAIT:g})",
    )
    parser.add_argument(
        "--retry-time",
        type=_seconds,
        default=60.0,
        help="seconds for which 429/503 answers and connections never made are retried "
        "(default: 60; 0: no retries)",
    )
    parser.add_argument(
        "--repeat-window",
        type=_seconds,
        default=DEFAULT_REPEAT_WINDOW,
        help="seconds during which a create identical to one already sent is refused unless "
        f"the call says allowRepeat (default: {DEFAULT_REPEAT_WINDOW:g}; 0: never refused)",
    )
    parser.add_argument("--api-key", help="API key (default: $AMPERSAND_API_KEY)")
    parser.add_argument("--server-url", help="Write API URL (default: $AMPERSAND_SERVER_URL)")
    parser.add_argument(
        "--platform-url", help="Platform API URL (default: $AMPERSAND_PLATFORM_URL)"
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per attempt")
    parser.add_argument(
        "--sandbox",
        action="store_true",
        help="write into an embedded sandbox instead of the real API (no account needed)",
    )
    parser.add_argument(
        "--sandbox-port",
        type=int,
        default=0,
        help="--sandbox: the sandbox's port (default: any free one)",
    )
    add_fault_arguments(parser)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _log_to_stderr() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("ampwrite mcp: %(levelname)s %(message)s"))
    logger = logging.getLogger("ampwrite.mcp")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def run(ns: argparse.Namespace) -> int:
    """Serve the tools as `ns` says until the client or a signal ends it."""
    if importlib.util.find_spec("mcp") is None:
        print(INSTALL_HINT, file=sys.stderr)
        return EXIT_USAGE
    label = "ampwrite mcp"
    if ns.sandbox and (ns.server_url or ns.platform_url):
        print(f"{label}: --sandbox takes no --server-url or --platform-url", file=sys.stderr)
        return EXIT_USAGE
    if ns.transport == "http" and not ns.allow_remote and not _is_loopback(ns.host):
        print(
            f"{label}: refusing to listen on {ns.host}: anyone who reaches it could write with "
            "your key; use a loopback address, or --allow-remote behind your own authentication",
            file=sys.stderr,
        )
        return EXIT_USAGE

    from ..core import Core, check_api_key
    from ..errors import AmpWriteError
    from ..retries import RetryConfig
    from ._tools import ToolSettings, select_tools

    tools = select_tools(ns.tool, read_only=ns.read_only)
    if not tools:
        print(f"{label}: no tool left to serve (--tool and --read-only)", file=sys.stderr)
        return EXIT_USAGE
    retries = (
        RetryConfig.none() if ns.retry_time == 0 else RetryConfig(max_elapsed_time=ns.retry_time)
    )
    settings = ToolSettings(max_wait=ns.max_wait, repeat_window=ns.repeat_window)

    sandbox = None
    server_url, platform_url, api_key = ns.server_url, ns.platform_url, ns.api_key
    if ns.sandbox:
        from ..sandbox import DEFAULT_API_KEY, Sandbox
        from ..sandbox._cli import faults_from_args

        try:
            faults = faults_from_args(ns)
        except ValueError as exc:
            print(f"{label}: {exc}", file=sys.stderr)
            return EXIT_USAGE
        api_key = api_key or os.environ.get("AMPERSAND_API_KEY") or DEFAULT_API_KEY
        checked_key = check_api_key(api_key)  # a key Core would refuse: said before any sandbox
        if isinstance(checked_key, AmpWriteError):
            print(f"{label}: {checked_key}", file=sys.stderr)
            return EXIT_USAGE
        sandbox = Sandbox(port=ns.sandbox_port, api_key=api_key, faults=faults)
        try:
            sandbox.start()
        except OSError as exc:
            print(f"{label}: cannot start the sandbox: {exc}", file=sys.stderr)
            return EXIT_USAGE
        server_url = platform_url = sandbox.url
        print(
            f"{label}: sandbox at {sandbox.url} (stored records: {sandbox.base_url}"
            "/_sandbox/records)",
            file=sys.stderr,
            flush=True,
        )
    try:
        try:
            core = Core(
                api_key,
                server_url=server_url,
                platform_url=platform_url,
                timeout=ns.timeout,
                retries=retries,
            )
        except AmpWriteError as exc:
            print(f"{label}: {exc}", file=sys.stderr)
            return EXIT_USAGE
        with core:
            return _serve(ns, core, tools, settings)
    finally:
        if sandbox is not None:
            sandbox.stop()


def _serve(
    ns: argparse.Namespace, core: Core, tools: Sequence[Tool], settings: ToolSettings
) -> int:
    from . import _server

    _log_to_stderr()
    server = _server.build_server(core, tools, settings)
    names = ", ".join(tool.name for tool in tools)
    label = "ampwrite mcp"
    if ns.transport == "stdio":
        print(f"{label}: serving {names} on stdio ({core.server_url})", file=sys.stderr, flush=True)
        _server.run(_server.serve_stdio, server)
        return EXIT_OK
    try:
        listener = _server.bind(ns.host, ns.port)
    except OSError as exc:
        print(f"{label}: cannot listen on {ns.host}:{ns.port}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    host, port = listener.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(
        f"{label}: serving {names} at http://{shown}:{port}/mcp ({core.server_url})",
        file=sys.stderr,
        flush=True,
    )
    with listener:
        _server.run(_server.serve_http, server, listener, ns.host)
    return EXIT_OK
