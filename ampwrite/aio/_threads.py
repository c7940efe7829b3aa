"""Attempts on threads: the Core's own transport, one attempt per thread of a bounded pool, for
the attempts the asyncio transport does not make itself (see `ampwrite.aio._attempt`).

Each Core gets its pool at its first asyncio call (never pickled: a copy, or a forked child,
starts its own), sized by `Core.async_workers`. Any number of event loops, in any threads, may
share it. `Core.close()` lets the pool's threads end once the attempts given to them are
done (a later call starts a new pool); otherwise they live as long as the Core. They are
daemon threads: an attempt left on the wire by a cancelled call does not keep the program
alive at its exit (a `concurrent.futures.ThreadPoolExecutor` would, up to the attempt's
timeout), as the writers of `ampwrite.bulk` do not.
"""

from __future__ import annotations

import asyncio
import contextvars
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, TypeAlias, TypeVar

from .._transport import Answer, Request
from ..core import Core
from ..errors import TransportError
from ._per_core import PerCore

__all__ = ["on_thread", "send_on_thread"]

T = TypeVar("T")
_Call: TypeAlias = "tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]"


class _Pool(Executor):
    """Up to `size` daemon threads taking calls from one queue, started as calls need them
    (as `ThreadPoolExecutor` does: a call goes to an idle thread if there is one)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0  # threads waiting for a call that no call has been given to yet
        self._shut = False

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        if kwargs:
            raise TypeError("the pool takes positional arguments only")
        future: Future[T] = Future()
        with self._lock:
            if self._shut:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._calls.put((future, fn, args))
            if self._idle > 0:
                self._idle -= 1
            elif self._threads < self._size:
                self._threads += 1
                name = f"ampwrite-aio_{self._threads - 1}"
                threading.Thread(target=self._serve, name=name, daemon=True).start()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """No new call; those given still run, then the threads end. Never waits for that
        (nothing here needs it), nor cancels anything."""
        with self._lock:
            if self._shut:
                return
            self._shut = True
        self._calls.put(None)  # after every call given: each thread passes it on, and ends

    def _serve(self) -> None:
        while True:
            call = self._calls.get()
            if call is None:
                self._calls.put(None)
                return
            _run(*call)
            del call  # hold nothing of a call between calls
            with self._lock:
                self._idle += 1


def _run(future: Future[Any], fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    if not future.set_running_or_notify_cancel():
        return  # cancelled before it started: never made
    try:
        result = fn(*args)
    except BaseException as exc:  # handed to whoever awaits it, as an executor does
        future.set_exception(exc)
    else:
        future.set_result(result)


_POOLS: PerCore[_Pool] = PerCore(lambda core: _Pool(core.async_workers), _Pool.shutdown)
"""Each Core's pool: `Core.close()` lets its threads end once their calls are done."""


async def on_thread(core: Core, fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` on a thread of the Core's pool, in a copy of the caller's context (as
    `asyncio.to_thread` runs a call, and as the synchronous call runs in the caller's thread:
    log filters, a session's adapter see it). If the caller is cancelled meanwhile,
    `CancelledError` is raised here at once; a call not yet started is never made."""
    loop = asyncio.get_running_loop()
    call = contextvars.copy_context().run
    try:
        future = loop.run_in_executor(_POOLS.get(core), call, fn, *args)
    except RuntimeError:  # `Core.close()` in another thread released the pool just now
        future = loop.run_in_executor(_POOLS.get(core), call, fn, *args)
    return await future


async def send_on_thread(core: Core, request: Request) -> Answer | TransportError:
    """One attempt through `core.transport`, on a thread of the Core's pool: one under way
    when the caller is cancelled ends within its own deadline and is dropped."""
    return await on_thread(core, core.transport.send, request)
