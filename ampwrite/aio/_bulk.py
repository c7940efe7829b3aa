"""`aio.write_many`: the bulk engine of `ampwrite.bulk`, its outcomes as an async iterator.

The run is `ampwrite.bulk.write_many` itself (the same batching, throttling, judging and
accounting), driven by one thread of its own that hands each outcome over to the event loop
through a bounded buffer. So the loop never waits on the network, nor on the caller's input
when it is a plain iterable (it is read on that thread); an async iterable is read on the
loop, a batch at a time, when the run asks for more.

Cancelling the consumer while it waits for an outcome stops the run (nothing more is sent)
and keeps the outcomes of the requests in flight: iterate again to receive them, then the
iteration ends. A consumer that stops iterating holds the run back: at most a batch of
outcomes waits for it, besides the requests in flight. `aclose()`
(leaving an `async with` block) ends the run at once, as `BulkWrites.close()` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from concurrent.futures import CancelledError as FutureCancelled
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from types import TracebackType
from typing import Any, Final, TypeAlias

from ..bulk import BulkWrites, Outcome, Progress
from ..bulk import write_many as bulk_write_many
from ..core import Core

__all__ = ["AsyncBulkWrites", "write_many"]

_LOOK: Final = 0.1  # seconds between looks at whether the run is over, while reading input
_LOOP_GONE: Final = (
    "the async input was not read to its end: the event loop that reads it (the one that"
    " first iterated the run) closed or cancelled the read"
)
_Waiter: TypeAlias = "tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]"


def write_many(
    core: Core, records: Iterable[Any] | AsyncIterable[Any], **options: Any
) -> AsyncBulkWrites:
    """`ampwrite.bulk.write_many`, for asyncio: `async for outcome in aio.write_many(...)`.

    Takes the same keyword arguments; `records` may also be an async iterable (an async
    generator, an async database cursor). Every input record gets exactly one `Outcome`, as
    with the synchronous run. Raises `TypeError` or `ValueError` at once for unusable
    arguments, as `ampwrite.bulk.write_many` does.
    """
    return AsyncBulkWrites(core, records, options)


class AsyncBulkWrites(AsyncIterator[Outcome]):
    """The outcomes of an `aio.write_many` run, as they come (not in input order). Made by
    `aio.write_many(core, records, **options)`, whose arguments `core`, `records` and
    `options` (the keyword arguments of `ampwrite.bulk.write_many`) it takes.

    - `async for outcome in writes`: one `Outcome` per input record;
    - `stop()`: send nothing more; the outcomes of the requests in flight still come, then
      the iteration ends. Records without an outcome were not written;
    - cancelling the task that waits for an outcome stops the run the same way and raises
      `CancelledError`; iterating again yields the outcomes of the requests that were in
      flight (none is lost, none repeated), then ends. A cancellation that lands in the
      loop's own body does not reach the run: call `stop()` there (a Ctrl-C under
      `asyncio.run` is such a cancellation):

          try:
              async for outcome in writes:
                  await save(outcome)
          except asyncio.CancelledError:
              writes.stop()
              async for outcome in writes:  # the requests in flight, then the end
                  await save(outcome)
              raise

    - `aclose()` (or leaving `async with`): end now; the requests in flight finish on their
      thread but their outcomes are not reported;
    - `progress`: a `Progress` snapshot.
    """

    def __init__(
        self, core: Core, records: Iterable[Any] | AsyncIterable[Any], options: dict[str, Any]
    ) -> None:
        self._source = records
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = threading.Event()  # the consumer is gone: the input stops too
        self._stopping = threading.Event()  # `stop()`: no more input is read either
        batch = options.get("batch_size", 100)
        # outcomes handed over and not yet taken, at most: a consumer that falls behind (or
        # stops iterating) holds the run back, as a synchronous one does
        self._room_for = batch if isinstance(batch, int) and batch > 0 else 1
        source: Iterable[Any]
        if isinstance(records, AsyncIterable):
            source = self._pulled(records, self._room_for)
        else:
            source = records
        self._run: BulkWrites = bulk_write_many(core, source, **options)
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)  # the pump waits here for the consumer
        self._ready: deque[Outcome] = deque()
        # the consumers waiting for an outcome (several tasks may share a run), each woken to
        # look again at every hand-over
        self._waiters: list[_Waiter] = []
        self._over = False  # the pump has handed over everything it will
        self._failure: BaseException | None = None  # raised once the outcomes are taken
        self._ended: Future[None] = Future()  # the pump's thread has let go of the run
        self._pump: threading.Thread | None = None

    # -- the consumer, on the event loop ------------------------------------------------------

    def __aiter__(self) -> AsyncBulkWrites:
        return self

    async def __anext__(self) -> Outcome:
        self._start()
        while True:
            with self._lock:
                if self._ready:
                    outcome = self._ready.popleft()
                    self._room.notify()
                    return outcome
                if self._over:
                    failure, self._failure = self._failure, None
                    if failure is not None:
                        raise failure
                    raise StopAsyncIteration
                loop = asyncio.get_running_loop()
                waiter = loop.create_future()
                self._waiters.append((loop, waiter))
            try:
                await waiter
            except asyncio.CancelledError:
                with self._lock, contextlib.suppress(ValueError):
                    self._waiters.remove((loop, waiter))
                self.stop()  # outcomes of the requests in flight stay for the next iteration
                raise

    def stop(self) -> None:
        """Send nothing more; the outcomes of the requests in flight are still yielded."""
        self._stopping.set()
        self._run.stop()

    async def aclose(self) -> None:
        """End the run now: nothing more is sent once this returns; the outcomes of the
        requests in flight are not reported (those records may be written)."""
        self._closing.set()
        self._run.stop()  # no waiting on the server (a 429's wait, an operation's end) either
        with self._lock:
            self._ready.clear()
            self._room.notify_all()
        if self._pump is None:
            self._run.close()
            return
        await asyncio.wrap_future(self._ended)

    @property
    def progress(self) -> Progress:
        """A `Progress` snapshot of the run (counted as the run hands outcomes over)."""
        return self._run.progress

    async def __aenter__(self) -> AsyncBulkWrites:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _start(self) -> None:
        if self._pump is not None:
            return
        self._loop = asyncio.get_running_loop()
        # running: a cancelled `aclose()` then cannot cancel it (and the next one waits on it)
        self._ended.set_running_or_notify_cancel()
        self._pump = threading.Thread(target=self._hand_over, name="ampwrite-aio-bulk", daemon=True)
        self._pump.start()

    # -- the pump, on its own thread ----------------------------------------------------------

    def _hand_over(self) -> None:
        """Iterate the run, handing each outcome to the consumer as room allows."""
        failure: BaseException | None = None
        try:
            for outcome in self._run:
                with self._room:
                    while len(self._ready) >= self._room_for and not self._closing.is_set():
                        self._room.wait()
                    if self._closing.is_set():
                        break
                    self._ready.append(outcome)
                    waiters, self._waiters = self._waiters, []
                _wake(waiters)
        except BaseException as exc:  # the caller's input or on_send failed: raised in order
            failure = exc
        finally:
            if self._closing.is_set():
                self._run.close()
            with self._lock:
                self._over = True
                self._failure = None if self._closing.is_set() else failure
                waiters, self._waiters = self._waiters, []
            _wake(waiters)
            self._ended.set_result(None)

    def _ended_input(self) -> bool:
        """Whether the run needs no more input: it was stopped, or the consumer is gone."""
        return self._stopping.is_set() or self._closing.is_set()

    def _pulled(self, records: AsyncIterable[Any], count: int) -> Iterator[Any]:
        """The async iterable as a plain iterator for the run's thread: a batch's worth is
        read on the event loop, in one step, each time the run asks for more. If that loop
        closes (or cancels the read) before the input ended, the input fails: it is not
        taken for ended, as if every record had been given."""
        source = _Input(records)
        while True:
            loop = self._loop
            if self._ended_input():
                return
            if loop is None or loop.is_closed():
                raise RuntimeError(_LOOP_GONE)
            read = _read(source, count)
            try:
                pending = asyncio.run_coroutine_threadsafe(read, loop)
            except RuntimeError:  # the loop closed just now
                read.close()
                raise RuntimeError(_LOOP_GONE) from None
            while True:
                try:
                    items, exhausted, failure = pending.result(_LOOK)
                    break
                except FutureTimeout:
                    if self._ended_input():
                        pending.cancel()  # a slow input must not hold a stopped run back
                        return
                    if loop.is_closed():
                        pending.cancel()
                        raise RuntimeError(_LOOP_GONE) from None
                except FutureCancelled:  # the loop cancelled it: `asyncio.run` ending, say
                    if self._ended_input():
                        return
                    raise RuntimeError(_LOOP_GONE) from None
            yield from items
            if failure is not None:
                raise failure  # as a plain iterator would: the run reports it at its end
            if exhausted:
                return


class _Input:
    """The caller's async iterable, opened (`aiter`) on the event loop at its first read: an
    async cursor may bind itself to the running loop then."""

    def __init__(self, records: AsyncIterable[Any]) -> None:
        self.records = records
        self.iterator: AsyncIterator[Any] | None = None


async def _read(source: _Input, count: int) -> tuple[list[Any], bool, Exception | None]:
    """Up to `count` items of `source`, whether it is exhausted, and what it raised."""
    items: list[Any] = []
    try:
        if source.iterator is None:
            source.iterator = aiter(source.records)
        while len(items) < count:
            items.append(await anext(source.iterator))
    except StopAsyncIteration:
        return items, True, None
    except Exception as exc:  # the caller's iterator: its failure ends the input
        return items, True, exc
    return items, False, None


def _wake(waiters: list[_Waiter]) -> None:
    for loop, future in waiters:
        with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits there
            loop.call_soon_threadsafe(_resolve, future)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
