"""The throttle every writer of one `write_many` run shares.

A 429 or 503 means the server did not process the request, and that it wants fewer
requests. So when any writer meets one, all writers pause: no request starts before the
wait the server asked for (`Retry-After`, else the problem's `retryAfter`, capped at
`RetryConfig.max_retry_after`: the writer that met a longer one gives up and trips it)
or, when it named none, an exponential backoff with jitter that grows with each throttled
answer in a row. The number of requests in flight is also halved (at most once per round
of requests: answers to requests sent before the cut do not cut again), then grows back by
about one per round of successful answers, up to the concurrency asked for. Concurrency
therefore cannot turn a rate limit into a storm of retries, and recovers once the server
does. Once one request has spent its whole retry budget, the throttle trips: no writer
sends anything more.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from enum import Enum
from typing import Final

from ..retries import RetryConfig

__all__ = ["EXPIRED", "STOPPED", "TRIPPED", "Answer", "Throttle", "Ticket"]


class Answer(Enum):
    """What a request met, as far as the throttle cares."""

    OK = "ok"
    """The server answered (anything but 429 or 503): it keeps up."""
    THROTTLED = "throttled"
    """429 or 503: slow down."""
    UNREACHABLE = "unreachable"
    """The connection could not be made: wait before trying again."""
    LOCAL = "local"
    """Nothing was sent (the request was refused locally)."""


class Ticket(int):
    """Permission to send one request; it remembers the throttle's epoch at that moment."""


STOPPED: Final = "stopped"
EXPIRED: Final = "expired"
TRIPPED: Final = "tripped"


class Throttle:
    """Admission control for up to `limit` concurrent requests. Thread-safe."""

    def __init__(
        self,
        limit: int,
        config: RetryConfig,
        *,
        stop: threading.Event,
        rand: Callable[[], float] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limit = limit
        self._config = config
        self._stop = stop
        self._rand = rand or random.random
        self._clock = clock
        self._cond = threading.Condition()
        self._allowed = float(limit)
        self._in_flight = 0
        self._resume_at = 0.0
        self._streak = 0
        self._epoch = 0
        self.requests = 0
        self.throttled = 0
        self.tripped: str | None = None

    @property
    def allowed(self) -> int:
        """How many requests may be in flight right now."""
        with self._cond:
            return max(1, int(self._allowed))

    def acquire(self, deadline: float | None = None) -> Ticket | str:
        """Wait for permission to send; `STOPPED` once the run is stopping, `TRIPPED` once a
        request has given up on the server (`trip`), `EXPIRED` when the throttle would make
        the caller wait past `deadline` (a `clock()` time)."""
        with self._cond:
            while True:
                if self._stop.is_set():
                    return STOPPED
                if self.tripped is not None:
                    return TRIPPED
                now = self._clock()
                if deadline is not None and now > deadline:
                    return EXPIRED
                if now < self._resume_at:
                    if deadline is not None and self._resume_at > deadline:
                        return EXPIRED
                    self._cond.wait(self._resume_at - now)
                    continue
                if self._in_flight >= max(1, int(self._allowed)):
                    self._cond.wait(1.0)
                    continue
                self._in_flight += 1
                return Ticket(self._epoch)

    def release(self, ticket: Ticket, answer: Answer, server_wait: float | None = None) -> float:
        """Report what the request sent under `ticket` met. Returns the seconds every writer
        now waits before sending (0.0 when there is no pause)."""
        with self._cond:
            self._in_flight -= 1
            if answer is not Answer.LOCAL:
                self.requests += 1
            if answer in (Answer.THROTTLED, Answer.UNREACHABLE):
                if answer is Answer.THROTTLED:
                    self.throttled += 1
                self._streak += 1
                if ticket == self._epoch:
                    self._allowed = max(1.0, self._allowed / 2)
                    self._epoch += 1
                if server_wait is not None:
                    wait = min(server_wait, self._config.max_retry_after)
                else:
                    wait = self._config.backoff(self._streak, self._rand)
                self._resume_at = max(self._resume_at, self._clock() + wait)
            elif answer is Answer.OK:
                self._streak = 0
                self._allowed = min(float(self._limit), self._allowed + 1.0 / self._allowed)
            self._cond.notify_all()
            return max(0.0, self._resume_at - self._clock())

    def trip(self, reason: str) -> None:
        """A request spent its whole retry budget on 429, 503 or a connection that could not
        be made: the server is not taking writes, so no writer sends anything more."""
        with self._cond:
            if self.tripped is None:
                self.tripped = reason
            self._cond.notify_all()

    def wake(self) -> None:
        """Wake every waiting writer (after the stop event was set)."""
        with self._cond:
            self._cond.notify_all()
