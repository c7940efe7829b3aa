"""`ampwrite load FILE`: the command around `ampwrite.bulk.FileLoad`: its flags, the progress
line, the signals, the messages and the exit status."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Final, TextIO

import attrs

from ..bulk._engine import DEFAULT_RETRIES
from ..bulk._ledger import JOURNAL_SUFFIX
from ..bulk._load import COLUMN_TYPES, FileLoad, LoadError, LoadSummary, count_records
from ..bulk._outcome import Outcome
from ..core import ENV_SERVER_URL, Core
from ..errors import AmpWriteError
from . import EXIT_API_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_TRANSPORT, EXIT_USAGE
from ._explain import in_cli_terms, outcome_hints
from ._notices import RetryLines, showing_retries

__all__ = ["ProgressBar", "run_load"]

EXIT_FAILED: Final = EXIT_API_ERROR
"""Some record failed (and none is unknown)."""
EXIT_UNKNOWN: Final = EXIT_TRANSPORT
"""Some record's outcome is unknown."""
UNKNOWN_LISTED: Final = 20
FAILURES_LISTED: Final = 100
"""Without --out, failures printed one per line; the rest are counted."""
NOT_SENT_REASONS: Final = frozenset(
    {"connection refused", "could not connect", "connect timed out"}
)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class ProgressBar:
    """A one-line bar with rate, ETA, requests and throttled answers, redrawn at most ten
    times a second. `done` and `total` count the whole input: a resumed load starts at the
    records settled by earlier runs (`start`), and the rate counts this run's only."""

    WIDTH: Final = 28

    def __init__(self, stream: TextIO, total: int | None, enabled: bool, start: int = 0) -> None:
        self._stream = stream
        self.total = total  # may be set later, from another thread
        self._enabled = enabled
        self._start = start
        self._started = time.monotonic()
        self._drawn = 0.0
        self._shown = False
        self._lock = threading.Lock()
        self.done = start
        self.requests = 0
        self.throttled = 0
        self.status: Callable[[], str | None] = lambda: None

    def update(self, done: int | None = None, *, force: bool = False) -> None:
        if not self._enabled:
            return
        with self._lock:
            if done is not None:
                self.done = done
            now = time.monotonic()
            if not force and now - self._drawn < 0.1:
                return
            self._drawn = now
            self._stream.write("\r" + self.line(now) + "\x1b[K")
            self._stream.flush()
            self._shown = True

    def line(self, now: float | None = None) -> str:
        done, total = self.done, self.total
        elapsed = (time.monotonic() if now is None else now) - self._started
        rate = (done - self._start) / elapsed if elapsed > 0 else 0.0
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
        line += f"  {self.requests:,} req"
        if self.throttled:
            line += f", {self.throttled:,} throttled (429/503)"
        waiting = self.status()
        if waiting:
            line += f"  {waiting}"
        return line

    def clear(self) -> None:
        """Wipe the bar, so a line can be printed; the next update draws it again."""
        if self._enabled and self._shown:
            with self._lock:
                self._stream.write("\r\x1b[K")
                self._stream.flush()
                self._drawn = 0.0

    def finish(self, done: int) -> None:
        if self._enabled and self._shown:
            self.update(done, force=True)
            self._stream.write("\n")
            self._stream.flush()


def parse_column_types(specs: list[str] | None) -> dict[str, str]:
    """`["age=int", "vip=bool"]` -> `{"age": "int", "vip": "bool"}`, or a `LoadError`."""
    types: dict[str, str] = {}
    for spec in specs or ():
        name, sep, kind = spec.partition("=")
        if not sep or not name or kind not in COLUMN_TYPES:
            choices = ", ".join(COLUMN_TYPES)
            raise LoadError(
                f"--column-type {spec!r}: expected NAME=TYPE with TYPE one of {choices}"
            )
        types[name] = kind
    return types


def run_load(ns: argparse.Namespace) -> int:
    """The `load` subcommand; returns the exit status."""
    err = sys.stderr
    try:
        return _run(ns, err)
    except LoadError as exc:
        print(f"ampwrite load: {in_cli_terms(str(exc))}", file=err)
        return EXIT_USAGE


