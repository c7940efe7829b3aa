"""One HTTP attempt: send the bytes, read a bounded answer, or say why there is none.

Nothing from `requests` or `urllib3` escapes this module: every failure becomes a
`TransportError` through `transport_error`, which classifies in a fixed order (requests'
`ConnectTimeout` is both a `ConnectionError` and a `Timeout`; its `SSLError` is a
`ConnectionError`).
"""

from __future__ import annotations

import time
from typing import Any, Final

import attrs
import requests
import requests.exceptions as rex
import urllib3.exceptions as uex
from requests.structures import CaseInsensitiveDict

from .errors import RequestTimeoutError, TransportError

__all__ = ["Answer", "send_once", "transport_error"]

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
    to another host.
    """
    request = requests.PreparedRequest()
    request.method = "POST"
    request.url = url
    request.headers = CaseInsensitiveDict(headers)
    request.headers["Content-Length"] = str(len(body))
    request.body = body
    connect, read = timeout
    deadline = time.monotonic() + connect + read
    try:
        # The adapter directly: no redirects, no cookie jar, no hooks on this path.
        adapter = session.get_adapter(url)
        response = adapter.send(request, timeout=timeout, stream=True, **options)
    except Exception as exc:  # classified, never raised
        return transport_error(exc)
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


def _read(response: requests.Response, max_bytes: int, deadline: float) -> Answer | TransportError:
    declared = response.headers.get("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        return _failure(TOO_LARGE, f"the answer declares {declared} bytes, over {max_bytes}")
    raw = response.raw
    body = raw.read(max_bytes + 1, decode_content=True)
    if len(body) > max_bytes:
        return _failure(TOO_LARGE, f"the answer is larger than {max_bytes} bytes")
    if time.monotonic() > deadline:
        return _failure(TIMEOUT_READ, "the answer took longer than the timeout")
    return Answer(response.status_code, response.reason or "", response.headers, body)
