"""When to try a request again, and how long to wait first: pure functions over values.

The Write API is not idempotent: a create that reached the server and then lost its answer may
have written the record. So by default ampwrite retries only what it can prove was not
processed: 429 and 503 answers (the server refused before doing anything) and connections that
failed before the request was sent. Ambiguous outcomes (500, 502, 504, a timeout or reset after
the request was sent) are retried only with `retry_ambiguous=True`, or for idempotent requests
(reading an operation).

`disposition` says what a failure means for a resend; `retry_delay` decides, for one failed
attempt, whether to try again and after how long. `write_records` and the bulk engine both
stand on them, so what is safe to resend is decided in one place.
"""

from __future__ import annotations

import email.utils
import enum
import random
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Final, NamedTuple

import attrs

from .errors import (
    AmpWriteError,
    APIError,
    ConfigurationError,
    FailureKind,
    RateLimitError,
    RequestValidationError,
    ResponseValidationError,
    TransportError,
)

__all__ = [
    "AMBIGUOUS_STATUSES",
    "RETRY_LOG_KEY",
    "Disposition",
    "RetryConfig",
    "RetryNotice",
    "disposition",
    "parse_retry_after",
    "retries_error",
    "retry_delay",
    "retry_reason",
    "server_wait",
]

SAFE_STATUSES: Final = frozenset({429, 503})
AMBIGUOUS_STATUSES: Final = frozenset({500, 502, 504})
MIN_ATTEMPT_SECONDS: Final = 1.0
"""A retry is not started with less than this left of max_elapsed_time (or a tenth of it)."""


