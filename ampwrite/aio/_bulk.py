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
(leaving an `async with` block) ends the run at once, as `BulkWrites.close()` does; so does
dropping the run without it (a `break` out of `async for`), as with a dropped `BulkWrites`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
import weakref
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

    `on_progress` and `on_send` are called on threads of the run, never on the event loop
    (the run's own thread stands for the synchronous consuming thread, and runs in a copy of
    the consumer's context): to reach the loop from them, use `loop.call_soon_threadsafe`.
    What they raise ends the run as it does the synchronous one, and is raised here once the
    outcomes before it are taken.
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
        batch = options.get("batch_size", 100)
        # outcomes handed over and not yet taken, at most: a consumer that falls behind (or
        # stops iterating) holds the run back, as a synchronous one does
        pipe = _Pipe(batch if isinstance(batch, int) and batch > 0 else 1)
        source = pipe.pulled(records) if isinstance(records, AsyncIterable) else records
        pipe.run = bulk_write_many(core, source, **options)
        self._pipe = pipe
        self._pump: threading.Thread | None = None
        # dropped without `aclose()` (a `break` out of `async for`): the run ends, as a
        # dropped `BulkWrites` does. The pump and the input hold the pipe, never this object.
        weakref.finalize(self, pipe.close)

    # -- the consumer, on the event loop ------------------------------------------------------

    def __aiter__(self) -> AsyncBulkWrites:
        return self

    async def __anext__(self) -> Outcome:
        self._start()
        pipe = self._pipe
        while True:
            with pipe.lock:
                if pipe.ready:
                    outcome = pipe.ready.popleft()
                    pipe.room.notify()
                    return outcome
                if pipe.over:
                    failure, pipe.failure = pipe.failure, None
                    if failure is not None:
                        raise failure
                    raise StopAsyncIteration
                loop = asyncio.get_running_loop()
                waiter = loop.create_future()
                pipe.waiters.append((loop, waiter))
            try:
                await waiter
            except asyncio.CancelledError:
                with pipe.lock, contextlib.suppress(ValueError):
                    pipe.waiters.remove((loop, waiter))
                self.stop()  # outcomes of the requests in flight stay for the next iteration
                raise

    def stop(self) -> None:
        """Send nothing more; the outcomes of the requests in flight are still yielded."""
        self._pipe.stopping.set()
        self._pipe.run.stop()

    async def aclose(self) -> None:
        """End the run now: nothing more is sent once this returns; the outcomes of the
        requests in flight are not reported (those records may be written)."""
        self._pipe.close()
        if self._pump is None:
            self._pipe.run.close()
            return
        await asyncio.wrap_future(self._pipe.ended)

    @property
    def progress(self) -> Progress:
        """A `Progress` snapshot of the run (counted as the run hands outcomes over)."""
        return self._pipe.run.progress

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
        self._pipe.loop = asyncio.get_running_loop()
        # running: a cancelled `aclose()` then cannot cancel it (and the next one waits on it)
        self._pipe.ended.set_running_or_notify_cancel()
        # in a copy of the consumer's context: the input, `on_progress` and the reads of an
        # async input see its context variables, as under a plain `for` or `async for`
        self._pump = threading.Thread(
            target=contextvars.copy_context().run,
            args=(self._pipe.hand_over,),
            name="ampwrite-aio-bulk",
            daemon=True,
        )
        self._pump.start()


class _Pipe:
    """What the consumer, on the event loop, and the pump, on its own thread, share: the run,
    the outcomes handed over and not yet taken, the consumers waiting for one."""

    run: BulkWrites

    def __init__(self, room_for: int) -> None:
        self.room_for = room_for
        self.loop: asyncio.AbstractEventLoop | None = None  # the one that reads an async input
        self.closing = threading.Event()  # the consumer is gone: the input stops too
        self.stopping = threading.Event()  # `stop()`: no more input is read either
        # reentrant: `close` may run in a finalizer, on a thread that holds it already
        self.lock = threading.RLock()
        self.room = threading.Condition(self.lock)  # the pump waits here for the consumer
        self.ready: deque[Outcome] = deque()
        # the consumers waiting for an outcome (several tasks may share a run), each woken to
        # look again at every hand-over
        self.waiters: list[_Waiter] = []
        self.over = False  # the pump has handed over everything it will
        self.failure: BaseException | None = None  # raised once the outcomes are taken
        self.ended: Future[None] = Future()  # the pump's thread has let go of the run

    def close(self) -> None:
        """The consumer is gone (`aclose()`, or it was dropped): stop the run, no waiting
        on the server (a 429's wait, an operation's end) either, and drop what it handed
        over; the pump lets go of the run at its next outcome."""
        self.closing.set()
        self.run.stop()
        with self.lock:
            self.ready.clear()
            self.room.notify_all()

    # -- the pump, on its own thread ----------------------------------------------------------

    def hand_over(self) -> None:
        """Iterate the run, handing each outcome to the consumer as room allows."""
        failure: BaseException | None = None
        try:
            for outcome in self.run:
                with self.room:
                    while len(self.ready) >= self.room_for and not self.closing.is_set():
                        self.room.wait()
                    if self.closing.is_set():
                        break
                    self.ready.append(outcome)
                    waiters, self.waiters = self.waiters, []
                _wake(waiters)
        except BaseException as exc:  # the caller's input or on_send failed: raised in order
            failure = exc
        finally:
            if self.closing.is_set():
                self.run.close()
            with self.lock:
                self.over = True
                self.failure = None if self.closing.is_set() else failure
                waiters, self.waiters = self.waiters, []
            _wake(waiters)
            self.ended.set_result(None)

    def ended_input(self) -> bool:
        """Whether the run needs no more input: it was stopped, or the consumer is gone."""
        return self.stopping.is_set() or self.closing.is_set()

    def pulled(self, records: AsyncIterable[Any]) -> Iterator[Any]:
        """The async iterable as a plain iterator for the run's thread: a batch's worth is
        read on the event loop, in one step, each time the run asks for more. If that loop
        closes (or cancels the read) before the input ended, the input fails: it is not
        taken for ended, as if every record had been given."""
        source = _Input(records)
        while True:
            loop = self.loop
            if self.ended_input():
                return
            if loop is None or loop.is_closed():
                raise RuntimeError(_LOOP_GONE)
            read = _read(source, self.room_for)
            try:
                # the read's task copies the context it is made in: the pump's, a copy of
                # the consumer's, as if it iterated the input itself
                pending = asyncio.run_coroutine_threadsafe(read, loop)
            except RuntimeError:  # the loop closed just now
                read.close()
                raise RuntimeError(_LOOP_GONE) from None
            while True:
                try:
                    items, exhausted, failure = pending.result(_LOOK)
                    break
                except FutureTimeout:
                    if self.ended_input():
                        pending.cancel()  # a slow input must not hold a stopped run back
                        return
                    if loop.is_closed():
                        pending.cancel()
                        raise RuntimeError(_LOOP_GONE) from None
                except FutureCancelled:  # the loop cancelled it: `asyncio.run` ending, say
                    if self.ended_input():
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
