"""`write_many`: many records through batch writes, concurrently, with exact accounting.

The consuming thread reads the input lazily, one batch at a time, and hands each batch to a
pool of `concurrency` writer threads; it reads the next batch only when a writer is free, so
at most `concurrency` batches are held at once, whatever the input's length. Writers call
`write_records` with retries off and do all waiting in the shared `Throttle`. Outcomes are
yielded as batches finish (not in input order; each carries its input `index`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import random
import signal
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence, Sized
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, TypeAlias

import attrs

from .._validate import check_request
from ..core import Core, seconds_issue
from ..errors import AmpWriteError, ConfigurationError, RequestValidationError
from ..models import WriteMode, WriteResponse, WriteType
from ..result import Err, Result
from ..retries import RETRY_LOG_KEY, RetryConfig, RetryNotice, retry_reason
from ..write import write_records
from ._follow import DEFAULT_WAIT_TIMEOUT, Follower, not_followed
from ._judge import (
    Item,
    Regroup,
    Resend,
    Target,
    Verdict,
    after_ambiguous,
    build_request,
    judge,
    short,
)
from ._outcome import Outcome, Progress, Status
from ._throttle import EXPIRED, STOPPED, TRIPPED, Answer, Throttle, Ticket

if TYPE_CHECKING:
    from ._ledger import Ledger

__all__ = ["DEFAULT_RETRIES", "BulkWrites", "write_many", "write_partition"]

log = logging.getLogger("ampwrite")

DEFAULT_RETRIES: Final = RetryConfig(max_attempts=20, max_elapsed_time=600.0)
"""How patient `write_many` is with 429, 503 and refused connections, per request."""

MAX_BATCH: Final = 100
_POLL: Final = 0.5  # seconds between looks at the writers when no token comes
_NO_RETRIES: Final = RetryConfig.none()

Associations: TypeAlias = (
    "Sequence[Mapping[str, Any]] | Callable[[Any], Sequence[Mapping[str, Any]] | None] | None"
)
ProgressCallback: TypeAlias = Callable[[Progress], object]
SendCallback: TypeAlias = Callable[[tuple[int, ...]], object]


def write_many(
    core: Core,
    records: Iterable[Any],
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
    associations: Associations = None,
    on_progress: ProgressCallback | None = None,
    on_send: SendCallback | None = None,
    retry_ambiguous: bool = False,
    retries: RetryConfig | None = None,
    wait: bool = False,
    wait_timeout: float = DEFAULT_WAIT_TIMEOUT,
) -> BulkWrites:
    """Write every record of `records`; iterate the result for one `Outcome` per record.

    `records` is any iterable of dicts (a list, a generator, a file reader), read lazily.
    Creates and updates go `batch_size` (1 to 100) records per request, deletes one per
    request; `concurrency` requests are in flight at most. `associations` is a list of
    association objects given to every record, or a function of the record returning its
    own (or None). `on_progress` is called with a `Progress` after each finished request, in
    the consuming thread. `retry_ambiguous=True` sends again what may already have been
    written (a duplicate becomes possible). `retries` bounds the patience with 429, 503 and
    refused connections per request (default `DEFAULT_RETRIES`: 20 attempts, 10 minutes);
    its `initial_interval`, `max_interval`, `exponent`, `jitter` and `max_retry_after` shape
    the shared waits. An exception from the input iterator reaches the caller once the
    requests in flight are reported; one from `on_progress` ends the run like `close()`.

    `wait=True` (asynchronous mode): each accepted record's operation is followed to its
    end once every record has been sent, and the record's outcome is the operation's
    (written, failed, or unknown when a batch partly failed; see `ampwrite.bulk._follow`).
    `wait_timeout` bounds that following as a whole, in seconds; a record whose operation did
    not end in time stays accepted, saying so. Accepted outcomes are then held until the
    writes end (a Ctrl-C or `stop()` reports them as accepted).

    `on_send` is called with the indices of a request's records just before it is first
    sent, in a writer thread: journal them there, and a process killed mid-run still leaves
    a record of what may have been written (`ampwrite load` does). If it raises, that
    request is not sent (its records get no outcome), the run stops, and the exception
    reaches the caller once the requests in flight are reported.

    Raises `TypeError` or `ValueError` at once for arguments that are not what they must be
    (a `Core`, the sizes); nothing the records, the network or the server do raises.
    """
    if not isinstance(core, Core):
        raise TypeError(f"write_many needs a Core, got {core.__class__.__name__}")
    for name, value, low, high in (
        ("batch_size", batch_size, 1, MAX_BATCH),
        ("concurrency", concurrency, 1, 256),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"{name} must be an int from {low} to {high}, got {value!r}")
    if retries is not None and not isinstance(retries, RetryConfig):
        raise TypeError(f"retries must be a RetryConfig, got {retries.__class__.__name__}")
    if not isinstance(wait, bool):
        raise TypeError(f"wait must be True or False, got {wait!r}")
    if wait and mode != "asynchronous":
        raise ValueError("wait=True follows asynchronous writes: pass mode='asynchronous'")
    unusable = seconds_issue("wait_timeout", wait_timeout)
    if unusable is not None:
        raise ValueError(unusable)
    if (
        associations is not None
        and not callable(associations)
        and (
            isinstance(associations, (str, bytes, Mapping))
            or not isinstance(associations, Sequence)
        )
    ):
        raise TypeError("associations must be a list of objects, a function, or None")
    target = Target(
        project_id_or_name=project_id_or_name,
        integration_id=integration_id,
        object_name=object_name,
        group_ref=group_ref,
        type=type,
        mode=mode,
        all_or_none=bool(all_or_none),
    )
    run = _Run(
        core,
        records,
        target,
        batch_size=1 if target.single else batch_size,
        concurrency=concurrency,
        associations=associations,
        on_progress=on_progress,
        on_send=on_send,
        retry_ambiguous=bool(retry_ambiguous),
        config=retries or DEFAULT_RETRIES,
    )
    follower = Follower(core, project_id_or_name, timeout=wait_timeout) if wait else None
    return BulkWrites(run, follower)


def write_partition(
    core: Core,
    records: Iterable[Any],
    /,
    *,
    key: str | Callable[[Any], object] | None = None,
    ledger: str | os.PathLike[str] | Ledger | None = None,
    partition: str | int | None = None,
    resend_unknown: bool = False,
    fence_timeout: float = 600.0,
    **options: Any,
) -> list[Outcome]:
    """`write_many` run to the end, its outcomes as a list: the unit of work to send to a
    process pool, a Dask or a Spark worker (the `Core` and the outcomes pickle).

    `index` is the position within `records`. Takes the keyword arguments of `write_many`,
    and:

    - `key`: a field name, or a function of the record, giving each record a stable key
      (a `str` or an `int`) that its `Outcome.key` carries; a record without one fails
      (`error` says why) and is not sent;
    - `ledger` (needs `key` and `partition`): a directory every attempt of this partition
      reaches. Each request's keys are journaled (fsync'd) before it is sent and each
      outcome recorded as it comes; an attempt first reads what earlier ones left: a key
      with a final outcome (written, accepted, failed) is not sent again and gets that
      outcome, a key sent without a recorded outcome is reported "unknown" and not sent
      again unless `resend_unknown=True`. Two records of a partition with one key: the
      second fails. Attempts of one partition are fenced: one waits (at most
      `fence_timeout` seconds, then `LedgerBusy`) while another runs. The outcomes are
      sorted by `index`. Raises `LedgerError` when the ledger cannot be read or written
      (nothing more is sent; what was sent is journaled), `ValueError` for a ledger made for
      another write. See docs/distributed.md.
    """
    if key is None and ledger is None:
        with write_many(core, records, **options) as outcomes:
            return list(outcomes)
    from ._partition import write_keyed

    return write_keyed(
        core,
        records,
        key=key,
        ledger=ledger,
        partition=partition,
        resend_unknown=resend_unknown,
        fence_timeout=fence_timeout,
        options=options,
    )


class BulkWrites(Iterator[Outcome]):
    """The outcomes of a `write_many` run, as they come.

    - iterate it (once) for one `Outcome` per input record;
    - `stop()`: send nothing more, finish the requests in flight, yield their outcomes, end.
      Records without an outcome were then not written (never sent, or refused with 429,
      503 or 413 and not sent again);
    - `close()` (or leaving a `with` block): end at once; requests in flight are finished
      but their outcomes are not reported, so those records' fate is not known;
    - `progress`: a `Progress` snapshot.

    Iterated in the main thread, with Python's default SIGINT handler, a Ctrl-C that comes
    while `write_many` has control (waiting for answers, most of the time) acts as `stop()`,
    and `KeyboardInterrupt` is raised once the outcomes of the requests in flight are
    yielded; a second is raised at once. One that comes while the program's own code runs
    (its loop body) is raised there, as usual, and stops the run too (see `_CtrlC`).

    Made by `write_many`, from its `run` and, with `wait=True`, the `follower` that settles
    accepted records by reading their operations.
    """

    def __init__(self, run: _Run, follower: Follower | None = None) -> None:
        self._run = run
        outcomes = run.outcomes()
        # weak: a run dropped by its caller must be collected, and its generator closed
        run.generator = weakref.ref(outcomes)
        self._follower = follower
        self._outcomes = outcomes if follower is None else _followed(outcomes, follower, run.counts)

    def __iter__(self) -> Iterator[Outcome]:
        return self._outcomes  # a for loop then calls no code of ours between outcomes

    def __next__(self) -> Outcome:
        return next(self._outcomes)

    def stop(self) -> None:
        """Ask the run to end gracefully (safe from a signal handler or another thread)."""
        self._run.stop()
        if self._follower is not None:
            self._follower.stop()

    def close(self, *, wait: bool = True) -> None:
        """End the run now; nothing more is sent once this returns. `wait=False`: do not
        wait for the requests in flight either (their records may be written)."""
        if not wait:
            self._run.abandoned = True
        self._outcomes.close()

    @property
    def progress(self) -> Progress:
        """A `Progress` snapshot of the run."""
        return self._run.snapshot()

    def __enter__(self) -> BulkWrites:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _followed(
    outcomes: Generator[Outcome, None, None], follower: Follower, counts: dict[str, int]
) -> Generator[Outcome, None, None]:
    """`outcomes`, each accepted one held until the writes end and then settled by following
    its operation (`counts`, the run's tallies, follow suit). However the run ends, every
    held outcome is yielded once: settled, or as accepted (a Ctrl-C, `stop()`, an exception
    from the input, then raised after them)."""
    held: dict[str, list[Outcome]] = {}
    try:
        for outcome in outcomes:
            if outcome.status == "accepted" and outcome.operation_id is not None:
                held.setdefault(outcome.operation_id, []).append(outcome)
            else:
                yield outcome
    except GeneratorExit:
        raise
    except BaseException:
        for accepted in held.values():
            yield from not_followed(accepted, "the run ended before its operations were read")
        raise
    finally:
        outcomes.close()
    pending = deque(held.items())
    held.clear()
    try:
        while pending:
            operation_id, accepted = pending[0]
            settled = follower.settle(operation_id, accepted)
            pending.popleft()
            for outcome in settled:
                counts["accepted"] -= 1
                counts[outcome.status] += 1
            yield from settled
    except GeneratorExit:
        raise
    except BaseException:  # a Ctrl-C, a SystemExit from a signal handler, ...: none is lost
        follower.stop()
        while pending:
            yield from not_followed(pending.popleft()[1], "interrupted")
        raise


class _Run:
    """The state of one `write_many` run."""

    def __init__(
        self,
        core: Core,
        records: Iterable[Any],
        target: Target,
        *,
        batch_size: int,
        concurrency: int,
        associations: Associations,
        on_progress: ProgressCallback | None,
        on_send: SendCallback | None,
        retry_ambiguous: bool,
        config: RetryConfig,
    ) -> None:
        self.core = core
        self.records = records
        self.target = target
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.associations = associations
        self.on_progress = on_progress
        self.on_send = on_send
        self.failures: list[BaseException] = []  # from the input or `on_send`: raised at the end
        self.retry_ambiguous = retry_ambiguous
        self.config = config
        self.stopping = threading.Event()
        self.throttle = Throttle(concurrency, config, stop=self.stopping, rand=core.rand)
        self.total = len(records) if isinstance(records, Sized) else None
        self.position = 0
        self.counts = {"written": 0, "failed": 0, "unknown": 0, "accepted": 0}
        self.done = 0
        self.started = time.monotonic()
        self.interrupted = False  # a KeyboardInterrupt (or Ctrl-C) asked the run to stop
        self.abandoned = False  # a second one: the requests in flight are not waited for
        self.stop_asked = False
        self.generator: Callable[[], Generator[Outcome, None, None] | None] = lambda: None
        self.presses = 0  # Ctrl-Cs and KeyboardInterrupts met: the second abandons the run
        self.counted = False  # the KeyboardInterrupt under way was counted by `_CtrlC`
        self.reading = False  # the consuming thread is in the caller's input iterator
        # set (by `write_partition`'s ledger): one batch more than `concurrency` is read
        # ahead, and each batch is given to `on_read` by the consuming thread as it is read,
        # before `on_send` in its writer (a journal's fsync then overlaps the requests in
        # flight); if it raises, the batch is not sent and the run stops, as for `on_send`
        self.on_read: SendCallback | None = None

    def stop(self) -> None:
        """Safe in a signal handler: the consuming thread takes the locks used here only in
        this method, and a call that finds another under way returns."""
        if self.stop_asked:
            return
        self.stop_asked = True
        self.stopping.set()
        self.throttle.wake()

    @property
    def in_control(self) -> bool:
        """Whether the consuming thread is running this run's code (not the caller's)."""
        return bool(getattr(self.generator(), "gi_running", False))

    def snapshot(self) -> Progress:
        return Progress(
            done=self.done,
            total=self.total,
            written=self.counts["written"],
            failed=self.counts["failed"],
            unknown=self.counts["unknown"],
            accepted=self.counts["accepted"],
            requests=self.throttle.requests,
            throttled=self.throttle.throttled,
            elapsed=time.monotonic() - self.started,
        )

    # -- the consuming thread ------------------------------------------------------------------

    def outcomes(self) -> Generator[Outcome, None, None]:
        self.started = time.monotonic()
        source = iter(self.records)
        problem = self._template_problem()
        if problem is not None:
            yield from self._refuse_all(source, problem)
            return
        ready: deque[Outcome] = deque()  # writers append; this thread yields and removes
        writers = _Writers(self._write, self.concurrency, ready, self.stopping)
        in_flight = 0  # batches handed to the writers and not finished: bounds the reading
        exhausted = False
        handed: Outcome | None = None  # the outcome yielded last, until it leaves `ready`
        deferring = CTRL_C.enter(self)
        try:
            while True:
                try:
                    reported = bool(ready)
                    while ready:
                        outcome = ready[0]
                        self.done += 1
                        self.counts[outcome.status] += 1
                        handed = outcome  # no step between here and the yield can raise
                        yield outcome
                        ready.popleft()
                    if reported and self.on_progress is not None:
                        self.on_progress(self.snapshot())
                    while (
                        not exhausted
                        and not self.stopping.is_set()
                        and in_flight < self.concurrency + (self.on_read is not None)
                        and len(ready) < self.batch_size  # outcomes waiting bound the memory too
                    ):
                        items, exhausted = self._take(source, ready)
                        if items and (
                            self.on_read is None or self._announce(tuple(items), self.on_read)
                        ):
                            in_flight += 1
                            writers.give(items, busy=in_flight)
                    if exhausted or self.stopping.is_set():
                        writers.finish(wait=False)
                        if not writers.alive() and not ready:
                            break  # every writer has ended: every outcome is in `ready`
                    if not ready:
                        in_flight -= writers.wait()
                except KeyboardInterrupt:
                    # raised at any step above (by the caller's code, or a SIGINT handler of
                    # the program's): the counts may be off, but not `ready` nor the threads
                    if ready and ready[0] is handed:
                        ready.popleft()  # it was yielded: the caller asked for the next one
                    if self.counted:
                        self.counted = False
                    else:
                        self.presses += 1
                    if self.presses > 1 or self.abandoned:
                        self.abandoned = True  # stop waiting for the requests in flight
                        raise
                    self.interrupted = True
                    self.stop()
        finally:
            if deferring:
                CTRL_C.leave(self)  # from here on, Ctrl-C raises KeyboardInterrupt itself
            self.stop()
            writers.finish(wait=not self.abandoned)
        if self.failures:
            raise self.failures[0]
        if self.interrupted:
            raise KeyboardInterrupt

    def _take(self, source: Iterator[Any], ready: deque[Outcome]) -> tuple[list[Item], bool]:
        """Read up to one batch; records refused before sending go to `ready`. Returns the
        items and whether the input is exhausted (an exception from it ends it too)."""
        items: list[Item] = []
        refused = 0
        while len(items) + refused < self.batch_size:
            self.reading = True  # a Ctrl-C now must interrupt the read (`_CtrlC.handle`)
            try:
                record = next(source)
            except StopIteration:
                return items, True
            except Exception as exc:  # the caller's iterator failed: stop reading, report it later
                self.failures.append(exc)
                return items, True
            finally:
                self.reading = False
            index = self.position
            self.position += 1
            associations = self.associations
            if callable(associations):
                try:
                    associations = associations(record)
                except Exception as exc:  # the caller's function; its failure is this record's
                    ready.append(
                        Outcome(index, "failed", None, f"associations failed: {short(exc)}")
                    )
                    refused += 1
                    continue
            items.append(Item(index, record, associations))
        return items, False

    def _template_problem(self) -> str | None:
        """Why every request of this run would be refused, whatever its records; or None."""
        placeholder: dict[str, Any] = {"id": "placeholder"} if self.target.single else {}
        constant = None if callable(self.associations) else self.associations
        checked = check_request(build_request(self.target, [Item(0, placeholder, constant)]))
        if isinstance(checked, tuple):
            return "invalid request: " + "; ".join(map(str, checked))
        return None

    def _refuse_all(self, source: Iterator[Any], problem: str) -> Iterator[Outcome]:
        for _ in source:
            if self.stopping.is_set():
                return
            outcome = Outcome(self.position, "failed", None, problem)
            self.position += 1
            self.done += 1
            self.counts["failed"] += 1
            yield outcome

    # -- the writer threads --------------------------------------------------------------------

    def _write(self, items: list[Item]) -> tuple[Outcome, ...]:
        """Every item's outcome (none for items never sent because the run stopped)."""
        settled: list[Outcome] = []
        try:
            groups: deque[_Group] = deque([_Group(tuple(items))])
            announce = self.on_send is not None  # the first group holds every item
            while groups:
                outcomes, more = self._write_group(groups.popleft(), announce=announce)
                announce = False
                settled.extend(outcomes)
                groups.extend(more)
            return tuple(settled)
        except BaseException as exc:  # a defect here must not lose records: they may be written
            seen = {outcome.index for outcome in settled}
            error = f"internal error: {short(exc)}"
            rest = [Outcome(item.index, "unknown", None, error) for item in items]
            return (*settled, *(o for o in rest if o.index not in seen))

    def _write_group(
        self, group: _Group, *, announce: bool = False
    ) -> tuple[tuple[Outcome, ...], tuple[_Group, ...]]:
        """Send one request for the group's items until it has an answer that settles them,
        or splits them into groups to send on their own; `announce` them to `on_send` first."""
        items = group.items
        request = build_request(self.target, items)
        config = self.config
        attempts = 0
        first: float | None = None
        ambiguous_before = group.ambiguous_before
        ambiguous_resends = 0
        last: Resend | None = None
        while True:
            deadline = None if first is None else first + config.max_elapsed_time
            ticket: Ticket | str = EXPIRED
            if attempts < max(1, config.max_attempts):
                ticket = self.throttle.acquire(deadline)
            if not isinstance(ticket, Ticket):
                return self._give_up(items, ticket, attempts, last, ambiguous_before), ()
            if first is None:
                first = time.monotonic()
                if announce and not self._announce(items):
                    self.throttle.release(ticket, Answer.LOCAL)
                    return (), ()
            attempts += 1
            answer, wait = Answer.OK, None
            paused = 0.0
            try:
                result = write_records(self.core, request, retries=_NO_RETRIES)
                verdict = judge(
                    result,
                    self.target,
                    items,
                    ambiguous_before=ambiguous_before,
                    retry_ambiguous=self.retry_ambiguous,
                )
                answer, wait = _answer(result, verdict)
            finally:
                paused = self.throttle.release(ticket, answer, wait)
            if isinstance(verdict, Regroup):  # each group inherits what this request met
                return verdict.failed, tuple(_Group(g, ambiguous_before) for g in verdict.groups)
            if not isinstance(verdict, Resend):
                return verdict, ()
            if verdict.throttled and (verdict.wait or 0.0) > config.max_retry_after:
                # as write_records does: a wait that long is not worth a retry before its time
                error = (
                    f"{verdict.error} (the server asked to wait {verdict.wait:g} s, more than"
                    f" max_retry_after {config.max_retry_after:g} s)"
                )
                self.throttle.trip(error)
                status: Status = "unknown" if ambiguous_before else "failed"
                return _all(items, status, error), ()
            last = verdict
            ambiguous_before = ambiguous_before or verdict.ambiguous
            backoff = 0.0
            if verdict.ambiguous:  # the server may be struggling: back off before resending
                ambiguous_resends += 1
                backoff = config.backoff(ambiguous_resends, self.core.rand or random.random)
            pause = max(paused, backoff)
            if (
                attempts < config.max_attempts
                and time.monotonic() + pause <= first + config.max_elapsed_time  # not expiring
                and log.isEnabledFor(logging.INFO)
            ):
                _log_retry(result, attempts, config, pause, first, self.core.server_url, backoff)
            if backoff:
                self.stopping.wait(backoff)

    def _announce(self, items: tuple[Item, ...], callback: SendCallback | None = None) -> bool:
        """Tell `on_send` (or `callback`) what is about to be sent; False (and the run stops)
        if it fails."""
        on_send = callback or self.on_send
        if on_send is None:
            return True
        try:
            on_send(tuple(item.index for item in items))
        except BaseException as exc:  # the caller's function: nothing is sent after it fails
            self.failures.append(exc)
            self.stop()
            return False
        return True

    def _give_up(
        self,
        items: tuple[Item, ...],
        why: str,
        attempts: int,
        last: Resend | None,
        ambiguous_before: bool,
    ) -> tuple[Outcome, ...]:
        """The outcomes of a group that will not be sent (again). `last` is None when the
        group was never sent; `ambiguous_before` may still be set, by the request it was split
        from."""
        status: Status = "unknown" if ambiguous_before else "failed"
        if why == STOPPED:  # outcomes only for what may have been written
            if not ambiguous_before:
                return ()
            error = "stopped before sending it again"
            if last is not None:
                error = f"{last.error} (stopped before trying again)"
        elif why == TRIPPED:
            reason = self.throttle.tripped
            error = f"not sent: the run gave up on the server: {reason}"
            if last is not None:
                error = f"{last.error} (then the run gave up: {reason})"
        elif last is None:  # cannot happen: a first attempt never expires
            error = "not sent: no attempt was allowed"
        else:
            error = f"{last.error} (gave up after {attempts} attempts)"
            if not last.ambiguous:
                self.throttle.trip(error)
        if last is None and ambiguous_before:  # split from a request that met an ambiguous answer
            error = after_ambiguous(error)
        return _all(items, status, error)


