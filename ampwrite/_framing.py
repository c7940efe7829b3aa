"""What an answer's head says about its body, and the failures met while reading one: the
rules both transports apply, the synchronous one over http.client and the asyncio one over
its own reader (`ampwrite.aio._http`). Values in, values out; no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from .errors import FailureKind, RequestTimeoutError, TransportError

__all__ = [
    "bodiless",
    "conflicting_lengths",
    "content_length",
    "declared_length",
    "declared_too_large",
    "ended_early",
    "failed",
    "failure",
    "too_large",
    "too_late",
    "untrusted_coding",
]


def failure(kind: FailureKind, message: str) -> TransportError:
    """The error of a failed attempt: a `RequestTimeoutError` for the timeout kinds."""
    cls = RequestTimeoutError if kind.is_timeout else TransportError
    return cls(message, maybe_sent=kind.maybe_sent, kind=kind)


_SAID: Final = {
    FailureKind.CONNECT: "could not connect",
    FailureKind.CONNECT_TIMEOUT: "timed out connecting",
    FailureKind.READ_TIMEOUT: "timed out waiting for the answer",
    FailureKind.TLS: "TLS failed",
    FailureKind.INVALID: "the request could not be built",
    FailureKind.INTERRUPTED: "the connection broke before a full answer",
    FailureKind.TOO_LARGE: "the answer is too large",
}


def failed(kind: FailureKind, exc: BaseException) -> TransportError:
    """The error of an attempt that failed of `kind` with `exc`, which it names."""
    return failure(kind, f"{_SAID[kind]} ({type(exc).__name__}: {exc})")


def untrusted_coding(version: int, coding: str | None) -> TransportError | None:
    """An answer with a `Transfer-Encoding` other than plain chunked in HTTP/1.1 (`version`
    11) cannot be framed with confidence: ampwrite asks for no transfer coding, and HTTP/1.0
    has none. Plain chunked is the value http.client takes for it, "chunked" in any case and
    nothing around it ("chunked " it would read until the server closes, chunk sizes and all)."""
    if coding is None or (coding.lower() == "chunked" and version >= 11):
        return None
    return failure(
        FailureKind.INTERRUPTED,
        f"the answer's framing cannot be trusted (HTTP/{version / 10:.1f} "
        f"with Transfer-Encoding: {coding[:100]!r})",
    )


def bodiless(status: int, method: str) -> bool:
    """Whether an answer has no body whatever its head says (http.client's rule: 1xx, 204,
    304, and any answer to HEAD)."""
    return status in (204, 304) or 100 <= status < 200 or method == "HEAD"


def content_length(value: str | None) -> int | None:
    """A `Content-Length` value as http.client reads it: `int()` of it (" 8", "+8" and "0_8"
    are 8), none when it is empty, not a number or negative."""
    if not value:
        return None
    try:
        length = int(value)
    except ValueError:
        return None
    return length if length >= 0 else None


def conflicting_lengths(joined: str | None) -> TransportError | None:
    """Refuses an answer whose `Content-Length` fields (`joined` with ", ") give different
    numbers, as urllib3 refuses it: which one frames the body cannot be known."""
    if joined is None:
        return None
    try:
        lengths = {int(part) for part in joined.split(",")}
    except ValueError:
        return None  # not all numbers: the first one, read as http.client reads it, frames it
    if len(lengths) <= 1:
        return None
    return failure(
        FailureKind.INTERRUPTED,
        "the connection broke before a full answer (InvalidHeader: Content-Length contained "
        f"multiple unmatching values ({joined[:100]}))",
    )


def declared_length(headers: Mapping[str, str], status: int, method: str) -> int | None:
    """The body's length as http.client frames it: none when a `Transfer-Encoding` overrides
    the `Content-Length` (RFC 9112 §6.3; http.client then reads a chunked body whatever the
    status), 0 for an answer that has no body, else its `Content-Length` if it is a number."""
    if "Transfer-Encoding" in headers:
        return None
    if bodiless(status, method):
        return 0
    return content_length(headers.get("Content-Length"))


def declared_too_large(declared: int | None, max_bytes: int) -> TransportError | None:
    """Refuses, before reading it, a body that says it is over the size limit."""
    if declared is None or declared <= max_bytes:
        return None
    return failure(FailureKind.TOO_LARGE, f"the answer declares {declared} bytes, over {max_bytes}")


def too_large(max_bytes: int) -> TransportError:
    """A body found to be over the size limit while reading it (the rest is never read)."""
    return failure(FailureKind.TOO_LARGE, f"the answer is larger than {max_bytes} bytes")


def ended_early(got: int, declared: int) -> TransportError:
    """A body that ended before its declared length."""
    return failure(FailureKind.INTERRUPTED, f"the answer ended after {got} of {declared} bytes")


def too_late() -> TransportError:
    """An answer read whole, but after the attempt's deadline."""
    return failure(FailureKind.READ_TIMEOUT, "the answer took longer than the timeout")
