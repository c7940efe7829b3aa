"""One request, attempted until it has a result: the retry loop's decisions, and the
synchronous driver over them.

`RetryLoop` holds the decisions and no I/O: `next_request()` gives the attempt to make (a retry
gets only what is left of `max_elapsed_time`), and `decide(outcome)` takes what the transport
returned, removes the key from it (`redact`), maps an answer to a `Result` (`decode_answer`) and
says whether to try again and after how long (`retry_delay`). `send_prepared` is the
synchronous driver: the Core's transport makes each attempt and `core.sleep` waits between
them. `ampwrite.aio` drives the same `RetryLoop` with coroutines.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar

from ._answers import decode_answer, redact
from ._transport import Answer, Request, Timeouts
from .core import Core
from .errors import AmpWriteError, TransportError
from .result import Err, Ok, Result

if TYPE_CHECKING:
    from .retries import RetryConfig

__all__ = ["Prepared", "RetryLoop", "send_prepared"]

log = logging.getLogger("ampwrite")

T = TypeVar("T")

MIN_RETRY_SECONDS: Final = 0.1
"""The least a retry's timeouts are cut to, when a wait overran what was left of
`max_elapsed_time` (a paused process, say): the retry is still made, as decided."""


class Prepared(Generic[T]):
    """A call checked and built, ready for its first attempt: the request, its retry policy,
    the key to keep out of whatever comes back, how a 2xx's JSON becomes the value, and
    whether the request may be resent after an ambiguous failure (a read). (A plain class:
    one is made per call, and an attrs class would cost its compilation at import.)"""

    __slots__ = ("decode", "idempotent", "request", "retries", "secret")

    def __init__(
        self,
        request: Request,
        retries: RetryConfig,
        secret: str,
        decode: Callable[[Any], T],
        idempotent: bool = False,
    ) -> None:
        self.request = request
        self.retries = retries
        self.secret = secret
        self.decode = decode
        self.idempotent = idempotent

    def __repr__(self) -> str:  # never the secret
        return f"Prepared({self.request.method} {self.request.base_url}{self.request.path})"


class RetryLoop(Generic[T]):
    """The decisions of one request's retries, without its I/O (see the module's docstring).
    A driver calls `next_request()`, makes that attempt, and hands what came back to `decide`:
    a `Result` is the end, a number the seconds to wait before the next attempt."""

    def __init__(self, core: Core, prepared: Prepared[T]) -> None:
        self._core = core
        self._prepared = prepared
        self._started = core.clock()
        self._attempt_started = self._started
        self.attempt = 0

    def next_request(self) -> Request:
        """The attempt to make now; a retry may only use what is left of max_elapsed_time."""
        self.attempt += 1
        self._attempt_started = self._core.clock()
        request = self._prepared.request
        if self.attempt == 1:
            return request
        left = self._prepared.retries.max_elapsed_time - (self._attempt_started - self._started)
        left = max(left, MIN_RETRY_SECONDS)  # a sleep that overshot must not make it negative
        return request._replace(timeout=Timeouts(*(min(part, left) for part in request.timeout)))

    def decide(self, outcome: Answer | TransportError) -> Result[T, AmpWriteError] | float:
        """The call's `Result`, or the seconds to wait before the next attempt."""
        core, prepared, attempt = self._core, self._prepared, self.attempt
        outcome = redact(outcome, prepared.secret)
        result: Result[T, AmpWriteError]
        if isinstance(outcome, Answer):
            result = decode_answer(outcome, attempts=attempt, decode=prepared.decode)
            status = str(outcome.status)
        else:
            outcome.attempts = attempt
            result = Err(outcome)
            status = f"no answer ({outcome.kind})"
        request = prepared.request
        if log.isEnabledFor(logging.DEBUG):
            elapsed_ms = (core.clock() - self._attempt_started) * 1000
            url = request.base_url + request.path
            log.debug(
                "%s %s -> %s in %.1f ms (attempt %d)",
                request.method,
                url,
                status,
                elapsed_ms,
                attempt,
            )
        if isinstance(result, Ok):
            return result
        from .retries import RETRY_LOG_KEY, RetryNotice, retry_delay, retry_reason

        wait = retry_delay(
            prepared.retries,
            result.error,
            attempt=attempt,
            elapsed=core.clock() - self._started,
            attempt_seconds=request.timeout.total,
            rand=core.rand or random.random,
            idempotent=prepared.idempotent,
        )
        if wait is None:
            return result
        if log.isEnabledFor(logging.INFO):
            notice = RetryNotice(
                attempt=attempt,
                max_attempts=prepared.retries.max_attempts,
                wait=wait,
                reason=retry_reason(result.error),
                elapsed=core.clock() - self._started,
                url=request.base_url + request.path,
            )
            log.info(
                "attempt %d of %d failed (%s); retrying in %.1f s",
                attempt,
                notice.max_attempts,
                notice.reason,
                wait,
                extra={RETRY_LOG_KEY: notice},
            )
        return wait


def send_prepared(core: Core, prepared: Prepared[T] | AmpWriteError) -> Result[T, AmpWriteError]:
    """Attempt a prepared call as its retry policy allows, waiting with `core.sleep` (a call
    that could not be prepared is its error, returned as it is)."""
    if isinstance(prepared, AmpWriteError):
        return Err(prepared)
    loop = RetryLoop(core, prepared)
    while True:
        step = loop.decide(core.transport.send(loop.next_request()))
        if isinstance(step, (Ok, Err)):
            return step
        core.sleep(step)
