"""What the `ampwrite` command shows while it waits: the library's retry decisions, which it
logs on the "ampwrite" logger with a `RetryNotice` (`RETRY_LOG_KEY`), as lines on stderr.

A logging handler rather than a callback threaded through every call: the retry decision
stays in one place (`ampwrite.retries`, driven by `RetryLoop` and the bulk engine), and the
library needs no knowledge of the command.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from ..retries import RETRY_LOG_KEY, RetryNotice

__all__ = ["RetryLines", "showing_retries"]


class RetryLines(logging.Handler):
    """Prints each retry notice as a line (`prefix: attempt n of m failed (why); ...`).

    `every` > 0 prints at most one line per `every` seconds, counting the others into the
    next (a load riding through hundreds of 429s); `clear` is called first (to wipe a
    progress line). `last` is the latest notice and `seen` their number."""

    def __init__(
        self,
        stream: TextIO,
        prefix: str,
        *,
        every: float = 0.0,
        clear: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(logging.INFO)
        self._stream = stream
        self._prefix = prefix
        self._every = every
        self._clear = clear
        self._lock_lines = threading.Lock()
        self._printed = float("-inf")
        self._held = 0
        self.last: RetryNotice | None = None
        self.last_at = 0.0
        self.seen = 0

    def emit(self, record: logging.LogRecord) -> None:
        notice = getattr(record, RETRY_LOG_KEY, None)
        if not isinstance(notice, RetryNotice):
            return
        with self._lock_lines:
            now = time.monotonic()
            self.last, self.last_at = notice, now
            self.seen += 1
            if now - self._printed < self._every:
                self._held += 1
                return
            more = f" (+{self._held} more since the last line)" if self._held else ""
            self._printed, self._held = now, 0
            if self._clear is not None:
                self._clear()
            self._stream.write(f"{self._prefix}: {record.getMessage()}{more}\n")
            self._stream.flush()

    def waiting(self) -> str | None:
        """`waiting 2.0 s (429 Too Many Requests, attempt 3 of 20)` while a wait announced by
        the latest notice lasts, else None."""
        notice = self.last
        if notice is None:
            return None
        left = notice.wait - (time.monotonic() - self.last_at)
        if left <= 0:
            return None
        return (
            f"waiting {left:.1f} s ({notice.reason}, attempt {notice.attempt} of "
            f"{notice.max_attempts})"
        )


@contextmanager
def showing_retries(handler: RetryLines) -> Iterator[RetryLines]:
    """Attach `handler` to the "ampwrite" logger (at INFO at least) for the block."""
    logger = logging.getLogger("ampwrite")
    level = logger.level
    if level == logging.NOTSET or level > logging.INFO:
        logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
