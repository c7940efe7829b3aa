"""A minimal Write API stand-in for the benchmarks, run in its own process.

It answers each write with a well-formed 200 (keep-alive, one send): a batch answer with one
successful result per record of the batch, or a single-record answer, after `--latency`
seconds (optional); and any GET with a finished write's operation, as the Platform API would.
It stores nothing, so a benchmark measures the client.
`python benchmarks/_server.py` prints its port on the first line and serves until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Coroutine, Iterator
from itertools import count
from typing import Any, Final

_IDS = count(1)
OPERATION = {
    "projectId": "123e4567-e89b-12d3-a456-426614174000",
    "integrationId": "113e9685-9a51-42cc-8662-9d9725b17f14",
    "installationId": "66438162-5299-4669-a41d-85c5a3b1a83e",
    "configId": "a1b2c3d4-e5f6-4789-a012-3456789abcde",
    "actionType": "write",
    "status": "success",
    "id": "op-bench",
    "result": "Batch write completed (2 succeeded, 0 failed)",
    "metadata": {"objects": ["contact"], "successfulRecordIds": ["001xx01", "001xx02"]},
    "createTime": "2023-07-13T22:10:00.000000Z",
}
_OPERATION_BODY = json.dumps(OPERATION, separators=(",", ":")).encode()


def _framed(data: bytes) -> bytes:
    head = (
        f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


_OPERATION_ANSWER: Final = _framed(_OPERATION_BODY)
_SINGLE_ANSWER: Final = _framed(
    b'{"operationId":"op-bench","result":{"success":true,"recordId":"r0"}}'
)


def _answer(method: bytes, body: bytes) -> bytes:
    """The answer to a request: made once for a GET or a single record (the server then
    costs as little as it can, so that what a benchmark measures is the client)."""
    if method == b"GET":
        return _OPERATION_ANSWER
    batch = None
    if b'"batch"' in body:
        try:
            request = json.loads(body)
        except ValueError:
            request = {}
        batch = request.get("batch") if isinstance(request, dict) else None
    if not isinstance(batch, list):
        return _SINGLE_ANSWER
    results = [{"success": True, "recordId": f"r{next(_IDS)}"} for _ in batch]
    payload = {
        "operationId": "op-bench",
        "successCount": len(results),
        "failureCount": 0,
        "results": results,
    }
    return _framed(json.dumps(payload, separators=(",", ":")).encode())


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Coroutine[Any, Any, None]]


def _handler(latency: float) -> Handler:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                body = await reader.readexactly(length) if length else b""
                if latency:
                    await asyncio.sleep(latency)
                writer.write(_answer(head.split(b" ", 1)[0], body))
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    return serve


async def _main(latency: float) -> None:
    server = await asyncio.start_server(_handler(latency), "127.0.0.1", 0, limit=1 << 24)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


@contextlib.contextmanager
def answering_server(latency: float = 0.0) -> Iterator[str]:
    """Run the server in a child process; yield its base URL (with /v1)."""
    script = os.path.abspath(__file__)
    process = subprocess.Popen(
        [sys.executable, script, "--latency", str(latency)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()


@contextlib.contextmanager
def sandbox_in_process(*options: str) -> Iterator[tuple[str, str]]:
    """Run `python -m ampwrite.sandbox` (with extra command-line options) in a child process;
    yield its URL (with /v1) and API key."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": repo, "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "-m", "ampwrite.sandbox", "--port", "0", "--api-key", "bench-key"]
    process = subprocess.Popen([*argv, *options], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        if "listening on " not in first:
            raise RuntimeError(f"the sandbox process did not start: {first!r}")
        yield first.split("listening on ", 1)[1].strip(), "bench-key"
    finally:
        process.terminate()
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(args.latency))
