"""`aio.write_many` and `AsyncAmpWrite`: the bulk guarantees through asyncio (plain and async
inputs, cancellation, Ctrl-C under `asyncio.run`, closing), the loop never waiting on the
input, and the asyncio facade against its synchronous twin. The fault-injection run of 5,000
records goes through this driver too (tests/test_bulk_faults.py)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import requests

from ampwrite import AmpWrite, Core, aio
from ampwrite.bulk import Outcome
from ampwrite.errors import AmpWriteError
from ampwrite.sandbox import Faults, Sandbox

WHERE: dict[str, Any] = {
    "project_id_or_name": "proj",
    "integration_id": "int",
    "object_name": "contacts",
    "group_ref": "group",
}


def sent(sandbox: Sandbox) -> int:
    return len(sandbox.requests)


def stored(sandbox: Sandbox) -> Counter[int]:
    assert sandbox.wait_idle(timeout=30)
    return Counter(r["n"] for r in sandbox.records(object_name="contacts"))


async def numbered(count: int) -> AsyncIterator[dict[str, int]]:
    for n in range(count):
        if n % 7 == 0:
            await asyncio.sleep(0)  # a real async source lets the loop run now and then
        yield {"n": n}


async def collect(writes: aio.AsyncBulkWrites) -> list[Outcome]:
    return [outcome async for outcome in writes]


def assert_accounted(outcomes: list[Outcome], sandbox: Sandbox, total: int) -> None:
    """Exactly one outcome per index, and each stored record reported written."""
    indexes = Counter(o.index for o in outcomes)
    assert sorted(indexes) == list(range(total))
    assert set(indexes.values()) == {1}
    store = stored(sandbox)
    assert set(store.values()) == {1}
    written = {o.index for o in outcomes if o.status == "written"}
    assert written == set(store)


@pytest.mark.parametrize("source", ["list", "generator", "async generator"])
def test_every_record_gets_one_outcome(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox, source: str
) -> None:
    total = 1_234
    records: Any = {
        "list": [{"n": n} for n in range(total)],
        "generator": ({"n": n} for n in range(total)),
        "async generator": numbered(total),
    }[source]

    async def scenario() -> tuple[list[Outcome], int]:
        writes = aio.write_many(ampwrite_core, records, **WHERE, batch_size=50, concurrency=3)
        outcomes = await collect(writes)
        return outcomes, writes.progress.done

    outcomes, done = asyncio.run(scenario())

    assert_accounted(outcomes, ampwrite_sandbox, total)
    assert done == total
    assert sent(ampwrite_sandbox) == -(-total // 50)


def test_unusable_arguments_raise_at_once(ampwrite_core: Core) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        aio.write_many(ampwrite_core, [], **WHERE, batch_size=101)
    with pytest.raises(TypeError, match="Core"):
        aio.write_many("not a core", [], **WHERE)  # type: ignore[arg-type]


def test_a_blocking_input_is_never_read_on_the_loop(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox
) -> None:
    """The input waits for the loop to tick: read on the loop, it would wait in vain."""
    ticked = threading.Event()
    timed_out: list[int] = []

    def records() -> Iterator[dict[str, int]]:
        for n in range(30):
            if n == 10 and not ticked.wait(10):
                timed_out.append(n)
            yield {"n": n}

    async def scenario() -> list[Outcome]:
        async def ticker() -> None:
            for _ in range(5):
                await asyncio.sleep(0.001)
            ticked.set()

        ticking = asyncio.ensure_future(ticker())
        outcomes = await collect(aio.write_many(ampwrite_core, records(), **WHERE, batch_size=5))
        await ticking
        return outcomes

    outcomes = asyncio.run(scenario())

    assert timed_out == []
    assert_accounted(outcomes, ampwrite_sandbox, 30)


@pytest.mark.parametrize("source", ["generator", "async generator"])
def test_a_failing_input_is_raised_after_the_outcomes_of_what_it_gave(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox, source: str
) -> None:
    def plain() -> Iterator[dict[str, int]]:
        yield from ({"n": n} for n in range(25))
        raise OSError("the export broke")

    async def asynchronous() -> AsyncIterator[dict[str, int]]:
        for n in range(25):
            yield {"n": n}
        raise OSError("the export broke")

    records = plain() if source == "generator" else asynchronous()
    reported: list[Outcome] = []

    async def scenario() -> None:
        async for outcome in aio.write_many(ampwrite_core, records, **WHERE, batch_size=10):
            reported.append(outcome)

    with pytest.raises(OSError, match="the export broke"):
        asyncio.run(scenario())
    assert_accounted(reported, ampwrite_sandbox, 25)


@pytest.mark.parametrize("where", ["waiting", "in the loop body"])
@pytest.mark.parametrize("cancel_after", [0, 1, 9, 40, 77])
def test_a_cancelled_consumer_stops_the_run_and_loses_nothing(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox, cancel_after: int, where: str
) -> None:
    """Cancelled while it waits for an outcome (the run stops by itself) or in its own code
    (it calls `stop()`), then iterated again: every stored record is reported once."""
    ampwrite_sandbox.set_faults(Faults(latency=0.02))
    reported: list[Outcome] = []

    async def scenario() -> None:
        writes = aio.write_many(
            ampwrite_core, numbered(5_000), **WHERE, batch_size=10, concurrency=4
        )

        async def consume() -> None:
            try:
                async for outcome in writes:
                    reported.append(outcome)
                    if where != "waiting" and len(reported) == cancel_after:
                        await asyncio.sleep(3600)  # cancelled here, in the consumer's code
            except asyncio.CancelledError:
                if where != "waiting":
                    writes.stop()
                raise

        task = asyncio.ensure_future(consume())
        while len(reported) < cancel_after:
            await asyncio.sleep(0.001)
        # with requests in flight, most likely (a loop body that holds on may let them end)
        deadline = time.monotonic() + 1
        while ampwrite_sandbox.wait_idle(timeout=0) and time.monotonic() < deadline:
            await asyncio.sleep(0.001)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        reported.extend(await collect(writes))  # the outcomes of the requests in flight

    asyncio.run(asyncio.wait_for(scenario(), 60))

    indexes = Counter(o.index for o in reported)
    assert set(indexes.values()) == {1}, "no outcome is repeated"
    store = stored(ampwrite_sandbox)
    assert set(store.values()) == {1}
    assert {o.index for o in reported if o.status == "written"} == set(store), "none is lost"
    assert len(store) < 5_000, "the run stopped"
    requests = sent(ampwrite_sandbox)
    time.sleep(0.2)
    assert sent(ampwrite_sandbox) == requests, "nothing is sent once it has ended"


def test_aclose_ends_the_run_and_nothing_is_sent_after_it(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox
) -> None:
    ampwrite_sandbox.set_faults(Faults(latency=0.02))

    async def scenario() -> int:
        count = 0
        async with aio.write_many(ampwrite_core, numbered(5_000), **WHERE, batch_size=10) as w:
            async for _ in w:
                count += 1
                if count == 25:
                    break
        return sent(ampwrite_sandbox)

    requests = asyncio.run(scenario())

    assert ampwrite_sandbox.wait_idle(timeout=10)
    assert sent(ampwrite_sandbox) == requests
    assert len(stored(ampwrite_sandbox)) < 5_000


def test_stop_yields_the_requests_in_flight_then_ends(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox
) -> None:
    ampwrite_sandbox.set_faults(Faults(latency=0.02))

    async def scenario() -> list[Outcome]:
        writes = aio.write_many(ampwrite_core, numbered(5_000), **WHERE, batch_size=10)
        outcomes = []
        async for outcome in writes:
            outcomes.append(outcome)
            if len(outcomes) == 15:
                writes.stop()
        return outcomes

    outcomes = asyncio.run(scenario())

    assert len(outcomes) < 5_000
    assert set(Counter(o.index for o in outcomes).values()) == {1}
    assert {o.index for o in outcomes if o.status == "written"} == set(stored(ampwrite_sandbox))


CTRL_C_PROGRAM = textwrap.dedent(
    """
    import asyncio, json, sys
    from ampwrite import Core, aio

    async def records():
        for n in range(100_000):
            yield {"n": n}

    async def main() -> None:
        core = Core(sys.argv[1], server_url=sys.argv[2])
        writes = aio.write_many(core, records(), project_id_or_name="proj",
                                integration_id="int", object_name="contacts",
                                group_ref="group", batch_size=10, concurrency=4)
        try:
            async for outcome in writes:
                print(json.dumps(outcome.to_json()), flush=True)
        except asyncio.CancelledError:  # Ctrl-C: asyncio.run cancels this task
            writes.stop()
            async for outcome in writes:
                print(json.dumps(outcome.to_json()), flush=True)
            print("cancelled", flush=True)
            raise

    asyncio.run(main())
    """
)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.run turns Ctrl-C into a cancel")
@pytest.mark.skipif(not hasattr(signal, "SIGINT"), reason="POSIX signals")
def test_ctrl_c_under_asyncio_run_loses_nothing(ampwrite_sandbox: Sandbox) -> None:
    ampwrite_sandbox.set_faults(Faults(latency=0.02))
    program = subprocess.Popen(
        [sys.executable, "-c", CTRL_C_PROGRAM, ampwrite_sandbox.api_key, ampwrite_sandbox.url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert program.stdout is not None
    lines = [program.stdout.readline() for _ in range(50)]  # outcomes are coming
    os.kill(program.pid, signal.SIGINT)
    # read through the same buffered file (communicate() would skip what it holds already)
    lines += program.stdout.read().splitlines()
    assert program.stderr is not None
    errors = program.stderr.read()
    program.wait(timeout=30)

    assert program.returncode != 0
    assert "cancelled" in lines, errors
    assert "KeyboardInterrupt" in errors
    outcomes = [json.loads(line) for line in lines if line.startswith("{")]
    assert set(Counter(o["index"] for o in outcomes).values()) == {1}
    store = stored(ampwrite_sandbox)
    assert set(store.values()) == {1}
    assert {o["index"] for o in outcomes if o["status"] == "written"} == set(store)
    assert len(store) < 100_000


# -- AsyncAmpWrite --------------------------------------------------------------------------------


def test_the_asyncio_facade_returns_what_the_synchronous_one_does(
    ampwrite_sandbox: Sandbox,
) -> None:
    options: dict[str, Any] = {
        "api_key": ampwrite_sandbox.api_key,
        "server_url": ampwrite_sandbox.url,
    }
    request = {
        "projectIdOrName": "proj",
        "integrationId": "int",
        "objectName": "contacts",
        "requestBody": {"groupRef": "g", "type": "create", "record": {"n": 1}},
    }

    async def scenario() -> tuple[Any, Any, list[Outcome]]:
        async with aio.AsyncAmpWrite(**options) as client:
            response = await client.write.records(request)
            with pytest.raises(AmpWriteError) as refused:
                await client.write.records({**request, "objectName": ""})
            async with client.write.many([{"n": n} for n in range(2, 12)], **WHERE) as many:
                outcomes = await collect(many)
            return response, refused.value, outcomes

    response, refused, outcomes = asyncio.run(scenario())

    with AmpWrite(**options) as client:
        twin = client.write.records(request)
        with pytest.raises(AmpWriteError) as twin_refused:
            client.write.records({**request, "objectName": ""})
    assert type(response) is type(twin) and response.result.success  # type: ignore[union-attr]
    assert str(refused) == str(twin_refused.value)
    assert sorted(o.status for o in outcomes) == ["written"] * 10
    assert sum(stored(ampwrite_sandbox).values()) == 12


def test_the_asyncio_facade_follows_operations() -> None:
    with (
        Sandbox() as sandbox,
        Core(sandbox.api_key, server_url=sandbox.url, platform_url=sandbox.url) as core,
    ):

        async def scenario() -> tuple[Any, ...]:
            client = aio.AsyncAmpWrite(core=core)
            async with client:
                response = await client.write.records(
                    {
                        "projectIdOrName": "proj",
                        "integrationId": "int",
                        "objectName": "contacts",
                        "requestBody": {
                            "groupRef": "g",
                            "type": "create",
                            "mode": "asynchronous",
                            "record": {"n": 1},
                        },
                    }
                )
                assert response.operation_id is not None
                got = await client.operations.get("proj", response.operation_id)
                done = await client.operations.wait("proj", response.operation_id, timeout=10)
                logs = await client.operations.logs("proj", response.operation_id)
                return got, done, logs

        got, done, logs = asyncio.run(scenario())
        assert got.id == done.id
        assert done.status == "success"
        assert isinstance(logs, tuple)
        assert core.transport.session is not None, "a Core passed in is left open"


def test_core_or_core_options_not_both(ampwrite_core: Core) -> None:
    with pytest.raises(TypeError, match="takes no other argument"):
        aio.AsyncAmpWrite("key", core=ampwrite_core)  # type: ignore[call-overload]


# -- the Core's threads -----------------------------------------------------------------------


def _aio_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("ampwrite-aio_")]


def test_closing_the_core_lets_its_threads_end_and_it_still_works(
    ampwrite_sandbox: Sandbox,
) -> None:
    """On a caller's session, attempts run on the Core's threads."""
    request = {
        "projectIdOrName": "proj",
        "integrationId": "int",
        "objectName": "contacts",
        "requestBody": {"groupRef": "g", "type": "create", "record": {"n": 1}},
    }
    session = requests.Session()
    core = Core(ampwrite_sandbox.api_key, server_url=ampwrite_sandbox.url, session=session)
    before = set(_aio_threads())

    async def write_some() -> bool:
        results = await asyncio.gather(*(aio.write_records(core, request) for _ in range(8)))
        return all(result.ok for result in results)

    assert asyncio.run(write_some())
    started = set(_aio_threads()) - before
    assert started

    core.close()
    deadline = time.monotonic() + 10
    while any(t.is_alive() for t in started) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not any(t.is_alive() for t in started), "the pool's threads ended"

    assert asyncio.run(write_some()), "a closed Core makes what it needs again"
    core.close()
    session.close()
