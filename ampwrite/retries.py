"""When to try a write again, and how long to wait first.

The Write API is not idempotent: a create that reached the server and then lost its answer may
have written the record. So by default ampwrite retries only what it can prove was not
processed: 429 and 503 answers (the server refused before doing anything) and connections that
failed before the request was sent. Ambiguous outcomes (500, 502, 504, a timeout or reset after
the request was sent) are retried only with `retry_ambiguous=True`.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Final

import attrs

__all__ = ["AMBIGUOUS_STATUSES", "RetryConfig", "parse_retry_after"]

SAFE_STATUSES: Final = frozenset({429, 503})
AMBIGUOUS_STATUSES: Final = frozenset({500, 502, 504})


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
