"""Every way of reading an answer gives the same outcome for the same bytes from the server:
the same `Answer` (status, reason, headers, body) or a failure of the same kind and
`maybe_sent`.

Each answer below is sent by a loopback server to `RequestsTransport.send` on a caller's
session (urllib3 and http.client read it), on ampwrite's own (ampwrite's HTTP/1.1 reads it,
waiting in the thread) and to `AsyncioTransport.send` (the same, on an event loop), over HTTP
and HTTPS, twice: once with the connection closed after it, once with the connection kept
open (a length read the wrong way then shows as a wait until the read timeout on one side
only). The heads are odd on purpose:
Content-Length values that `int()` reads but a digit test does not, values framed two ways,
header lines the email parser of http.client stops at, interim and bodiless statuses.
"""

from __future__ import annotations

import asyncio
import http.client
import io
import json
import time

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from ampwrite._http1 import _fields
from ampwrite._transport import Answer, Request, RequestsTransport, Timeouts
from ampwrite.aio._http import AsyncioTransport
from ampwrite.errors import TransportError
from tests.scripted_server import CA_FILE, Action, KeepOpen, ScriptedServer

BODY = b'{"ok":1}'
Outcome = tuple[object, ...]


def _head(*lines: bytes, body: bytes = BODY) -> bytes:
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


ANSWERS = {
    # Content-Length as http.client reads it: int() of the first one
    "a length with a plus sign": _head(b"HTTP/1.1 200 OK", b"Content-Length: +8"),
    "a length with an underscore": _head(b"HTTP/1.1 200 OK", b"Content-Length: 0_8"),
    "a length with leading zeros": _head(b"HTTP/1.1 200 OK", b"Content-Length: 0008"),
    "a length with spaces after it": _head(b"HTTP/1.1 200 OK", b"Content-Length: 8  "),
    "a length folded onto the next line": _head(b"HTTP/1.1 200 OK", b"Content-Length:", b" 8"),
    "a length in superscript digits": _head(b"HTTP/1.1 200 OK", b"Content-Length: \xb2"),
    "a length repeated": _head(b"HTTP/1.1 200 OK", b"Content-Length: 8", b"Content-Length: 8"),
    "lengths that disagree": _head(b"HTTP/1.1 200 OK", b"Content-Length: 8", b"Content-Length: 3"),
    "lengths that disagree, the shorter first": _head(
        b"HTTP/1.1 200 OK", b"Content-Length: 3", b"Content-Length: 8"
    ),
    "lengths that disagree in one field": _head(b"HTTP/1.1 200 OK", b"Content-Length: 3, 8"),
    # chunk sizes as http.client reads them: int(size, 16)
    **{
        f"a chunk size of {size!r}": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        + size
        + b"\r\n"
        + BODY
        + b"\r\n0\r\n\r\n"
        for size in (b"0x8", b"+8", b"0_8", b" 8 ", b"8;ext=1", b"-8", b"zz", b"")
    },
    "Transfer-Encoding with a space after chunked": b"HTTP/1.1 200 OK\r\n"
    b"Transfer-Encoding: chunked \r\n\r\n8\r\n" + BODY + b"\r\n0\r\n\r\n",
    # header lines as http.client's parser takes them
    "a folded header": _head(b"HTTP/1.1 200 OK", b"X-Note: one", b"  two", b"Content-Length: 8"),
    "a header with spaces after its value": _head(
        b"HTTP/1.1 200 OK", b"X-Note: one  ", b"Content-Length: 8"
    ),
    "a line with no colon before the length": _head(
        b"HTTP/1.1 200 OK", b"X-Fine: yes", b"not a header", b"Content-Length: 8"
    ),
    "a space before a colon": _head(b"HTTP/1.1 200 OK", b"X-Bad : 1", b"Content-Length: 8"),
    "a header name past ASCII": _head(b"HTTP/1.1 200 OK", b"X-\xe9: 1", b"Content-Length: 8"),
    "a first header line that continues nothing": _head(
        b"HTTP/1.1 200 OK", b"  stray", b"Content-Length: 8"
    ),
    # status lines as http.client reads them: int() of the code, 100 to 999
    "a status with a leading zero": _head(b"HTTP/1.1 0200 OK", b"Content-Length: 8"),
    "a status with an underscore": _head(b"HTTP/1.1 2_00 OK", b"Content-Length: 8"),
    "a status of 1000": _head(b"HTTP/1.1 1000 OK", b"Content-Length: 8"),
    # statuses without a body, whatever their head says
    "101 with a body": _head(b"HTTP/1.1 101 Switching Protocols", b"Upgrade: x"),
    "204 with a length": _head(b"HTTP/1.1 204 No Content", b"Content-Length: 8"),
    "304 with a length": _head(b"HTTP/1.1 304 Not Modified", b"Content-Length: 8"),
    "204 with a chunked body": b"HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"8\r\n" + BODY + b"\r\n0\r\n\r\n",
    "204 with an empty chunked body": b"HTTP/1.1 204 No Content\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "a length in one field that repeats it, read until the server closes": _head(
        b"HTTP/1.1 200 OK", b"Content-Length: 8, 8"
    ),
    "an interim answer with a length": _head(b"HTTP/1.1 102 Processing", b"Content-Length: 3")
    + _head(b"HTTP/1.1 200 OK", b"Content-Length: 8"),
    "HTTP/1.0 kept alive": _head(
        b"HTTP/1.0 200 OK", b"Connection: keep-alive", b"Content-Length: 8"
    ),
    "a second Connection field that closes": _head(
        b"HTTP/1.1 200 OK", b"Connection: keep-alive", b"Connection: close", b"Content-Length: 8"
    ),
    "204 declaring more than the size limit": _head(
        b"HTTP/1.1 204 No Content", b"Content-Length: 99999999999"
    ),
    # keep-alive decided on the first Connection field, as http.client decides it
    "HTTP/1.0 with an empty Keep-Alive": _head(
        b"HTTP/1.0 200 OK", b"Keep-Alive:", b"Content-Length: 8"
    ),
}


