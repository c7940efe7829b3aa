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
from typing import Any, Final

import attrs
import requests
import requests.adapters
import requests.exceptions as rex
import urllib3
import urllib3.connection
import urllib3.connectionpool
import urllib3.exceptions as uex
from requests.structures import CaseInsensitiveDict

from .errors import RequestTimeoutError, TransportError

__all__ = ["Answer", "DeadlineAdapter", "send_once", "transport_error"]

# What kind of failure, and whether a retry could write twice.
NOT_SENT: Final = "connect"
TIMEOUT_CONNECT: Final = "connect-timeout"
TIMEOUT_READ: Final = "read-timeout"
TLS: Final = "tls"
INTERRUPTED: Final = "interrupted"
TOO_LARGE: Final = "too-large"
INVALID: Final = "invalid"


@attrs.frozen
class Answer:
    """What the server said: status, headers and the whole body."""

    status: int
    reason: str
    headers: CaseInsensitiveDict[str]
    body: bytes


def _failure(kind: str, message: str) -> TransportError:
    maybe_sent = kind in (TIMEOUT_READ, INTERRUPTED, TOO_LARGE)
    cls = RequestTimeoutError if kind in (TIMEOUT_CONNECT, TIMEOUT_READ) else TransportError
    return cls(message, maybe_sent=maybe_sent, kind=kind)


def transport_error(exc: BaseException) -> TransportError:
    """Classify an exception raised while sending or reading."""
    detail = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, (rex.ConnectTimeout, uex.ConnectTimeoutError)):
        return _failure(TIMEOUT_CONNECT, f"timed out connecting ({detail})")
    if isinstance(exc, (rex.ReadTimeout, uex.ReadTimeoutError, TimeoutError)):
        return _failure(TIMEOUT_READ, f"timed out waiting for the answer ({detail})")
    if isinstance(exc, (rex.SSLError, uex.SSLError)):
        return _failure(TLS, f"TLS failed ({detail})")
    if isinstance(exc, rex.ProxyError):
        return _failure(NOT_SENT, f"the proxy refused the connection ({detail})")
    if isinstance(exc, rex.ConnectionError):
        reason = exc.args[0] if exc.args else None
        if isinstance(reason, uex.MaxRetryError):
            reason = reason.reason
        if isinstance(reason, uex.NewConnectionError):
            return _failure(NOT_SENT, f"could not connect ({detail})")
        if isinstance(reason, uex.ConnectTimeoutError):
            return _failure(TIMEOUT_CONNECT, f"timed out connecting ({detail})")
        return _failure(INTERRUPTED, f"the connection broke before a full answer ({detail})")
    if isinstance(
        exc,
        (rex.ChunkedEncodingError, rex.ContentDecodingError, uex.HTTPError, ConnectionError),
    ):
        return _failure(INTERRUPTED, f"the answer was cut short or unreadable ({detail})")
    if isinstance(exc, (rex.InvalidURL, rex.InvalidHeader, rex.InvalidSchema, rex.MissingSchema)):
        return _failure(INVALID, f"the request could not be built ({detail})")
    return _failure(INTERRUPTED, f"unexpected failure ({detail})")


def send_once(
    session: requests.Session,
    url: str,
    headers: dict[str, str],
    body: bytes,
    *,
    timeout: tuple[float, float],
    max_bytes: int,
    options: dict[str, Any],
) -> Answer | TransportError:
    """POST `body` to `url` once, through the session's adapter for that URL.

    A redirect is an answer like any other: it is never followed, so the key never travels
    to another host. With a `DeadlineAdapter` (the one ampwrite mounts), the attempt as a
    whole ends `connect + read` seconds after it started, however slowly the server trickles.
    """
    request = requests.PreparedRequest()
    request.method = "POST"
    request.url = url
    request.headers = CaseInsensitiveDict(headers)
    request.headers["Content-Length"] = str(len(body))
    request.body = body
    connect, read = timeout
    deadline = time.monotonic() + connect + read
    _attempt.deadline = deadline
    try:
        # The adapter directly: no redirects, no cookie jar, no hooks on this path.
        adapter = session.get_adapter(url)
        response = adapter.send(request, timeout=timeout, stream=True, **options)
    except Exception as exc:  # classified, never raised
        return transport_error(exc)
    finally:
        _attempt.deadline = None
    try:
        answer = _read(response, max_bytes, deadline)
    except Exception as exc:
        response.close()
        return transport_error(exc)
    if isinstance(answer, Answer):
        response.raw.release_conn()  # read to the end: the connection can serve the next call
    else:
        response.close()
    return answer


CHUNK: Final = 64 * 1024


def _read(response: requests.Response, max_bytes: int, deadline: float) -> Answer | TransportError:
    """The whole body, decoded, if it is at most `max_bytes`; never holds more than that."""
    declared = response.headers.get("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        return _failure(TOO_LARGE, f"the answer declares {declared} bytes, over {max_bytes}")
    raw = response.raw
    if declared is not None and declared.isdigit() and "Content-Encoding" not in response.headers:
        body = raw.read(int(declared) + 1)  # the common case: one read of a known size
        if len(body) < int(declared):
            return _failure(INTERRUPTED, f"the answer ended after {len(body)} of {declared} bytes")
    else:
        parts = []
        size = 0
        while size <= max_bytes:
            part = raw.read(CHUNK, decode_content=True)
            if not part:
                break
            parts.append(part)
            size += len(part)
        body = b"".join(parts)
    if len(body) > max_bytes:
        return _failure(TOO_LARGE, f"the answer is larger than {max_bytes} bytes")
    if time.monotonic() > deadline:
        return _failure(TIMEOUT_READ, "the answer took longer than the timeout")
    return Answer(response.status_code, response.reason or "", response.headers, body)


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
    def __init__(self, sock: socket.socket, *args: Any, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        deadline = _attempt.deadline
        if deadline is not None and isinstance(sock, socket.socket):
            self.fp.close()  # releases the socket's reference from makefile()
            self.fp = io.BufferedReader(_DeadlineSocketReader(sock, deadline))


class _HTTPConnection(urllib3.connection.HTTPConnection):
    response_class = _DeadlineHTTPResponse


class _HTTPSConnection(urllib3.connection.HTTPSConnection):
    response_class = _DeadlineHTTPResponse


class _HTTPConnectionPool(urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSConnectionPool(urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOL_CLASSES: Final = {"http": _HTTPConnectionPool, "https": _HTTPSConnectionPool}


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
