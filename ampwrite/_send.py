"""One request, attempted until it has a result: the synchronous driver.

A short loop over the pure parts: the Core's transport makes one attempt, `redact` removes
the key from whatever came back, `decode_answer` maps an answer to a `Result`, and
`retry_delay` decides whether to try again and after how long.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any, TypeVar

from ._answers import decode_answer, redact
from ._transport import Answer, Request, Timeouts
from .core import Core
from .errors import AmpWriteError
from .result import Err, Ok, Result
from .retries import RetryConfig, retry_delay

__all__ = ["send_with_retries"]

log = logging.getLogger("ampwrite")

T = TypeVar("T")


def send_with_retries(
    core: Core,
    request: Request,
    *,
    secret: str,
    retries: RetryConfig,
    decode: Callable[[Any], T],
    idempotent: bool = False,
) -> Result[T, AmpWriteError]:
    """Attempt `request` as `retries` allows; `decode` makes the value of a 2xx's JSON."""
    started = core.clock()
    attempt = 0
    attempt_request = request
    while True:
        attempt += 1
        attempt_started = core.clock()
        outcome = redact(core.transport.send(attempt_request), secret)
        result: Result[T, AmpWriteError]
        if isinstance(outcome, Answer):
            result = decode_answer(outcome, attempts=attempt, decode=decode)
            status = str(outcome.status)
        else:
            outcome.attempts = attempt
            result = Err(outcome)
            status = f"no answer ({outcome.kind})"
        if log.isEnabledFor(logging.DEBUG):
            elapsed_ms = (core.clock() - attempt_started) * 1000
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
        wait = retry_delay(
            retries,
            result.error,
            attempt=attempt,
            elapsed=core.clock() - started,
            attempt_seconds=request.timeout.total,
            rand=core.rand or random.random,
            idempotent=idempotent,
        )
        if wait is None:
            return result
        log.debug("retrying in %.2f s after %s", wait, status)
        core.sleep(wait)
        # a retry may only use what is left of max_elapsed_time
        left = retries.max_elapsed_time - (core.clock() - started)
        timeout = Timeouts(*(min(part, left) for part in request.timeout))
        attempt_request = request._replace(timeout=timeout)
