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
from typing import Any, Final

from .._transport import POOL_SIZE, Answer, Request, RequestsTransport
from ..core import Core
from ..errors import TransportError
from ._http import AsyncioTransport
from ._per_core import PerCore
from ._threads import send_on_thread

__all__ = ["send_attempt"]

_PROACTOR: Final[Any] = getattr(asyncio, "ProactorEventLoop", ())
"""The loop class that has no `add_reader` (Windows' default), if there is one."""

_TRANSPORTS: PerCore[AsyncioTransport] = PerCore(
    lambda core: AsyncioTransport(max(POOL_SIZE, core.async_workers), core.async_workers),
    AsyncioTransport.close,
)
"""Each Core's connections: `Core.close()` closes the idle ones."""


async def send_attempt(core: Core, request: Request) -> Answer | TransportError:
    """One attempt of `request` for `core`, on the loop's sockets or on a thread (see the
    module's docstring). If the caller is cancelled meanwhile, `CancelledError` is raised at
    once; an attempt under way is dropped (and its connection closed): it may have been sent."""
    transport = core.transport
    if isinstance(transport, RequestsTransport):
        direct = transport.direct(request.base_url)
        if direct is not None and not isinstance(asyncio.get_running_loop(), _PROACTOR):
            return await _TRANSPORTS.get(core).send(request, direct)
    return await send_on_thread(core, request)