@attrs.frozen
class _Group:
    """Items to send in one request. `ambiguous_before`: it was split from a request whose
    earlier attempt may have written them (their outcomes must say so)."""

    items: tuple[Item, ...]
    ambiguous_before: bool = False


def _answer(
    result: Result[WriteResponse, AmpWriteError], verdict: Verdict
) -> tuple[Answer, float | None]:
    """What the throttle learns from one request."""
    if isinstance(result, Err) and isinstance(
        result.error, (RequestValidationError, ConfigurationError)
    ):
        return Answer.LOCAL, None  # refused before sending
    if isinstance(verdict, Resend) and verdict.throttled:
        return Answer.THROTTLED, verdict.wait
    if isinstance(verdict, Resend) and verdict.unreachable:
        return Answer.UNREACHABLE, None
    return Answer.OK, None


def _log_retry(
    result: Result[WriteResponse, AmpWriteError],
    attempt: int,
    config: RetryConfig,
    wait: float,
    first: float,
    url: str,
    own: float,
) -> None:
    """Log the retry decision as `write_records` does (a `RetryNotice`, at INFO). `own`:
    the writer's own backoff (after an ambiguous answer), else the throttle's shared wait."""
    reason = retry_reason(result.error) if isinstance(result, Err) else "retried"
    notice = RetryNotice(
        attempt=attempt,
        max_attempts=config.max_attempts,
        wait=wait,
        reason=reason,
        elapsed=time.monotonic() - first,
        url=url,
    )
    log.info(
        "attempt %d of %d failed (%s); resending in %.1f s"
        if own
        else "attempt %d of %d failed (%s); every writer waits %.1f s",
        attempt,
        notice.max_attempts,
        reason,
        wait,
        extra={RETRY_LOG_KEY: notice},
    )


