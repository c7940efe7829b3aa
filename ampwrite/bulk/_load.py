"""`ampwrite load FILE`: a CSV or JSONL file of records through `write_many`.

The results file (`--out`) gets one JSON line per input record, appended and flushed as each
outcome arrives, so a run that crashes or is interrupted leaves a valid file behind; a later
`--resume` run reads it and sends only the records without a final outcome. When a record
has several lines (an unknown outcome resolved by `--retry-unknown`, say), the last one
counts; a torn line (not JSON) is ignored, and a line whose `index` is no record number stops
the run before anything is sent. Beside it, a journal (`Journal`) lists what was sent,
so `--resume` after a kill does not send again what may have been written.

Record numbering (`index`): JSONL counts the non-blank lines from 0; CSV counts the data rows
(after the header) from 0, skipping empty rows.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import signal
import stat
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from typing import IO, Any, Final, TextIO, TypeGuard

import attrs

from ..cli import EXIT_API_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_TRANSPORT, EXIT_USAGE
from ..core import Core, seconds_issue
from ..errors import AmpWriteError
from ._engine import write_many
from ._follow import Follower
from ._ledger import (
    JOURNAL_SUFFIX,
    KILLED,
    Journal,
    LedgerError,
    ResultsFile,
    after_unknown,
    json_lines,
)
from ._outcome import STATUSES, Outcome

__all__ = ["COLUMN_TYPES", "run_load"]

EXIT_FAILED: Final = EXIT_API_ERROR
"""Some record failed (and none is unknown)."""
EXIT_UNKNOWN: Final = EXIT_TRANSPORT
"""Some record's outcome is unknown."""

# The state of a record index (`States`).
_NONE, _WRITTEN, _FAILED, _UNKNOWN, _ACCEPTED = 0, 1, 2, 3, 4
_CODES: Final = {"written": _WRITTEN, "failed": _FAILED, "unknown": _UNKNOWN, "accepted": _ACCEPTED}
_FINAL: Final = frozenset({_WRITTEN, _FAILED, _ACCEPTED})
UNKNOWN_LISTED: Final = 20


class UsageError(Exception):
    """A problem with the command line or its files; nothing was sent."""


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


def parse_column_types(specs: list[str] | None) -> dict[str, str]:
    """`["age=int", "vip=bool"]` -> `{"age": "int", "vip": "bool"}`, or a `UsageError`."""
    types: dict[str, str] = {}
    for spec in specs or ():
        name, sep, kind = spec.partition("=")
        if not sep or not name or kind not in COLUMN_TYPES:
            choices = ", ".join(COLUMN_TYPES)
            raise UsageError(
                f"--column-type {spec!r}: expected NAME=TYPE with TYPE one of {choices}"
            )
        types[name] = kind
    return types


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
    otherwise (an empty cell of a typed column is left out). Raises `UsageError` at once
    when a typed column is not in the header."""
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
    reader = csv.reader(text, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        return iter(())
    except csv.Error as exc:
        raise UsageError(f"cannot read the CSV header: {exc}") from None
    missing = sorted(set(column_types) - set(header))
    if missing:
        raise UsageError(f"--column-type names columns not in the header: {', '.join(missing)}")
    if _has_undecodable(header):
        raise UsageError("the CSV header is not UTF-8")
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise UsageError(f"the CSV header names a column twice: {', '.join(duplicates)}")
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
    except (OSError, UsageError):
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
    """The last status of each index recorded in `path`. Raises `UsageError` for an outcome
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
                raise UsageError(
                    f"{path} line {number}: an outcome whose index is not a record number "
                    f"(a whole number from 0): {shown}; the file is damaged, or not a results "
                    "file of ampwrite load"
                )
            state[index] = _CODES[entry["status"]]
    return state


class InputInterrupted(Exception):
    """Raised by the signal handler into a read of the input, so the run can stop."""


