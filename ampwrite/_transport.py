"""The transport seam: one attempt of one HTTP request, from bytes out to an answer or a
classified failure, and nothing else (no retries, no decoding, no secrets).

A transport has two methods: `send(request) -> Answer | TransportError`, which never raises
for anything the network or the server does, and `close()`. `RequestsTransport` is the one
ampwrite ships, over a `requests.Session` (ampwrite's own or a caller's). Everything above it
(`write_records`, the bulk engine, the operations) builds a `Request` value, hands it over and
decides on what comes back.

A base URL that ampwrite's own session reaches without a proxy (a direct route) is reached by
ampwrite's own HTTP/1.1 (`ampwrite._http1`, the one `ampwrite.aio` uses too); anything else
(a caller's session and its adapters, a proxy) goes through requests' adapter, urllib3 and
http.client, with the whole-attempt deadline given to urllib3's pools here.

Nothing from `requests` or `urllib3` escapes this module: every failure becomes a
`TransportError` through `transport_error`, which classifies in a fixed order (requests'
`ConnectTimeout` is both a `ConnectionError` and a `Timeout`; its `SSLError` is a
`ConnectionError`).
"""

from __future__ import annotations

import http.client
import io
import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, NamedTuple, Protocol
from urllib.parse import urlsplit

import requests
import requests.adapters
import requests.exceptions as rex
import urllib3
import urllib3.connection
import urllib3.connectionpool
import urllib3.exceptions as uex
import urllib3.poolmanager
from requests.structures import CaseInsensitiveDict
from requests.utils import prepend_scheme_if_needed, select_proxy

from ._framing import (
    declared_length,
    declared_too_large,
    ended_early,
    failed,
    too_large,
    too_late,
    untrusted_coding,
)
from ._headers import API_KEY_HEADER
from .errors import FailureKind, TransportError

if TYPE_CHECKING:
    from ._http1 import SocketTransport

__all__ = [
    "Answer",
    "DeadlineAdapter",
    "Direct",
    "Request",
    "RequestsTransport",
    "Timeouts",
    "Transport",
    "is_loopback",
    "transport_error",
]

POOL_SIZE: Final = 32
"""Connections kept per host: as many threads as this share one Core without waiting."""
MAX_ROUTES: Final = 64
"""Base URLs whose way is remembered (the Core's own, and ones passed per call)."""


class Timeouts(NamedTuple):
    """Seconds to connect, to wait for each read, and for the attempt as a whole."""

    connect: float
    read: float
    total: float


class Request(NamedTuple):
    """One attempt to make: `method` on `base_url + path` (`path` starts with "/" and may
    carry a query) with these exact headers and body. The answer is read whole if it is at
    most `max_bytes`; the attempt ends `timeout.total` seconds after it starts."""

    method: str
    base_url: str
    path: str
    headers: Mapping[str, str]
    body: bytes | None
    timeout: Timeouts
    max_bytes: int


class Answer(NamedTuple):
    """What the server said: status, reason phrase, headers and the whole body."""

    status: int
    reason: str
    headers: Mapping[str, str]
    body: bytes


class Transport(Protocol):
    """Sends one request at a time (from any number of threads) and closes."""

    def send(self, request: Request) -> Answer | TransportError: ...

    def close(self) -> None: ...


def transport_error(exc: BaseException, *, sent: bool = False) -> TransportError:
    """Classify an exception raised while sending or reading, in a fixed order. Once the
    request is `sent`, a failure of a kind that says nothing was (a TLS error reading the
    answer, say) is an answer broken off: it may have been processed."""
    kind = _kind_of(exc)
    if sent and not kind.maybe_sent:
        kind = FailureKind.INTERRUPTED
    return failed(kind, exc)


def _kind_of(exc: BaseException) -> FailureKind:
    reason: object = exc
    if isinstance(reason, rex.RequestException) and reason.args:
        reason = reason.args[0]  # requests wraps what urllib3 raised
    if isinstance(reason, uex.MaxRetryError) and reason.reason is not None:
        reason = reason.reason
    # NewConnectionError is a ConnectTimeoutError too; a refused connection was never sent.
    if isinstance(reason, (uex.NewConnectionError, uex.ProxyError)) or isinstance(
        exc, rex.ProxyError
    ):
        return FailureKind.CONNECT
    if isinstance(reason, uex.ConnectTimeoutError) or isinstance(exc, rex.ConnectTimeout):
        return FailureKind.CONNECT_TIMEOUT
    if isinstance(reason, (uex.ReadTimeoutError, TimeoutError)) or isinstance(exc, rex.ReadTimeout):
        return FailureKind.READ_TIMEOUT
    if isinstance(reason, uex.SSLError) or isinstance(exc, rex.SSLError):
        return FailureKind.TLS
    if isinstance(reason, (uex.LocationValueError, UnicodeError, OverflowError)) or isinstance(
        exc, (rex.InvalidURL, rex.InvalidHeader, rex.InvalidSchema, rex.MissingSchema)
    ):
        return FailureKind.INVALID
    return FailureKind.INTERRUPTED