def _all(items: Sequence[Item], status: Status, error: str) -> tuple[Outcome, ...]:
    return tuple(Outcome(item.index, status, None, error) for item in items)


class _Writers:
    """Up to `count` daemon threads, each taking a batch from `todo`, appending its outcomes
    (none for records never sent) to `ready`, then putting a token in `done`: 1 per batch
    finished, 0 when a thread ends.

    The consuming thread knows every outcome has arrived when every thread has ended, not
    by counting tokens: an interrupt can come between any two of its steps. Daemon threads,
    so a program that abandons a run is not kept alive by a request in flight. Threads
    start as batches need them.
    """

    def __init__(
        self,
        write: Callable[[list[Item]], tuple[Outcome, ...]],
        count: int,
        ready: deque[Outcome],
        stopping: threading.Event,
    ) -> None:
        self.write = write
        self.count = count
        self.ready = ready
        self.stopping = stopping
        self.todo: queue.SimpleQueue[list[Item] | None] = queue.SimpleQueue()
        self.done: queue.SimpleQueue[int] = queue.SimpleQueue()
        self.threads: list[threading.Thread] = []
        self.ends_given = 0  # `None`s put in `todo`, one per thread

    def give(self, items: list[Item], *, busy: int) -> None:
        """Queue one batch; `busy` is the number of batches given and not yet finished."""
        if len(self.threads) < min(busy, self.count):
            thread = threading.Thread(
                target=self._serve, name=f"ampwrite-bulk-{len(self.threads)}", daemon=True
            )
            self.threads.append(thread)
            thread.start()
        self.todo.put(items)

    def _serve(self) -> None:
        try:
            while True:
                try:
                    items = self.todo.get(timeout=_POLL)
                except queue.Empty:
                    if self.stopping.is_set():
                        return  # the end never came (an interrupt in `finish`): end anyway
                    continue
                if items is None:
                    return
                self.ready.extend(self.write(items))  # one step: all of a batch, or none yet
                self.done.put(1)
        finally:
            self.done.put(0)

    def wait(self) -> int:
        """Wait for a token (at most a while: a token can be lost to an interrupt)."""
        try:
            return self.done.get(timeout=_POLL)
        except queue.Empty:
            return 0

    def alive(self) -> bool:
        return any(thread.is_alive() for thread in self.threads)

    def finish(self, *, wait: bool) -> None:
        """Let every thread end after the batches queued; `wait` for them to end. Safe to
        call again, after an interrupt half way included."""
        while self.ends_given < len(self.threads):
            self.todo.put(None)
            self.ends_given += 1
        if wait:
            for thread in self.threads:
                if thread.ident is not None:  # else an interrupt came before it started
                    thread.join()


