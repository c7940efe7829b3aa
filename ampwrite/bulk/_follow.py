"""Following asynchronous writes to their end: from each operation to the final outcomes of
the records it carried.

An asynchronous write is answered with an operation id only ("accepted"); its outcome is
the operation's, read from the Platform API once it is no longer `in_progress`. The API
says how a batch ended as a whole (`success` or `failure`, and a summary such as "Batch
write completed (3 succeeded, 1 failed)"), never which of its records failed, so:

| the operation                          | each of its records                          |
| -------------------------------------- | -------------------------------------------- |
| success, nothing failed                | written (the provider's id for one record)   |
| failure, nothing succeeded             | failed, with the summary as the error        |
| success or failure, some of each       | unknown: which ones is not said              |
| any other status                       | unknown                                      |
| not followed to its end (timeout, stop, an error reading it) | accepted, as before, saying why |

"Some of each" is read from the summary, or, when the summary does not give the counts in
the API's wording, from fewer `successfulRecordIds` than records.

A record accepted after an ambiguous attempt (its earlier attempt may have written it too)
is never reported failed: it is unknown.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import Final

import attrs

from ..core import Core
from ..errors import AmpWriteError, OperationTimeoutError
from ..models import Operation, OperationStatus
from ..operations import DEFAULT_MAX_POLL_INTERVAL, poll_until_done
from ..result import Err, Result
from ..retries import RetryConfig
from ._judge import MAYBE_TWICE, after_ambiguous, short
from ._outcome import Outcome

__all__ = ["DEFAULT_WAIT_TIMEOUT", "Follower", "not_followed", "settle_accepted"]

DEFAULT_WAIT_TIMEOUT: Final = 600.0
"""Seconds, in all, to follow a run's operations to their end."""
_SUMMARY: Final = re.compile(r"\((\d+) succeeded, (\d+) failed\)")
_ONE_ATTEMPT: Final = RetryConfig.none()


def _counts(summary: str | None) -> tuple[int, int] | None:
    """(succeeded, failed) from a summary in the API's style, when it has them."""
    found = _SUMMARY.search(summary or "")
    return None if found is None else (int(found.group(1)), int(found.group(2)))


def settle_accepted(
    result: Result[Operation, AmpWriteError], accepted: Sequence[Outcome]
) -> tuple[Outcome, ...]:
    """The final outcomes of `accepted` (the records of one operation), per the table above."""
    if isinstance(result, Err):
        error = result.error
        reason = (
            f"not followed to its end: {short(error)}"
            if isinstance(error, OperationTimeoutError)
            else f"its operation could not be read: {short(error)}"
        )
        return tuple(attrs.evolve(o, error=_with_note(o, reason)) for o in accepted)
    operation = result.value
    counts = _counts(operation.result)
    summary = operation.result or f"the operation ended in {operation.status!r}"
    ids = operation.metadata.successful_record_ids
    if counts is None and 0 < len(ids) < len(accepted):  # a summary in another wording
        counts = (len(ids), len(accepted) - len(ids))
        summary = f"{summary} ({len(ids)} of {len(accepted)} records listed as written)"
    if operation.status == OperationStatus.SUCCESS and (counts is None or counts[1] == 0):
        record_id = ids[0] if len(accepted) == 1 and len(ids) == 1 else None
        return tuple(
            attrs.evolve(outcome, status="written", record_id=record_id) for outcome in accepted
        )
    if operation.status == OperationStatus.FAILURE and (counts is None or counts[0] == 0):
        return tuple(
            attrs.evolve(outcome, status="unknown", error=after_ambiguous(summary))
            if outcome.error == MAYBE_TWICE
            else attrs.evolve(outcome, status="failed", error=summary[:500])
            for outcome in accepted
        )
    if counts is not None:
        reason = f"{summary}: the operation does not say which records failed"
    else:
        reason = f"the operation's status is {operation.status!r}: {summary}"
    return tuple(
        attrs.evolve(outcome, status="unknown", error=reason[:500]) for outcome in accepted
    )


class Follower:
    """Follows operations one after another, within one time budget that starts with the
    first: once it is spent, the operations not read yet stay accepted. Each poll is a single
    attempt and every wait (between polls, or as a 429 or 503 asks) goes through `stop()`'s
    event, so `stop()` (from a signal handler or another thread) ends the following at
    once; what is not followed stays accepted."""

    def __init__(
        self,
        core: Core,
        project_id_or_name: str,
        *,
        timeout: float = DEFAULT_WAIT_TIMEOUT,
        max_poll_interval: float = DEFAULT_MAX_POLL_INTERVAL,
    ) -> None:
        self._core = core
        self._project = project_id_or_name
        self._timeout = timeout
        self._max_poll_interval = max_poll_interval
        self._deadline: float | None = None
        self.stopping = threading.Event()

    def stop(self) -> None:
        self.stopping.set()

    def settle(self, operation_id: str, accepted: Sequence[Outcome]) -> tuple[Outcome, ...]:
        """The final outcomes of the records `operation_id` carried."""
        if self.stopping.is_set():
            return not_followed(accepted, "the run was stopped")
        now = self._core.clock()
        if self._deadline is None:
            self._deadline = now + self._timeout
        if now >= self._deadline:
            return not_followed(accepted, f"wait_timeout ({self._timeout:g} s) was spent")
        result = poll_until_done(
            self._core,
            self._project,
            operation_id,
            timeout=self._deadline - now,
            poll_interval=None,
            max_poll_interval=self._max_poll_interval,
            retries=_ONE_ATTEMPT,  # waits go through `pause`, which stop() interrupts
            request_timeout=None,
            platform_url=None,
            headers=None,
            pause=lambda seconds: not self.stopping.wait(seconds),
        )
        if self.stopping.is_set() and isinstance(result, Err):
            return not_followed(accepted, "the run was stopped")
        return settle_accepted(result, accepted)


def not_followed(accepted: Sequence[Outcome], why: str) -> tuple[Outcome, ...]:
    """`accepted` as they are, saying why their operation was not followed."""
    return tuple(attrs.evolve(o, error=_with_note(o, f"not followed: {why}")) for o in accepted)


def _with_note(outcome: Outcome, error: str) -> str:
    """`error`, keeping the warning of an outcome accepted after an ambiguous attempt."""
    return f"{error}; {MAYBE_TWICE}" if outcome.error == MAYBE_TWICE else error
