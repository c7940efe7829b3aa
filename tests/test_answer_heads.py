"""An answer's head of any shape is read alike by both drivers: interim answers passed over,
folded and repeated headers, bare LF line ends, a status line without a reason; and the
limits held (a line over 64 KiB, 100 headers or more (http.client counts the empty line that
ends them), a status line that is not HTTP/1.x
are broken answers that may have been processed)."""

from __future__ import annotations

import pytest

from ampwrite import Core, Err, Ok, RetryConfig
from ampwrite.errors import TransportError
from ampwrite.models import SingleWriteResponse
from tests.conftest import API_KEY, Driver
from tests.requests_data import single
from tests.scripted_server import ScriptedServer

FINAL = b'{"operationId": "op", "result": {"success": true, "recordId": "42"}}'


def _head(status_line: bytes, *lines: bytes, end: bytes = b"\r\n") -> bytes:
    length = b"Content-Length: %d" % len(FINAL)
    return end.join([status_line, b"Content-Type: application/json", length, *lines, b""]) + end


READ = {
    "interim answers first": b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n" + _head(b"HTTP/1.1 200 OK"),
    "a folded header": _head(b"HTTP/1.1 200 OK", b"X-Note: one", b"  two"),
    "repeated headers": _head(b"HTTP/1.1 200 OK", b"X-Note: one", b"X-Note: two"),
    "bare LF line ends": _head(b"HTTP/1.1 200 OK", end=b"\n"),
    "no reason phrase": _head(b"HTTP/1.1 200"),
    "HTTP/1.0": _head(b"HTTP/1.0 200 OK"),
    "a minor version past 1": _head(b"HTTP/1.2 200 OK"),
    "99 headers": _head(b"HTTP/1.1 200 OK", *(b"X-N%d: v" % n for n in range(97))),
    "a line with no colon": _head(b"HTTP/1.1 200 OK", b"X-Fine: yes", b"not a header"),
}
BROKEN = {
    "a header line over 64 KiB": _head(b"HTTP/1.1 200 OK", b"X-Long: " + b"x" * 70_000),
    "100 headers": _head(b"HTTP/1.1 200 OK", *(b"X-N%d: v" % n for n in range(98))),
    "HTTP/2 in the status line": _head(b"HTTP/2 200 OK"),
    "not HTTP at all": _head(b"ICY 200 OK"),
    "a two-digit status": _head(b"HTTP/1.1 20 OK"),
    "a status that is not a number": _head(b"HTTP/1.1 2x0 OK"),
}


@pytest.fixture
def hcore(server: ScriptedServer) -> Core:
    return Core(API_KEY, server_url=server.url, timeout=(2.0, 2.0), retries=RetryConfig.none())


@pytest.mark.parametrize("head", READ.values(), ids=READ.keys())
def test_a_head_of_any_shape_is_read(
    server: ScriptedServer, hcore: Core, head: bytes, driver: Driver
) -> None:
    server.script(head + FINAL)

    result = driver(hcore, single())

    assert isinstance(result, Ok), result
    assert isinstance(result.value, SingleWriteResponse)
    assert result.value.result is not None and result.value.result.record_id == "42"
    hcore.close()


@pytest.mark.parametrize("head", BROKEN.values(), ids=BROKEN.keys())
def test_a_head_past_the_limits_is_a_broken_answer(
    server: ScriptedServer, hcore: Core, head: bytes, driver: Driver
) -> None:
    server.script(head + FINAL)

    result = driver(hcore, single())

    assert isinstance(result, Err) and type(result.error) is TransportError, result
    assert result.error.kind == "interrupted" and result.error.maybe_sent
    assert isinstance(driver(hcore, single()), Ok)
    hcore.close()