class _CtrlC:
    """Ctrl-C while runs are iterated in the main thread.

    A `KeyboardInterrupt` could otherwise come between any two steps of the consuming loop
    (between taking an outcome from `ready` and yielding it, say) and lose or repeat
    outcomes. So while a run is iterated in the main thread and SIGINT has Python's default
    handler, the handler is this one. A Ctrl-C while the run has control (its generator is
    running: waiting for answers, reading the input, calling `on_progress`) stops it: the
    loop yields the outcomes of the requests in flight and raises `KeyboardInterrupt` at its
    end (one that comes during a read of the input also interrupts the read, which may
    block for long); the second Ctrl-C raises at once. A Ctrl-C while the program's
    own code runs stops every run too, puts the default handler back and raises there, as
    the default handler would. A program with a SIGINT handler of its own keeps it.
    """

    def __init__(self) -> None:
        self.runs: list[_Run] = []
        self.handler: Callable[[int, Any], None] = self.handle  # one object, to compare with

    def enter(self, run: _Run) -> bool:
        """Defer Ctrl-C for `run`, if this is the main thread and the handler the default."""
        if threading.current_thread() is not threading.main_thread():
            return False
        if signal.getsignal(signal.SIGINT) is not self.handler:
            if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
                return False
            signal.signal(signal.SIGINT, self.handler)
        self.runs.append(run)
        return True

    def leave(self, run: _Run) -> None:
        self.runs = [other for other in self.runs if other is not run]
        if not self.runs:
            self._restore()

    def _restore(self) -> None:
        if signal.getsignal(signal.SIGINT) is self.handler:
            # ValueError: not the main thread (a run closed elsewhere): `handle` then acts as
            # the default handler, and puts it back at the next Ctrl-C
            with contextlib.suppress(ValueError):
                signal.signal(signal.SIGINT, signal.default_int_handler)

    def handle(self, signum: int, frame: Any) -> None:
        runs = self.runs
        if not runs:
            self._restore()
            raise KeyboardInterrupt
        controlling = [run for run in runs if run.in_control]
        if not controlling:  # the program's own code: as the default handler, and stop
            for run in runs:
                run.presses += 1
                run.stop()
            self.runs = []  # no more deferring for them: their consumer may be gone
            self._restore()
            raise KeyboardInterrupt
        for run in controlling:
            run.presses += 1
            run.interrupted = True  # the run raises KeyboardInterrupt at its end
            run.stop()
        second = any(run.presses > 1 for run in controlling)
        if second or any(run.reading for run in controlling):
            # a second press: stop waiting; or a read of the caller's input that may block
            # for long (a pipe, a slow generator): interrupt it, the run then stops
            for run in controlling:
                run.counted = True
                run.abandoned = run.abandoned or run.presses > 1
            raise KeyboardInterrupt


CTRL_C: Final = _CtrlC()
