"""`aio.write_many` at its edges: `aclose()` cancelled or held up by the server, a consumer
that goes away, stops while the input is slow, several consumers, inputs that belong to the
event loop. Each test names the promise it holds the run to (docs/asyncio.md and the
docstrings of `ampwrite.aio`)."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import logging
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from ampwrite import Core, aio
from ampwrite.bulk import Outcome
from ampwrite.sandbox import Faults, Sandbox
from tests.scripted_server import ScriptedServer, Stall

WHERE: dict[str, Any] = {
    "project_id_or_name": "proj",
    "integration_id": "int",
    "object_name": "contacts",
    "group_ref": "group",
}
GUARD = 10.0
"""Seconds after which a scenario that should end at once is taken to hang."""


def numbered(count: int) -> Iterator[dict[str, int]]:
    return ({"n": n} for n in range(count))


async def collect(writes: aio.AsyncBulkWrites) -> list[Outcome]:
    return [outcome async for outcome in writes]


async def until(condition: Callable[[], bool], what: str) -> None:
    """Let the loop run until `condition()` holds (at most `GUARD` seconds)."""
    deadline = time.monotonic() + GUARD
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        await asyncio.sleep(0.01)


@pytest.fixture
def thread_crashes(monkeypatch: pytest.MonkeyPatch) -> list[BaseException | None]:
    """Exceptions that ended a thread while the test ran."""
    crashes: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: crashes.append(args.exc_value))
    return crashes


# -- aclose() ------------------------------------------------------------------------------------


def test_a_cancelled_aclose_lets_the_next_one_wait_for_the_end(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox, thread_crashes: list[BaseException | None]
) -> None:
    """Cancelling `aclose()` (a timeout around `async with`, a second Ctrl-C) must not spoil
    the end of the run: a later `aclose()` still waits for it, and returns."""
    ampwrite_sandbox.set_faults(Faults(latency=0.3))

    async def scenario() -> int:
        writes = aio.write_many(
            ampwrite_core, numbered(1_000), **WHERE, batch_size=10, concurrency=1
        )
        await anext(writes)
        closing = asyncio.ensure_future(writes.aclose())
        await asyncio.sleep(0)  # it waits for the request in flight
        closing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await closing
        await asyncio.wait_for(writes.aclose(), GUARD)  # no CancelledError of its own
        return len(ampwrite_sandbox.requests)

    requests = asyncio.run(scenario())

    assert ampwrite_sandbox.wait_idle(timeout=GUARD)
    assert len(ampwrite_sandbox.requests) == requests, "nothing is sent once aclose returned"
    assert thread_crashes == []


def test_aclose_ends_a_throttled_run_at_once(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox
) -> None:
    """The server asks for 30 s between attempts: `aclose()` ("end now") must not wait
    that out (nor the 10 minutes of the default retry budget), nor send again meanwhile."""
    ampwrite_sandbox.fail_next(429, count=1_000, retry_after=30)

    async def scenario() -> tuple[float, int, list[Outcome]]:
        writes = aio.write_many(ampwrite_core, numbered(1_000), **WHERE, batch_size=10)
        consumer = asyncio.ensure_future(collect(writes))
        await until(lambda: writes.progress.throttled > 0, "a 429")
        started = time.monotonic()
        await asyncio.wait_for(writes.aclose(), GUARD)
        took = time.monotonic() - started
        requests = len(ampwrite_sandbox.requests)
        return took, requests, await asyncio.wait_for(consumer, GUARD)

    took, requests, outcomes = asyncio.run(scenario())

    assert took < GUARD / 2
    assert outcomes == [], "aclose: the outcomes still to come are not reported"
    time.sleep(0.3)
    assert len(ampwrite_sandbox.requests) == requests, "nothing is sent once aclose returned"


def test_aclose_ends_the_following_of_operations_at_once() -> None:
    """With `wait=True` the run follows each operation until it ends (here, a minute from
    now): `aclose()` stops that too, as `stop()` does."""
    with (
        Sandbox(async_delay=60.0) as sandbox,
        Core(sandbox.api_key, server_url=sandbox.url, platform_url=sandbox.url) as core,
    ):

        def polls() -> int:
            return sum(entry.method == "GET" for entry in sandbox.requests)

        async def scenario() -> float:
            writes = aio.write_many(
                core, numbered(20), **WHERE, mode="asynchronous", wait=True, batch_size=10
            )
            consumer = asyncio.ensure_future(collect(writes))
            await until(lambda: polls() > 0, "the run follows its first operation")
            started = time.monotonic()
            await asyncio.wait_for(writes.aclose(), GUARD)
            took = time.monotonic() - started
            await asyncio.wait_for(consumer, GUARD)
            return took

        took = asyncio.run(scenario())
        seen = polls()
        time.sleep(0.3)

        assert took < GUARD / 2
        assert polls() == seen, "the following has ended"


def _run_threads() -> set[threading.Thread]:
    """The threads of `write_many` runs: their pumps and writers."""
    names = ("ampwrite-aio-bulk", "ampwrite-bulk-")
    return {t for t in threading.enumerate() if t.name.startswith(names)}


def test_a_run_its_consumer_dropped_ends_and_lets_its_threads_go(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox
) -> None:
    """A loop left with `break` and no `async with`: the run is dropped, as a dropped
    `BulkWrites` is, it must end (nothing more sent) and its threads with it, not wait
    for its consumer for ever, holding a pump, its writers and their outcomes."""
    ampwrite_sandbox.set_faults(Faults(latency=0.05))
    before = _run_threads()

    async def scenario() -> None:
        async for _ in aio.write_many(ampwrite_core, numbered(100_000), **WHERE, batch_size=10):
            break

    asyncio.run(scenario())
    gc.collect()
    deadline = time.monotonic() + GUARD
    while _run_threads() - before and time.monotonic() < deadline:
        time.sleep(0.05)

    assert not _run_threads() - before, "the run's threads ended"
    requests = len(ampwrite_sandbox.requests)
    time.sleep(0.3)
    assert len(ampwrite_sandbox.requests) == requests < 100


# -- an async input that is slow ---------------------------------------------------------------


def test_a_stop_while_the_async_input_waits_lets_the_drain_end(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox
) -> None:
    """A live feed gives ten records, then nothing for a long while. A timeout around the
    loop stops the run; the documented drain must then end, with the ten written records,
    not wait for the feed to give a whole batch more."""

    async def scenario() -> tuple[list[Outcome], list[Outcome]]:
        never = asyncio.Event()

        async def feed() -> Any:
            for n in range(10):
                yield {"n": n}
            await never.wait()
            yield {"n": 10}

        writes = aio.write_many(ampwrite_core, feed(), **WHERE, batch_size=10)
        before: list[Outcome] = []

        async def consume() -> None:
            async for outcome in writes:
                before.append(outcome)

        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(consume(), 1.0)
        drained = await asyncio.wait_for(collect(writes), GUARD)
        return before, drained

    before, drained = asyncio.run(scenario())

    outcomes = before + drained
    assert sorted(o.index for o in outcomes) == list(range(10))
    assert {o.status for o in outcomes} == {"written"}
    assert len(ampwrite_sandbox.records(object_name="contacts")) == 10


# -- consumers ------------------------------------------------------------------------------------


def test_several_tasks_may_share_one_run(ampwrite_core: Core, ampwrite_sandbox: Sandbox) -> None:
    """Worker tasks taking outcomes from one run: each outcome goes to one of them, and
    every one of them sees the end (none is left waiting on a wake-up that went elsewhere)."""
    ampwrite_sandbox.set_faults(Faults(latency=0.02))

    async def scenario() -> list[list[Outcome]]:
        writes = aio.write_many(ampwrite_core, numbered(200), **WHERE, batch_size=10)
        return await asyncio.wait_for(asyncio.gather(*(collect(writes) for _ in range(3))), GUARD)

    taken = asyncio.run(scenario())

    indexes = sorted(o.index for outcomes in taken for o in outcomes)
    assert indexes == list(range(200))


# -- async inputs belong to their event loop -----------------------------------------------------


class Cursor:
    """An async cursor in the style of database drivers: `__aiter__` binds it to the running
    loop (and so must be called on it), `__anext__` gives rows."""

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self.loop: asyncio.AbstractEventLoop | None = None
        self.given = 0

    def __aiter__(self) -> Cursor:
        self.loop = asyncio.get_running_loop()
        return self

    async def __anext__(self) -> dict[str, int]:
        assert asyncio.get_running_loop() is self.loop
        if self.given == self.rows:
            raise StopAsyncIteration
        self.given += 1
        return {"n": self.given - 1}


def test_an_async_iterable_is_opened_on_the_event_loop(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox
) -> None:
    async def scenario() -> list[Outcome]:
        return await collect(aio.write_many(ampwrite_core, Cursor(25), **WHERE, batch_size=10))

    outcomes = asyncio.run(scenario())

    assert sorted(o.index for o in outcomes) == list(range(25))
    assert {o.status for o in outcomes} == {"written"}


def test_an_async_input_whose_loop_closes_is_not_taken_for_its_end(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox
) -> None:
    """An async input is read on the loop that first iterated the run. When that loop
    closes (its `asyncio.run` returned) before the input ended, iterating the run on another
    loop must not end as if every record had been given: the input failed, and says why."""

    async def feed() -> Any:
        for n in range(100):
            await asyncio.sleep(0)
            yield {"n": n}

    writes = aio.write_many(ampwrite_core, feed(), **WHERE, batch_size=10, concurrency=1)

    async def some() -> list[Outcome]:
        return [await anext(writes) for _ in range(5)]

    async def rest() -> list[Outcome]:
        outcomes: list[Outcome] = []
        with pytest.raises(RuntimeError, match="event loop"):
            async for outcome in writes:
                outcomes.append(outcome)
        return outcomes

    outcomes = asyncio.run(some())
    outcomes += asyncio.run(asyncio.wait_for(rest(), GUARD))

    indexes = [o.index for o in outcomes]
    assert len(indexes) == len(set(indexes)) < 100
    assert ampwrite_sandbox.wait_idle(timeout=GUARD)
    stored = {r["n"] for r in ampwrite_sandbox.records(object_name="contacts")}
    assert {o.index for o in outcomes if o.status == "written"} == stored


TENANT: contextvars.ContextVar[str] = contextvars.ContextVar("TENANT", default="none")


@pytest.mark.parametrize("source", ["async generator", "generator"])
def test_the_input_and_on_progress_run_in_the_consumers_context(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox, source: str
) -> None:
    """An input iterated by `for` or `async for`, and a callback it calls, see the
    consumer's context variables (a tenant, a database session, a trace): run by the run,
    on its own thread or on the loop, they must see them too."""

    async def async_rows() -> Any:
        for n in range(15):
            yield {"n": n, "tenant": TENANT.get()}

    def rows() -> Iterator[dict[str, Any]]:
        for n in range(15):
            yield {"n": n, "tenant": TENANT.get()}

    seen: set[str] = set()

    async def scenario() -> list[Outcome]:
        TENANT.set("acme")
        records = async_rows() if source == "async generator" else rows()
        writes = aio.write_many(
            ampwrite_core,
            records,
            **WHERE,
            batch_size=10,
            on_progress=lambda progress: seen.add(TENANT.get()),
        )
        return await collect(writes)

    outcomes = asyncio.run(scenario())

    assert len(outcomes) == 15
    stored = ampwrite_sandbox.records(object_name="contacts")
    assert {record["tenant"] for record in stored} == {"acme"}
    assert seen == {"acme"}


# -- the Core's threads -----------------------------------------------------------------------


GIVE_UP_PROGRAM = textwrap.dedent(
    """
    import asyncio, sys
    from ampwrite import Core, aio

    core = Core("review-key", server_url=sys.argv[1], timeout=(5.0, 30.0))
    request = {
        "projectIdOrName": "proj",
        "integrationId": "int",
        "objectName": "contacts",
        "requestBody": {"groupRef": "g", "type": "create", "record": {"n": 1}},
    }

    async def main() -> None:
        try:
            await asyncio.wait_for(aio.write_records(core, request), 0.3)
        except asyncio.TimeoutError:
            print("gave up", flush=True)

    asyncio.run(main())
    """
)


def test_a_call_given_up_does_not_keep_the_program_alive() -> None:
    """A program that gives up on a write (a timeout, a Ctrl-C) ends when its code does: the
    attempt left on the wire must not hold the interpreter's exit until its 30 s read timeout,
    as a run of `write_many` left behind does not (its threads are daemons)."""
    with ScriptedServer(Stall(30.0)) as server:
        started = time.monotonic()
        program = subprocess.run(
            [sys.executable, "-c", GIVE_UP_PROGRAM, server.url],
            capture_output=True,
            text=True,
            timeout=60,
        )
        took = time.monotonic() - started

    assert program.stdout.splitlines() == ["gave up"], program.stderr
    assert took < 15, f"the program took {took:.1f} s to end"


def test_a_core_dropped_unclosed_lets_its_threads_end(ampwrite_sandbox: Sandbox) -> None:
    """On a caller's session, attempts run on the Core's threads."""

    def pool_threads() -> set[threading.Thread]:
        return {t for t in threading.enumerate() if t.name.startswith("ampwrite-aio_")}

    before = pool_threads()
    session = requests.Session()
    core = Core(ampwrite_sandbox.api_key, server_url=ampwrite_sandbox.url, session=session)
    request = {
        "projectIdOrName": "proj",
        "integrationId": "int",
        "objectName": "contacts",
        "requestBody": {"groupRef": "g", "type": "create", "record": {"n": 1}},
    }

    async def write_some(core: Core) -> bool:
        results = await asyncio.gather(*(aio.write_records(core, request) for _ in range(4)))
        return all(result.ok for result in results)

    assert asyncio.run(write_some(core))
    assert pool_threads() - before
    del core
    gc.collect()
    deadline = time.monotonic() + GUARD
    while pool_threads() - before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not pool_threads() - before
    session.close()


def test_an_attempt_runs_in_the_callers_context(ampwrite_sandbox: Sandbox) -> None:
    """What runs during an attempt made on a thread (urllib3's log records, a caller's
    session adapter) sees the caller's context variables, as in the synchronous call and
    under `asyncio.to_thread`: a log filter that stamps each record with the request's id."""
    seen: list[str] = []

    class Stamp(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(TENANT.get())

    urllib3_log = logging.getLogger("urllib3")
    handler, level = Stamp(), urllib3_log.level
    urllib3_log.addHandler(handler)
    urllib3_log.setLevel(logging.DEBUG)
    request = {
        "projectIdOrName": "proj",
        "integrationId": "int",
        "objectName": "contacts",
        "requestBody": {"groupRef": "g", "type": "create", "record": {"n": 1}},
    }

    async def scenario(core: Core) -> bool:
        TENANT.set("acme")
        return (await aio.write_records(core, request)).ok

    try:
        with (
            requests.Session() as session,
            Core(
                ampwrite_sandbox.api_key, server_url=ampwrite_sandbox.url, session=session
            ) as core,
        ):
            assert asyncio.run(scenario(core))
    finally:
        urllib3_log.removeHandler(handler)
        urllib3_log.setLevel(level)

    assert seen, "urllib3 logged the new connection"
    assert set(seen) == {"acme"}
