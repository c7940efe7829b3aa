"""The asyncio transport's own promises, beside those it shares with the synchronous one (the
decoding, framing, fuzz, hardening and proxy tests run on both drivers):

- which attempts it makes (ampwrite's own session, no proxy) and which go to the Core's
  threads (a caller's session);
- its connections: kept alive across calls and event loops, closed by `Core.close()`, never
  reused after a cancelled attempt, never shared with a forked child;
- `async_workers` bounds the attempts in flight across loops and threads, and a cancelled
  wait for a slot passes the slot on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable

import pytest
import requests

from ampwrite import Core, Err, Ok, RetryConfig, aio, write_records
from tests.conftest import API_KEY, Driver
from tests.requests_data import single
from tests.scripted_server import Reply, ScriptedServer, Stall

OK_BODY = b'{"operationId": "op", "result": {"success": true, "recordId": "1"}}'


def _pool_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("ampwrite-aio_")}


def _wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.01)


async def _writes(core: Core, count: int) -> list[bool]:
    results = await asyncio.gather(*(aio.write_records(core, single()) for _ in range(count)))
    return [result.ok for result in results]


def test_own_session_attempts_run_on_the_loop_and_a_callers_on_threads(
    server: ScriptedServer,
) -> None:
    before = _pool_threads()
    with Core(API_KEY, server_url=server.url) as core:
        assert all(asyncio.run(_writes(core, 8)))
        assert _pool_threads() == before, "no thread for ampwrite's own session"
    with (
        requests.Session() as session,
        Core(API_KEY, server_url=server.url, session=session) as core,
    ):
        assert all(asyncio.run(_writes(core, 8)))
        assert _pool_threads() - before, "a caller's session is used on the Core's threads"


def test_connections_are_kept_alive_across_calls_and_event_loops(server: ScriptedServer) -> None:
    with Core(API_KEY, server_url=server.url) as core:
        for _ in range(3):
            assert asyncio.run(aio.write_records(core, single())).ok  # a new loop each time
        thread = threading.Thread(target=lambda: asyncio.run(aio.write_records(core, single())))
        thread.start()
        thread.join(10)
    assert len(server.received) == 4
    assert server.connections == 1


def test_closing_the_core_closes_its_connections_and_it_writes_again(
    server: ScriptedServer,
) -> None:
    core = Core(API_KEY, server_url=server.url)
    assert all(asyncio.run(_writes(core, 3)))
    opened = server.connections
    assert server.open_connections == opened  # kept alive, idle
    core.close()
    _wait_for(lambda: server.open_connections == 0)
    assert asyncio.run(aio.write_records(core, single())).ok
    assert server.connections == opened + 1
    core.close()


def test_a_cancelled_attempt_leaves_its_connection_unused(server: ScriptedServer) -> None:
    server.script(Stall(8.0))
    with Core(API_KEY, server_url=server.url, timeout=(5.0, 5.0)) as core:

        async def scenario() -> None:
            task = asyncio.ensure_future(aio.write_records(core, single()))
            while not server.received:
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(scenario())
        _wait_for(lambda: server.open_connections == 0)  # closed at once, not left to stall
        again = asyncio.run(aio.write_records(core, single()))
        assert isinstance(again, Ok), again
    assert server.connections == 2


def test_async_workers_bounds_attempts_across_loops_and_threads(server: ScriptedServer) -> None:
    server.default = Reply(200, body=OK_BODY, delay=0.02)
    with Core(API_KEY, server_url=server.url, async_workers=1) as core:
        outcomes: list[list[bool]] = []

        def run() -> None:
            outcomes.append(asyncio.run(_writes(core, 4)))

        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert outcomes == [[True] * 4, [True] * 4]
    assert server.most_in_flight == 1
    assert server.connections == 1


def test_a_cancelled_wait_for_a_slot_passes_the_slot_on(server: ScriptedServer) -> None:
    server.script(Reply(200, body=OK_BODY, delay=0.3))
    with Core(API_KEY, server_url=server.url, async_workers=1) as core:

        async def scenario() -> list[bool]:
            first = asyncio.ensure_future(aio.write_records(core, single()))
            waiting = asyncio.ensure_future(aio.write_records(core, single()))
            third = asyncio.ensure_future(aio.write_records(core, single()))
            await asyncio.sleep(0.1)  # the first holds the slot; the others wait for it
            waiting.cancel()
            done = await asyncio.wait_for(asyncio.gather(first, third), 10)
            return [result.ok for result in done]

        assert asyncio.run(scenario()) == [True, True]
    assert len(server.received) == 2  # the cancelled write was never sent


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_does_not_reuse_the_parents_connection(server: ScriptedServer) -> None:
    core = Core(API_KEY, server_url=server.url)
    assert asyncio.run(aio.write_records(core, single())).ok
    pid = os.fork()
    if pid == 0:  # child: must open its own connection
        os._exit(0 if asyncio.run(aio.write_records(core, single())).ok else 1)
    _, status = os.waitpid(pid, 0)

    assert os.waitstatus_to_exitcode(status) == 0
    assert asyncio.run(aio.write_records(core, single())).ok  # the parent's still works
    assert write_records(core, single()).ok
    assert server.connections == 3  # parent's asyncio, child's, parent's synchronous
    core.close()


def _answering_early(answer: bytes) -> tuple[socket.socket, threading.Thread]:
    """A server that answers as soon as it has a request's head, without reading its body,
    and then stops reading: the client is still sending when the answer comes."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                head += conn.recv(65536)
            conn.sendall(answer)
            conn.shutdown(socket.SHUT_WR)
            time.sleep(0.5)  # then closes with the body unread: the client's sending breaks

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener, thread


