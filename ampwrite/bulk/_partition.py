"""`write_partition` with a record key and, optionally, a ledger: the unit of work of a
distributed load (see `ampwrite.bulk._ledger` for what the ledger holds and guarantees)."""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final, TypeAlias

from ..core import Core
from ._engine import BulkWrites, write_many
from ._judge import short
from ._ledger import (
    Attempt,
    Key,
    KeyFunction,
    Ledger,
    LedgerError,
    after_unknown,
    key_of,
    partition_name,
)
from ._outcome import FINAL_STATUSES, Outcome

__all__ = ["RESULT_COLUMNS", "ResultRow", "present", "result_row", "target_of", "write_keyed"]

RESULT_COLUMNS: Final = ("key", "partition", "status", "record_id", "error", "operation_id")
"""The results table of the engine helpers, one row per input record: `key` (the record's
key as text; None when it had none), `partition` (an int), `status`, `record_id`, `error`,
`operation_id` (text or None)."""

ResultRow: TypeAlias = "tuple[str | None, int, str, str | None, str | None, str | None]"


def result_row(outcome: Outcome, partition: int) -> ResultRow:
    key = None if outcome.key is None else str(outcome.key)
    return (key, partition, outcome.status, outcome.record_id, outcome.error, outcome.operation_id)


def present(record: Mapping[str, Any], missing: Callable[[Any], bool]) -> dict[str, Any]:
    """The record without its missing values (None; NaN and NA for a pandas row): a table
    has a value in every column, a record only the fields it sets."""
    return {name: value for name, value in record.items() if not missing(value)}


_TARGET_FIELDS = ("project_id_or_name", "integration_id", "object_name", "group_ref")


def target_of(options: dict[str, Any]) -> dict[str, Any]:
    """What a ledger records about the write: where, and how (records of another write
    must not be taken for this one's)."""
    missing = [name for name in _TARGET_FIELDS if name not in options]
    if missing:
        raise TypeError(f"missing where to write: {', '.join(missing)}")
    target = {name: options[name] for name in _TARGET_FIELDS}
    target["type"] = options.get("type", "create")
    target["mode"] = options.get("mode", "synchronous")
    return target


def write_keyed(
    core: Core,
    records: Iterable[Any],
    *,
    key: KeyFunction | None,
    ledger: Ledger | str | os.PathLike[str] | None,
    partition: str | int | None,
    resend_unknown: bool,
    fence_timeout: float,
    options: dict[str, Any],
) -> list[Outcome]:
    """`write_partition` with `key` and/or `ledger` (its docstring says what they do)."""
    if key is None or not (isinstance(key, str) or callable(key)):
        raise TypeError(f"key must be a field name or a function, got {key!r}")
    if ledger is not None:
        if partition is None:
            raise ValueError("a ledger needs partition=: the partition's number or name")
        partition_name(partition)  # ValueError now, before anything is sent
        if not isinstance(ledger, Ledger):
            ledger = Ledger(ledger)
    if isinstance(fence_timeout, bool) or not isinstance(fence_timeout, (int, float)):
        raise TypeError(f"fence_timeout must be seconds, got {fence_timeout!r}")
    write = _Keyed(key, resend_unknown=bool(resend_unknown))
    write.user_on_send = options.get("on_send")  # still called, after the journal
    writes = write_many(core, write.pending(records), **{**options, "on_send": write.sent})
    with writes:  # nothing is sent before the first outcome is asked for
        if ledger is None:
            return write.run(writes, None)
        assert partition is not None
        attempt = ledger.attempt(partition, target_of(options), fence_timeout=fence_timeout)
        # journal each batch as it is read, and fsync it while the requests before it are
        # in flight: its writer then only checks that the line is durable before sending
        writes._run.on_read = write.read
        return write.run(writes, attempt)


