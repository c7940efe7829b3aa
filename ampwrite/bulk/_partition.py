"""`write_partition` with a record key and, optionally, a ledger: the unit of work of a
distributed load (see `ampwrite.bulk._ledger` for what the ledger holds and guarantees)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final, TypeAlias

import attrs

from ..core import Core
from ._engine import write_many
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
    writes = write_many(core, write.pending(records), **{**options, "on_send": write.sent})
    with writes:  # nothing is sent before the first outcome is asked for
        if ledger is None:
            return write.run(writes, None)
        assert partition is not None
        attempt = ledger.attempt(partition, target_of(options), fence_timeout=fence_timeout)
        write.user_on_send = options.get("on_send")
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
                        self.direct.append(attrs.evolve(before, index=index))
                        continue
                    self.resent.add(key)
            self.positions[position] = (index, key)
            position += 1
            yield record

    def sent(self, positions: tuple[int, ...]) -> None:
        """`on_send`: journal the keys (raises, and then nothing is sent, if it fails)."""
        if self.attempt is not None:
            self.attempt.sending([self.positions[p][1] for p in positions])
        if self.user_on_send is not None:
            self.user_on_send(positions)

    def run(self, writes: Any, attempt: Attempt | None) -> list[Outcome]:
        self.attempt = attempt
        reported: list[Outcome] = []
        problem: LedgerError | None = None
        ended = False  # every request sent has its outcome reported
        try:
            try:
                for outcome in writes:
                    index, key = self.positions.pop(outcome.index)
                    outcome = attrs.evolve(outcome, index=index, key=key)
                    if key in self.resent:
                        outcome = after_unknown(outcome)
                    if attempt is not None and problem is None:
                        try:
                            attempt.settled(outcome)
                        except LedgerError as exc:  # send no more; report what comes
                            problem = exc
                            writes.stop()
                    reported.append(outcome)
                ended = True
            except LedgerError as exc:  # from `sent`: that request was not sent
                problem = problem or exc
                ended = True
        finally:
            if attempt is not None:
                attempt.close(complete=ended and problem is None)
        if problem is not None:
            raise problem
        return sorted([*self.direct, *reported], key=lambda o: o.index)
