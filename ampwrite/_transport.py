"""One HTTP attempt: send the bytes, read a bounded answer, or say why there is none.

Nothing from `requests` or `urllib3` escapes this module: every failure becomes a
`TransportError` through `transport_error`, which classifies in a fixed order (requests'
`ConnectTimeout` is both a `ConnectionError` and a `Timeout`; its `SSLError` is a
`ConnectionError`).
"""

from __future__ import annotations

import http.client
import io
import socket
import threading
import time
from collections.abc import Mapping
from typing import Any, Final, NamedTuple
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
from requests.utils import select_proxy

from .errors import RequestTimeoutError, TransportError

__all__ = [
    "Answer",
    "DeadlineAdapter",
    "Route",
    "Timeouts",
    "install_deadline",
    "route_for",
    "send_once",
    "transport_error",
]

# What kind of failure, and whether a retry could write twice.
NOT_SENT: Final = "connect"
TIMEOUT_CONNECT: Final = "connect-timeout"
TIMEOUT_READ: Final = "read-timeout"
TLS: Final = "tls"
INTERRUPTED: Final = "interrupted"
TOO_LARGE: Final = "too-large"
INVALID: Final = "invalid"


class Timeouts(NamedTuple):
    """Seconds to connect, to wait for each read, and for the attempt as a whole."""

    connect: float
    read: float
    total: float


class Answer(NamedTuple):
    """What the server said: status, headers and the whole body."""

    status: int
    reason: str
    headers: Mapping[str, str]
    body: bytes


def _failure(kind: str, message: str) -> TransportError:
    maybe_sent = kind in (TIMEOUT_READ, INTERRUPTED, TOO_LARGE)
    cls = RequestTimeoutError if kind in (TIMEOUT_CONNECT, TIMEOUT_READ) else TransportError
    return cls(message, maybe_sent=maybe_sent, kind=kind)


def transport_error(exc: BaseException) -> TransportError:
    """Classify an exception raised while sending or reading, in a fixed order."""
    detail = f"{type(exc).__name__}: {exc}"
    reason: object = exc
    if isinstance(reason, rex.RequestException) and reason.args:
        reason = reason.args[0]  # requests wraps what urllib3 raised
    if isinstance(reason, uex.MaxRetryError) and reason.reason is not None:
        reason = reason.reason
    # NewConnectionError is a ConnectTimeoutError too; a refused connection was never sent.
    if isinstance(reason, (uex.NewConnectionError, uex.ProxyError)) or isinstance(
        exc, rex.ProxyError
    ):
        return _failure(NOT_SENT, f"could not connect ({detail})")
    if isinstance(reason, uex.ConnectTimeoutError) or isinstance(exc, rex.ConnectTimeout):
        return _failure(TIMEOUT_CONNECT, f"timed out connecting ({detail})")
    if isinstance(reason, (uex.ReadTimeoutError, TimeoutError)) or isinstance(exc, rex.ReadTimeout):
        return _failure(TIMEOUT_READ, f"timed out waiting for the answer ({detail})")
    if isinstance(reason, uex.SSLError) or isinstance(exc, rex.SSLError):
        return _failure(TLS, f"TLS failed ({detail})")
    if isinstance(reason, (uex.LocationValueError, UnicodeError, OverflowError)) or isinstance(
        exc, (rex.InvalidURL, rex.InvalidHeader, rex.InvalidSchema, rex.MissingSchema)
    ):
        return _failure(INVALID, f"the request could not be built ({detail})")
    return _failure(INTERRUPTED, f"the connection broke before a full answer ({detail})")


class Route(NamedTuple):
    """How attempts reach one server, worked out once per Core and server URL.

    When the session's adapter for the URL is ampwrite's own and no proxy applies, attempts go
    straight to its urllib3 pool (`pool_key`); otherwise through the adapter's `send`, so a
    caller's adapters and proxies keep working.
    """

    session: requests.Session
    options: dict[str, Any]
    pool_key: tuple[dict[str, Any], dict[str, Any]] | None
    base_url: str
    base_path: str


def route_for(session: requests.Session, base_url: str, options: dict[str, Any]) -> Route:
    adapter = session.get_adapter(base_url)
    pool_key: tuple[Any, Any] | None = None
    if type(adapter) is DeadlineAdapter and not select_proxy(base_url, options["proxies"]):
        probe = requests.PreparedRequest()
        probe.url = base_url
        pool_key = adapter.build_connection_pool_key_attributes(
            probe, options["verify"], options["cert"]
        )
    return Route(session, options, pool_key, base_url, urlsplit(base_url).path)


def send_once(
    route: Route,
    path: str,
    headers: dict[str, str],
    body: bytes,
    *,
    timeout: Timeouts,
    max_bytes: int,
) -> Answer | TransportError:
    """POST `body` to `path` (below the route's base URL) once and read the answer.

    A redirect is an answer like any other: it is never followed, so the key never travels
    to another host. The attempt as a whole ends `timeout.total` seconds after it started,
    however slowly the server trickles (on adapters whose pools ampwrite set up).
    """
    headers["Content-Length"] = str(len(body))
    deadline = time.monotonic() + timeout.total
    _attempt.deadline = deadline
    try:
        if route.pool_key is not None:
            response = _urlopen(route, path, headers, body, timeout)
        else:
            response = _adapter_send(route, path, headers, body, timeout)
    except Exception as exc:  # classified, never raised
        return transport_error(exc)
    finally:
        _attempt.deadline = None
    try:
        answer = _read(response, max_bytes, deadline)
    except Exception as exc:
        answer = transport_error(exc)
    if not isinstance(answer, Answer):
        response.close()  # a half-read answer: the connection cannot be reused
    response.release_conn()
    return answer