# -- progress on a terminal -------------------------------------------------------------------


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class ProgressBar:
    """A one-line bar with rate and ETA, redrawn at most ten times a second."""

    WIDTH: Final = 28

    def __init__(self, stream: TextIO, total: int | None, enabled: bool) -> None:
        self._stream = stream
        self.total = total  # may be set later, from another thread
        self._enabled = enabled
        self._started = time.monotonic()
        self._drawn = 0.0
        self._shown = False

    def update(self, done: int, *, force: bool = False) -> None:
        if not self._enabled:
            return
        now = time.monotonic()
        if not force and now - self._drawn < 0.1:
            return
        self._drawn = now
        elapsed = now - self._started
        rate = done / elapsed if elapsed > 0 else 0.0
        total = self.total
        if total:
            share = min(1.0, done / total)
            filled = int(share * self.WIDTH)
            bar = "#" * filled + "." * (self.WIDTH - filled)
            eta = (
                "0:00"
                if done >= total
                else _duration((total - done) / rate)
                if rate > 0
                else "--:--"
            )
            line = f"[{bar}] {share:4.0%} {done:,}/{total:,}  {rate:,.0f} rec/s  ETA {eta}"
        else:
            line = f"{done:,} records  {rate:,.0f} rec/s  {_duration(elapsed)}"
        self._stream.write("\r" + line + "\x1b[K")
        self._stream.flush()
        self._shown = True

    def finish(self, done: int) -> None:
        if self._enabled and self._shown:
            self.update(done, force=True)
            self._stream.write("\n")
            self._stream.flush()


# -- the command ------------------------------------------------------------------------------


def _kind(ns: argparse.Namespace) -> str:
    if ns.format:
        return str(ns.format)
    if ns.file == "-":
        return "jsonl"
    return "csv" if ns.file.lower().endswith((".csv", ".tsv")) else "jsonl"


def run_load(ns: argparse.Namespace) -> int:
    """The `load` subcommand; returns the exit status."""
    err = sys.stderr
    try:
        return _run(ns, err)
    except UsageError as exc:
        print(f"ampwrite load: {exc}", file=err)
        return EXIT_USAGE


def _run(ns: argparse.Namespace, err: TextIO) -> int:
    kind = _kind(ns)
    column_types = parse_column_types(ns.column_type)
    if column_types and kind != "csv":
        raise UsageError("--column-type applies to CSV input only")
    if not 1 <= ns.batch_size <= 100:
        raise UsageError(f"--batch-size must be from 1 to 100, got {ns.batch_size}")
    if not 1 <= ns.concurrency <= 256:
        raise UsageError(f"--concurrency must be from 1 to 256, got {ns.concurrency}")
    if ns.wait and ns.mode != "asynchronous":
        raise UsageError("--wait follows asynchronous writes: use it with --mode asynchronous")
    unusable = seconds_issue("--wait-timeout", ns.wait_timeout)
    if unusable is not None:
        raise UsageError(unusable)
    if ns.resume and not ns.out:
        raise UsageError("--resume needs --out, the results file of the earlier run")
    if ns.out and not ns.resume:
        for path in (ns.out, ns.out + JOURNAL_SUFFIX):  # a killed run may have left only this
            if os.path.exists(path) and os.path.getsize(path) > 0:
                raise UsageError(
                    f"{path} exists: pass --resume to continue that load, or choose another --out"
                )
    state = States()
    sent_before: set[int] = set()  # in flight when an earlier run was killed
    if ns.resume:
        try:
            if os.path.exists(ns.out):
                state = read_results(ns.out)
            sent_before = Journal.read(ns.out + JOURNAL_SUFFIX, _is_index)
        except OSError as exc:
            raise UsageError(f"cannot read {exc.filename or ns.out}: {exc}") from None
    try:
        core = Core(
            ns.api_key,
            server_url=ns.server_url,
            platform_url=ns.platform_url,
            timeout=ns.timeout,
        )
    except AmpWriteError as exc:
        raise UsageError(str(exc)) from None
    try:
        stream: IO[bytes] = sys.stdin.buffer if ns.file == "-" else open(ns.file, "rb")  # noqa: SIM115
    except OSError as exc:
        raise UsageError(f"cannot open {ns.file}: {exc.strerror or exc}") from None
    results: ResultsFile | None = None
    journal: Journal | None = None
    try:
        rows = read_jsonl(stream) if kind == "jsonl" else read_csv(stream, column_types)
        if ns.out:
            try:
                results = ResultsFile(ns.out)
                _settle_killed(results, state, sent_before)
                journal = Journal(ns.out + JOURNAL_SUFFIX)
            except OSError as exc:
                where = exc.filename or ns.out
                raise UsageError(f"cannot write {where}: {exc.strerror or exc}") from None
        status = _load(ns, core, rows, state, results, journal, kind, err)
        closing, results = results, None
        problem = closing.close() if closing is not None else None
        if journal is not None:
            # every record sent has its line, if the results file took them all
            journal.close(remove=journal.complete and problem is None)
        if problem is not None and status not in (EXIT_UNKNOWN, EXIT_INTERRUPTED):
            print(
                f"ampwrite load: cannot write {ns.out}: {problem.strerror or problem}; its last "
                "lines may be missing: check the records written before a --resume",
                file=err,
            )
            status = EXIT_UNKNOWN
        return status
    finally:
        if journal is not None:
            journal.close(remove=False)  # if `_load` did not end: the records stay accounted for
        if results is not None:
            results.close()
        if stream is not sys.stdin.buffer:
            stream.close()
        core.close()


