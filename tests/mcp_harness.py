"""Driving `ampwrite mcp` as a real subprocess with the `mcp` package's own client, over stdio
or streamable HTTP. Import it only after `pytest.importorskip("mcp")`."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import IO, Any, TextIO, cast

from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

_SCRIPT = pathlib.Path(sys.executable).with_name("ampwrite")
COMMAND: tuple[str, ...] = (
    (str(_SCRIPT),)
    if _SCRIPT.exists()
    else (sys.executable, "-c", "import sys; from ampwrite.cli import main; sys.exit(main())")
)
"""The installed `ampwrite` command (or the same entry point, where no script was installed)."""

SANDBOX_LINE = re.compile(r"sandbox at (http://[^ ]+)/v1")
HTTP_LINE = re.compile(r"at (http://[^ ]+/mcp) ")


def command(*args: str) -> list[str]:
    return [*COMMAND, "mcp", *args]


@contextlib.asynccontextmanager
async def stdio_session(
    args: Sequence[str], env: Mapping[str, str], errlog: IO[str]
) -> AsyncIterator[ClientSession]:
    """A session with `ampwrite mcp ARGS` started over stdio (its stderr to `errlog`); the
    child gets only the client's default environment and `env`."""
    head, *rest = command(*args)
    params = StdioServerParameters(command=head, args=rest, env=dict(env))
    async with (
        stdio_client(params, errlog=cast(TextIO, errlog)) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


@contextlib.contextmanager
def http_server(
    args: Sequence[str], env: Mapping[str, str], errlog: IO[str], timeout: float = 30.0
) -> Iterator[str]:
    """`ampwrite mcp --transport http --port 0 ARGS` running; yields its /mcp URL."""
    child_env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AMPERSAND_")  # only what the test gives
    }
    child_env.update(env)
    process = subprocess.Popen(
        command("--transport", "http", "--port", "0", *args),
        stdin=subprocess.DEVNULL,
        stdout=errlog,
        stderr=errlog,
        env=child_env,
    )
    try:
        url = wait_for_line(errlog.name, HTTP_LINE, timeout, process)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for_line(
    path: str, pattern: re.Pattern[str], timeout: float, process: subprocess.Popen[Any] | None
) -> str:
    """The first group of `pattern` once it appears in the file at `path`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = pattern.search(pathlib.Path(path).read_text(encoding="utf-8"))
        if found:
            return found.group(1)
        if process is not None and process.poll() is not None:
            break
        time.sleep(0.05)
    text = pathlib.Path(path).read_text(encoding="utf-8")
    raise AssertionError(f"no line matching {pattern.pattern!r} in:\n{text}")


@contextlib.asynccontextmanager
async def http_session(url: str) -> AsyncIterator[ClientSession]:
    async with (
        streamable_http_client(url) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def payload(result: types.CallToolResult) -> dict[str, Any]:
    """The structured content of a tool result, checked to equal its JSON text."""
    assert isinstance(result.structured_content, dict), result
    (block,) = result.content
    assert isinstance(block, types.TextContent)
    assert json.loads(block.text) == result.structured_content
    return result.structured_content


def result_text(result: types.CallToolResult) -> str:
    return "".join(b.text for b in result.content if isinstance(b, types.TextContent))


def sandbox_get(base_url: str, path: str) -> Any:
    """GET one of the sandbox's inspection endpoints (`/_sandbox/...`)."""
    with urllib.request.urlopen(base_url + path, timeout=10) as answer:
        return json.loads(answer.read())
