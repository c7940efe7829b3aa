"""`ampwrite.aio`: the asyncio conventions (cancellation at every stage, timeouts, several event
loops on one Core), the operation coroutines against their synchronous twins, and the lazy
import. The write guarantees themselves (decoding, retries, hardening, framing, fuzz) run
against both drivers in their own modules, through the `driver` fixture."""

from __future__ import annotations

import asyncio
import pickle
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

import ampwrite
from ampwrite import Core, Err, Ok, RetryConfig, aio
from ampwrite.errors import ConfigurationError, OperationTimeoutError, RequestValidationError
from tests.conftest import API_KEY, Sleeps
from tests.operations_data import OPERATION, OPERATION_ID, operation_reply, platform_core
from tests.requests_data import single
from tests.scripted_server import Reply, ScriptedServer, Stall, Trickle, json_reply

OK_BODY = b'{"operationId": "op", "result": {"success": true, "recordId": "1"}}'
PROMPTLY = 1.5
"""Seconds within which a cancellation must land: far less than the stalls below."""


@pytest.fixture
def live_core(server: ScriptedServer) -> Iterator[Core]:
    """A Core that really waits (asyncio.sleep) and whose attempts may take 10 s."""
    with Core(API_KEY, server_url=server.url, timeout=(5.0, 5.0)) as configured:
        yield configured


def _wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the server never saw the request"
        time.sleep(0.01)


async def _cancelled_after(
    call: Awaitable[Any], ready: Callable[[], bool]
) -> tuple[asyncio.Task[Any], float]:
    """Start `call`, cancel it once `ready()`, and say how long the cancellation took."""
    task = asyncio.ensure_future(call)
    deadline = time.monotonic() + 5.0
    while not ready():
        assert time.monotonic() < deadline, "the call never reached the stage"
        await asyncio.sleep(0.01)
    cancelled = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return task, time.monotonic() - cancelled


# -- cancellation at every stage ------------------------------------------------------------------


def test_cancelled_before_it_is_sent(server: ScriptedServer, live_core: Core) -> None:
    async def scenario() -> None:
        task = asyncio.ensure_future(aio.write_records(live_core, single()))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())

    assert server.received == []
    assert asyncio.run(aio.write_records(live_core, single())).ok


@pytest.mark.parametrize(
    "stage",
    [
        pytest.param(Stall(8.0), id="while sending (no answer yet)"),
        pytest.param(
            Trickle(OK_BODY * 40, 0.01, prefix=b"HTTP/1.1 200 OK\r\nContent-Length: 2720\r\n\r\n"),
            id="while reading a trickled body",
        ),
    ],
)
def test_cancelled_while_on_the_wire(server: ScriptedServer, live_core: Core, stage: Any) -> None:
    server.script(stage)

    async def scenario() -> float:
        _, took = await _cancelled_after(
            aio.write_records(live_core, single()), lambda: len(server.received) == 1
        )
        return took

    assert asyncio.run(scenario()) < PROMPTLY
    # the abandoned attempt ends on its own thread; the Core writes meanwhile
    again = asyncio.run(aio.write_records(live_core, single()))
    assert isinstance(again, Ok), again
    assert ampwrite.write_records(live_core, single()).ok


def test_cancelled_while_waiting_to_retry(server: ScriptedServer, live_core: Core) -> None:
    server.script(Reply(429, (("Retry-After", "20"),), b"{}"))
    patient = RetryConfig(max_elapsed_time=100.0, max_retry_after=60.0)

    async def scenario() -> float:
        call = aio.write_records(live_core, single(), retries=patient)
        _, took = await _cancelled_after(call, lambda: len(server.received) == 1)
        return took

    assert asyncio.run(scenario()) < PROMPTLY
    assert len(server.received) == 1  # the retry never came
    assert asyncio.run(aio.write_records(live_core, single())).ok


