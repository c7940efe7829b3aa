"""A CSV or JSONL file of records through `write_many`, with a results file to resume from:
the engine of `ampwrite load`, typed and printing nothing (`FileLoad`).

The results file (`out`) gets one JSON line per input record, appended and flushed as each
outcome arrives, so a run that crashes or is interrupted leaves a valid file behind; a later
run with `resume=True` reads it and sends only the records without a final outcome. When a
record has several lines (an unknown outcome resolved by `retry_unknown`, say), the last one
counts; a torn line (not JSON) is ignored, and a line whose `index` is no record number stops
the run before anything is sent. Beside it, a journal (`Journal`) lists what was sent, so a
resume after a kill does not send again what may have been written.

Record numbering (`index`): JSONL counts the non-blank lines from 0; CSV counts the data rows
(after the header) from 0, skipping empty rows.

Messages name the arguments in backquotes (`resume`, `batch_size`); `ampwrite load` shows
them as its flags.
"""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import IO, Any, Final, Literal, TypeAlias, TypeGuard

import attrs

from ..core import Core, seconds_issue
from ..models import WriteMode, WriteType
from ..retries import RetryConfig
from ._engine import BulkWrites, write_many
from ._follow import DEFAULT_WAIT_TIMEOUT, Follower
from ._ledger import (
    JOURNAL_SUFFIX,
    KILLED,
    Journal,
    LedgerError,
    ResultsFile,
    after_unknown,
    json_lines,
)
from ._outcome import STATUSES, Outcome, Progress

__all__ = [
    "COLUMN_TYPES",
    "FileLoad",
    "LoadEnd",
    "LoadError",
    "LoadSummary",
    "count_records",
    "input_format",
    "read_results",
]

# The state of a record index (`States`).
_NONE, _WRITTEN, _FAILED, _UNKNOWN, _ACCEPTED = 0, 1, 2, 3, 4
_CODES: Final = {"written": _WRITTEN, "failed": _FAILED, "unknown": _UNKNOWN, "accepted": _ACCEPTED}
_FINAL: Final = frozenset({_WRITTEN, _FAILED, _ACCEPTED})


class LoadError(Exception):
    """A problem with the arguments or the files of a load; nothing was sent."""


# -- reading the input ----------------------------------------------------------------------


@attrs.frozen
class Row:
    """One input record, or why the row could not be read (`error`)."""

    index: int
    record: object = None
    error: str | None = None


def _truthy(text: str) -> bool:
    folded = text.strip().lower()
    if folded in ("true", "t", "yes", "y", "1"):
        return True
    if folded in ("false", "f", "no", "n", "0"):
        return False
    raise ValueError(f"{text!r} is not a bool (true/false, yes/no, 1/0)")


