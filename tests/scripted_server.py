"""A tiny loopback HTTP server that answers exactly what a test scripts, faults included.

Each connection is served by its own thread; each request gets the next scripted reply (or
the default one). A reply is `Reply(status, headers, body)`, raw bytes written as they are, or
an action: `RESET` (close with a TCP reset, no answer), `CLOSE` (close quietly, no answer),
`Stall(seconds)` (say nothing for that long, then close), `Trickle(data, interval)` (send
bytes one at a time), `Delayed(parts, delay)` (raw parts, `delay` apart, then close),
`KeepOpen(data)` (raw bytes, the connection kept) or `Framed(...)` (an answer in a chosen
framing: Content-Length, chunked or read until close, `Connection: close`, HTTP/1.0, the body
after a delay). With `tls=True`
the server speaks HTTPS with the certificate in tests/tls (`CA_FILE` verifies it).
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import socket
import ssl
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
    delay: float = 0.0
    """Seconds to wait before answering."""

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


FRAMINGS: Final = ("length", "chunked", "until-close")


@attrs.frozen
class Framed:
    """An answer framed as `framing` says: "length" (Content-Length), "chunked" or
    "until-close" (neither: the body ends when the server closes). `close` adds
    `Connection: close`; `http10` answers as HTTP/1.0; the body follows the headers after
    `delay` seconds (in two writes, `delay` apart, when chunked). `declared` adds a
    `Content-Length` of that value whatever the framing (a chunked answer carrying one is
    framed two ways at once)."""

    status: int
    body: bytes
    framing: str = "length"
    close: bool = False
    http10: bool = False
    delay: float = 0.0
    content_type: str = "application/json"
    declared: int | None = None

    @property
    def keeps_alive(self) -> bool:
        return not (self.close or self.http10 or self.framing == "until-close")

    def send(self, conn: socket.socket) -> None:
        version = "HTTP/1.0" if self.http10 else "HTTP/1.1"
        lines = [f"{version} {self.status} Framed", f"Content-Type: {self.content_type}"]
        if self.framing == "length":
            lines.append(f"Content-Length: {len(self.body)}")
        elif self.framing == "chunked":
            lines.append("Transfer-Encoding: chunked")
        if self.declared is not None:
            lines.append(f"Content-Length: {self.declared}")
        if self.close:
            lines.append("Connection: close")
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        if self.framing != "chunked":
            time.sleep(self.delay)
            conn.sendall(self.body)
            return
        half = len(self.body) // 2
        for part in (self.body[:half], self.body[half:]):
            time.sleep(self.delay)
            conn.sendall(f"{len(part):x}\r\n".encode() + part + b"\r\n")
        conn.sendall(b"0\r\n\r\n")


TLS_DIR: Final = os.path.join(os.path.dirname(__file__), "tls")
CA_FILE: Final = os.path.join(TLS_DIR, "cert.pem")
"""The self-signed certificate of `ScriptedServer(tls=True)` (127.0.0.1 and localhost)."""


def _server_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(CA_FILE, os.path.join(TLS_DIR, "key.pem"))
    return context


@attrs.frozen
class Delayed:
    """Send `parts` one after another, `delay` seconds apart, then close."""

    parts: tuple[bytes, ...]
    delay: float = 0.0


@attrs.frozen
class KeepOpen:
    """Write `data` as it is and keep serving the connection: the next request on it gets the
    next scripted action (bytes past a well-framed answer become the start of the next one)."""

    data: bytes


@attrs.frozen
class Stall:
    seconds: float


@attrs.frozen
class BelowTLS:
    """Write `data` to the socket itself, under the TLS layer of an HTTPS connection (bytes
    no TLS client can decrypt), then close."""

    data: bytes = b"\x17\x03\x03\x00\x10not a TLS record"


@attrs.frozen
class Trickle:
    """Send `prefix` at once, then `data` one byte every `interval` seconds, then close."""

    data: bytes
    interval: float
    prefix: bytes = b""


RESET: Final = "reset"
CLOSE: Final = "close"

Action = (
    Reply
    | Framed
    | Delayed
    | bytes
    | KeepOpen
    | Stall
    | Trickle
    | BelowTLS
    | str
    | Callable[[socket.socket], None]
)


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


def _closed_by_client(conn: socket.socket) -> bool:
    """Whether the client has closed a plain connection (a TLS one is never checked)."""
    if isinstance(conn, ssl.SSLSocket):
        return False
    try:
        return conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


class ScriptedServer:
    """`with ScriptedServer() as server: server.script(...); ... server.received`."""

    def __init__(self, default: Action = DEFAULT_REPLY, *, tls: bool = False) -> None:
        self.default = default
        self._tls = _server_context() if tls else None
        self.received: list[Received] = []
        self.connections = 0
        self.open_connections = 0
        """Connections being served now: a connection the client closed ends here too."""
        self.most_in_flight = 0
        """The most requests that were being answered at once."""
        self._in_flight = 0
        self._script: collections.deque[Action] = collections.deque()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}/v1"
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
            if self._tls is not None:
                try:
                    conn.settimeout(5)
                    conn = self._tls.wrap_socket(conn, server_side=True)
                    conn.settimeout(None)
                    self._conns.append(conn)  # the socket it wrapped is detached now
                except OSError:
                    conn.close()
                    continue
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _next(self) -> Action:
        with self._lock:
            return self._script.popleft() if self._script else self.default

    def _serve(self, conn: socket.socket) -> None:
        with self._lock:
            self.open_connections += 1
        try:
            self._serve_requests(conn)
        finally:
            with self._lock:
                self.open_connections -= 1

    def _serve_requests(self, conn: socket.socket) -> None:
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
                with self._lock:
                    self._in_flight += 1
                    self.most_in_flight = max(self.most_in_flight, self._in_flight)
                try:
                    if not self._answer(conn, self._next()):
                        return
                except OSError:  # the client went away first (it may, on purpose)
                    return
                finally:
                    with self._lock:
                        self._in_flight -= 1

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
            if action.delay:
                time.sleep(action.delay)
            conn.sendall(action.encode())
            return True
        if isinstance(action, Framed):
            action.send(conn)
            return action.keeps_alive
        if isinstance(action, Delayed):
            for index, part in enumerate(action.parts):
                if index:
                    time.sleep(action.delay)
                conn.sendall(part)
            return False
        if isinstance(action, BelowTLS):
            os.write(conn.fileno(), action.data)
            return False
        if isinstance(action, KeepOpen):
            conn.sendall(action.data)
            return True
        if isinstance(action, bytes):  # raw bytes end the connection once written
            conn.sendall(action)
            return False
        if isinstance(action, Stall):
            deadline = time.monotonic() + action.seconds
            while time.monotonic() < deadline and not self._stop.is_set():
                if _closed_by_client(conn):
                    break
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