def test_a_timeout_around_a_call_ends_it(server: ScriptedServer, live_core: Core) -> None:
    server.script(Stall(8.0))

    async def scenario() -> None:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(aio.write_records(live_core, single()), 0.3)
        if sys.version_info >= (3, 11):
            server.script(Stall(8.0))
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.3):
                    await aio.write_records(live_core, single())

    started = time.monotonic()
    asyncio.run(scenario())
    assert time.monotonic() - started < 2 * PROMPTLY
    assert asyncio.run(aio.write_records(live_core, single())).ok


def test_cancelled_while_waiting_for_an_operation(server: ScriptedServer) -> None:
    server.default = operation_reply("in_progress")
    with platform_core(server, time.sleep) as core:

        async def scenario() -> float:
            call = aio.wait_for_operation(core, "p", OPERATION_ID, poll_interval=30)
            _, took = await _cancelled_after(call, lambda: len(server.received) == 1)
            return took

        assert asyncio.run(scenario()) < PROMPTLY
        assert len(server.received) == 1


# -- loops, threads, processes ----------------------------------------------------------------


def test_one_core_serves_two_loops_in_two_threads() -> None:
    with ScriptedServer() as server, Core(API_KEY, server_url=server.url) as core:
        barrier = threading.Barrier(2)
        outcomes: list[list[bool]] = []

        async def many(thread: int) -> list[bool]:
            calls = [
                aio.write_records(core, single(record={"t": thread, "n": n})) for n in range(20)
            ]
            return [result.ok for result in await asyncio.gather(*calls)]

        def run(thread: int) -> None:
            barrier.wait()
            outcomes.append(asyncio.run(many(thread)))

        threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert ampwrite.write_records(core, single()).ok  # and the synchronous path, still

    assert [all(batch) and len(batch) == 20 for batch in outcomes] == [True, True]
    assert len(server.received) == 41


def test_a_core_that_served_asyncio_still_pickles(server: ScriptedServer, core: Core) -> None:
    assert asyncio.run(aio.write_records(core, single())).ok
    copy = pickle.loads(pickle.dumps(core))
    assert asyncio.run(aio.write_records(copy, single())).ok
    copy.close()


def test_async_workers_bounds_the_attempts_in_flight(server: ScriptedServer) -> None:
    server.default = Reply(200, body=OK_BODY)
    with Core(API_KEY, server_url=server.url, async_workers=2) as core:

        async def scenario() -> None:
            results = await asyncio.gather(*(aio.write_records(core, single()) for _ in range(6)))
            assert all(result.ok for result in results)

        asyncio.run(scenario())
    assert server.connections <= 2
    with pytest.raises(ConfigurationError, match="async_workers"):
        Core(API_KEY, server_url=server.url, async_workers=0)


# -- the same values as the synchronous functions ------------------------------------------


def test_an_invalid_request_is_an_error_value_and_nothing_is_sent(
    server: ScriptedServer, core: Core
) -> None:
    result = asyncio.run(aio.write_records(core, single(groupRef="")))

    assert isinstance(result, Err) and isinstance(result.error, RequestValidationError)
    twin = ampwrite.write_records(core, single(groupRef=""))
    assert isinstance(twin, Err) and isinstance(twin.error, RequestValidationError)
    assert result.error.issues == twin.error.issues
    assert server.received == []
    with pytest.raises(TypeError, match="write_records needs a Core"):
        asyncio.run(aio.write_records("core", single()))  # type: ignore[arg-type]


READS: dict[str, tuple[Callable[..., Any], Callable[..., Any], tuple[Any, ...], Any]] = {
    "get_operation": (
        ampwrite.get_operation,
        aio.get_operation,
        ("proj", OPERATION_ID),
        operation_reply(),
    ),
    "list_operation_logs": (
        ampwrite.list_operation_logs,
        aio.list_operation_logs,
        ("proj", OPERATION_ID),
        json_reply(
            200,
            [{"timestamp": "2023-07-13T21:34:45Z", "severity": "INFO", "message": {"msg": "done"}}],
        ),
    ),
    "list_operations": (
        ampwrite.list_operations,
        aio.list_operations,
        ("proj", "int", "inst"),
        json_reply(
            200, {"results": [OPERATION], "pagination": {"done": False, "nextPageToken": "t"}}
        ),
    ),
}