def _urlopen(
    route: Route, path: str, headers: dict[str, str], body: bytes, timeout: Timeouts
) -> urllib3.BaseHTTPResponse:
    """Straight to the pool of ampwrite's adapter: no requests machinery on the way."""
    adapter = route.session.get_adapter(route.base_url)
    assert isinstance(adapter, DeadlineAdapter) and route.pool_key is not None
    host_params, pool_kwargs = route.pool_key
    pool = adapter.poolmanager.connection_from_host(**host_params, pool_kwargs=pool_kwargs)
    response: urllib3.BaseHTTPResponse = pool.urlopen(
        "POST",
        route.base_path + path,
        body=body,
        headers=headers,
        redirect=False,
        assert_same_host=False,
        preload_content=False,
        decode_content=False,
        retries=False,
        timeout=urllib3.Timeout(connect=timeout.connect, read=timeout.read),
        chunked=False,
    )
    return response


def _adapter_send(
    route: Route, path: str, headers: dict[str, str], body: bytes, timeout: Timeouts
) -> urllib3.BaseHTTPResponse:
    """Through the session's adapter (yours, or through a proxy): no redirects, hooks or
    cookie jar on this path either."""
    request = requests.PreparedRequest()
    request.method = "POST"
    request.url = route.base_url + path
    request.headers = CaseInsensitiveDict(headers)
    request.body = body
    adapter = route.session.get_adapter(request.url)
    response = adapter.send(
        request, timeout=(timeout.connect, timeout.read), stream=True, **route.options
    )
    raw: urllib3.BaseHTTPResponse = response.raw
    return raw


CHUNK: Final = 64 * 1024


def _read(
    response: urllib3.BaseHTTPResponse, max_bytes: int, deadline: float
) -> Answer | TransportError:
    """The whole body, decoded, if it is at most `max_bytes`; never holds more than that."""
    declared = response.headers.get("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        return _failure(TOO_LARGE, f"the answer declares {declared} bytes, over {max_bytes}")
    raw = response
    if declared is not None and declared.isdigit() and "Content-Encoding" not in response.headers:
        body = raw.read(int(declared) + 1)  # the common case: one read of a known size
        if len(body) < int(declared):
            return _failure(INTERRUPTED, f"the answer ended after {len(body)} of {declared} bytes")
    else:
        parts = []
        size = 0
        while part := raw.read(CHUNK, decode_content=True):
            size += len(part)
            if size > max_bytes:  # stop here: the rest is never read
                return _failure(TOO_LARGE, f"the answer is larger than {max_bytes} bytes")
            parts.append(part)
        body = b"".join(parts)
    if time.monotonic() > deadline:
        return _failure(TIMEOUT_READ, "the answer took longer than the timeout")
    return Answer(response.status, response.reason or "", response.headers, body)


# -- the per-attempt deadline -------------------------------------------------------------------
#
# requests' read timeout bounds each wait for bytes, not the whole answer: a server sending one
# byte a second holds a call for ever. The deadline is enforced where bytes are read, without a
# thread or a timer: `send_once` notes the attempt's deadline in a thread-local, the response
# object that http.client creates for the answer picks it up, and each read from the socket
# waits at most until the deadline.


class _Attempt(threading.local):
    deadline: float | None = None


_attempt = _Attempt()


class _DeadlineSocketReader(io.RawIOBase):
    """Reads a socket, each read waiting at most until the deadline."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._sock = sock
        self._deadline = deadline
        self._gap = sock.gettimeout()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the attempt's deadline passed while reading the answer")
        self._sock.settimeout(remaining if self._gap is None else min(remaining, self._gap))
        return self._sock.recv_into(buffer)


class _DeadlineHTTPResponse(http.client.HTTPResponse):
    """http.client's response, reading under the attempt's deadline, and passing over interim
    1xx answers (102, 103, ...) as it already does for 100 Continue."""

    def __init__(self, sock: socket.socket, *args: Any, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        deadline = _attempt.deadline
        if deadline is not None and isinstance(sock, socket.socket):
            self.fp.close()  # releases the socket's reference from makefile()
            self.fp = io.BufferedReader(_DeadlineSocketReader(sock, deadline))

    def _read_status(self) -> tuple[str, int, str]:
        while True:
            version, status, reason = super()._read_status()  # type: ignore[misc]
            if not (100 < status < 200) or status == 101:
                return version, status, reason
            http.client.parse_headers(self.fp)  # an interim answer's headers: not ours


class _HTTPConnection(urllib3.connection.HTTPConnection):
    response_class = _DeadlineHTTPResponse


class _HTTPSConnection(urllib3.connection.HTTPSConnection):
    response_class = _DeadlineHTTPResponse


class _HTTPConnectionPool(urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSConnectionPool(urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOL_CLASSES: Final = {"http": _HTTPConnectionPool, "https": _HTTPSConnectionPool}


def install_deadline(session: requests.Session) -> None:
    """Give the pools of a caller's requests adapters the per-attempt deadline.

    Only the classes of pools created from now on change, and only where the adapter uses
    urllib3's stock pools; the deadline applies only while ampwrite is sending, so the
    session's other requests behave as before.
    """
    for adapter in session.adapters.values():
        manager = getattr(adapter, "poolmanager", None)
        if isinstance(manager, urllib3.PoolManager) and manager.pool_classes_by_scheme in (
            urllib3.poolmanager.pool_classes_by_scheme,
            _POOL_CLASSES,
        ):
            manager.pool_classes_by_scheme = _POOL_CLASSES


class DeadlineAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter whose connections honour the attempt's deadline (proxies included)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOL_CLASSES

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> urllib3.PoolManager:
        manager: urllib3.PoolManager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if type(manager) is urllib3.ProxyManager:
            manager.pool_classes_by_scheme = _POOL_CLASSES
        return manager