def is_loopback(host: str) -> bool:
    """True for localhost names and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# -- the transport over a requests.Session ------------------------------------------------------


class _Route(NamedTuple):
    """How attempts reach one base URL, worked out once.

    When the session's adapter for the URL is ampwrite's own and no proxy applies, attempts go
    to ampwrite's own HTTP/1.1 (`direct`); otherwise through the adapter's `send`, so a
    caller's adapters and proxies keep working.
    """

    adapter: requests.adapters.BaseAdapter
    options: dict[str, Any]
    direct: Direct | None


class Direct(NamedTuple):
    """A base URL whose attempts go straight to a pool of ampwrite's own (its session, no
    proxy): where to connect, and the TLS settings of that pool (`cert_reqs`, `ca_certs`,
    `ca_cert_dir`, `cert_file`, `key_file`, as urllib3 names them). What an asyncio transport
    needs to reach it exactly as this one does."""

    scheme: str
    host: str
    port: int
    base_path: str
    tls: tuple[tuple[str, Any], ...]


class RequestsTransport:
    """Attempts over one `requests.Session`: ampwrite's own (`session=None`), or a caller's,
    whose adapters, proxies, CA bundle and client certificate apply (it is never closed here).

    Environment proxy and CA settings are read once per base URL, at its first use (or at
    `prepare`). A loopback server is always reached directly: no proxy can reach this
    machine's loopback, and a plain-http one would see the key in clear.
    """

    def __init__(
        self, session: requests.Session | None = None, *, pool_size: int = POOL_SIZE
    ) -> None:
        self.owns_session = session is None
        self._pool_size = pool_size
        self.session: requests.Session = session if session is not None else _new_session(pool_size)
        if session is not None:
            install_deadline(session)
        self._routes: dict[str, _Route] = {}
        self._sockets: SocketTransport | None = None  # for direct routes, made at first use
        self._sockets_lock = threading.Lock()  # one pool, whichever threads first use it

    def prepare(self, base_url: str) -> TransportError | None:
        """Work out now how to reach `base_url`; the error when its URL cannot be used."""
        route = self._route(base_url)
        return route if isinstance(route, TransportError) else None

    def direct(self, base_url: str) -> Direct | None:
        """Where attempts to `base_url` go, when they go straight to a pool of ampwrite's own
        (None: through a caller's adapter or a proxy, or a URL that cannot be used)."""
        route = self._route(base_url)
        return None if isinstance(route, TransportError) else route.direct

    def send(self, request: Request) -> Answer | TransportError:
        """Send once and read the answer. A redirect is an answer like any other: it is never
        followed, so the key never travels to another host. However slowly the server trickles,
        the attempt ends `timeout.total` seconds after it started (on urllib3's stock pools,
        proxies included; see "Where it does not hold" below)."""
        route = self._route(request.base_url)
        if isinstance(route, TransportError):
            return route
        if route.direct is not None:
            return self._direct_sockets().send(request, route.direct)
        headers = dict(request.headers)
        if request.body is not None:
            headers["Content-Length"] = str(len(request.body))
        timeout = request.timeout
        deadline = time.monotonic() + timeout.total
        _attempt.deadline = deadline
        _attempt.secret = request.headers.get(API_KEY_HEADER)
        _attempt.sent = False
        try:
            try:
                response = _adapter_send(route, request, headers)
            except Exception as exc:  # classified, never raised
                return transport_error(exc, sent=_attempt.sent)
            finally:
                _attempt.deadline = None
            try:
                answer = _read(response, request.method, request.max_bytes, deadline)
            except Exception as exc:
                answer = transport_error(exc, sent=True)
            if not isinstance(answer, Answer):
                response.close()  # a half-read answer: the connection cannot be reused
            response.release_conn()
            return answer
        finally:
            _attempt.secret = None

    def close(self) -> None:
        """Close the session if ampwrite created it (a caller's session is left open), and
        the idle connections of the direct routes."""
        if self.owns_session:
            self.session.close()
        sockets, self._sockets = self._sockets, None
        if sockets is not None:
            sockets.close()

    def after_fork(self) -> None:
        """Fresh pools, for a forked child: sockets must not be shared with the parent."""
        if self.owns_session:
            self.session = _new_session(self._pool_size)
        else:  # the child's copy of the caller's session: forget the parent's connections
            for adapter in self.session.adapters.values():
                adapter.close()
        self._routes = {}
        self._sockets = None  # the parent's: left to it
        self._sockets_lock = threading.Lock()  # another thread may have held it at the fork

    def _direct_sockets(self) -> SocketTransport:
        sockets = self._sockets
        if sockets is None:
            from ._http1 import SocketTransport  # what a direct route needs, at its first use

            with self._sockets_lock:  # else threads sending at once would each make a pool
                sockets = self._sockets
                if sockets is None:
                    sockets = self._sockets = SocketTransport(self._pool_size)
        return sockets

    def _route(self, base_url: str) -> _Route | TransportError:
        route = self._routes.get(base_url)
        if route is None:
            try:
                route = _route_for(self.session, base_url)
            except Exception as exc:  # no adapter for the scheme, a URL requests refuses
                return transport_error(exc)
            if len(self._routes) >= MAX_ROUTES:  # per-call server URLs: keep the cache bounded
                self._routes.clear()
            self._routes[base_url] = route
        return route


def _route_for(session: requests.Session, base_url: str) -> _Route:
    settings = session.merge_environment_settings(base_url, {}, None, None, None)
    proxies = settings["proxies"]
    if is_loopback(urlsplit(base_url).hostname or ""):
        proxies = {}
    verify: bool | str = True if settings["verify"] is None else settings["verify"]
    cert: str | tuple[str, str] | None = settings["cert"]
    options = {"proxies": proxies, "verify": verify, "cert": cert}
    adapter = session.get_adapter(base_url)
    direct = None
    proxy = select_proxy(base_url, proxies)
    if type(adapter) is DeadlineAdapter and not proxy:
        probe = requests.PreparedRequest()
        probe.url = base_url
        host_params, pool_kwargs = adapter.build_connection_pool_key_attributes(probe, verify, cert)
        scheme = host_params["scheme"]
        direct = Direct(
            scheme,
            host_params["host"],
            host_params["port"] or (443 if scheme == "https" else 80),
            urlsplit(base_url).path,
            tuple(sorted(pool_kwargs.items())),
        )
    if proxy and isinstance(adapter, requests.adapters.HTTPAdapter):
        # The proxy's pools, named as the adapter's `send` will name them: made now (or found,
        # if the caller's session made them before) and given the deadline.
        proxy = str(prepend_scheme_if_needed(proxy, "http"))  # type: ignore[no-untyped-call]
        if urlsplit(proxy).scheme in ("http", "https"):  # SOCKS pools are not urllib3's own
            give_deadline(adapter.proxy_manager_for(proxy))
    return _Route(adapter, options, direct)


def _adapter_send(
    route: _Route, request: Request, headers: dict[str, str]
) -> urllib3.BaseHTTPResponse:
    """Through the session's adapter (yours, or through a proxy): no redirects, hooks or
    cookie jar on this path either."""
    prepared = requests.PreparedRequest()
    prepared.method = request.method
    prepared.url = request.base_url + request.path
    prepared.headers = CaseInsensitiveDict(headers)
    prepared.body = request.body
    timeout = request.timeout
    response = route.adapter.send(
        prepared, timeout=(timeout.connect, timeout.read), stream=True, **route.options
    )
    raw: urllib3.BaseHTTPResponse = response.raw
    return raw


CHUNK: Final = 64 * 1024


def _read(
    response: urllib3.BaseHTTPResponse, method: str, max_bytes: int, deadline: float
) -> Answer | TransportError:
    """The whole body, decoded, if it is at most `max_bytes`; never holds more than that.

    An answer with a `Transfer-Encoding` is never read by its `Content-Length` (RFC 9112
    §6.3: the first overrides the second). It is read as chunked when that is all it says, in
    HTTP/1.1 (on ampwrite's connections, one that declares a length too is then not reused:
    see `_DeadlineHTTPResponse.begin`). Any other transfer coding (ampwrite asks for none), or
    one in HTTP/1.0, is refused: its framing cannot be trusted."""
    refused = untrusted_coding(response.version, response.headers.get("Transfer-Encoding"))
    if refused is not None:
        return refused
    declared = declared_length(response.headers, response.status, method)
    refused = declared_too_large(declared, max_bytes)
    if refused is not None:
        return refused
    if declared is not None and "Content-Encoding" not in response.headers:
        body = response.read(declared + 1)  # the common case: one read of a known size
        if len(body) < declared:
            return ended_early(len(body), declared)
    else:
        parts = []
        size = 0
        while part := response.read(CHUNK, decode_content=True):
            size += len(part)
            if size > max_bytes:  # stop here: the rest is never read
                return too_large(max_bytes)
            parts.append(part)
        body = b"".join(parts)
    if time.monotonic() > deadline:
        return too_late()
    return Answer(response.status, response.reason or "", response.headers, body)


# -- the per-attempt deadline -------------------------------------------------------------------
#
# requests' read timeout bounds each wait for bytes, not the whole answer: a server sending one
# byte a second holds a call for ever. The deadline is enforced where bytes are read, without a
# thread or a timer: `send` notes the attempt's deadline in a thread-local; the response that
# http.client creates for the answer reads the socket through a file whose every read waits at
# most until that deadline.
#
# The one reliance on http.client: its `HTTPResponse(sock, ...)` reads the answer from
# `sock.makefile("rb")`, and an HTTPConnection creates its answers with `response_class`. The
# file here is made from the socket's own unbuffered `makefile`, so the socket's reference
# counting (a connection closed while its last answer is still being read, as with
# `Connection: close`) behaves exactly as it does for http.client. tests/test_framing.py pins
# this for every framing, over HTTP and HTTPS.
#
# Where it does not hold (docs/reliability.md; tests/test_proxies.py pins the second):
# - pools that are not urllib3's stock ones (an adapter's own, SOCKS proxies): each wait for
#   bytes is bounded by the read timeout, not the attempt;
# - an HTTPS server behind an HTTPS proxy: the answer is TLS inside TLS, read through urllib3's
#   `SSLTransport`, one of whose reads takes a whole inner TLS record however many waits on the
#   proxy's socket that needs, each bounded by what was left of the deadline when the read
#   began; the deadline is checked between records, not within one (a plain socket or
#   `ssl.SSLSocket` bounds one read as a whole).


class _Attempt(threading.local):
    deadline: float | None = None
    secret: str | None = None
    sent: bool = False
    """Whether a byte of the request has been handed to the socket (on ampwrite's
    connections; a connection class of an adapter of yours does not say)."""


_attempt = _Attempt()


class _RedactKey(logging.Filter):
    """Keeps the key of the attempt this thread is making out of urllib3's log records: a
    header line it cannot parse, say, is logged (with a traceback) as the server sent it."""

    def filter(self, record: logging.LogRecord) -> bool:
        secret = _attempt.secret
        if not secret:
            return True
        message = record.getMessage()
        if secret in message:
            record.msg, record.args = message.replace(secret, "***"), ()
        if record.exc_info:
            text = logging.Formatter().formatException(record.exc_info)
            if secret in text:
                record.exc_info, record.exc_text = None, text.replace(secret, "***")
        return True


_REDACT_KEY: Final = _RedactKey()
for _name in ("urllib3.connection", "urllib3.connectionpool", "urllib3.response"):
    logging.getLogger(_name).addFilter(_REDACT_KEY)


class _DeadlineReader(io.RawIOBase):
    """The socket's raw file, each read waiting at most until the deadline."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._sock = sock
        self._raw = sock.makefile("rb", buffering=0)
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the attempt's deadline passed while reading the answer")
        gap = self._sock.gettimeout()
        self._sock.settimeout(remaining if gap is None else min(remaining, gap))
        try:
            return self._raw.readinto(buffer)
        finally:
            self._sock.settimeout(gap)

    def close(self) -> None:
        self._raw.close()  # gives back the reference the file holds on the socket
        super().close()


def _socket_like(sock: object) -> bool:
    """Whether `sock`, not a `socket.socket`, does what `_DeadlineReader` asks of one: the TLS
    inside TLS of an HTTPS server behind an HTTPS proxy is read through such an object."""
    return all(callable(getattr(sock, name, None)) for name in _SOCKET_METHODS)


_SOCKET_METHODS: Final = ("makefile", "gettimeout", "settimeout")


class _DeadlineSocket:
    """What `HTTPResponse` asks of a socket: a file to read the answer from."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline

    def makefile(self, mode: str) -> io.BufferedReader:
        assert mode == "rb"
        return io.BufferedReader(_DeadlineReader(self._sock, self._deadline))


class _DeadlineHTTPResponse(http.client.HTTPResponse):
    """http.client's response, reading under the attempt's deadline, passing over interim
    1xx answers (102, 103, ...) as it already does for 100 Continue, and closing the
    connection after an answer framed two ways."""

    def __init__(self, sock: Any, *args: Any, **kwargs: Any) -> None:
        deadline = _attempt.deadline
        if deadline is not None and (isinstance(sock, socket.socket) or _socket_like(sock)):
            sock = _DeadlineSocket(sock, deadline)
        super().__init__(sock, *args, **kwargs)

    def begin(self) -> None:
        super().begin()
        if self.chunked and "Content-Length" in self.headers:
            # Framed two ways at once (RFC 9112 §6.3; `_read` reads it by the first): the
            # connection is closed once it is read, as with `Connection: close`, so whatever
            # the two framings disagree about cannot become the start of the next answer.
            self.will_close = True

    def _read_status(self) -> tuple[str, int, str]:
        while True:
            version, status, reason = super()._read_status()  # type: ignore[misc]
            if not (100 < status < 200) or status == 101:
                return version, status, reason
            http.client.parse_headers(self.fp)  # an interim answer's headers: not ours


COALESCED_BYTES: Final = 64 * 1024
"""A request whose body is bytes of at most this size leaves in one `sendall`, head and body
together: one system call and one packet fewer per request (with TCP_NODELAY, the default,
the two writes would be two packets)."""


class _OneWrite:
    """`request()` gathers what it sends and sends it at its end, in one write, when the body
    is small bytes; any other request is sent as it comes. Nothing is sent if it fails."""

    _gathered: list[bytes] | None = None

    def request(self, method: str, url: str, body: Any = None, *args: Any, **kwargs: Any) -> None:
        if not isinstance(body, bytes) or len(body) > COALESCED_BYTES:
            super().request(method, url, body, *args, **kwargs)  # type: ignore[misc]
            return
        self._gathered = gathered = list[bytes]()
        try:
            super().request(method, url, body, *args, **kwargs)  # type: ignore[misc]
        finally:
            self._gathered = None
        self._send_now(b"".join(gathered))

    def send(self, data: Any) -> None:
        gathered = self._gathered
        if gathered is not None and isinstance(data, bytes):
            gathered.append(data)
        else:
            self._send_now(data)

    def _send_now(self, data: Any) -> None:
        """Connect first, if not yet connected (as http.client's `send` does), so that the
        attempt counts as sent only once bytes go to a connected socket."""
        if getattr(self, "sock", None) is None:
            self.connect()  # type: ignore[attr-defined]
        _attempt.sent = True
        super().send(data)  # type: ignore[misc]


class _HTTPConnection(_OneWrite, urllib3.connection.HTTPConnection):
    response_class = _DeadlineHTTPResponse


class _HTTPSConnection(_OneWrite, urllib3.connection.HTTPSConnection):
    response_class = _DeadlineHTTPResponse


class _HTTPConnectionPool(urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSConnectionPool(urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOL_CLASSES: Final = {"http": _HTTPConnectionPool, "https": _HTTPSConnectionPool}


def give_deadline(manager: object) -> None:
    """Have a urllib3 pool manager (direct or proxy) make pools whose connections honour the
    attempt's deadline. Only where it makes urllib3's stock pools (not SOCKS ones, say); pools
    it made before are closed (their idle connections) so that new ones, with the deadline,
    replace them. The deadline applies only while ampwrite is sending, so other requests
    through the same manager behave as before."""
    if isinstance(manager, urllib3.PoolManager) and manager.pool_classes_by_scheme in (
        urllib3.poolmanager.pool_classes_by_scheme,
        _POOL_CLASSES,
    ):
        if manager.pool_classes_by_scheme is not _POOL_CLASSES:
            manager.clear()  # pools made before would keep per-read timeouts only
        manager.pool_classes_by_scheme = _POOL_CLASSES


def install_deadline(session: requests.Session) -> None:
    """Give the pools of a caller's requests adapters the per-attempt deadline (their proxy
    pools get it when a route through a proxy is worked out)."""
    for adapter in session.adapters.values():
        give_deadline(getattr(adapter, "poolmanager", None))


class DeadlineAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter whose connections honour the attempt's deadline (proxies included)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOL_CLASSES

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> urllib3.PoolManager:
        manager: urllib3.PoolManager = super().proxy_manager_for(proxy, **proxy_kwargs)
        give_deadline(manager)
        return manager


def _new_session(pool_size: int = POOL_SIZE) -> requests.Session:
    session = requests.Session()
    adapter = DeadlineAdapter(pool_connections=4, pool_maxsize=pool_size)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session