@pytest.mark.parametrize("name", list(READS))
def test_each_read_answers_as_its_synchronous_twin(
    server: ScriptedServer, sleeps: Sleeps, name: str
) -> None:
    sync, coroutine, args, reply = READS[name]
    with platform_core(server, sleeps) as core:
        server.script(Reply(500, body=b"oops", content_type="text/plain"), reply)
        expected = sync(core, *args)
        server.script(Reply(500, body=b"oops", content_type="text/plain"), reply)
        got = asyncio.run(coroutine(core, *args))  # reads are retried after a 500, too
        wrong = asyncio.run(coroutine(core, "", *args[1:]))

    assert isinstance(expected, Ok) and got == expected
    assert isinstance(wrong, Err) and isinstance(wrong.error, RequestValidationError)
    assert len(server.received) == 4  # a 500, retried, for each
    assert [r.path for r in server.received[:2]] == [r.path for r in server.received[2:]]


def _recording(into: list[float]) -> Callable[[float], Awaitable[None]]:
    async def sleep(seconds: float) -> None:
        into.append(seconds)

    return sleep


def test_waiting_polls_as_the_synchronous_wait_does(server: ScriptedServer) -> None:
    polls = [operation_reply("in_progress")] * 3 + [operation_reply("failure")]
    sync_sleeps, async_sleeps = Sleeps(), Sleeps()
    with platform_core(server, sync_sleeps, async_sleep=_recording(async_sleeps)) as core:
        server.script(*polls)
        expected = ampwrite.wait_for_operation(core, "proj", OPERATION_ID)
        server.script(*polls)
        got = asyncio.run(aio.wait_for_operation(core, "proj", OPERATION_ID))

    assert isinstance(got, Ok) and got == expected and got.value.failed
    assert async_sleeps == sync_sleeps == [0.5, 1.0, 2.0]


def test_waiting_gives_up_at_its_timeout(server: ScriptedServer) -> None:
    server.default = operation_reply("in_progress")
    with platform_core(server, time.sleep) as core:
        result = asyncio.run(aio.wait_for_operation(core, "p", OPERATION_ID, timeout=0.3))

    assert isinstance(result, Err) and isinstance(result.error, OperationTimeoutError)
    assert result.error.last is not None and result.error.last.status == "in_progress"


# -- import cost ---------------------------------------------------------------------------------


def test_the_function_path_does_not_load_asyncio() -> None:
    code = textwrap.dedent(
        """
        import sys
        import ampwrite
        from ampwrite import Core, write_records
        assert "asyncio" not in sys.modules, "should not load asyncio"
        for name in ("ampwrite.aio", "asyncio", "concurrent.futures"):
            print(name) if name in sys.modules else None
        ampwrite.aio.write_records
        print("then", "asyncio" in sys.modules)
        """
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert loaded.stdout.split() == ["then", "True"]


def test_as_many_connections_are_kept_as_async_workers(server: ScriptedServer) -> None:
    server.default = Reply(200, body=OK_BODY, delay=0.05)  # so that 80 are in flight at once

    async def many(core: Core) -> list[bool]:
        results = await asyncio.gather(*(aio.write_records(core, single()) for _ in range(80)))
        return [result.ok for result in results]

    with Core(API_KEY, server_url=server.url, async_workers=80) as core:
        assert all(asyncio.run(many(core)))
        assert all(asyncio.run(many(core)))  # on the connections the first 80 left open
    assert server.most_in_flight == 80
    assert server.connections == 80