def _positive(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value >= 0:
        raise ValueError(f"RetryConfig.{attribute.name} must be >= 0, got {value!r}")


@attrs.frozen(kw_only=True)
class RetryConfig:
    """Exponential backoff with jitter, bounded by `max_elapsed_time` (all in seconds).

    The n-th retry waits `min(max_interval, initial_interval * exponent ** (n - 1))`, spread by
    ±`jitter` (a fraction), or what the server asked for in `Retry-After` (capped at
    `max_retry_after`). No retry starts once `max_elapsed_time` has passed or would pass
    while waiting; `max_attempts` bounds the number of attempts (first one included).
    """

    initial_interval: float = attrs.field(default=0.5, validator=_positive)
    max_interval: float = attrs.field(default=30.0, validator=_positive)
    exponent: float = attrs.field(default=2.0, validator=_positive)
    max_elapsed_time: float = attrs.field(default=60.0, validator=_positive)
    max_attempts: int = 6
    jitter: float = attrs.field(default=0.25, validator=_positive)
    max_retry_after: float = attrs.field(default=60.0, validator=_positive)
    retry_statuses: frozenset[int] = attrs.field(default=SAFE_STATUSES, converter=frozenset)
    retry_connection_errors: bool = True
    retry_ambiguous: bool = False

    @classmethod
    def none(cls) -> RetryConfig:
        """One attempt, never a retry."""
        return cls(max_attempts=1, retry_statuses=frozenset(), retry_connection_errors=False)

    def retries_status(self, status: int) -> bool:
        """Whether an answer with `status` may be retried under this config."""
        return status in self.retry_statuses or (
            self.retry_ambiguous and status in AMBIGUOUS_STATUSES
        )

    def backoff(self, retry_number: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry number `retry_number` (1 for the first retry)."""
        base = self.initial_interval * self.exponent ** (retry_number - 1)
        base = min(self.max_interval, base)
        spread = 1.0 + self.jitter * (2.0 * rand() - 1.0)
        return max(0.0, base * spread)


def parse_retry_after(
    headers: Mapping[str, str],
    problem_retry_after: str | None,
    now: Callable[[], float] = time.time,
) -> float | None:
    """Seconds to wait as the server asked: `Retry-After` (seconds or HTTP date), else the
    problem's `retryAfter` (RFC 3339). None when neither is present or readable."""
    value = headers.get("Retry-After") or headers.get("retry-after")
    if value is not None:
        seconds = _seconds_or_date(value.strip(), now)
        if seconds is not None:
            return seconds
    if problem_retry_after:
        try:
            when = datetime.fromisoformat(problem_retry_after.replace("Z", "+00:00"))
        except ValueError:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        return max(0.0, when.timestamp() - now())
    return None


def _seconds_or_date(value: str, now: Callable[[], float]) -> float | None:
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        return max(0.0, when.timestamp() - now())
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        return None
    return max(0.0, seconds)


class Disposition(enum.Enum):
    """What a failed attempt means for sending the same request again."""

    REFUSED = "refused"
    """The server refused it before doing anything (429, 503): a resend cannot write twice."""
    NOT_SENT = "not-sent"
    """It never reached the server (refused connection, connect timeout)."""
    AMBIGUOUS = "ambiguous"
    """It may have been processed (5xx but 503, a reset or timeout after sending)."""
    REJECTED = "rejected"
    """Refused for good and nothing was written (invalid, 4xx, TLS, ...): a resend fails too."""
    UNCERTAIN = "uncertain"
    """It may have been processed, and a resend would not tell (a 2xx that does not fit the
    contract, an answer too large to read)."""


_AMBIGUOUS_KINDS: Final = frozenset({FailureKind.READ_TIMEOUT, FailureKind.INTERRUPTED})
_NOT_SENT_KINDS: Final = frozenset({FailureKind.CONNECT, FailureKind.CONNECT_TIMEOUT})


def disposition(error: AmpWriteError) -> Disposition:
    """The one classification of failures, in a fixed order."""
    if isinstance(error, (RequestValidationError, ConfigurationError)):
        return Disposition.REJECTED
    if isinstance(error, APIError):
        if error.status in SAFE_STATUSES:
            return Disposition.REFUSED
        if 500 <= error.status < 600:
            return Disposition.AMBIGUOUS
        return Disposition.REJECTED
    if isinstance(error, TransportError):
        if not error.maybe_sent:
            return Disposition.NOT_SENT if error.kind in _NOT_SENT_KINDS else Disposition.REJECTED
        return Disposition.AMBIGUOUS if error.kind in _AMBIGUOUS_KINDS else Disposition.UNCERTAIN
    if isinstance(error, ResponseValidationError):
        return Disposition.UNCERTAIN
    return Disposition.UNCERTAIN


def server_wait(error: AmpWriteError) -> float | None:
    """Seconds the server asked to wait before another attempt, if it said."""
    if isinstance(error, RateLimitError):
        return error.retry_after
    if isinstance(error, APIError):
        problem_after = error.problem.retry_after if error.problem else None
        return parse_retry_after(error.headers, problem_after)
    return None


def retries_error(config: RetryConfig, error: AmpWriteError, *, idempotent: bool = False) -> bool:
    """Whether `config` allows another attempt after `error` (time and count aside).
    An idempotent request (a read) may be resent after an ambiguous failure as well."""
    kind = disposition(error)
    if isinstance(error, APIError):
        return config.retries_status(error.status) or (idempotent and kind is Disposition.AMBIGUOUS)
    if kind is Disposition.NOT_SENT:
        return config.retry_connection_errors
    if kind is Disposition.AMBIGUOUS:
        return config.retry_ambiguous or idempotent
    return False


def retry_delay(
    config: RetryConfig,
    error: AmpWriteError,
    *,
    attempt: int,
    elapsed: float,
    attempt_seconds: float,
    rand: Callable[[], float] = random.random,
    idempotent: bool = False,
) -> float | None:
    """Seconds to wait before attempt `attempt + 1`, or None to stop and return `error`.

    `elapsed` is the time since the first attempt started; `attempt_seconds` what one attempt
    may take. The server's own wait (Retry-After, the problem's retryAfter) comes first; one
    longer than `max_retry_after` is not worth a retry before its time. No retry starts that
    could not have a useful time left of `max_elapsed_time`.
    """
    if attempt >= config.max_attempts or not retries_error(config, error, idempotent=idempotent):
        return None
    asked = server_wait(error)
    if asked is not None and asked > config.max_retry_after:
        return None
    wait = asked if asked is not None else config.backoff(attempt, rand)
    left_after_wait = config.max_elapsed_time - (elapsed + wait)
    enough = min(MIN_ATTEMPT_SECONDS, attempt_seconds, config.max_elapsed_time / 10)
    if left_after_wait < enough:
        return None
    return wait


RETRY_LOG_KEY: Final = "ampwrite_retry"
"""The attribute of a `logging.LogRecord` of the "ampwrite" logger that carries a
`RetryNotice`: each retry decision is logged at INFO with one (`ampwrite` shows them)."""


class RetryNotice(NamedTuple):
    """One failed attempt that will be tried again: what a retry log record carries."""

    attempt: int
    """The attempt that failed (1 for the first)."""
    max_attempts: int
    wait: float
    """Seconds before the next attempt."""
    reason: str
    """Why it failed, short: `429 Too Many Requests`, `connection refused`, ..."""
    elapsed: float
    """Seconds since the first attempt started."""
    url: str
    """Where the request went (never the key: it travels in a header)."""


_KIND_REASONS: Final = {
    "connect": "could not connect",
    "connect-timeout": "connect timed out",
    "read-timeout": "no answer in time",
    "interrupted": "connection cut",
}


def retry_reason(error: AmpWriteError) -> str:
    """A few words on why an attempt failed, for a retry notice."""
    if isinstance(error, APIError):
        return str(error).partition(":")[0][:80]
    if isinstance(error, TransportError):
        if "refused" in str(error).lower():
            return "connection refused"
        return _KIND_REASONS.get(str(error.kind.value), str(error.kind.value))
    return type(error).__name__