class _Keyed:
    """The keys of one partition's records, what earlier attempts settled, and the mapping
    from `write_many`'s positions back to input indices."""

    def __init__(self, key: KeyFunction, *, resend_unknown: bool) -> None:
        self.key = key
        self.resend_unknown = resend_unknown
        self.attempt: Attempt | None = None
        self.user_on_send: Callable[[tuple[int, ...]], object] | None = None
        self.positions: dict[int, tuple[int, Key]] = {}  # write_many position -> index, key
        self.resent: set[Key] = set()  # unknown before, sent again
        self.direct: list[Outcome] = []  # settled without sending: earlier, no key, twice
        self.lines: dict[int, int] = {}  # first position of a batch -> its journal line

    def pending(self, records: Iterable[Any]) -> Iterator[Any]:
        """The records to send, in order; the others get their outcome in `direct`."""
        earlier = self.attempt.earlier if self.attempt is not None else {}
        seen: set[Key] = set()
        position = 0
        for index, record in enumerate(records):
            key = key_of(self.key, record)
            if isinstance(key, ValueError):
                self.direct.append(Outcome(index, "failed", None, str(key)))
                continue
            if self.attempt is not None:
                if key in seen:  # the ledger could not tell the two apart
                    error = f"key: {key!r} is the key of an earlier record of this partition"
                    self.direct.append(Outcome(index, "failed", None, error, key=key))
                    continue
                seen.add(key)
                before = earlier.get(key)
                if before is not None:
                    if before.status in FINAL_STATUSES or not self.resend_unknown:
                        self.direct.append(
                            Outcome(
                                index,
                                before.status,
                                before.record_id,
                                before.error,
                                before.operation_id,
                                key,
                            )
                        )
                        continue
                    self.resent.add(key)
            self.positions[position] = (index, key)
            position += 1
            yield record

    def read(self, positions: tuple[int, ...]) -> None:
        """`on_read` (with a ledger): journal the keys of a batch as it is read."""
        assert self.attempt is not None
        self.lines[positions[0]] = self.attempt.sending([self.positions[p][1] for p in positions])

    def sent(self, positions: tuple[int, ...]) -> None:
        """`on_send`: the keys are journaled, durably (raises, and then nothing is sent,
        if that fails)."""
        if self.attempt is not None:
            self.attempt.durable(self.lines.pop(positions[0]))
        if self.user_on_send is not None:
            self.user_on_send(positions)

    def run(self, writes: BulkWrites, attempt: Attempt | None) -> list[Outcome]:
        """Iterate `writes` to the end. The outcomes are mapped back (and recorded in the
        ledger) off the consuming thread, which hands out the next batches only once it has
        taken the outcomes ready: the less it does per outcome, the sooner they go."""
        self.attempt = attempt
        if attempt is None:
            taken = list(writes)
            return sorted([*self.direct, *map(self.mapped, taken)], key=lambda o: o.index)
        recorder = _Recorder(self, attempt, writes)
        problem: LedgerError | None = None
        ended = False  # every request sent has its outcome reported
        try:
            try:
                for outcome in writes:
                    recorder.queue.put(outcome)
                ended = True
            except LedgerError as exc:  # from `sent`: that request was not sent
                problem = exc
                ended = True
        finally:
            reported = recorder.finish()
            problem = problem or recorder.problem
            attempt.close(complete=ended and problem is None)
        if problem is not None:
            raise problem
        return sorted([*self.direct, *reported], key=lambda o: o.index)

    def mapped(self, outcome: Outcome) -> Outcome:
        """`write_many`'s outcome with the record's input index and key."""
        index, key = self.positions.pop(outcome.index)
        # not attrs.evolve: several times slower, and this runs once per record
        outcome = Outcome(
            index, outcome.status, outcome.record_id, outcome.error, outcome.operation_id, key
        )
        return after_unknown(outcome) if key in self.resent else outcome


class _Recorder:
    """A thread that maps outcomes back and appends them to the ledger as they come, a
    chunk per write. If the ledger cannot be written, the run is stopped (nothing more is
    sent) and `problem` says why; the outcomes are still mapped and returned."""

    def __init__(self, keyed: _Keyed, attempt: Attempt, writes: BulkWrites) -> None:
        self.keyed = keyed
        self.attempt = attempt
        self.writes = writes
        self.queue: queue.SimpleQueue[Outcome | None] = queue.SimpleQueue()
        self.reported: list[Outcome] = []
        self.problem: LedgerError | None = None
        self.thread = threading.Thread(target=self._serve, name="ampwrite-ledger", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        ended = False
        while not ended:
            chunk = [self.queue.get()]
            with contextlib.suppress(queue.Empty):
                while len(chunk) < 1000:
                    chunk.append(self.queue.get_nowait())
            ended = chunk[-1] is None
            try:
                outcomes = [self.keyed.mapped(o) for o in chunk if o is not None]
                self.reported.extend(outcomes)
                if outcomes and self.problem is None:
                    self.attempt.settled(outcomes)
            except Exception as exc:  # send no more; the outcomes still come
                if self.problem is None:
                    self.problem = (
                        exc
                        if isinstance(exc, LedgerError)
                        else LedgerError(f"recording outcomes failed: {short(exc)}")
                    )
                self.writes.stop()

    def finish(self) -> list[Outcome]:
        """Wait for every outcome put so far to be handled; the outcomes, mapped."""
        self.queue.put(None)
        self.thread.join()
        return self.reported
