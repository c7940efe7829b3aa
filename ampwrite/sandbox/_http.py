"""A small, fast HTTP/1.1 server for the sandbox, on plain sockets and threads.

One thread accepts connections; each connection gets its own daemon thread that reads
requests in a keep-alive loop and writes each answer with a single ``sendall``. Accepted
sockets have ``TCP_NODELAY`` set. ``stop()`` wakes the accept loop, shuts down every open
connection (idle keep-alive clients included) and joins all threads before returning.

One bad client cannot take the server down (see ``Limits``): the request line and headers,
and then the body, must each arrive within a deadline (else 408 and close), an idle
keep-alive connection is closed after a while, connections over a cap are refused with a
503 at once and without a thread, and when ``accept()`` runs out of file descriptors the
accept loop backs off instead of spinning.
"""

from __future__ import annotations

import contextlib
import errno
import io
import math
import selectors
import socket
import struct
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Final, TypeAlias

__all__ = ["HttpRequest", "HttpResponse", "HttpServer", "Limits"]

MAX_LINE: Final = 65536
MAX_HEADERS: Final = 200
MAX_BODY: Final = 16 * 1024 * 1024

DEFAULT_HEADER_TIMEOUT: Final = 10.0
DEFAULT_BODY_TIMEOUT: Final = 30.0
DEFAULT_IDLE_TIMEOUT: Final = 60.0
DEFAULT_MAX_CONNECTIONS: Final = 256

_READ_BUFFER: Final = 65536
# accept() out of file descriptors: wait this long before trying again, doubling up to the
# most, so the accept loop neither spins nor stops (it carries on once descriptors free up)
_ACCEPT_BACKOFF_FIRST: Final = 0.01
_ACCEPT_BACKOFF_MOST: Final = 0.1
_OUT_OF_DESCRIPTORS: Final = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_REFUSAL_DRAIN: Final = 16  # reads of what a refused client already sent, so close sends FIN

_WEEKDAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS: Final = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)


@dataclass
class HttpRequest:
    """One parsed request. ``headers`` maps lower-cased names to values."""

    method: str
    target: str
    path: str
    query: str
    version: str
    header_list: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class HttpResponse:
    """An answer to write, or ``reset=True`` to drop the connection without one."""

    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    close: bool = False
    reset: bool = False


@dataclass(frozen=True)
class Limits:
    """How long the server waits for a client, and how many clients it serves at once.

    ``header_timeout``: seconds for the request line and headers to arrive, counted from
    the request's first byte. ``body_timeout``: seconds for the whole body to arrive after
    the headers. Both bound the total, however slowly the bytes trickle in; when one runs
    out the server answers 408 and closes the connection. ``idle_timeout``: seconds a
    keep-alive connection may wait for the first byte of its next request (or a new
    connection for its first) before it is closed without an answer. ``max_connections``:
    connections open at once; one more is answered 503 and closed at once.
    """

    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    max_connections: int = DEFAULT_MAX_CONNECTIONS

    def __post_init__(self) -> None:
        for name in ("header_timeout", "body_timeout", "idle_timeout"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or value <= 0
            ):
                raise ValueError(f"{name} must be a finite number of seconds > 0, got {value!r}")
        count = self.max_connections
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"max_connections must be an integer >= 1, got {count!r}")


Handler = Callable[[HttpRequest], HttpResponse]
ErrorResponder = Callable[[int, str], HttpResponse]


class _ProtocolError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _ReadTimeout(_ProtocolError):
    """A read waited past the connection's deadline; answered 408."""

    def __init__(self, message: str) -> None:
        super().__init__(408, message)