def _integer(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not an int") from None


def _number(text: str) -> float:
    try:
        return float(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a float") from None


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc.msg}") from None
    except RecursionError:
        raise ValueError("not JSON: nested too deeply") from None


COLUMN_TYPES: Final[dict[str, Callable[[str], Any]]] = {
    "str": str,
    "int": _integer,
    "float": _number,
    "bool": _truthy,
    "json": _json,
}


def read_jsonl(stream: IO[bytes]) -> Iterator[Row]:
    """One record per non-blank line; a line that is not UTF-8 JSON becomes a failed row."""
    index = 0
    for number, raw in enumerate(stream, start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw.decode("utf-8-sig" if number == 1 else "utf-8"))
        except UnicodeDecodeError as exc:
            yield Row(index, error=f"line {number}: not UTF-8 ({exc.reason})")
        except ValueError as exc:
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            yield Row(index, error=f"line {number}: not JSON: {reason}")
        except RecursionError:
            yield Row(index, error=f"line {number}: not JSON: nested too deeply")
        else:
            yield Row(index, record)
        index += 1


def _has_undecodable(values: list[str]) -> bool:
    return any("\udc80" <= char <= "\udcff" for value in values for char in value)


def read_csv(stream: IO[bytes], column_types: dict[str, str]) -> Iterator[Row]:
    """Rows as dicts keyed by the header; values stay strings unless `column_types` says
    otherwise (an empty cell of a typed column is left out). Raises `LoadError` at once
    when a typed column is not in the header."""
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
    reader = csv.reader(text, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        return iter(())
    except csv.Error as exc:
        raise LoadError(f"cannot read the CSV header: {exc}") from None
    missing = sorted(set(column_types) - set(header))
    if missing:
        raise LoadError(f"`column_types` names columns not in the header: {', '.join(missing)}")
    if _has_undecodable(header):
        raise LoadError("the CSV header is not UTF-8")
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise LoadError(f"the CSV header names a column twice: {', '.join(duplicates)}")
    converters = [
        (name, COLUMN_TYPES[column_types[name]]) for name in header if name in column_types
    ]
    return _csv_rows(reader, header, dict(converters))


def _csv_rows(
    reader: Any, header: list[str], converters: dict[str, Callable[[str], Any]]
) -> Iterator[Row]:
    index = 0
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield Row(index, error=f"line {reader.line_num}: not CSV: {exc}")
            index += 1
            continue
        if not values:
            continue
        line = reader.line_num
        if len(values) != len(header):
            error = f"line {line}: {len(values)} values, the header has {len(header)} columns"
            yield Row(index, error=error)
        elif _has_undecodable(values):
            yield Row(index, error=f"line {line}: not UTF-8")
        else:
            yield _typed_row(index, line, header, values, converters)
        index += 1


def _typed_row(
    index: int,
    line: int,
    header: list[str],
    values: list[str],
    converters: dict[str, Callable[[str], Any]],
) -> Row:
    record: dict[str, Any] = {}
    for name, value in zip(header, values, strict=True):
        convert = converters.get(name)
        if convert is None:
            record[name] = value
        elif value.strip():
            try:
                record[name] = convert(value)
            except ValueError as exc:
                return Row(index, error=f"line {line}: column {name}: {exc}")
    return Row(index, record)


def count_records(path: str, kind: str) -> int | None:
    """How many records a regular file holds (for the progress bar), or None. CSV rows are
    counted as `read_csv` reads them: a quoted value may span lines."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None  # a pipe, say: reading it here would take records from the load
        with open(path, "rb") as handle:
            if kind == "jsonl":
                return sum(1 for line in handle if line.strip())
            return sum(1 for _ in read_csv(handle, {}))
    except (OSError, LoadError):
        return None


# -- the results file -------------------------------------------------------------------------


_DENSE_MIN: Final = 1 << 16


class States:
    """The state (`_NONE`, `_WRITTEN` ...) of each record index, from the results file and
    this run's outcomes.

    An index below `len(_dense)` has a byte there. `_dense` grows (at least doubling) only
    for an index below twice the number of entries set so far, or below `_DENSE_MIN`: it
    stays within a few bytes per entry, and a file in index order, as runs write it, costs
    a byte or two per record. Other indices are kept in `_sparse` (never one below
    `len(_dense)`), so a damaged or hostile file (`"index": 1000000000000`) costs memory in
    proportion to its lines, not to its largest index.
    """

    def __init__(self) -> None:
        self._dense = bytearray()
        self._sparse: dict[int, int] = {}
        self._entries = 0

    def __getitem__(self, index: int) -> int:
        if index < len(self._dense):
            return self._dense[index]
        return self._sparse.get(index, _NONE)

    def __setitem__(self, index: int, code: int) -> None:
        self._entries += 1
        dense = self._dense
        if index >= len(dense):
            if index >= max(_DENSE_MIN, 2 * self._entries):
                self._sparse[index] = code
                return
            # at least doubling: the sparse indices are moved a bounded number of times
            dense.extend(bytes(max(_DENSE_MIN, 2 * len(dense), index + 1) - len(dense)))
            for moved in [i for i in self._sparse if i < len(dense)]:
                dense[moved] = self._sparse.pop(moved)
        dense[index] = code

    def __contains__(self, code: int) -> bool:
        """Whether some index is in state `code` (not `_NONE`)."""
        return code in self._dense or code in self._sparse.values()

    def count(self, codes: Collection[int]) -> int:
        """How many indices are in one of the states `codes` (not `_NONE`)."""
        dense = sum(self._dense.count(code) for code in codes)
        return dense + sum(1 for code in self._sparse.values() if code in codes)

    def indices(self, code: int) -> list[int]:
        """The indices in state `code` (not `_NONE`), in order."""
        found = []
        position = self._dense.find(code)
        while position >= 0:
            found.append(position)
            position = self._dense.find(code, position + 1)
        return found + sorted(i for i, state in self._sparse.items() if state == code)

    def drop_from(self, end: int) -> tuple[int | None, Counter[int]]:
        """Forget every index from `end` on. Returns the first of them that had a state (None
        if none had) and how many had each state."""
        dropped = [i for i in self._sparse if i >= end]
        counts = Counter(self._sparse.pop(i) for i in dropped)
        first = min(dropped, default=None)
        if end < len(self._dense):  # then every index in `_sparse` was beyond it
            tail = self._dense[end:]
            del self._dense[end:]
            counts.update(code for code in tail if code != _NONE)
            offset = next((o for o, code in enumerate(tail) if code != _NONE), None)
            if offset is not None:
                first = end + offset
        return first, counts


def _is_index(value: object) -> TypeGuard[int]:
    """Whether `value`, from a results file or a journal, is a record number."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def read_results(path: str) -> States:
    """The last status of each index recorded in `path`. Raises `LoadError` for an outcome
    whose index is no record number: that record cannot be told apart, and sending the
    others could write again one that line says was written."""
    state = States()
    with open(path, "rb") as handle:
        for number, entry in json_lines(handle):  # a line torn by a crash is skipped
            if not isinstance(entry, dict) or entry.get("status") not in STATUSES:
                continue  # not an outcome
            index = entry.get("index")
            if not _is_index(index):
                shown = json.dumps(index)[:40] if "index" in entry else "none"
                raise LoadError(
                    f"{path} line {number}: an outcome whose index is not a record number "
                    f"(a whole number from 0): {shown}; the file is damaged, or not a results "
                    "file of ampwrite load"
                )
            state[index] = _CODES[entry["status"]]
    return state


# -- the load ---------------------------------------------------------------------------------

LoadEnd: TypeAlias = Literal["done", "interrupted", "results", "journal", "input"]
"""How a load ended: `done` (every record read and settled), `interrupted` (`interrupt()`),
or stopped because the results file, the journal or the input could not be written or read
(records without an outcome were then not sent)."""


def input_format(path: str, format: str | None = None) -> str:
    """`csv` or `jsonl`: `format` if given, else from the name (`-`, stdin, is JSONL)."""
    if format:
        return format
    if path == "-":
        return "jsonl"
    return "csv" if path.lower().endswith((".csv", ".tsv")) else "jsonl"


@attrs.frozen(kw_only=True)
class LoadSummary:
    """What a `FileLoad` did. Counts are of this run's outcomes; `any_failed` and
    `any_unknown` cover every record of the results file (earlier runs included)."""

    written: int
    failed: int
    unknown: int
    accepted: int
    settled_before: int
    """Records of the input with a final outcome from earlier runs (not sent again)."""
    records: int
    """Records the input was read up to."""
    elapsed: float
    requests: int
    """HTTP requests sent (attempts included)."""
    throttled: int
    """429 and 503 answers among them."""
    ended: LoadEnd
    problem: str | None = None
    """For `results`, `journal` and `input`: what went wrong with that file."""
    abandoned: tuple[int, ...] = ()
    """Records in flight when a second interrupt abandoned them: recorded as unknown."""
    unrecorded: int = 0
    """Outcomes the results file could not take (reported to `on_unrecorded`)."""
    may_be_written: bool = False
    """Some unrecorded outcome is not `failed`."""
    any_failed: bool = False
    any_unknown: bool = False
    not_followed: int = 0
    """`wait=True`: accepted records whose operation was not followed to its end."""
    follow_interrupted: bool = False
    beyond: int = 0
    """Outcomes of the results file for records the input does not have (ignored)."""
    first_beyond: int | None = None
    close_problem: str | None = None
    """Closing the results file failed: its last lines may be missing."""

    @property
    def done(self) -> int:
        """Outcomes of this run."""
        return self.written + self.failed + self.unknown + self.accepted

    @property
    def rate(self) -> float:
        """Outcomes per second of this run."""
        return self.done / self.elapsed if self.elapsed > 0 else 0.0


class InputInterrupted(Exception):
    """Raised by `FileLoad.interrupt` into a read of the input, so the run can stop."""


class FileLoad:
    """One load of a CSV or JSONL file, `path` (or `-` for JSONL on stdin), through `core`.

    `project_id_or_name`, `integration_id`, `object_name`, `group_ref`, `type`, `mode`,
    `batch_size`, `concurrency`, `all_or_none` and `retries` are those of `write_many`
    (`retries` default: `DEFAULT_RETRIES`). `out` is the results file (one JSON line per
    record); `resume`, if true, reads it (and its journal) and sends only the records it has no
    final outcome for; `retry_unknown`, if true, sends again those whose outcome is unknown (a
    duplicate becomes possible). `format` (`csv` or `jsonl`) overrides the guess from the
    name; `column_types` maps CSV columns to `str`, `int`, `float`, `bool` or `json`.
    `wait`, if true (asynchronous mode), follows each operation to its end, `wait_timeout`
    seconds in all.

    Made with every option checked and, with `resume=True`, the earlier run's files read
    (`LoadError` otherwise: nothing sent); `run()` then sends and returns a `LoadSummary`.
    `interrupt()` is what a SIGINT or SIGTERM handler calls: the first stops sending (a
    read of a slow input is interrupted too) and lets the requests in flight finish; the
    second abandons them (recorded as unknown) by raising `KeyboardInterrupt`.
    """

    def __init__(
        self,
        core: Core,
        path: str,
        *,
        project_id_or_name: str,
        integration_id: str,
        object_name: str,
        group_ref: str,
        type: WriteType = "create",
        mode: WriteMode = "synchronous",
        batch_size: int = 100,
        concurrency: int = 4,
        all_or_none: bool = False,
        out: str | None = None,
        resume: bool = False,
        retry_unknown: bool = False,
        format: Literal["csv", "jsonl"] | None = None,
        column_types: Mapping[str, str] | None = None,
        wait: bool = False,
        wait_timeout: float = DEFAULT_WAIT_TIMEOUT,
        retries: RetryConfig | None = None,
    ) -> None:
        self.core = core
        self.retries = retries
        self.path = path
        self.kind = input_format(path, format)
        self.project_id_or_name = project_id_or_name
        self.integration_id = integration_id
        self.object_name = object_name
        self.group_ref = group_ref
        self.type: WriteType = type
        self.mode: WriteMode = mode
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.all_or_none = all_or_none
        self.out = out
        self.retry_unknown = retry_unknown
        self.wait = wait
        self.wait_timeout = wait_timeout
        self.column_types = dict(column_types or {})
        for name, kind in self.column_types.items():
            if kind not in COLUMN_TYPES:
                raise LoadError(
                    f"`column_types`: {name}: no type {kind!r} ({', '.join(COLUMN_TYPES)})"
                )
        if self.column_types and self.kind != "csv":
            raise LoadError("`column_types` applies to CSV input only")
        if not 1 <= batch_size <= 100:
            raise LoadError(f"`batch_size` must be from 1 to 100, got {batch_size}")
        if not 1 <= concurrency <= 256:
            raise LoadError(f"`concurrency` must be from 1 to 256, got {concurrency}")
        if wait and mode != "asynchronous":
            raise LoadError("`wait` follows asynchronous writes: use it with `mode` asynchronous")
        unusable = seconds_issue("`wait_timeout`", wait_timeout)
        if unusable is not None:
            raise LoadError(unusable)
        if resume and not out:
            raise LoadError("`resume` needs `out`, the results file of the earlier run")
        if out and not resume:
            for where in (out, out + JOURNAL_SUFFIX):  # a killed run may have left only this
                if os.path.exists(where) and os.path.getsize(where) > 0:
                    raise LoadError(
                        f"{where} exists: pass `resume` to continue that load, or choose "
                        "another `out`"
                    )
        self.state = States()
        self.sent_before: set[int] = set()  # in flight when an earlier run was killed
        if resume and out:
            try:
                if os.path.exists(out):
                    self.state = read_results(out)
                self.sent_before = Journal.read(out + JOURNAL_SUFFIX, _is_index)
            except OSError as exc:
                raise LoadError(f"cannot read {exc.filename or out}: {exc}") from None
        state = self.state
        killed = [i for i in self.sent_before if state[i] not in _FINAL | {_UNKNOWN}]
        self.unknown_before: list[int] = sorted([*state.indices(_UNKNOWN), *killed])
        """Records an earlier run left unknown, or sent and was killed before recording
        (sent again only with `retry_unknown`)."""
        self._skip = _FINAL if retry_unknown else _FINAL | {_UNKNOWN}
        self.skipped = state.count(self._skip) + (0 if retry_unknown else len(killed))
        """Records of the results file not sent again (final, or unknown without
        `retry_unknown`): a progress count over the whole input starts there."""
        self._writes: BulkWrites | None = None
        self._follower: Follower | None = None
        self._interrupted = threading.Event()
        self._reading = False  # the input is being read: an interrupt must interrupt the read

    @property
    def progress(self) -> Progress | None:
        """The running `write_many`'s snapshot (requests and throttled answers), or None."""
        return None if self._writes is None else self._writes.progress

    def interrupt(self) -> None:
        """Stop the load, from a signal handler (see the class docstring)."""
        follower = self._follower
        if follower is not None:
            if follower.stopping.is_set():
                raise KeyboardInterrupt
            follower.stop()
            return
        writes = self._writes
        if self._interrupted.is_set():
            if writes is not None:
                writes._run.abandoned = True  # stop waiting for the requests in flight
            raise KeyboardInterrupt
        self._interrupted.set()
        if writes is not None:
            writes.stop()
        if self._reading:  # stdin or a pipe may not give a line for long: stop waiting for it
            raise InputInterrupted

    def run(
        self,
        *,
        on_outcome: Callable[[Outcome], object] | None = None,
        on_unrecorded: Callable[[Outcome], object] | None = None,
        on_follow: Callable[[int, int], object] | None = None,
    ) -> LoadSummary:
        """Send what needs sending; `on_outcome` sees each outcome as it is settled,
        `on_unrecorded` each the results file could not take (show it rather than lose it),
        `on_follow(operations, records)` is told when `wait=True` starts following. Raises
        `LoadError` when the input or the results file cannot be opened (nothing sent)."""
        path, out = self.path, self.out
        try:
            stream: IO[bytes] = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
        except OSError as exc:
            raise LoadError(f"cannot open {path}: {exc.strerror or exc}") from None
        results: ResultsFile | None = None
        journal: Journal | None = None
        try:
            rows = (
                read_jsonl(stream) if self.kind == "jsonl" else read_csv(stream, self.column_types)
            )
            if out:
                try:
                    results = ResultsFile(out)
                    self._settle_killed(results)
                    journal = Journal(out + JOURNAL_SUFFIX)
                except OSError as exc:
                    where = exc.filename or out
                    raise LoadError(f"cannot write {where}: {exc.strerror or exc}") from None
            summary = self._load(rows, results, journal, on_outcome, on_unrecorded, on_follow)
            closing, results = results, None
            problem = closing.close() if closing is not None else None
            if journal is not None:
                # every record sent has its line, if the results file took them all
                journal.close(remove=journal.complete and problem is None)
            if problem is not None:
                summary = attrs.evolve(summary, close_problem=str(problem.strerror or problem))
            return summary
        finally:
            if journal is not None:
                journal.close(remove=False)  # if `_load` did not end: records stay accounted for
            if results is not None:
                results.close()
            if stream is not sys.stdin.buffer:
                stream.close()

    def _settle_killed(self, results: ResultsFile) -> None:
        """Record as unknown what an earlier run sent without recording an outcome."""
        state = self.state
        for index in sorted(self.sent_before):
            if state[index] in _FINAL | {_UNKNOWN}:
                continue
            results.append(Outcome(index, "unknown", None, KILLED))
            state[index] = _UNKNOWN

    def _load(
        self,
        rows: Iterator[Row],
        results: ResultsFile | None,
        journal: Journal | None,
        on_outcome: Callable[[Outcome], object] | None,
        on_unrecorded: Callable[[Outcome], object] | None,
        on_follow: Callable[[int, int], object] | None,
    ) -> LoadSummary:
        state, skip_codes = self.state, self._skip
        final_before = state.count(_FINAL)
        counts = {"written": 0, "failed": 0, "unknown": 0, "accepted": 0}
        held: dict[str, list[Outcome]] = {}  # wait: accepted outcomes by operation, to follow
        originals: dict[int, int] = {}  # position given to write_many -> index in the file
        in_flight: set[int] = set()  # positions sent (or about to be) without an outcome yet
        write_error: list[OSError] = []
        unrecorded: list[Outcome] = []

        def settle(outcome: Outcome) -> None:
            state[outcome.index] = _CODES[outcome.status]
            counts[outcome.status] += 1
            if self.wait and outcome.status == "accepted" and outcome.operation_id is not None:
                held.setdefault(outcome.operation_id, []).append(outcome)
            if results is not None and not write_error:
                try:
                    results.append(outcome)
                except OSError as exc:  # the results file: send nothing more
                    write_error.append(exc)
                    writes.stop()
            if write_error:  # the outcome cannot be recorded: show it rather than lose it
                unrecorded.append(outcome)
                if on_unrecorded is not None:
                    on_unrecorded(outcome)
            if on_outcome is not None:
                on_outcome(outcome)

        read = [0]  # records read from the input
        # the input's end: earlier outcomes of indices it has no record for (the first of them,
        # how many in each state) are forgotten: they make no record be skipped or sent, and
        # must not count in the exit status
        beyond: list[tuple[int | None, Counter[int]]] = []

        def pending() -> Iterator[object]:
            position = 0
            while True:
                self._reading = True
                try:
                    row = next(rows, None)
                finally:
                    self._reading = False
                if row is None:
                    beyond.append(state.drop_from(read[0]))
                    return
                read[0] = row.index + 1
                if state[row.index] in skip_codes:
                    continue
                if row.error is not None:
                    settle(Outcome(row.index, "failed", None, row.error))
                    continue
                originals[position] = row.index
                position += 1
                yield row.record

        def sent(positions: tuple[int, ...]) -> None:
            """`on_send`: note the positions in flight, journal their file indices."""
            if journal is not None:
                journal.record([originals[position] for position in positions])
            in_flight.update(positions)

        writes = write_many(
            self.core,
            pending(),
            batch_size=self.batch_size,
            concurrency=self.concurrency,
            all_or_none=self.all_or_none,
            retry_ambiguous=self.retry_unknown,
            on_send=sent,
            retries=self.retries,
            project_id_or_name=self.project_id_or_name,
            integration_id=self.integration_id,
            object_name=self.object_name,
            group_ref=self.group_ref,
            type=self.type,
            mode=self.mode,
        )
        self._writes = writes
        if self._interrupted.is_set():
            writes.stop()
        started = time.monotonic()
        ended: LoadEnd = "done"
        problem: str | None = None
        abandoned = False
        try:
            for outcome in writes:
                in_flight.discard(outcome.index)
                index = originals.pop(outcome.index)
                if state[index] == _UNKNOWN:  # resent by retry_unknown
                    outcome = after_unknown(outcome)
                settle(attrs.evolve(outcome, index=index))
        except InputInterrupted:  # the first interrupt came while the input was read
            pass
        except KeyboardInterrupt:  # a second interrupt: requests in flight were abandoned
            self._interrupted.set()
            abandoned = True
        except OSError as exc:  # reading the input failed part way; what was sent is recorded
            ended, problem = "input", str(exc)
        except LedgerError as exc:  # the journal: nothing more was sent; what was sent is recorded
            cause = exc.error
            ended, problem = "journal", str(exc if cause is None else cause.strerror or cause)
        finally:
            writes.close(wait=not abandoned)
        progress = writes.progress
        follow_interrupted = False
        if held and not (self._interrupted.is_set() or write_error or problem):
            if on_follow is not None:
                on_follow(len(held), sum(len(accepted) for accepted in held.values()))
            follow_interrupted = self._follow(held, counts, settle)
        abandoned_sent = sorted(originals[p] for p in list(in_flight) if p in originals)
        elapsed = time.monotonic() - started
        first_beyond, states_beyond = beyond[0] if beyond else (None, Counter[int]())
        final_before -= sum(number for code, number in states_beyond.items() if code in _FINAL)
        recorded_abandoned: tuple[int, ...] = ()
        if abandoned and abandoned_sent:
            # sent or about to be, without an outcome: unknown, so a resume does not resend them
            for index in abandoned_sent:
                settle(
                    Outcome(index, "unknown", None, "interrupted while in flight: may be written")
                )
            recorded_abandoned = tuple(abandoned_sent)
        if journal is not None:
            # every record sent has its line now; after a second interrupt a writer may still
            # be about to send one, so the journal stays for a resume to check
            journal.complete = not write_error and not abandoned
        if write_error:
            ended = "results"
            problem = str(write_error[0].strerror or write_error[0])
        elif ended == "done" and self._interrupted.is_set():
            ended = "interrupted"
        return LoadSummary(
            written=counts["written"],
            failed=counts["failed"],
            unknown=counts["unknown"],
            accepted=counts["accepted"],
            settled_before=final_before,
            records=read[0],
            elapsed=elapsed,
            requests=progress.requests,
            throttled=progress.throttled,
            ended=ended,
            problem=problem,
            abandoned=recorded_abandoned,
            unrecorded=len(unrecorded),
            may_be_written=any(outcome.status != "failed" for outcome in unrecorded),
            any_failed=_FAILED in state,
            any_unknown=_UNKNOWN in state,
            not_followed=counts["accepted"] if self.wait else 0,
            follow_interrupted=follow_interrupted,
            beyond=states_beyond.total(),
            first_beyond=first_beyond,
        )

    def _follow(
        self,
        held: dict[str, list[Outcome]],
        counts: dict[str, int],
        settle: Callable[[Outcome], None],
    ) -> bool:
        """wait: follow each operation of this run's accepted records to its end and record
        their final outcomes (a results line each, after the accepted one). An interrupt
        stops the following at once: the records not settled stay accepted, as recorded.
        Returns whether it was interrupted."""
        follower = Follower(self.core, self.project_id_or_name, timeout=self.wait_timeout)
        self._follower = follower
        try:
            for operation_id, accepted in held.items():
                if follower.stopping.is_set():
                    break
                for outcome in follower.settle(operation_id, accepted):
                    counts["accepted"] -= 1
                    settle(outcome)  # an accepted one again says why it was not followed
        finally:
            self._follower = None
        return follower.stopping.is_set()
