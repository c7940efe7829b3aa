"""ampwrite for asyncio: the functions of `ampwrite` as coroutines, over the same `Core`.

    from ampwrite import Core, Err, Ok
    from ampwrite import aio

    core = Core()
    match await aio.write_records(core, request):
        case Ok(response): ...
        case Err(error): ...

Each coroutine checks and builds its request exactly as its synchronous twin does (it calls
the same `prepare_*` function), decides on every answer and every retry with the same
`RetryLoop` (and, for `wait_for_operation`, the same `Polling`), and returns the same `Result`
and error values. Only the waiting differs: attempts wait on the event loop's own sockets
(`ampwrite.aio._http`, on the same framing rules as the synchronous transport; on a thread of
the Core through its synchronous transport when a caller's session or a proxy is in the way),
at most `Core(async_workers=...)` at once (32 by default). Each keeps every promise of the
synchronous attempt (a whole-attempt deadline, bounded answers, no redirects followed, the key
never in a value), and the loop never waits on a socket; waits between retries and polls are
`asyncio.sleep` (or `Core(async_sleep=...)`).

`write_many` runs the bulk engine of `ampwrite.bulk` and yields its outcomes as an async
iterator; `AsyncAmpWrite` is the facade (`async with AsyncAmpWrite() as client`). See
docs/asyncio.md.

Cancelling one of these coroutines (`task.cancel()`, `asyncio.timeout()`, `asyncio.wait_for`)
raises `CancelledError` at once and leaves the Core usable. An attempt already on the wire is
dropped (its connection closed; on a thread, it ends within its timeout and its answer is
dropped), so a cancelled write **may have been sent**, and written.
"""

from __future__ import annotations

from ._bulk import AsyncBulkWrites, write_many
from ._client import AsyncAmpWrite
from ._driver import (
    get_operation,
    iter_operations,
    list_operation_logs,
    list_operations,
    wait_for_operation,
    write_records,
)

__all__ = [
    "AsyncAmpWrite",
    "AsyncBulkWrites",
    "get_operation",
    "iter_operations",
    "list_operation_logs",
    "list_operations",
    "wait_for_operation",
    "write_many",
    "write_records",
]