class _DeadlineSocketIO(io.RawIOBase):
    """The socket reads under a connection's buffered reader, each one waiting only until
    the current deadline: a client that stalls, or trickles a byte at a time, cannot hold
    its connection past it. Closing this object leaves the socket open."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self._sock = sock
        self._deadline = 0.0
        self._late = ""

    def expect(self, what: str, seconds: float) -> None:
        """Reads from now on must bring ``what`` within ``seconds`` in all."""
        self._deadline = time.monotonic() + seconds
        self._late = f"{what} did not arrive within {seconds:g} s"

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:  # any writable buffer, as socket.recv_into takes
        # past the deadline (a busy thread can get here late) take only what has arrived
        self._sock.settimeout(max(0.0, self._deadline - time.monotonic()))
        try:
            return self._sock.recv_into(buffer)
        except (TimeoutError, BlockingIOError):
            raise _ReadTimeout(self._late) from None


_Reader: TypeAlias = "io.BufferedReader[_DeadlineSocketIO]"  # a connection's reads


def _send(sock: socket.socket, data: bytes) -> None:
    sock.settimeout(None)  # reads leave a deadline's timeout on the socket; writes block
    sock.sendall(data)


_date_cache: tuple[int, str] = (0, "")


def _http_date() -> str:
    global _date_cache
    now = int(time.time())
    cached_at, text = _date_cache
    if cached_at != now:
        t = time.gmtime(now)
        text = (
            f"{_WEEKDAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
        )
        _date_cache = (now, text)
    return text


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def encode_response(response: HttpResponse, *, keep_alive: bool, http10: bool) -> bytes:
    """Status line, headers and body as one byte string."""
    lines = [
        f"HTTP/1.1 {response.status} {_reason(response.status)}",
        f"Date: {_http_date()}",
        "Server: ampwrite-sandbox",
        f"Content-Length: {len(response.body)}",
    ]
    if response.content_type is not None:
        lines.append(f"Content-Type: {response.content_type}")
    lines.extend(f"{name}: {value}" for name, value in response.headers)
    if not keep_alive:
        lines.append("Connection: close")
    elif http10:
        lines.append("Connection: keep-alive")
    lines.append("\r\n")
    return "\r\n".join(lines).encode("latin-1") + response.body


class HttpServer:
    """Serve ``handler`` on ``(host, port)`` in background threads."""

    def __init__(
        self,
        host: str,
        port: int,
        handler: Handler,
        on_protocol_error: ErrorResponder,
        limits: Limits | None = None,
    ) -> None:
        self._handler = handler
        self._on_protocol_error = on_protocol_error
        self._limits = limits if limits is not None else Limits()
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, socktype, proto, _, address = infos[0]
        self._listener = socket.socket(family, socktype, proto)
        try:
            if hasattr(socket, "SO_REUSEADDR"):
                self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._listener.bind(address)
            self._listener.listen(128)
            self._listener.setblocking(False)
        except BaseException:
            self._listener.close()
            raise
        self.address: tuple[str, int] = self._listener.getsockname()[:2]
        self._wake_r, self._wake_w = socket.socketpair()
        self._lock = threading.Lock()
        self._connections: dict[int, tuple[socket.socket, threading.Thread]] = {}
        self._next_conn = 0
        self._stopping = threading.Event()
        self._accept_thread: threading.Thread | None = None

    @property
    def stopping(self) -> threading.Event:
        """Set once ``stop()`` begins; long waits in handlers should watch it."""
        return self._stopping

    def start(self) -> None:
        if self._accept_thread is not None:
            return
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name="ampwrite-sandbox-accept", daemon=True
        )
        self._accept_thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        if self._accept_thread is not None:
            self._accept_thread.join(timeout)
        self._listener.close()
        with self._lock:
            connections = list(self._connections.values())
        for sock, _ in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        for _, thread in connections:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._wake_r.close()
        self._wake_w.close()

    # -- accepting --------------------------------------------------------------------

    def _accept_loop(self) -> None:
        backoff = 0.0
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self._stopping.is_set():
                for key, _ in selector.select():
                    if key.fileobj is self._wake_r or self._stopping.is_set():
                        return
                    if self._accept_ready():
                        backoff = 0.0
                        continue
                    # the pending connection stays in the backlog: try again in a while
                    backoff = min(_ACCEPT_BACKOFF_MOST, 2 * backoff or _ACCEPT_BACKOFF_FIRST)
                    if self._stopping.wait(backoff):
                        return

    def _accept_ready(self) -> bool:
        """Accept the pending connections; False if out of file descriptors meanwhile."""
        while True:
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return True
            except OSError as error:
                return error.errno not in _OUT_OF_DESCRIPTORS
            with self._lock:
                full = len(self._connections) >= self._limits.max_connections
                if not full:
                    self._next_conn += 1
                    conn_id = self._next_conn
                    thread = threading.Thread(
                        target=self._serve_connection,
                        args=(conn_id, sock),
                        name=f"ampwrite-sandbox-conn-{conn_id}",
                        daemon=True,
                    )
                    self._connections[conn_id] = (sock, thread)
            if full:
                self._refuse(sock)
            else:
                sock.setblocking(True)
                thread.start()

    def _refuse(self, sock: socket.socket) -> None:
        """Answer 503 and close, without blocking the accept loop or starting a thread."""
        limit = self._limits.max_connections
        message = (
            f"the sandbox has too many open connections (at most {limit}); "
            "close idle connections or raise max_connections"
        )
        answer = encode_response(
            self._on_protocol_error(503, message), keep_alive=False, http10=False
        )
        with contextlib.suppress(OSError):
            sock.setblocking(False)
            sock.send(answer)  # a fresh socket's send buffer takes it whole
            for _ in range(_REFUSAL_DRAIN):  # unread bytes would turn close into a reset
                if not sock.recv(_READ_BUFFER):
                    break
        sock.close()

    # -- one connection ---------------------------------------------------------------

    def _serve_connection(self, conn_id: int, sock: socket.socket) -> None:
        sock_io = _DeadlineSocketIO(sock)
        rfile = io.BufferedReader(sock_io, _READ_BUFFER)
        try:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while not self._stopping.is_set():
                if not self._serve_one(sock, sock_io, rfile):
                    break
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                rfile.close()
            with contextlib.suppress(OSError):
                sock.close()
            with self._lock:
                self._connections.pop(conn_id, None)

    def _serve_one(self, sock: socket.socket, sock_io: _DeadlineSocketIO, rfile: _Reader) -> bool:
        """Answer one request; return whether the connection stays open."""
        try:
            request = self._read_request(sock, sock_io, rfile)
        except _ProtocolError as error:
            response = self._on_protocol_error(error.status, error.message)
            _send(sock, encode_response(response, keep_alive=False, http10=False))
            return False
        if request is None:
            return False
        http10 = request.version == "HTTP/1.0"
        connection = request.headers.get("connection", "").lower()
        keep_alive = "keep-alive" in connection if http10 else "close" not in connection
        try:
            response = self._handler(request)
        except Exception:  # a bug in the sandbox: answer rather than hang the client
            detail = traceback.format_exc(limit=5)
            response = self._on_protocol_error(500, f"sandbox internal error\n{detail}")
        if response.reset:
            # An abortive close: the client sees a connection reset and no answer.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        keep_alive = keep_alive and not response.close and not self._stopping.is_set()
        _send(sock, encode_response(response, keep_alive=keep_alive, http10=http10))
        return keep_alive

    def _read_request(
        self, sock: socket.socket, sock_io: _DeadlineSocketIO, rfile: _Reader
    ) -> HttpRequest | None:
        limits = self._limits
        sock_io.expect("a request", limits.idle_timeout)
        try:
            if not rfile.peek(1):
                return None
        except _ReadTimeout:
            return None  # idle: no request begun, so none to answer
        sock_io.expect("the request line and headers", limits.header_timeout)
        line = rfile.readline(MAX_LINE + 1)
        while line in (b"\r\n", b"\n"):
            line = rfile.readline(MAX_LINE + 1)
        if not line:
            return None
        if len(line) > MAX_LINE:
            raise _ProtocolError(414, "request line too long")
        parts = line.decode("latin-1").rstrip("\r\n").split(" ")
        if len(parts) != 3 or not parts[0] or not parts[1]:
            raise _ProtocolError(400, "malformed request line")
        method, target, version = parts
        if version not in ("HTTP/1.1", "HTTP/1.0"):
            raise _ProtocolError(505, f"unsupported HTTP version {version!r}")
        header_list: list[tuple[str, str]] = []
        headers: dict[str, str] = {}
        while True:
            raw = rfile.readline(MAX_LINE + 1)
            if not raw:
                return None
            if raw in (b"\r\n", b"\n"):
                break
            if len(raw) > MAX_LINE or len(header_list) >= MAX_HEADERS:
                raise _ProtocolError(431, "request header fields too large")
            name, sep, value = raw.decode("latin-1").partition(":")
            name = name.strip()
            if not sep or not name or " " in name or "\t" in name:
                raise _ProtocolError(400, "malformed header line")
            value = value.strip()
            header_list.append((name, value))
            lower = name.lower()
            headers[lower] = f"{headers[lower]}, {value}" if lower in headers else value
        sock_io.expect("the request body", limits.body_timeout)
        body = self._read_body(sock, rfile, headers)
        path, _, query = target.partition("?")
        return HttpRequest(method, target, path, query, version, header_list, headers, body)

    def _read_body(self, sock: socket.socket, rfile: _Reader, headers: dict[str, str]) -> bytes:
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        length_text = headers.get("content-length")
        length = 0
        if not chunked and length_text is not None:
            if not length_text.isdigit():
                raise _ProtocolError(400, "invalid Content-Length header")
            length = int(length_text)
            if length > MAX_BODY:
                raise _ProtocolError(413, f"request body larger than {MAX_BODY} bytes")
        if (chunked or length) and headers.get("expect", "").lower() == "100-continue":
            _send(sock, b"HTTP/1.1 100 Continue\r\n\r\n")
        if chunked:
            return self._read_chunked(rfile)
        if not length:
            return b""
        body = rfile.read(length)
        if len(body) != length:
            raise OSError("client closed the connection mid-body")
        return body

    def _read_chunked(self, rfile: _Reader) -> bytes:
        body = bytearray()  # one buffer: tiny chunks must not cost an object each
        while True:
            size_line = rfile.readline(MAX_LINE + 1)
            if not size_line:
                raise OSError("client closed the connection mid-body")
            size_text = size_line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise _ProtocolError(400, "malformed chunk size") from None
            if size < 0:
                raise _ProtocolError(400, "malformed chunk size")
            if size == 0:
                while rfile.readline(MAX_LINE + 1) not in (b"\r\n", b"\n", b""):
                    pass  # trailers are read and ignored
                return bytes(body)
            if len(body) + size > MAX_BODY:
                raise _ProtocolError(413, f"request body larger than {MAX_BODY} bytes")
            piece = rfile.read(size)
            if len(piece) != size:
                raise OSError("client closed the connection mid-body")
            body += piece
            rfile.readline(MAX_LINE + 1)