def test_an_answer_sent_before_the_body_was_read_is_read(driver: Driver) -> None:
    body = b'{"title": "Payload Too Large", "status": 413, "detail": "the record is too large"}'
    answer = b"HTTP/1.1 413 Payload Too Large\r\nContent-Type: application/problem+json\r\n"
    answer += b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    listener, thread = _answering_early(answer)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    with listener, Core(API_KEY, server_url=url, retries=RetryConfig.none()) as core:
        result = driver(core, single(record={"blob": "x" * (8 << 20)}))
    thread.join(5)

    assert isinstance(result, Err), result
    assert getattr(result.error, "status", None) == 413, repr(result.error)


def test_a_large_answer_is_decoded_off_the_loop(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    """An answer of a few MiB would hold the loop for tens of milliseconds while it is
    redacted and decoded: that happens on a thread of the Core (the decision's log record
    says which thread made it); a small one is decided on the loop."""
    data = {"blob": "x" * (2 << 20)}
    large = json.dumps({"operationId": "op", "result": {"success": True, "data": data}})
    server.script(Reply(200, body=large.encode()), Reply(200, body=OK_BODY))
    caplog.set_level(logging.DEBUG, logger="ampwrite")

    async def twice(core: Core) -> tuple[bool, bool, str]:
        first = await aio.write_records(core, single())
        second = await aio.write_records(core, single())
        return first.ok, second.ok, threading.current_thread().name

    with Core(API_KEY, server_url=server.url, max_response_bytes=8 << 20) as core:
        first_ok, second_ok, loop_thread = asyncio.run(twice(core))

    assert first_ok and second_ok
    deciders = [r.threadName or "" for r in caplog.records if " -> 200 in " in r.getMessage()]
    assert len(deciders) == 2
    assert deciders[0] != loop_thread and deciders[0].startswith("ampwrite-aio_")
    assert deciders[1] == loop_thread


def test_a_host_name_is_resolved_and_each_address_tried(server: ScriptedServer) -> None:
    """`localhost` may resolve to ::1 before 127.0.0.1, where the server listens: the next
    address is tried, as the synchronous transport tries it."""
    url = server.url.replace("127.0.0.1", "localhost")
    with Core(API_KEY, server_url=url) as core:
        assert asyncio.run(aio.write_records(core, single())).ok
        assert asyncio.run(aio.write_records(core, single())).ok
    assert server.connections == 1
    assert server.received[0].headers["host"] == f"localhost:{server.port}"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_child_forked_while_a_core_was_being_set_up_is_not_stuck(
    server: ScriptedServer,
) -> None:
    """A fork while a thread of the parent holds the lock that guards each Core's asyncio
    state (its connections) leaves the child a lock of its own, not a lock held for ever."""
    from ampwrite.aio._attempt import _TRANSPORTS

    core = Core(API_KEY, server_url=server.url)
    assert asyncio.run(aio.write_records(core, single())).ok
    with _TRANSPORTS._lock:  # as another thread of the parent might hold it
        pid = os.fork()
        if pid == 0:
            signal.alarm(10)  # stuck: the child dies of SIGALRM instead of hanging the test
            os._exit(0 if asyncio.run(aio.write_records(core, single())).ok else 1)
    _, status = os.waitpid(pid, 0)

    assert os.waitstatus_to_exitcode(status) == 0
    core.close()
