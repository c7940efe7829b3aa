"""The asyncio transport: the Core's own transport, one attempt per thread of a bounded pool.

Each Core gets its pool at its first asyncio call (never pickled: a copy, or a forked child,
starts its own), sized by `Core.async_workers`. Any number of event loops, in any threads, may
share it. `Core.close()` lets the pool's threads end once the attempts given to them are
done (a later call starts a new pool); otherwise they live as long as the Core.
"""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor

from .._transport import Answer, Request
from ..core import ON_CLOSE, Core
from ..errors import TransportError

__all__ = ["release_pool", "send_attempt"]

_POOLS: weakref.WeakKeyDictionary[Core, tuple[int, ThreadPoolExecutor]] = (
    weakref.WeakKeyDictionary()
)
_POOLS_LOCK = threading.Lock()


def _pool(core: Core) -> ThreadPoolExecutor:
    pid = os.getpid()
    entry = _POOLS.get(core)
    if entry is None or entry[0] != pid:
        with _POOLS_LOCK:
            entry = _POOLS.get(core)
            if entry is None or entry[0] != pid:  # a forked child has no threads of its parent
                pool = ThreadPoolExecutor(core.async_workers, thread_name_prefix="ampwrite-aio")
                entry = (pid, pool)
                _POOLS[core] = entry
    return entry[1]


def release_pool(core: Core) -> None:
    """Let the Core's pool end: no new attempt goes to it, those given to it finish."""
    with _POOLS_LOCK:
        entry = _POOLS.pop(core, None)
    if entry is not None and entry[0] == os.getpid():
        entry[1].shutdown(wait=False)


ON_CLOSE.append(release_pool)


async def send_attempt(core: Core, request: Request) -> Answer | TransportError:
    """One attempt through `core.transport`, on a thread of the Core's pool.

    If the caller is cancelled meanwhile, `CancelledError` is raised here at once; an attempt
    not yet started is never made, one under way ends within its own deadline and is dropped.
    """
    loop = asyncio.get_running_loop()
    try:
        attempt = loop.run_in_executor(_pool(core), core.transport.send, request)
    except RuntimeError:  # `Core.close()` in another thread released the pool just now
        attempt = loop.run_in_executor(_pool(core), core.transport.send, request)
    return await attempt
