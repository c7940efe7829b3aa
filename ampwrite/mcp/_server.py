"""The MCP server: the tools of `_tools` on the `mcp` package's low-level `Server` (which takes
each tool's JSON Schema as it is), served over stdio or streamable HTTP.

Every call is answered with a result: a success as structured content (and the same JSON as
text, for clients that read only text), anything else as a tool error (`isError`) with a
structured body. A tool that raised (a defect) is answered as an `InternalError` tool error,
logged in one line without a traceback; the server goes on. The API key is removed from every
answer and never logged.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Sequence
from typing import Any, Final

import anyio
from mcp import types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

from .._answers import REDACTED
from .._version import __version__
from ..core import Core
from ..errors import AmpWriteError
from ._tools import TOOLS, Outcome, Tool, ToolContext, ToolSettings

__all__ = ["INSTRUCTIONS", "build_server", "call_tool", "serve_http", "serve_stdio"]

log = logging.getLogger("ampwrite.mcp")

SERVER_NAME: Final = "ampwrite"
INSTRUCTIONS: Final = (
    "Tools over Ampersand's Write API: write_records creates, updates or deletes records in a "
    "customer's SaaS (one record, or a batch of 1 to 100); validate_write checks a write "
    "without sending it; an asynchronous write answers an operationId to follow with "
    "wait_for_operation, get_operation and list_operation_logs. Every error is a tool error "
    "with a structured body: `issues` name the invalid fields (nothing was sent), "
    "`mayHaveBeenWritten` says whether a failed write may still have happened, `next` says "
    "what to do."
)


def _secret(core: Core) -> str | None:
    key = core.api_key()
    return None if isinstance(key, AmpWriteError) else key


def _redacted(payload: dict[str, Any], secret: str | None) -> tuple[dict[str, Any], str]:
    """The payload and its JSON text, with no copy of the key left in either."""
    text = json.dumps(payload, ensure_ascii=False, allow_nan=False, default=str)
    if secret and secret in text:
        text = text.replace(secret, REDACTED)
        payload = json.loads(text)
    return payload, text


async def call_tool(
    ctx: ToolContext, tools: Sequence[Tool], name: str, arguments: object
) -> Outcome:
    """Run the tool `name` with `arguments`; never raises (but for cancellation)."""
    tool = next((tool for tool in tools if tool.name == name), None)
    if tool is None:
        names = ", ".join(tool.name for tool in tools) or "none"
        body: dict[str, Any] = {
            "error": "UnknownTool",
            "message": f"no tool named {name!r} on this server; its tools: {names}",
            "next": "Call one of the tools this server lists.",
        }
        return Outcome(body, True)
    try:
        return await tool.run(ctx, arguments)
    except Exception as exc:  # a defect: answered and logged, never a crash or a traceback
        log.error("tool %s failed: %s", name, type(exc).__name__)
        body = {
            "error": "InternalError",
            "message": f"the tool failed unexpectedly ({type(exc).__name__})",
            "mayHaveBeenWritten": tool.writes,
            "next": "Report this to the server's operator"
            + ("; check the records before writing again." if tool.writes else "."),
        }
        return Outcome(body, True)


def _describe(outcome: Outcome) -> str:
    payload = outcome.payload
    if outcome.is_error:
        status = payload.get("status")
        return f"error {payload.get('error')}" + (f" (status {status})" if status else "")
    for key in ("operationId", "id"):
        if key in payload:
            return f"ok ({key} {payload[key]})"
    return "ok"


def build_server(
    core: Core, tools: Sequence[Tool] = TOOLS, settings: ToolSettings | None = None
) -> Server[Any]:
    """An MCP server whose tools are `tools` over `core`."""
    ctx = ToolContext(core, settings)
    exposed = tuple(tools)
    listing = [
        types.Tool(
            name=tool.name,
            title=tool.title,
            description=tool.describe(ctx),
            input_schema=tool.input_schema(ctx),
            annotations=types.ToolAnnotations(title=tool.title, **_hints(tool)),
        )
        for tool in exposed
    ]

    async def list_tools(
        request: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=listing)

    async def on_call_tool(
        request: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        outcome = await call_tool(ctx, exposed, params.name, params.arguments)
        payload, text = _redacted(outcome.payload, _secret(core))
        log.info("tool %s: %s", params.name, _describe(outcome))
        return types.CallToolResult(
            content=[types.TextContent(text=text)],
            structured_content=payload,
            is_error=outcome.is_error,
        )

    return Server(
        SERVER_NAME,
        version=__version__,
        title="Ampersand Write API (ampwrite)",
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=on_call_tool,
    )


def _hints(tool: Tool) -> dict[str, bool]:
    names = {
        "readOnlyHint": "read_only_hint",
        "destructiveHint": "destructive_hint",
        "idempotentHint": "idempotent_hint",
        "openWorldHint": "open_world_hint",
    }
    return {names[key]: value for key, value in tool.annotations.items()}


async def serve_stdio(server: Server[Any]) -> None:
    """Serve one client on stdin/stdout until it closes them."""
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (`host`, `port`); port 0 picks a free one."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    listener = socket.socket(family, kind, proto)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(address)
        listener.listen(128)
    except OSError:
        listener.close()
        raise
    listener.setblocking(False)
    return listener


async def serve_http(server: Server[Any], listener: socket.socket, host: str) -> None:
    """Serve streamable HTTP at `/mcp` on `listener` until cancelled."""
    import uvicorn  # a dependency of the mcp package; loaded only for HTTP

    app = server.streamable_http_app(host=host)
    config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
    await uvicorn.Server(config).serve(sockets=[listener])


def run(coroutine_function: Any, *args: Any) -> None:
    """Run a serve function on an asyncio event loop (the loop `ampwrite.aio` needs)."""
    anyio.run(coroutine_function, *args, backend="asyncio")
