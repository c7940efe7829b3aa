"""The asyncio side of ampwrite's own HTTP/1.1 transport (`ampwrite._http1`): its waits on the
running event loop, and `async_workers` slots.

Each wait for a socket is one `add_reader`/`add_writer` with a timer; nothing stays
registered with a loop between waits, and the connections belong to no loop, so a Core's
idle connections serve every loop and thread that uses it. A cancelled attempt closes its
connection: it may have been sent.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections import deque
from typing import Any

from .._http1 import SocketTransport, Waits
from .._transport import Answer, Direct, Request
from ..errors import TransportError

__all__ = ["LOOP_WAITS", "AsyncioTransport", "Slots"]


def _expire(future: asyncio.Future[bool]) -> None:
    if not future.done():
        future.set_result(False)


def _wake(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_result(True)


class _LoopWaits:
    """Waits on the running event loop."""

    async def ready(self, sock: socket.socket, writing: bool, seconds: float) -> bool:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        fd = sock.fileno()
        if writing:
            loop.add_writer(fd, _wake, future)
        else:
            loop.add_reader(fd, _wake, future)
        timer = loop.call_later(seconds, _expire, future)
        try:
            return await future
        finally:
            timer.cancel()
            if writing:
                loop.remove_writer(fd)
            else:
                loop.remove_reader(fd)

    async def resolve(self, host: str, port: int, seconds: float) -> list[tuple[int, Any]]:
        loop = asyncio.get_running_loop()
        try:
            found = await asyncio.wait_for(
                loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), seconds
            )
        except asyncio.TimeoutError as exc:  # not the built-in one before Python 3.11
            raise TimeoutError(str(exc)) from None
        return [(int(family), address[:2]) for family, _, _, _, address in found]

    async def pause(self) -> None:
        await asyncio.sleep(0)


LOOP_WAITS: Waits = _LoopWaits()


class Slots:
    """At most `size` attempts of one Core in flight at once, whatever loops and threads
    make them: an attempt waits for a free slot, in its own loop."""

    def __init__(self, size: int) -> None:
        self._free = size
        self._lock = threading.Lock()
        self._waiting: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = deque()

    async def acquire(self) -> None:
        with self._lock:
            if self._free > 0 and not self._waiting:
                self._free -= 1
                return
            loop = asyncio.get_running_loop()
            waiter = (loop, loop.create_future())
            self._waiting.append(waiter)
        try:
            await waiter[1]
        except BaseException:
            with self._lock:
                handed = waiter not in self._waiting
                if not handed:
                    self._waiting.remove(waiter)
            if handed:  # a slot was handed over as the wait was cancelled: pass it on
                self.release()
            raise

    def release(self) -> None:
        with self._lock:
            while self._waiting:
                loop, future = self._waiting.popleft()
                try:
                    loop.call_soon_threadsafe(_wake, future)
                except RuntimeError:  # its loop is closed: the next waiter takes the slot
                    continue
                return
            self._free += 1


class AsyncioTransport:
    """Attempts to `Direct` base URLs on the running event loop, at most `in_flight` at once
    across loops and threads; idle connections kept per URL (up to `pool_size` each)."""

    def __init__(self, pool_size: int, in_flight: int) -> None:
        self._sockets = SocketTransport(pool_size)
        self.slots = Slots(in_flight)

    async def send(self, request: Request, direct: Direct) -> Answer | TransportError:
        """`RequestsTransport.send` for an asyncio caller."""
        await self.slots.acquire()
        try:
            return await self._sockets.attempt(request, direct, LOOP_WAITS)
        finally:
            self.slots.release()

    def close(self) -> None:
        """Close the idle connections (those in use close when their attempts end)."""
        self._sockets.close()