def _run(ns: argparse.Namespace, err: TextIO) -> int:
    from . import make_core

    column_types = parse_column_types(ns.column_type)
    core = make_core(ns, "ampwrite load", platform=True)
    if isinstance(core, int):
        return core
    with core:
        try:
            load = FileLoad(
                core,
                ns.file,
                project_id_or_name=ns.project,
                integration_id=ns.integration,
                object_name=ns.object,
                group_ref=ns.group_ref,
                type=ns.type,
                mode=ns.mode,
                batch_size=ns.batch_size,
                concurrency=ns.concurrency,
                all_or_none=ns.all_or_none,
                out=ns.out,
                resume=ns.resume,
                retry_unknown=ns.retry_unknown,
                format=ns.format,
                column_types=column_types,
                wait=ns.wait,
                wait_timeout=ns.wait_timeout,
                retries=attrs.evolve(DEFAULT_RETRIES, max_elapsed_time=ns.retry_for),
            )
        except (AmpWriteError, ValueError) as exc:
            raise LoadError(str(exc)) from None
        return _load(ns, core, load, err)


def _load(ns: argparse.Namespace, core: Core, load: FileLoad, err: TextIO) -> int:
    unknown_before = load.unknown_before
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
    bar = ProgressBar(err, None, tty, start=load.skipped)
    if tty and ns.file != "-":  # the total, counted beside the load: the bar gains an ETA

        def count() -> None:
            total = count_records(ns.file, load.kind)
            if total is not None:
                bar.total = total

        threading.Thread(target=count, name="ampwrite-count", daemon=True).start()
    retries = RetryLines(err, "ampwrite load", every=1.0, clear=bar.clear)
    bar.status = retries.waiting
    listed = [0]

    found_hints: dict[str, None] = {}  # in order, once each

    def on_outcome(outcome: Outcome) -> None:
        if outcome.status == "failed" and len(found_hints) < 2:
            url = core.server_url
            found_hints.update(dict.fromkeys(outcome_hints(outcome.error, url=url)))
        if ns.out is None and outcome.status in ("failed", "unknown"):
            listed[0] += 1
            if listed[0] <= FAILURES_LISTED:
                bar.clear()
                print(
                    f"ampwrite load: record {outcome.index} {outcome.status}: {outcome.error}",
                    file=err,
                )
        progress = load.progress
        if progress is not None:
            bar.requests, bar.throttled = progress.requests, progress.throttled
        bar.update(bar.done + 1)

    def on_unrecorded(outcome: Outcome) -> None:
        bar.clear()
        print(f"ampwrite load: not recorded: {json.dumps(outcome.to_json())}", file=err)

    def on_follow(operations: int, records: int) -> None:
        bar.clear()
        print(
            f"ampwrite load: following {operations:,} operation(s) of {records:,} accepted "
            "record(s) to their end",
            file=err,
        )

    ticking = threading.Event()

    def tick() -> None:  # redraw while nothing settles (a wait, a slow server)
        while not ticking.wait(0.5):
            progress = load.progress
            if progress is not None:
                bar.requests, bar.throttled = progress.requests, progress.throttled
            bar.update()

    ticker = threading.Thread(target=tick, name="ampwrite-progress", daemon=True)
    if tty:
        ticker.start()

    def on_signal(signum: int, frame: object) -> None:
        load.interrupt()

    previous = _install(on_signal)
    try:
        with showing_retries(retries):
            summary = load.run(
                on_outcome=on_outcome, on_unrecorded=on_unrecorded, on_follow=on_follow
            )
    finally:
        _restore(previous)
        ticking.set()
        if tty:
            ticker.join()
    bar.requests, bar.throttled = summary.requests, summary.throttled
    bar.finish(bar.done)
    if listed[0] > FAILURES_LISTED:
        print(
            f"ampwrite load: {listed[0] - FAILURES_LISTED:,} more failed or unknown "
            "record(s) not listed: pass --out to keep every outcome",
            file=err,
        )
    status = _report(ns, summary, retries, err)
    for hint in found_hints:
        print(hint, file=err)
    return status


