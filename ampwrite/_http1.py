"""HTTP/1.1 on a socket of ampwrite's own, for the base URLs reached straight (ampwrite's own
session and no proxy: a `Direct`), from a thread (`SocketTransport.send`) or from a coroutine
(`ampwrite.aio`, through `SocketTransport.attempt` with waits on the event loop).

One implementation for both: the attempt is a coroutine whose every wait goes through a
`Waits`. The blocking `Waits` waits in `poll` and never suspends, so `send` runs the coroutine
to its end at once; the asyncio one waits on the loop. Either way the attempt keeps every
promise of the transport seam on the shared rules (`ampwrite._framing`): it ends at its
deadline however slowly the server trickles, each wait for bytes is bounded by the read
timeout, an answer is read whole only up to its size bound (decompressed as it is read), a
redirect is an answer like any other, and every failure is a classified `TransportError` with
its `maybe_sent`. Answers are read as http.client and urllib3 read them (tests hold the two to
the same outcomes byte for byte). TLS uses the settings urllib3 would use for the same URL
(`Direct.tls`), through urllib3's own context maker.

Connections are plain non-blocking sockets (TLS through an `ssl.SSLObject` over memory
buffers): they belong to no thread or event loop, and `close()` closes the idle ones from
anywhere. An attempt that ends before its answer is whole (cancelled, say) closes its
connection: it may have been sent.
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import io
import ipaddress
import os
import re
import select
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Coroutine
from typing import Any, Final, Protocol, TypeVar

from urllib3 import HTTPHeaderDict

from ._framing import (
    bodiless,
    conflicting_lengths,
    content_length,
    declared_length,
    declared_too_large,
    ended_early,
    failed,
    failure,
    too_large,
    too_late,
    untrusted_coding,
)
from ._headers import has_control_characters, is_token
from ._transport import Answer, Direct, Request
from .errors import FailureKind, TransportError

__all__ = ["BLOCKING", "SocketTransport", "Waits", "run_to_end"]

MAX_LINE: Final = 65536
"""The longest status, header or chunk-size line read (http.client's limit)."""
MAX_HEADERS: Final = 100
"""The most header lines an answer may have, the empty one that ends them included
(http.client's limit, counted as it counts it)."""
RECEIVE: Final = 64 * 1024
NO_LENGTH_METHODS: Final = frozenset({"GET", "HEAD", "DELETE", "TRACE", "OPTIONS", "CONNECT"})
"""Methods sent without a `Content-Length` when they have no body (as urllib3 sends them)."""


class _Failed(Exception):
    """An attempt ended: `error` says how (raised inside this module only)."""

    def __init__(self, error: TransportError) -> None:
        super().__init__(error.message)
        self.error = error


def _broken(detail: str) -> _Failed:
    return _Failed(
        failure(FailureKind.INTERRUPTED, f"the connection broke before a full answer ({detail})")
    )


T = TypeVar("T")


class Waits(Protocol):
    """How an attempt waits: for a socket, for a name to resolve, and for nothing (a pause
    that lets others run)."""

    async def ready(self, sock: socket.socket, writing: bool, seconds: float) -> bool:
        """Until `sock` can be read (or written): False if `seconds` pass first."""
        ...

    async def resolve(self, host: str, port: int, seconds: float) -> list[tuple[int, Any]]:
        """(family, address) of each address of `host`; TimeoutError after `seconds`."""
        ...

    async def pause(self) -> None:
        """Let others run once, where that means anything."""
        ...


class _Blocking:
    """Waits that block the thread and never suspend the coroutine that awaits them."""

    async def ready(self, sock: socket.socket, writing: bool, seconds: float) -> bool:
        try:
            if _poll is None:  # no poll() (Windows)
                # Windows reports a connect that failed as exceptional, not writable (as
                # asyncio's SelectSelector reads it there)
                writers = [sock] if writing else []
                readable, writable, broken = select.select(
                    [] if writing else [sock], writers, writers, seconds
                )
                return bool(readable or writable or broken)
            poller = _poll()
            poller.register(sock, select.POLLOUT if writing else select.POLLIN)
            return bool(poller.poll(seconds * 1000))
        except OSError as exc:
            if exc.errno is not None:  # the wait's own failure: the attempt's
                raise
            raise _Raised(exc) from None
        except Exception as exc:  # raised by a signal handler as the thread waited
            raise _Raised(exc) from None

    async def resolve(self, host: str, port: int, seconds: float) -> list[tuple[int, Any]]:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return [(int(family), address[:2]) for family, _, _, _, address in found]

    async def pause(self) -> None:
        return None


_poll: Final = getattr(select, "poll", None)
BLOCKING: Final[Waits] = _Blocking()


class _Raised(BaseException):
    """What a signal handler raised while a blocking wait waited (a `TimeoutError` of an
    alarm, say): carried past the attempt's handlers, which would take it for the socket's,
    and raised again as it is by `run_to_end`."""

    def __init__(self, exc: Exception) -> None:
        super().__init__()
        self.exc = exc


def run_to_end(coroutine: Coroutine[Any, Any, T]) -> T:
    """The result of a coroutine that never suspends (one waiting with `BLOCKING`); what a
    signal handler raised while it waited is raised as it is."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    except _Raised as raised:
        exc = raised.exc
    else:
        coroutine.close()
        raise RuntimeError("an attempt with blocking waits suspended")
    raise exc


class _Clock:
    """The bounds of one attempt: its deadline, and how long each wait for bytes may be."""

    __slots__ = ("connect", "deadline", "read", "waits")

    def __init__(self, request: Request, waits: Waits) -> None:
        timeout = request.timeout
        self.deadline = time.monotonic() + timeout.total
        self.connect = timeout.connect
        self.read = timeout.read
        self.waits = waits

    async def wait(
        self, sock: socket.socket, *, writing: bool, gap: float, kind: FailureKind
    ) -> None:
        """Until `sock` can be read (or written), at most `gap` seconds and never past the
        deadline; a `kind` failure if it takes longer."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise _Failed(failure(kind, f"{_SAID_TIMEOUT[kind]} (the attempt's deadline passed)"))
        if not await self.waits.ready(sock, writing, min(gap, left)):
            said = "the attempt's deadline passed" if gap >= left else f"no bytes for {gap:g} s"
            raise _Failed(failure(kind, f"{_SAID_TIMEOUT[kind]} ({said})"))


_SAID_TIMEOUT: Final = {
    FailureKind.CONNECT_TIMEOUT: "timed out connecting",
    FailureKind.READ_TIMEOUT: "timed out waiting for the answer",
}


class _Connection:
    """One socket, and the bytes read from it that no answer has taken yet."""

    __slots__ = ("awaiting", "buffer", "incoming", "outgoing", "pid", "sock", "tls")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.tls: ssl.SSLObject | None = None
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.buffer = bytearray()
        self.pid = os.getpid()
        self.awaiting = False
        """A request was sent and nothing read since."""

    def close(self) -> None:
        self.sock.close()

    def reusable(self) -> bool:
        """Whether an idle connection can take a request: nothing unread, not closed by the
        server meanwhile (urllib3 checks the same before it reuses one)."""
        if self.buffer or self.pid != os.getpid() or (self.tls is not None and self.tls.pending()):
            return False
        try:
            self.sock.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            return True
        except OSError:
            return False
        return False  # closed by the server, or bytes nobody asked for

    # -- the socket's bytes, through TLS when there is one ------------------------------------

    async def _raw_send(self, data: bytes | memoryview, clock: _Clock) -> None:
        view = memoryview(data)
        while view:
            try:
                sent = self.sock.send(view)
            except (BlockingIOError, InterruptedError):
                await clock.wait(
                    self.sock, writing=True, gap=clock.read, kind=FailureKind.READ_TIMEOUT
                )
                continue
            view = view[sent:]

    async def _raw_receive(self, clock: _Clock, gap: float, kind: FailureKind) -> bytes:
        if self.awaiting:  # an answer just asked for is not there yet: wait before reading
            self.awaiting = False
            await clock.wait(self.sock, writing=False, gap=gap, kind=kind)
        while True:
            try:
                return self.sock.recv(RECEIVE)
            except (BlockingIOError, InterruptedError):
                await clock.wait(self.sock, writing=False, gap=gap, kind=kind)

    async def _flush_tls(self, clock: _Clock) -> None:
        pending = self.outgoing.read()
        if pending:
            await self._raw_send(pending, clock)

    async def handshake(self, context: ssl.SSLContext, host: str, clock: _Clock) -> None:
        self.tls = tls = context.wrap_bio(self.incoming, self.outgoing, server_hostname=host)
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                await self._flush_tls(clock)
                data = await self._raw_receive(clock, clock.connect, FailureKind.CONNECT_TIMEOUT)
                if not data:
                    raise ssl.SSLEOFError("closed by the server in the handshake") from None
                self.incoming.write(data)
        await self._flush_tls(clock)

    async def send(self, data: bytes, clock: _Clock) -> None:
        tls = self.tls
        self.awaiting = True
        if tls is None:
            await self._raw_send(data, clock)
            return
        view = memoryview(data)
        while view:
            view = view[tls.write(view) :]
            await self._flush_tls(clock)

    async def fill(self, clock: _Clock) -> bool:
        """Read what the server sends next into `buffer`; False once it has closed."""
        tls = self.tls
        while True:
            if tls is None:
                data = await self._raw_receive(clock, clock.read, FailureKind.READ_TIMEOUT)
            else:
                try:
                    data = tls.read(RECEIVE)
                except ssl.SSLWantReadError:
                    await self._flush_tls(clock)  # a key update, say, may need an answer
                    raw = await self._raw_receive(clock, clock.read, FailureKind.READ_TIMEOUT)
                    if raw:
                        self.incoming.write(raw)
                    else:
                        self.incoming.write_eof()
                    continue
                except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                    data = b""  # closed, with or without close_notify (as http.client reads it)
            if not data:
                return False
            self.buffer += data
            return True

    async def line(self, clock: _Clock) -> bytes:
        """The next line, its end included (what is left, at the end of the stream)."""
        start = 0
        while True:
            end = self.buffer.find(b"\n", start)
            if end >= 0:
                if end >= MAX_LINE:
                    raise _broken(f"a line longer than {MAX_LINE} bytes")
                line = bytes(self.buffer[: end + 1])
                del self.buffer[: end + 1]
                return line
            start = len(self.buffer)
            if start > MAX_LINE:
                raise _broken(f"a line longer than {MAX_LINE} bytes")
            if not await self.fill(clock):
                line = bytes(self.buffer)
                self.buffer.clear()
                return line

    async def take(self, size: int, clock: _Clock) -> bytes | bytearray:
        """Up to `size` bytes: fewer only at the end of the stream. Held once: what is read
        for a large body is gathered in one buffer, never copied whole."""
        buffer = self.buffer
        if len(buffer) >= size:
            with memoryview(buffer) as view:
                taken = bytes(view[:size])
            del buffer[:size]
            return taken
        gathered, self.buffer = buffer, bytearray()
        while len(gathered) < size and await self.fill(clock):
            gathered += self.buffer
            self.buffer.clear()
        if len(gathered) > size:
            self.buffer = gathered[size:]
            del gathered[size:]
        return gathered

    async def take_some(self, clock: _Clock) -> bytes:
        """Whatever comes next (b"" at the end of the stream)."""
        if not self.buffer and not await self.fill(clock):
            return b""
        taken = bytes(self.buffer)
        self.buffer.clear()
        return taken


# -- answers ------------------------------------------------------------------------------------


class _Head:
    """An answer's status line and headers, read as http.client reads them: `first` gives
    each field's first value by lowercase name (http.client frames by it), `headers` are as
    urllib3 hands them on (folded values unfolded, repeated fields joined with ", ")."""

    __slots__ = ("first", "headers", "reason", "status", "version")

    def __init__(
        self, version: int, status: int, reason: str, fields: list[tuple[str, str]]
    ) -> None:
        self.version = version
        self.status = status
        self.reason = reason
        self.first: dict[str, str] = {}
        self.headers = HTTPHeaderDict()
        for name, value in fields:
            self.first.setdefault(name.lower(), value)
            self.headers.add(name, _FOLD.sub(" ", value) if "\r\n" in value else value)


_FOLD: Final = re.compile(r"(?:(?<![ \t])[ \t]+)?\r\n[ \t]+")
"""A line end that continues a field's value (obsolete line folding): one space in the value
urllib3 hands on, as it unfolds it."""

_PLAIN_FIELD: Final = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[^\r\n]*\r?")
"""A header line http.client's parser reads as `name: value` and nothing more: a token, a
colon, and a value with no line end in it."""


def _fields(lines: list[bytes]) -> list[tuple[str, str]]:
    """The (name, value) fields of header lines, as http.client's parser gives them. Lines
    that are all plain fields (almost every answer's) are split here, as that parser splits
    them (the value without the spaces and tabs before it, with those after it); any other
    head goes through the parser itself (folded lines, a line that is not a field, which
    ends the fields, a bare CR)."""
    if all(_PLAIN_FIELD.fullmatch(line) for line in lines):
        fields = []
        for line in lines:
            name, _, value = line.decode("iso-8859-1").partition(":")
            fields.append((name, value.lstrip(" \t").rstrip("\r")))
        return fields
    block = b"".join(line + b"\n" for line in lines) + b"\n"
    try:
        message = http.client.parse_headers(io.BytesIO(block))
    except http.client.HTTPException as exc:  # past its limits (checked before already)
        raise _broken(f"{type(exc).__name__}: {exc}") from None
    return list(message.items())


def _status_line(line: bytes) -> tuple[int, int, str]:
    """(version, status, reason) as http.client reads them: 10 for HTTP/1.0, 11 for HTTP/1.x,
    the status `int()` of its field (100 to 999)."""
    text = line.decode("iso-8859-1")
    parts = text.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise _broken(f"BadStatusLine: {text[:100]!r}")
    version_text, status_text = parts[0], parts[1]
    try:
        status = int(status_text)
    except ValueError:
        status = 0
    if not 100 <= status <= 999:
        raise _broken(f"BadStatusLine: {text[:100]!r}")
    if version_text in ("HTTP/1.0", "HTTP/0.9"):
        version = 10
    elif version_text.startswith("HTTP/1."):
        version = 11
    else:
        raise _broken(f"UnknownProtocol: {version_text[:100]!r}")
    reason = parts[2].strip() if len(parts) > 2 else ""
    return version, status, reason


_END_OF_HEAD: Final = re.compile(rb"\r?\n\r?\n")


async def _head_lines(connection: _Connection, clock: _Clock) -> list[bytes]:
    """The lines of the next head: its status line and header lines, up to the empty line
    (or the end of the stream), each at most `MAX_LINE` bytes and at most `MAX_HEADERS`
    header lines."""
    buffer = connection.buffer
    while True:
        found = _END_OF_HEAD.search(buffer)
        if found is not None:
            block = bytes(buffer[: found.start()])
            del buffer[: found.end()]
            break
        if len(buffer) - (buffer.rfind(b"\n") + 1) > MAX_LINE:
            raise _broken(f"a line longer than {MAX_LINE} bytes")
        if buffer.count(b"\n") > MAX_HEADERS + 1:  # the status line, and the empty one
            raise _broken(f"got more than {MAX_HEADERS} headers")
        if not await connection.fill(clock):
            block = bytes(buffer).rstrip(b"\r\n")
            buffer.clear()
            break
    lines = block.split(b"\n") if block else []
    if len(lines) > MAX_HEADERS:  # header lines, and the empty one, over MAX_HEADERS
        raise _broken(f"got more than {MAX_HEADERS} headers")
    if any(len(line) > MAX_LINE for line in lines):
        raise _broken(f"a line longer than {MAX_LINE} bytes")
    return lines


async def _read_head(connection: _Connection, clock: _Clock) -> _Head:
    """The status line and headers of the final answer (interim 1xx answers are passed over,
    as the synchronous transport does; 101 is final). Its fields are read as http.client's
    parser, which the synchronous transport reads them with, reads them (`_fields`): a line
    that is neither a field nor the continuation of one ends the fields (what follows it is
    passed over), a value keeps what follows it on its line and its continuation lines."""
    while True:
        lines = await _head_lines(connection, clock)
        if not lines:
            raise _broken("RemoteDisconnected: the server closed the connection without an answer")
        version, status, reason = _status_line(lines[0])
        if not (100 <= status < 200) or status == 101:
            return _Head(version, status, reason, _fields(lines[1:]))


def _will_close(head: _Head, chunked: bool, length: int | None) -> bool:
    """Whether the connection ends with this answer (http.client's rules, on the first value
    of each field, and ampwrite's: an answer framed two ways at once, or one that switches
    protocols, is not followed by another on its connection)."""
    first = head.first
    connection = first.get("connection", "").lower()
    if head.version >= 11:
        closes = "close" in connection
    else:
        closes = not (
            first.get("keep-alive")
            or "keep-alive" in connection
            or "keep-alive" in first.get("proxy-connection", "").lower()
        )
    if chunked and "content-length" in first:
        return True
    return closes or head.status == 101 or (not chunked and length is None)


class _Decoder:
    """The body as its `Content-Encoding` says to decode it (gzip, x-gzip, deflate, or any
    list of those, as urllib3 decodes them; any other coding is left as it is), never
    producing more than `limit` bytes."""

    def __init__(self, coding: str, limit: int) -> None:
        names = [part.strip().lower() for part in coding.split(",")] if coding else []
        self._codings = [n for n in reversed(names) if n in ("gzip", "x-gzip", "deflate")]
        self._objects: list[Any] = [self._new(n) for n in self._codings]
        self._first = [True] * len(self._codings)
        self._limit = limit
        self.size = 0

    @staticmethod
    def _new(coding: str) -> Any:
        return zlib.decompressobj(16 + zlib.MAX_WBITS if coding != "deflate" else zlib.MAX_WBITS)

    def feed(self, data: bytes | bytearray, last: bool = False) -> bytes | bytearray:
        for index, coding in enumerate(self._codings):
            data = self._decode(index, coding, data, last)
        self.size += len(data)
        if self.size > self._limit:
            raise _Failed(too_large(self._limit))
        return data

    def _decode(
        self, index: int, coding: str, data: bytes | bytearray, last: bool
    ) -> bytes | bytearray:
        parts = []
        budget = self._limit + 1 - self.size
        try:
            while data:
                obj = self._objects[index]
                try:
                    out = obj.decompress(data, budget)
                except zlib.error:
                    if coding == "deflate" and self._first[index]:  # raw deflate, no header
                        self._first[index] = False
                        self._objects[index] = zlib.decompressobj(-zlib.MAX_WBITS)
                        continue
                    raise
                self._first[index] = False
                parts.append(out)
                budget -= len(out)
                if budget <= 0:  # past the bound: the rest is never decoded
                    raise _Failed(too_large(self._limit))
                data = obj.unconsumed_tail
                if obj.eof and coding != "deflate":  # another gzip member may follow
                    data = obj.unused_data
                    self._objects[index] = self._new(coding)
            if last:
                parts.append(self._objects[index].flush())
        except zlib.error as exc:
            raise _broken(f"DecodeError: the {coding} body could not be decoded ({exc})") from None
        return b"".join(parts)


async def _read_body(
    connection: _Connection, head: _Head, method: str, max_bytes: int, clock: _Clock
) -> tuple[bytes, bool]:
    """The whole body, decoded, and whether the connection can take another request. Neither
    the bytes read nor the bytes they decode to may be more than `max_bytes`. Framed as
    http.client frames it: no body for HEAD; a chunked one if the answer says so, whatever its
    status; none for 1xx, 204 and 304; else as long as its first `Content-Length` says."""
    headers = head.headers
    refused = conflicting_lengths(
        None if "chunked" in _codings(head) else headers.get("content-length")
    )
    if refused is None:
        refused = untrusted_coding(head.version, headers.get("transfer-encoding"))
    if refused is None:
        declared = declared_length(headers, head.status, method)
        refused = declared_too_large(declared, max_bytes)
    if refused is not None:
        raise _Failed(refused)
    chunked = "transfer-encoding" in headers and method != "HEAD"
    length: int | None = None
    if method == "HEAD" or (not chunked and bodiless(head.status, method)):
        length = 0
    elif not chunked:
        length = content_length(head.first.get("content-length"))
    keeps = not _will_close(head, chunked, length)
    decoder = _Decoder(headers.get("content-encoding", ""), max_bytes)
    if length is not None:
        if length > max_bytes:
            raise _Failed(too_large(max_bytes))
        raw = await connection.take(length, clock)
        if len(raw) < length:
            raise _Failed(ended_early(len(raw), length))
        return bytes(decoder.feed(raw, last=True)), keeps
    parts = []
    read = 0
    expected = _held_to(head, method)
    if not chunked:  # read until the server closes
        while data := await connection.take_some(clock):
            read += len(data)
            if read > max_bytes:
                raise _Failed(too_large(max_bytes))
            parts.append(decoder.feed(data))
        _check_held(read, expected)
        parts.append(decoder.feed(b"", last=True))
        return b"".join(parts), False
    while size := await _chunk_size(connection, clock):
        read += size
        if read > max_bytes:
            raise _Failed(too_large(max_bytes))
        chunk = await connection.take(size, clock)
        if len(chunk) < size or len(await connection.take(2, clock)) < 2:  # and its line end
            raise _broken(f"IncompleteRead: a chunk ended after {len(chunk)} of {size} bytes")
        parts.append(decoder.feed(chunk))
    while (await connection.line(clock)) not in (b"\r\n", b"\n", b""):
        pass  # trailer fields: not ampwrite's
    _check_held(read, expected)
    parts.append(decoder.feed(b"", last=True))
    return b"".join(parts), keeps


def _held_to(head: _Head, method: str) -> int | None:
    """The length urllib3 holds a body to once it ends, whatever framed it: 0 when the answer
    has no body, else the `Content-Length` all its fields agree on (none when chunked)."""
    if bodiless(head.status, method):
        return 0
    if "chunked" in _codings(head):
        return None
    return content_length(head.headers.get("content-length"))


def _check_held(read: int, expected: int | None) -> None:
    """A body read until its end (chunked, or until the server closed) is refused, as urllib3
    refuses it, when it is not the length urllib3 holds it to (`_held_to`)."""
    if expected is not None and read != expected:
        raise _broken(f"IncompleteRead: {read} bytes read, {expected} expected")


def _codings(head: _Head) -> list[str]:
    """The transfer codings of the answer, as urllib3 lists them."""
    coding = head.headers.get("transfer-encoding", "").lower()
    return [part.strip() for part in coding.split(",")]


async def _chunk_size(connection: _Connection, clock: _Clock) -> int:
    """The size on the next chunk size line, as http.client reads it: `int(size, 16)` of
    what comes before any extension ("0x8", "+8" and " 8 " are 8)."""
    line = await connection.line(clock)
    try:
        size = int(line.split(b";", 1)[0], 16)
    except ValueError:
        size = -1
    if not line.endswith(b"\n") or size < 0:
        raise _broken(f"IncompleteRead: a chunk size line of {line[:40]!r}")
    return size


# -- the transport ------------------------------------------------------------------------------


def _context(tls: tuple[tuple[str, Any], ...]) -> ssl.SSLContext:
    """The TLS context urllib3 would make for a pool with these settings."""
    from urllib3.util.ssl_ import create_urllib3_context  # with the pool's own defaults

    settings = dict(tls)
    verify = settings.get("cert_reqs", "CERT_REQUIRED") != "CERT_NONE"
    context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED if verify else ssl.CERT_NONE)
    if verify:
        cafile, capath = settings.get("ca_certs"), settings.get("ca_cert_dir")
        if cafile or capath:
            context.load_verify_locations(cafile=cafile, capath=capath)
        else:
            context.load_default_certs()
    else:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if settings.get("cert_file"):
        context.load_cert_chain(settings["cert_file"], settings.get("key_file"))
    context.set_alpn_protocols(["http/1.1"])  # as urllib3 offers it
    return context


def _host_header(direct: Direct) -> str:
    host = f"[{direct.host}]" if ":" in direct.host else direct.host
    default = 443 if direct.scheme == "https" else 80
    return host if direct.port == default else f"{host}:{direct.port}"


def _encode(request: Request, direct: Direct) -> bytes:
    """The request's bytes, as http.client would send them for the synchronous transport:
    `Host` first, `Accept-Encoding: identity` unless the request names one."""
    lines = [
        f"{request.method} {direct.base_path}{request.path} HTTP/1.1",
        f"Host: {_host_header(direct)}",
    ]
    if not any(name.lower() == "accept-encoding" for name in request.headers):
        lines.append("Accept-Encoding: identity")
    for name, value in request.headers.items():
        if not is_token(name) or has_control_characters(value):  # as http.client refuses it
            raise ValueError(f"a header that cannot be sent: {name!r}")
        lines.append(f"{name}: {value}")
    body = request.body
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    elif request.method.upper() not in NO_LENGTH_METHODS:
        lines.append("Content-Length: 0")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + body if body else head


async def _connect(
    direct: Direct, contexts: dict[Any, ssl.SSLContext], clock: _Clock
) -> _Connection:
    """A new connection to `direct`, TLS done: a CONNECT, CONNECT_TIMEOUT or TLS failure, with
    nothing sent, if it cannot be made."""
    addresses: list[tuple[int, Any]]
    try:
        ipaddress.ip_address(direct.host)
        addresses = [
            (socket.AF_INET6 if ":" in direct.host else socket.AF_INET, (direct.host, direct.port))
        ]
    except ValueError:
        try:
            seconds = max(clock.deadline - time.monotonic(), 0)
            addresses = await clock.waits.resolve(direct.host, direct.port, seconds)
        except TimeoutError as exc:
            raise _Failed(failed(FailureKind.CONNECT_TIMEOUT, exc)) from None
        except OSError as exc:
            raise _Failed(failed(FailureKind.CONNECT, exc)) from None
    error: OSError | None = None
    for family, address in addresses:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            code = sock.connect_ex(address)
            if code in (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN):
                await clock.wait(
                    sock, writing=True, gap=clock.connect, kind=FailureKind.CONNECT_TIMEOUT
                )
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                raise OSError(code, os.strerror(code))
        except OSError as exc:
            sock.close()
            error = exc
            continue
        except BaseException:
            sock.close()
            raise
        connection = _Connection(sock)
        if direct.scheme == "https":
            try:
                context = contexts.get(direct.tls)
                if context is None:
                    context = contexts[direct.tls] = _context(direct.tls)
                await connection.handshake(context, direct.host, clock)
            except (ssl.SSLError, ssl.CertificateError, OSError) as exc:
                connection.close()
                kind = FailureKind.TLS
                if isinstance(exc, TimeoutError):
                    kind = FailureKind.CONNECT_TIMEOUT
                raise _Failed(failed(kind, exc)) from None
            except BaseException:
                connection.close()
                raise
        return connection
    assert error is not None
    raise _Failed(failed(FailureKind.CONNECT, error))


class SocketTransport:
    """Attempts to `Direct` base URLs; idle connections kept per URL (up to `pool_size` each),
    for any thread and event loop."""

    def __init__(self, pool_size: int) -> None:
        self._pool_size = pool_size
        self._idle: dict[Direct, list[_Connection]] = {}
        self._contexts: dict[Any, ssl.SSLContext] = {}
        self._lock = threading.Lock()
        self._closed = False

    def send(self, request: Request, direct: Direct) -> Answer | TransportError:
        """One attempt, waiting in this thread."""
        return run_to_end(self.attempt(request, direct, BLOCKING))

    async def attempt(
        self, request: Request, direct: Direct, waits: Waits
    ) -> Answer | TransportError:
        """One attempt, waiting with `waits` (see the module's docstring)."""
        clock = _Clock(request, waits)
        try:
            data = _encode(request, direct)
        except (UnicodeError, ValueError) as exc:
            return failed(FailureKind.INVALID, exc)
        connection = self._take(direct)
        try:
            if connection is None:
                connection = await _connect(direct, self._contexts, clock)
        except _Failed as failure_:
            return failure_.error
        kept = False
        try:
            # Let the loop run once between building the request and sending it: when many
            # answers come at once, what each task does next is split in two, so the loop
            # runs other tasks (and timers) halfway through.
            await waits.pause()
            # the server may have answered before it stopped reading (a 413, say)
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                await connection.send(data, clock)
            head = await _read_head(connection, clock)
            body, kept = await _read_body(
                connection, head, request.method, request.max_bytes, clock
            )
        except _Failed as failure_:
            return failure_.error
        except TimeoutError as exc:
            return failed(FailureKind.READ_TIMEOUT, exc)
        except (OSError, ssl.SSLError) as exc:
            return failed(FailureKind.INTERRUPTED, exc)
        finally:
            if kept:
                self._give_back(direct, connection)
            else:
                connection.close()
        if time.monotonic() > clock.deadline:
            return too_late()
        return Answer(head.status, head.reason, head.headers, body)

    def _take(self, direct: Direct) -> _Connection | None:
        with self._lock:
            idle = self._idle.get(direct)
            while idle:
                connection = idle.pop()
                if connection.reusable():
                    return connection
                connection.close()
        return None

    def _give_back(self, direct: Direct, connection: _Connection) -> None:
        with self._lock:
            idle = self._idle.setdefault(direct, [])
            if not self._closed and len(idle) < self._pool_size and connection.pid == os.getpid():
                idle.append(connection)
                return
        connection.close()

    def close(self) -> None:
        """Close the idle connections (those in use close when their attempts end: none is
        kept after this)."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()
