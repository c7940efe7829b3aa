"""Whether a connection is reused after each framing of an answer: ampwrite's own HTTP/1.1
(an own-session `RequestsTransport`) holds to what urllib3 does (a caller's session), and
reads the same two answers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from ampwrite._transport import Answer, Request, RequestsTransport, Timeouts
from ampwrite.errors import TransportError

from .scripted_server import Framed, KeepOpen, ScriptedServer

BODY = b'{"ok": true}'
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

ANSWERS: dict[str, Any] = {
    "length": Framed(200, BODY),
    "chunked": Framed(200, BODY, framing="chunked"),
    "Connection: close": Framed(200, BODY, close=True),
    "HTTP/1.0": Framed(200, BODY, http10=True),
    "until close": Framed(200, BODY, framing="until-close"),
    "204": KeepOpen(b"HTTP/1.1 204 No Content\r\n\r\n"),
    "304 with a length": KeepOpen(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n"),
    "100 Continue, then a length": KeepOpen(
        CONTINUE + b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY)
    ),
    "103 with fields, then chunked": KeepOpen(
        b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    ),
    "HTTP/1.0 keep-alive": KeepOpen(
        b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n{}"
    ),
}


def _request(url: str, method: str) -> Request:
    body = b'{"a": 1}' if method == "POST" else None
    return Request(method, url, "/x", {}, body, Timeouts(1.0, 1.0, 3.0), 1 << 20)


def _seen(result: Answer | TransportError) -> tuple[Any, ...]:
    if isinstance(result, Answer):
        return (result.status, result.body)
    return (result.kind, result.maybe_sent)


def _twice(action: Any, method: str, make: Callable[[], RequestsTransport]) -> tuple[Any, ...]:
    with ScriptedServer() as server:
        server.script(action, Framed(200, BODY))
        transport = make()
        try:
            first = transport.send(_request(server.url, method))
            second = transport.send(_request(server.url, method))
        finally:
            transport.close()
        return _seen(first), _seen(second), server.connections


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("name", sorted(ANSWERS))
def test_reuse_after_each_framing_is_urllib3s(name: str, method: str) -> None:
    session = requests.Session()
    try:
        theirs = _twice(ANSWERS[name], method, lambda: RequestsTransport(session))
    finally:
        session.close()
    ours = _twice(ANSWERS[name], method, RequestsTransport)
    assert ours == theirs