def _summary_line(summary: LoadSummary) -> str:
    line = f"written {summary.written:,}, failed {summary.failed:,}, unknown {summary.unknown:,}"
    if summary.accepted:
        line += f", accepted {summary.accepted:,}"
    line += f" in {summary.elapsed:.1f} s ({summary.rate:,.0f} records/s)"
    line += f"; {summary.requests:,} request(s)"
    if summary.throttled:
        line += f", {summary.throttled:,} throttled (429/503) and waited out"
    if summary.settled_before:
        line += f"; {summary.settled_before:,} settled by earlier runs"
    if summary.abandoned:
        line += f"; {len(summary.abandoned):,} abandoned in flight (unknown)"
    return line


def _report(ns: argparse.Namespace, summary: LoadSummary, retries: RetryLines, err: TextIO) -> int:
    """Print how the load ended; return the exit status."""
    if summary.follow_interrupted:
        print("ampwrite load: interrupted while following: the rest stay accepted", file=err)
    print(_summary_line(summary), file=err)
    if summary.first_beyond is not None:
        source = "the input" if ns.file == "-" else ns.file
        print(
            f"ampwrite load: warning: {ns.out} has outcomes for {summary.beyond:,} "
            f"record(s) that {source} does not have (it has {summary.records:,} records; the "
            f"first such index is {summary.first_beyond}): they are ignored; check that "
            f"{ns.out} is the results file of {source}",
            file=err,
        )
    last = retries.last
    if last is not None and last.reason in NOT_SENT_REASONS and summary.written == 0:
        url = last.url or ns.server_url or "the server"
        ended = "gave up" if summary.ended == "done" else "stopped"
        print(
            f"ampwrite load: no answer from {url}: {ended} after {summary.requests:,} "
            f"request(s) in {summary.elapsed:.1f} s ({last.reason})\n"
            f"hint: is the server at {url} running? check --server-url / {ENV_SERVER_URL}",
            file=err,
        )
    status = _status(ns, summary, err)
    if summary.close_problem is not None and status not in (EXIT_UNKNOWN, EXIT_INTERRUPTED):
        print(
            f"ampwrite load: cannot write {ns.out}: {summary.close_problem}; its last "
            "lines may be missing: check the records written before a --resume",
            file=err,
        )
        status = EXIT_UNKNOWN
    return status


def _status(ns: argparse.Namespace, summary: LoadSummary, err: TextIO) -> int:
    if summary.ended == "results":
        print(
            f"ampwrite load: cannot write {ns.out}: {summary.problem}; stopped sending; "
            f"{summary.unrecorded:,} outcome(s) were not recorded (printed above): "
            + (
                "records may have been written without a result line, check them before a --resume"
                if summary.may_be_written
                else "none of them was written"
            ),
            file=err,
        )
        return EXIT_UNKNOWN if summary.may_be_written or summary.any_unknown else EXIT_USAGE
    if summary.ended == "journal":
        print(
            f"ampwrite load: cannot write {ns.out}{JOURNAL_SUFFIX}: {summary.problem}; "
            "stopped sending; records without an outcome were not sent",
            file=err,
        )
        return EXIT_UNKNOWN if summary.any_unknown else EXIT_USAGE
    if summary.ended == "input":
        print(
            f"ampwrite load: cannot read {ns.file}: {summary.problem}; records without an "
            "outcome were not sent",
            file=err,
        )
        return EXIT_UNKNOWN if summary.any_unknown else EXIT_USAGE
    if summary.ended == "interrupted":
        resume = f": run again with --resume --out {ns.out}" if ns.out else ""
        if summary.abandoned:
            where = f"recorded as unknown in {ns.out}" if ns.out else "not recorded"
            print(
                f"ampwrite load: interrupted again; {len(summary.abandoned):,} record(s) in "
                f"flight may have been written ({where}): check them before sending them "
                "again; records not sent yet were not sent" + resume,
                file=err,
            )
        else:
            print(
                "ampwrite load: interrupted; records without an outcome were not sent" + resume,
                file=err,
            )
        return EXIT_INTERRUPTED
    if summary.any_unknown or summary.not_followed:  # not followed to its end
        return EXIT_UNKNOWN
    if summary.any_failed:
        return EXIT_FAILED
    return EXIT_OK


_SIGNALS: Final = ("SIGINT", "SIGTERM")


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
