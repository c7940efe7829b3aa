"""Never raises: arbitrary server answers always become `Ok` or `Err`, within the time bound.

A loopback server answers with whatever hypothesis draws: any status from 100 to 599, any
content type, random, truncated or deeply nested JSON, invalid UTF-8, empty bodies, bogus
`Retry-After` values, a body shorter than its `Content-Length`, or a reset or close mid-answer;
framed by Content-Length, chunked (at times with a Content-Length of any value too) or read
until close, with or without `Connection: close`, as HTTP/1.1 or HTTP/1.0, the body sent with
the headers or after them.
`Ok` must come only from a 2xx whose body fits the contract, and always from one. CI runs a
fixed seed; set AMPWRITE_FUZZ_EXAMPLES to run more.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ampwrite import AmpWrite, Core, Err, Ok, RetryConfig
from ampwrite._wire import decode_write_response
from ampwrite.errors import AmpWriteError
from tests.conftest import API_KEY, Driver
from tests.requests_data import single
from tests.scripted_server import CLOSE, RESET, Action, Delayed, ScriptedServer

EXAMPLES = int(os.environ.get("AMPWRITE_FUZZ_EXAMPLES", "300"))
TIMEOUT = (0.5, 0.5)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
write_shaped = st.fixed_dictionaries(
    {"operationId": st.one_of(st.text(max_size=8), st.integers(), st.none())},
    optional={
        "result": st.one_of(
            st.fixed_dictionaries(
                {"success": st.one_of(st.booleans(), st.text(max_size=3))},
                optional={
                    "recordId": st.one_of(st.text(max_size=5), st.integers()),
                    "data": json_values,
                },
            ),
            json_values,
        ),
        "successCount": st.one_of(st.integers(), st.text(max_size=2)),
        "failureCount": st.integers(),
        "results": st.lists(st.fixed_dictionaries({"success": st.booleans()}), max_size=3),
        "errors": st.lists(st.fixed_dictionaries({"message": st.text(max_size=10)}), max_size=2),
        "title": st.text(max_size=10),
        "status": st.integers(),
        "retryAfter": st.text(max_size=25),
        "requestId": st.one_of(st.text(max_size=8), st.integers()),
    },
)
fitting = st.sampled_from(
    [
        {"operationId": "op-1", "result": {"success": True, "recordId": "r-1"}},
        {"operationId": "op-2"},
        {
            "operationId": "op-3",
            "successCount": 1,
            "failureCount": 1,
            "results": [{"success": True, "recordId": "r-2"}, {"success": False}],
        },
    ]
)
bodies = st.one_of(
    fitting.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    write_shaped.map(lambda v: json.dumps(v).encode()),
    st.integers(1, 3000).map(lambda depth: b"[" * depth + b"]" * depth),
    st.integers(1, 100_000).map(lambda depth: b'{"a":' * depth),
    st.just(b"\xff\xfe\xfa invalid utf-8"),
    st.just(b""),
)
content_types = st.sampled_from(
    [
        "application/json",
        "application/problem+json",
        "text/plain",
        "text/html",
        "application/json; charset=latin-1",
        "",
        "application/octet-stream",
        "json",
    ]
)
retry_afters = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "",
            "-1",
            "nan",
            "inf",
            "1e309",
            "0",
            "0.01",
            "soon",
            "Wed, 21 Oct 2015 07:28:00 GMT",
            "Fri, 31 Dec 9999 23:59:59 GMT",
        ]
    ),
    st.text(alphabet="0123456789.-e ", max_size=8),
)


@attrs.frozen
class Fuzzed:
    """An answer drawn by hypothesis, and whether it is a whole 2xx that fits the contract."""

    action: Delayed
    fits: bool


def _fits(status: int, body: bytes, whole: bool) -> bool:
    if not (200 <= status < 300 and status != 204 and whole):  # a 204 has no body
        return False
    try:
        decode_write_response(json.loads(body))
    except Exception:
        return False
    return True


@st.composite
def answers(draw: st.DrawFn) -> Fuzzed | str:
    kind = draw(st.sampled_from(["answer"] * 8 + ["reset", "close", "short"]))
    if kind == "reset":
        return RESET
    if kind == "close":
        return CLOSE
    status = draw(st.one_of(st.just(200), st.integers(100, 599)))
    body: bytes = draw(bodies)
    version = draw(st.sampled_from(["HTTP/1.1"] * 3 + ["HTTP/1.0"]))
    framing = draw(st.sampled_from(["length"] * 3 + ["chunked", "until-close"]))
    if version == "HTTP/1.0" and framing == "chunked":
        framing = "length"
    lines = [f"{version} {status} Fuzzed"]
    content_type = draw(content_types)
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    retry_after = draw(retry_afters)
    if retry_after is not None:
        lines.append(f"Retry-After: {retry_after}")
    short = kind == "short"
    payload = body
    if framing == "length":
        lines.append(f"Content-Length: {len(body) + (draw(st.integers(1, 50)) if short else 0)}")
    elif framing == "chunked":
        lines.append("Transfer-Encoding: chunked")
        declared = draw(st.one_of(st.none(), st.integers(0, 10**7)))
        if declared is not None:  # framed two ways at once: the chunks are what counts
            lines.append(f"Content-Length: {declared}")
        payload = (f"{len(body):x}\r\n".encode() + body + b"\r\n" if body else b"") + (
            b"" if short else b"0\r\n\r\n"
        )
    if draw(st.booleans()):
        lines.append("Connection: close")
    head: bytes = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    delay = draw(st.sampled_from([0.0, 0.0, 0.005, 0.03]))
    parts = (head, payload) if delay else (head + payload,)
    # 1xx answers have no body; a short body is never whole; until close, what came is all
    whole = not (short and framing != "until-close")
    return Fuzzed(Delayed(parts, delay), _fits(status, body, whole))


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        yield server


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize="AMPWRITE_FUZZ_EXAMPLES" not in os.environ,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(first=answers(), second=answers(), use_facade=st.booleans())
def test_any_answer_becomes_a_result(
    fuzz_server: ScriptedServer,
    first: Fuzzed | str,
    second: Fuzzed | str,
    use_facade: bool,
    driver: Driver,
) -> None:
    actions: list[Action] = [a.action if isinstance(a, Fuzzed) else a for a in (first, second)]
    fuzz_server.script(*actions)  # the second is what a retry meets
    retries = RetryConfig(max_attempts=2, retry_ambiguous=True, max_retry_after=0.01)
    options: dict[str, Any] = {"timeout": TIMEOUT, "retries": retries, "sleep": lambda _: None}
    started = time.monotonic()
    if use_facade and not driver.is_async:  # the facade is synchronous
        with AmpWrite(API_KEY, server_url=fuzz_server.url, **options) as client:
            try:
                value: Any = Ok(client.write.records(single()))
            except AmpWriteError as error:  # anything else escaping fails the test
                value = Err(error)
    else:
        with Core(API_KEY, server_url=fuzz_server.url, **options) as core:
            value = driver(core, single())
    elapsed = time.monotonic() - started

    with fuzz_server._lock:  # drop what a short exchange left unused
        fuzz_server._script.clear()
    assert isinstance(value, (Ok, Err))
    assert elapsed < 2 * sum(TIMEOUT) + 1.0
    if isinstance(first, Fuzzed) and first.fits:  # however it was framed, timed or closed
        assert isinstance(value, Ok), value
    if isinstance(value, Ok):
        assert any(isinstance(a, Fuzzed) and a.fits for a in (first, second))
    else:
        assert isinstance(value.error, AmpWriteError)
        assert API_KEY not in str(value.error)