def _settle_killed(results: ResultsFile, state: States, sent_before: set[int]) -> None:
    """Record as unknown what an earlier run sent without recording an outcome."""
    for index in sorted(sent_before):
        if state[index] in _FINAL | {_UNKNOWN}:
            continue
        results.append(Outcome(index, "unknown", None, KILLED))
        state[index] = _UNKNOWN


def _sender(
    journal: Journal | None, originals: dict[int, int], in_flight: set[int]
) -> Callable[[tuple[int, ...]], None]:
    """`on_send` for `write_many`: note the positions in flight, journal their file indices."""

    def sent(positions: tuple[int, ...]) -> None:
        if journal is not None:
            journal.record([originals[position] for position in positions])
        in_flight.update(positions)

    return sent


def _load(
    ns: argparse.Namespace,
    core: Core,
    rows: Iterator[Row],
    state: States,
    results: ResultsFile | None,
    journal: Journal | None,
    kind: str,
    err: TextIO,
) -> int:
    unknown_before = state.indices(_UNKNOWN)
    final_before = state.count(_FINAL)
    if unknown_before and not ns.retry_unknown:
        shown = ", ".join(map(str, unknown_before[:UNKNOWN_LISTED]))
        more = (
            f" and {len(unknown_before) - UNKNOWN_LISTED} more"
            if len(unknown_before) > UNKNOWN_LISTED
            else ""
        )
        print(
            f"ampwrite load: {len(unknown_before)} record(s) have an unknown outcome from an "
            f"earlier run and are not sent again: {shown}{more}. Check them in the target "
            "system; --retry-unknown sends them again.",
            file=err,
        )
    tty = err.isatty()
    skip_codes = _FINAL if ns.retry_unknown else _FINAL | {_UNKNOWN}
    skipped = state.count(skip_codes)
    bar = ProgressBar(err, None, tty)
    if tty and ns.file != "-":  # the total, counted beside the load: the bar gains an ETA

        def count() -> None:
            total = count_records(ns.file, kind)
            if total is not None:
                bar.total = max(0, total - skipped)

        threading.Thread(target=count, name="ampwrite-count", daemon=True).start()
    counts = {"written": 0, "failed": 0, "unknown": 0, "accepted": 0}
    held: dict[str, list[Outcome]] = {}  # --wait: accepted outcomes by operation, to follow
    originals: dict[int, int] = {}  # position given to write_many -> index in the file
    in_flight: set[int] = set()  # positions sent (or about to be) without an outcome yet
    write_error: list[OSError] = []
    unrecorded: list[Outcome] = []

    def settle(outcome: Outcome) -> None:
        state[outcome.index] = _CODES[outcome.status]
        counts[outcome.status] += 1
        if ns.wait and outcome.status == "accepted" and outcome.operation_id is not None:
            held.setdefault(outcome.operation_id, []).append(outcome)
        if results is not None and not write_error:
            try:
                results.append(outcome)
            except OSError as exc:  # the results file: send nothing more
                write_error.append(exc)
                writes.stop()
        if write_error:  # the outcome cannot be recorded: show it rather than lose it
            unrecorded.append(outcome)
            print(f"ampwrite load: not recorded: {json.dumps(outcome.to_json())}", file=err)
        bar.update(sum(counts.values()))

    reading = [False]  # the input is being read: a signal must interrupt the read
    read = [0]  # records read from the input
    # the input's end: earlier outcomes of indices it has no record for (the first of them,
    # how many in each state) are forgotten: they make no record be skipped or sent, and
    # must not count in the exit status
    beyond: list[tuple[int | None, Counter[int]]] = []

    def pending() -> Iterator[object]:
        position = 0
        while True:
            reading[0] = True
            try:
                row = next(rows, None)
            finally:
                reading[0] = False
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

    writes = write_many(
        core,
        pending(),
        project_id_or_name=ns.project,
        integration_id=ns.integration,
        object_name=ns.object,
        group_ref=ns.group_ref,
        type=ns.type,
        mode=ns.mode,
        batch_size=ns.batch_size,
        concurrency=ns.concurrency,
        all_or_none=ns.all_or_none,
        retry_ambiguous=ns.retry_unknown,
        on_send=_sender(journal, originals, in_flight),
    )
    interrupted = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        if interrupted.is_set():
            writes._run.abandoned = True  # the second: stop waiting for the requests in flight
            raise KeyboardInterrupt
        interrupted.set()
        writes.stop()
        if reading[0]:  # stdin or a pipe may not give a line for long: stop waiting for it
            raise InputInterrupted

    previous = _install(on_signal)
    started = time.monotonic()
    read_error: OSError | None = None
    journal_error: OSError | None = None
    abandoned = False
    try:
        for outcome in writes:
            in_flight.discard(outcome.index)
            index = originals.pop(outcome.index)
            if state[index] == _UNKNOWN:  # resent by --retry-unknown
                outcome = after_unknown(outcome)
            settle(attrs.evolve(outcome, index=index))
    except InputInterrupted:  # the first signal came while the input was read
        pass
    except KeyboardInterrupt:  # a second interrupt: requests in flight were abandoned
        interrupted.set()
        abandoned = True
    except OSError as exc:  # reading the input failed part way; what was sent is recorded
        read_error = exc
    except LedgerError as exc:  # the journal: nothing more was sent; what was sent is recorded
        journal_error = exc.error
    finally:
        _restore(previous)
        writes.close(wait=not abandoned)
    if held and not (interrupted.is_set() or write_error or read_error or journal_error):
        _follow(ns, core, held, counts, settle, err)
    abandoned_sent = sorted(originals[p] for p in list(in_flight) if p in originals)
    elapsed = time.monotonic() - started
    bar.finish(sum(counts.values()))
    done = sum(counts.values())
    rate = done / elapsed if elapsed > 0 else 0.0
    summary = (
        f"written {counts['written']:,}, failed {counts['failed']:,}, unknown {counts['unknown']:,}"
    )
    if counts["accepted"]:
        summary += f", accepted {counts['accepted']:,}"
    summary += f" in {elapsed:.1f} s ({rate:,.0f} records/s)"
    first_beyond, states_beyond = beyond[0] if beyond else (None, Counter[int]())
    final_before -= sum(number for code, number in states_beyond.items() if code in _FINAL)
    if final_before:
        summary += f"; {final_before:,} settled by earlier runs"
    if abandoned and abandoned_sent:
        # sent or about to be, without an outcome: unknown, so --resume does not resend them
        for index in abandoned_sent:
            settle(Outcome(index, "unknown", None, "interrupted while in flight: may be written"))
        summary += f"; {len(abandoned_sent):,} abandoned in flight (unknown)"
    print(summary, file=err)
    if first_beyond is not None:
        source = "the input" if ns.file == "-" else ns.file
        print(
            f"ampwrite load: warning: {ns.out} has outcomes for {states_beyond.total():,} "
            f"record(s) that {source} does not have (it has {read[0]:,} records; the first "
            f"such index is {first_beyond}): they are ignored; check that {ns.out} is the "
            f"results file of {source}",
            file=err,
        )
    if journal is not None:
        # every record sent has its line now; after a second interrupt a writer may still
        # be about to send one, so the journal stays for --resume to check
        journal.complete = not write_error and not abandoned
    if write_error:
        may_be_written = any(outcome.status != "failed" for outcome in unrecorded)
        print(
            f"ampwrite load: cannot write {ns.out}: {write_error[0].strerror or write_error[0]}; "
            f"stopped sending; {len(unrecorded):,} outcome(s) were not recorded (printed "
            "above): "
            + (
                "records may have been written without a result line, check them before a --resume"
                if may_be_written
                else "none of them was written"
            ),
            file=err,
        )
        return EXIT_UNKNOWN if may_be_written or _UNKNOWN in state else EXIT_USAGE
    if journal_error is not None:
        print(
            f"ampwrite load: cannot write {ns.out}{JOURNAL_SUFFIX}: "
            f"{journal_error.strerror or journal_error}; stopped sending; records without an "
            "outcome were not sent",
            file=err,
        )
        return EXIT_UNKNOWN if _UNKNOWN in state else EXIT_USAGE
    if read_error is not None:
        print(
            f"ampwrite load: cannot read {ns.file}: {read_error}; records without an outcome "
            "were not sent",
            file=err,
        )
        return EXIT_UNKNOWN if _UNKNOWN in state else EXIT_USAGE
    if interrupted.is_set():
        if abandoned and abandoned_sent:
            where = f"recorded as unknown in {ns.out}" if ns.out else "not recorded"
            print(
                f"ampwrite load: interrupted again; {len(abandoned_sent):,} record(s) in flight "
                f"may have been written ({where}): check them before sending them again; "
                "records not sent yet were not sent"
                + (f": run again with --resume --out {ns.out}" if ns.out else ""),
                file=err,
            )
        else:
            print(
                "ampwrite load: interrupted; records without an outcome were not sent"
                + (f": run again with --resume --out {ns.out}" if ns.out else ""),
                file=err,
            )
        return EXIT_INTERRUPTED
    if _UNKNOWN in state or (ns.wait and counts["accepted"]):  # not followed to its end
        return EXIT_UNKNOWN
    if _FAILED in state:
        return EXIT_FAILED
    return EXIT_OK


