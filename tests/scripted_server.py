"""A tiny loopback HTTP server that answers exactly what a test scripts, faults included.

Each connection is served by its own thread; each request gets the next scripted reply (or
the default one). A reply is `Reply(status, headers, body)`, raw bytes written as they are, or
an action: `RESET` (close with a TCP reset, no answer), `CLOSE` (close quietly, no answer),
`Stall(seconds)` (say nothing for that long, then close) or `Trickle(data, interval)` (send
bytes one at a time).
"""

from __future__ import annotations

import collections
import contextlib
import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Final

import attrs


@attrs.frozen
class Reply:
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    content_type: str | None = "application/json"

    def encode(self) -> bytes:
        lines = [f"HTTP/1.1 {self.status} Scripted"]
        names = {name.lower() for name, _ in self.headers}
        if self.content_type and "content-type" not in names:
            lines.append(f"Content-Type: {self.content_type}")
        if "content-length" not in names:
            lines.append(f"Content-Length: {len(self.body)}")
        lines.extend(f"{name}: {value}" for name, value in self.headers)
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


def json_reply(
    status: int,
    payload: Any,
    *,
    content_type: str = "application/json",
    headers: Iterable[tuple[str, str]] = (),
) -> Reply:
    return Reply(status, tuple(headers), json.dumps(payload).encode(), content_type)


@attrs.frozen
class Stall:
    seconds: float


@attrs.frozen
class Trickle:
    """Send `prefix` at once, then `data` one byte every `interval` seconds, then close."""

    data: bytes
    interval: float
    prefix: bytes = b""


RESET: Final = "reset"
CLOSE: Final = "close"

Action = Reply | bytes | Stall | Trickle | str | Callable[[socket.socket], None]


@attrs.frozen
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    header_lines: tuple[tuple[str, str], ...] = ()

    def count(self, name: str) -> int:
        """How many times a header name was sent, whatever its case."""
        return sum(1 for sent, _ in self.header_lines if sent.lower() == name.lower())

    def json(self) -> Any:
        return json.loads(self.body)


DEFAULT_REPLY: Final = json_reply(
    200, {"operationId": "op-default", "result": {"success": True, "recordId": "r-1"}}
)


class ScriptedServer:
    """`with ScriptedServer() as server: server.script(...); ... server.received`."""

    def __init__(self, default: Action = DEFAULT_REPLY) -> None:
        self.default = default
        self.received: list[Received] = []
        self.connections = 0
        self._script: collections.deque[Action] = collections.deque()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        self._accepter = threading.Thread(target=self._accept, daemon=True)

    def script(self, *actions: Action) -> None:
        with self._lock:
            self._script.extend(actions)

    def __enter__(self) -> ScriptedServer:
        self._accepter.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for sock in [self._listener, *self._conns]:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._accepter.join(timeout=5)
        self._listener.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            self._conns.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _next(self) -> Action:
        with self._lock:
            return self._script.popleft() if self._script else self.default

    def _serve(self, conn: socket.socket) -> None:
        buffer = b""
        with conn:
            while not self._stop.is_set():
                try:
                    request, buffer = self._read_request(conn, buffer)
                except OSError:
                    return
                if request is None:
                    return
                self.received.append(request)
                try:
                    if not self._answer(conn, self._next()):
                        return
                except OSError:  # the client went away first (it may, on purpose)
                    return

    def _read_request(self, conn: socket.socket, buffer: bytes) -> tuple[Received | None, bytes]:
        while b"\r\n\r\n" not in buffer:
            chunk = self._recv(conn)
            if chunk is None:
                continue
            if not chunk:
                return None, b""
            buffer += chunk
        head, _, rest = buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {}
        header_lines = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
            header_lines.append((name, value.strip()))
        length = int(headers.get("content-length", "0"))
        while len(rest) < length:
            chunk = self._recv(conn)
            if chunk is None:
                continue
            if not chunk:
                return None, b""
            rest += chunk
        received = Received(method, path, headers, rest[:length], tuple(header_lines))
        return received, rest[length:]

    def _recv(self, conn: socket.socket) -> bytes | None:
        if self._stop.is_set():
            return b""
        return conn.recv(65536)

    def _answer(self, conn: socket.socket, action: Action) -> bool:
        """Send one answer; False when the connection must end."""
        if isinstance(action, Reply):
            conn.sendall(action.encode())
            return True
        if isinstance(action, bytes):  # raw bytes end the connection once written
            conn.sendall(action)
            return False
        if isinstance(action, Stall):
            deadline = time.monotonic() + action.seconds
            while time.monotonic() < deadline and not self._stop.is_set():
                time.sleep(0.01)
            return False
        if isinstance(action, Trickle):
            conn.sendall(action.prefix)
            for index in range(len(action.data)):
                if self._stop.is_set():
                    break
                conn.sendall(action.data[index : index + 1])
                time.sleep(action.interval)
            return False
        if action == RESET:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        if action == CLOSE:
            return False
        if callable(action):
            action(conn)
            return False
        raise AssertionError(f"unknown action {action!r}")