def _request(url: str) -> Request:
    return Request(
        "POST",
        url,
        "/x",
        {"Content-Type": "application/json"},
        json.dumps({"a": 1}).encode(),
        Timeouts(1.0, 1.0, 3.0),
        1 << 20,
    )


def _outcome(result: Answer | TransportError) -> Outcome:
    if isinstance(result, Answer):
        return ("answer", result.status, result.reason, dict(result.headers), result.body)
    return ("failure", result.kind, result.maybe_sent)


def _urllib3(server: ScriptedServer) -> Outcome:
    """Through a caller's requests session: urllib3 and http.client read the answer."""
    with requests.Session() as session:
        transport = RequestsTransport(session)
        try:
            return _outcome(transport.send(_request(server.url)))
        finally:
            transport.close()


def _own(server: ScriptedServer) -> Outcome:
    """ampwrite's own session, waiting in this thread: ampwrite's HTTP/1.1 reads it."""
    transport = RequestsTransport()
    try:
        return _outcome(transport.send(_request(server.url)))
    finally:
        transport.close()


def _aio(server: ScriptedServer) -> Outcome:
    """The same, on an event loop."""
    direct = RequestsTransport().direct(server.url)
    assert direct is not None
    transport = AsyncioTransport(4, 4)
    try:
        return _outcome(asyncio.run(transport.send(_request(server.url), direct)))
    finally:
        transport.close()


def _each(action: Action, tls: bool) -> list[Outcome]:
    outcomes = []
    for send in (_urllib3, _own, _aio):
        with ScriptedServer(tls=tls) as server:
            server.script(action)
            outcomes.append(send(server))
    return outcomes


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize("kept", [False, True], ids=["closed after", "kept open"])
@pytest.mark.parametrize("answer", ANSWERS.values(), ids=ANSWERS.keys())
def test_both_transports_read_an_answer_alike(
    answer: bytes, kept: bool, scheme: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", CA_FILE)  # read at each transport's first use
    by_urllib3, own, on_a_loop = _each(KeepOpen(answer) if kept else answer, tls=scheme == "https")
    assert own == by_urllib3
    assert on_a_loop == by_urllib3


def test_a_connection_an_attempt_ends_with_after_close_is_closed() -> None:
    """`close()` while an attempt is in flight (from another thread, say): the connection that
    attempt ends with is closed then, not kept for a transport nobody uses any more."""
    with ScriptedServer() as server:
        server.script(KeepOpen(_head(b"HTTP/1.1 200 OK", b"Content-Length: 8")))
        direct = RequestsTransport().direct(server.url)
        assert direct is not None
        transport = AsyncioTransport(4, 4)

        async def attempt() -> Answer | TransportError:
            send = asyncio.ensure_future(transport.send(_request(server.url), direct))
            await asyncio.sleep(0)  # under way: its connection taken
            transport.close()
            return await send

        assert isinstance(asyncio.run(attempt()), Answer)
        for _ in range(100):
            if server.open_connections == 0:
                break
            time.sleep(0.02)
        assert server.open_connections == 0


# -- the header fields, as http.client's parser reads them ---------------------------------

_names = st.text(
    alphabet="!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    min_size=1,
    max_size=12,
)
_values = st.one_of(
    st.text(alphabet=" \t:;,aZ0\xe9\x7f", max_size=10),  # the characters that matter, often
    st.text(alphabet=st.characters(min_codepoint=9, max_codepoint=255), max_size=20),
)
_plain_lines = st.builds(lambda n, v: f"{n}:{v}".encode("latin-1"), _names, _values)
_odd_lines = st.one_of(
    _plain_lines,
    st.binary(max_size=20).filter(lambda b: b"\n" not in b),
    st.builds(lambda v: b" " + v.encode("latin-1"), _values),  # a folded line
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(lines=st.lists(st.one_of(_plain_lines, _odd_lines), max_size=8), crlf=st.booleans())
def test_header_fields_are_read_as_http_client_reads_them(lines: list[bytes], crlf: bool) -> None:
    """`_fields` splits plain lines itself and hands any other head to http.client's parser:
    either way, the fields are the parser's."""
    lines = [line + b"\r" if crlf else line for line in lines if b"\n" not in line]
    block = b"".join(line + b"\n" for line in lines) + b"\n"
    expected = list(http.client.parse_headers(io.BytesIO(block)).items())

    assert _fields(lines) == expected
