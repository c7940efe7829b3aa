"""ampwrite keeps its promises against hostile servers, bad input, threads and processes."""

from __future__ import annotations

import json
import logging
import threading
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor

import pytest

from ampwrite import AmpWrite, Core, Err, Ok, RetryConfig, write_records
from ampwrite.errors import APIError, RequestTimeoutError, TransportError
from ampwrite.sandbox import Sandbox
from tests.conftest import API_KEY, Driver
from tests.requests_data import single
from tests.scripted_server import Reply, ScriptedServer, Trickle

OK_BODY = b'{"operationId": "op", "result": {"success": true, "recordId": "1"}}'


# -- bounded time ----------------------------------------------------------------------------


def _timed_call(server: ScriptedServer, driver: Driver, **options: object) -> tuple[object, float]:
    with Core(API_KEY, server_url=server.url, timeout=(0.5, 0.5), **options) as core:  # type: ignore[arg-type]
        started = time.monotonic()
        result = driver(core, single())
        return result, time.monotonic() - started


def test_a_server_trickling_its_headers_cannot_hold_a_call(
    server: ScriptedServer, driver: Driver
) -> None:
    head = b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"a" * 400 + b"\r\n\r\n"
    server.script(Trickle(head, 0.01))  # would take over 4 s; each byte well within 0.5 s

    result, elapsed = _timed_call(server, driver, retries=RetryConfig.none())

    assert isinstance(result, Err) and isinstance(result.error, RequestTimeoutError)
    assert elapsed < 2.0  # the deadline is 1.0 s: 0.5 to connect plus 0.5 to answer


def test_a_server_trickling_its_body_cannot_hold_a_call(
    server: ScriptedServer, driver: Driver
) -> None:
    head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(OK_BODY) * 10}\r\n\r\n".encode()
    server.script(Trickle(OK_BODY * 10, 0.01, prefix=head))

    result, elapsed = _timed_call(server, driver, retries=RetryConfig.none())

    assert isinstance(result, Err) and isinstance(result.error, RequestTimeoutError)
    assert elapsed < 2.0


def test_retries_of_trickled_answers_stop_at_max_elapsed_time(
    server: ScriptedServer, driver: Driver
) -> None:
    server.default = Trickle(b"HTTP/1.1 200 OK\r\n" + b"X: " + b"a" * 1000, 0.01)
    config = RetryConfig(
        retry_ambiguous=True, max_elapsed_time=2.5, max_attempts=100, initial_interval=0.05
    )

    result, elapsed = _timed_call(server, driver, retries=config)

    assert isinstance(result, Err) and isinstance(result.error, RequestTimeoutError)
    assert result.error.attempts >= 2
    assert elapsed < 4.0  # max_elapsed_time 2.5 s, and the last attempt's 1.0 s deadline


def test_a_fast_answer_is_unaffected_by_the_deadline(
    server: ScriptedServer, driver: Driver
) -> None:
    server.script(Reply(200, body=OK_BODY))
    result, _ = _timed_call(server, driver)
    assert isinstance(result, Ok)


# -- bounded memory --------------------------------------------------------------------------


def _chunked(total: int, chunk: int = 1 << 20) -> bytes:
    size = f"{chunk:x}".encode()
    body = (size + b"\r\n" + b"x" * chunk + b"\r\n") * (total // chunk)
    return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body + b"0\r\n\r\n"


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_64_mb_answer_is_refused_without_reading_it(
    server: ScriptedServer, framing: str, driver: Driver
) -> None:
    total = 64 << 20
    core = Core(API_KEY, server_url=server.url, retries=RetryConfig.none())
    assert driver(core, single()).ok  # warm up: connection, caches, generated code
    if framing == "chunked":
        server.script(_chunked(total))
    else:
        server.script(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % total + b"x" * total)
    tracemalloc.start()
    try:
        result = driver(core, single())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        core.close()

    assert isinstance(result, Err) and isinstance(result.error, TransportError)
    assert result.error.kind == "too-large"
    assert peak < 6 << 20, f"peak {peak / 2**20:.1f} MiB while refusing a 64 MiB answer"


# -- no secret leaks -------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirects_are_never_followed(status: int, driver: Driver) -> None:
    with ScriptedServer() as elsewhere, ScriptedServer() as server:
        target = f"{elsewhere.url}/steal"
        server.script(Reply(status, (("Location", target),)))
        with Core(API_KEY, server_url=server.url) as core:
            result = driver(core, single())

        assert isinstance(result, Err) and isinstance(result.error, APIError)
        assert result.error.status == status
        assert target in str(result.error)
        assert elsewhere.received == []


def test_the_key_appears_nowhere(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture, driver: Driver
) -> None:
    caplog.set_level(logging.DEBUG)
    server.script(
        Reply(500, body=f"echo {API_KEY}".encode(), content_type="text/plain"),
        Reply(200, body=b"not json"),
        Reply(200, body=OK_BODY),
    )
    client = AmpWrite(API_KEY, server_url=server.url, retries=RetryConfig.none())
    results = [driver(client.core, single()) for _ in range(3)]
    results.append(driver(client.core, {"bad": "request"}))
    try:
        client.write.records(single(groupRef=""))
    except Exception as raised:
        results.append(Err(raised))  # type: ignore[arg-type]

    shown = [repr(client), str(client.core), caplog.text]
    for result in results:
        shown += [repr(result), str(result)]
        if isinstance(result, Err):
            shown += [str(result.error), repr(result.error), repr(vars(result.error))]
    assert all(API_KEY not in text for text in shown)


@pytest.mark.parametrize("key", ["abc\r\nX-Evil: 1", "abc\n", "abc\0def"])
def test_control_characters_in_a_callable_key_are_refused(
    server: ScriptedServer, key: str, driver: Driver
) -> None:
    with Core(lambda: key, server_url=server.url) as core:
        result = driver(core, single())

    assert isinstance(result, Err)
    assert key not in str(result.error)
    assert server.received == []


# -- concurrency -----------------------------------------------------------------------------


def test_one_core_shared_by_32_threads() -> None:
    with Sandbox() as sandbox, Core(sandbox.api_key, server_url=sandbox.url) as core:
        barrier = threading.Barrier(32)

        def writer(thread: int) -> list[bool]:
            barrier.wait()
            return [
                write_records(core, single(record={"thread": thread, "n": n})).ok for n in range(50)
            ]

        with ThreadPoolExecutor(max_workers=32) as pool:
            outcomes = [ok for batch in pool.map(writer, range(32)) for ok in batch]
        stored = sandbox.records()

    assert outcomes.count(True) == 1600
    assert len({record["id"] for record in stored}) == 1600
    assert len({(r["thread"], r["n"]) for r in stored}) == 1600


def test_json_output_is_what_was_validated(server: ScriptedServer, core: Core) -> None:
    record = {"nested": {"list": [1, 2.5, None, True, "é"]}, "tuple": (1, 2)}
    write_records(core, single(record=record))

    sent = json.loads(server.received[0].body)
    assert sent["record"] == {"nested": {"list": [1, 2.5, None, True, "é"]}, "tuple": [1, 2]}