_SIGNALS: Final = ("SIGINT", "SIGTERM")


def _follow(
    ns: argparse.Namespace,
    core: Core,
    held: dict[str, list[Outcome]],
    counts: dict[str, int],
    settle: Callable[[Outcome], None],
    err: TextIO,
) -> None:
    """--wait: follow each operation of this run's accepted records to its end and record
    their final outcomes (a results line each, after the accepted one). A Ctrl-C stops the
    following at once: the records not settled stay accepted, as recorded; a second one
    raises KeyboardInterrupt."""
    follower = Follower(core, ns.project, timeout=ns.wait_timeout)

    def on_signal(signum: int, frame: object) -> None:
        if follower.stopping.is_set():
            raise KeyboardInterrupt
        follower.stop()

    records = sum(len(accepted) for accepted in held.values())
    print(
        f"ampwrite load: following {len(held):,} operation(s) of {records:,} accepted "
        "record(s) to their end",
        file=err,
    )
    previous = _install(on_signal)
    try:
        for operation_id, accepted in held.items():
            if follower.stopping.is_set():
                break
            for outcome in follower.settle(operation_id, accepted):
                counts["accepted"] -= 1
                settle(outcome)  # an accepted one again says why it was not followed
    finally:
        _restore(previous)
    if follower.stopping.is_set():
        print("ampwrite load: interrupted while following: the rest stay accepted", file=err)


def _install(handler: Callable[[int, Any], None]) -> list[tuple[int, Any]]:
    """Route SIGINT and SIGTERM to `handler` (main thread only); return what to restore."""
    if threading.current_thread() is not threading.main_thread():
        return []
    previous = []
    for name in _SIGNALS:
        number = getattr(signal, name, None)
        if number is not None:
            previous.append((number, signal.signal(number, handler)))
    return previous


def _restore(previous: list[tuple[int, Any]]) -> None:
    for number, handler in previous:
        signal.signal(number, handler)
