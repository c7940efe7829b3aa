"""One attempt from a coroutine, made where it costs least and keeps every promise.

Where the synchronous transport goes straight to a pool of its own (ampwrite's session, no
proxy: `RequestsTransport.direct`), the attempt is made on the event loop's own sockets by
the Core's `AsyncioTransport`. Anything else (a caller's session or adapters, a proxy, a
transport of the caller's, an event loop that cannot watch sockets, as the Windows proactor
loop cannot) goes through the Core's transport itself on a thread of the Core's pool
(`ampwrite.aio._threads`). Either way at most `Core.async_workers` attempts are in flight.
"""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from typing import Any, Final, TypeAlias

from .._transport import POOL_SIZE, Answer, Request, RequestsTransport
from ..core import ON_CLOSE, Core
from ..errors import TransportError
from ._http import AsyncioTransport
from ._threads import send_on_thread

__all__ = ["release_transport", "send_attempt"]

_PROACTOR: Final[Any] = getattr(asyncio, "ProactorEventLoop", ())
"""The loop class that has no `add_reader` (Windows' default), if there is one."""

_Entry: TypeAlias = "tuple[int, AsyncioTransport]"
_TRANSPORTS: weakref.WeakKeyDictionary[Core, _Entry] = weakref.WeakKeyDictionary()
_TRANSPORTS_LOCK = threading.Lock()


def _transport(core: Core) -> AsyncioTransport:
    pid = os.getpid()
    entry = _TRANSPORTS.get(core)
    if entry is None or entry[0] != pid:
        with _TRANSPORTS_LOCK:
            entry = _TRANSPORTS.get(core)
            if entry is None or entry[0] != pid:  # a forked child has connections of its own
                transport = AsyncioTransport(max(POOL_SIZE, core.async_workers), core.async_workers)
                entry = (pid, transport)
                _TRANSPORTS[core] = entry
                weakref.finalize(core, transport.close)  # a Core dropped unclosed
    return entry[1]


def release_transport(core: Core) -> None:
    """Close the Core's idle asyncio connections (a later call makes new ones)."""
    with _TRANSPORTS_LOCK:
        entry = _TRANSPORTS.pop(core, None)
    if entry is not None and entry[0] == os.getpid():
        entry[1].close()


ON_CLOSE.append(release_transport)


async def send_attempt(core: Core, request: Request) -> Answer | TransportError:
    """One attempt of `request` for `core`, on the loop's sockets or on a thread (see the
    module's docstring). If the caller is cancelled meanwhile, `CancelledError` is raised at
    once; an attempt under way is dropped (and its connection closed): it may have been sent."""
    transport = core.transport
    if isinstance(transport, RequestsTransport):
        direct = transport.direct(request.base_url)
        if direct is not None and not isinstance(asyncio.get_running_loop(), _PROACTOR):
            return await _transport(core).send(request, direct)
    return await send_on_thread(core, request)
