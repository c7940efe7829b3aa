"""Every way an answer can be framed decodes right: Content-Length, chunked or read until
close; with `Connection: close` or HTTP/1.0; the body with the headers or after them; over
HTTP and HTTPS; on ampwrite's own session and on a caller's. The same Core then writes again,
so the connection (kept alive or closed) is left in a state the next attempt can use.

On ampwrite's own session the answer is read by ampwrite's HTTP/1.1; on a caller's, by
http.client, where the whole-attempt deadline rests on http.client creating its response from
the connection's socket with `makefile("rb")`: this table pins that reliance for each framing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests

from ampwrite import Core, Err, Ok, RetryConfig
from ampwrite.errors import ServerError, TransportError, WriteFailedError
from ampwrite.models import SingleWriteResponse
from tests.conftest import API_KEY, Driver
from tests.requests_data import single
from tests.scripted_server import CA_FILE, FRAMINGS, BelowTLS, Framed, ScriptedServer

BODIES = {
    200: {"operationId": "op-f", "result": {"success": True, "recordId": "rec-f"}},
    422: {
        "operationId": "op-f",
        "errors": [{"message": "email is taken"}],
        "result": {"success": False},
    },
    503: {"title": "Unavailable", "detail": "try later", "status": 503},
}
SHAPES = [
    pytest.param(
        framing, close, http10, id=f"{framing}{'-close' if close else ''}{'-1.0' if http10 else ''}"
    )
    for framing in FRAMINGS
    for close in (False, True)
    for http10 in (False, True)
    if not (framing == "chunked" and http10)  # HTTP/1.0 has no chunked framing
]


@pytest.fixture(params=["http", "https"])
def scheme(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def tls_server(scheme: str) -> Iterator[ScriptedServer]:
    with ScriptedServer(tls=scheme == "https") as scripted:
        yield scripted


@pytest.fixture(params=["own session", "caller's session"])
def framed_core(
    request: pytest.FixtureRequest,
    tls_server: ScriptedServer,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Core]:
    session = None
    if request.param == "caller's session":
        session = requests.Session()
        session.verify = CA_FILE
        for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):  # requests lets them win
            monkeypatch.delenv(name, raising=False)
    else:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", CA_FILE)  # read once, by Core()
    with Core(
        API_KEY,
        server_url=tls_server.url,
        timeout=(2.0, 2.0),
        retries=RetryConfig.none(),
        session=session,
    ) as configured:
        yield configured
    if session is not None:
        session.close()


@pytest.mark.parametrize("delay", [0.0, 0.05], ids=["together", "body-later"])
@pytest.mark.parametrize(("framing", "close", "http10"), SHAPES)
@pytest.mark.parametrize("status", [200, 422, 503])
def test_each_framing_decodes_and_the_next_write_works(
    tls_server: ScriptedServer,
    framed_core: Core,
    status: int,
    framing: str,
    close: bool,
    http10: bool,
    delay: float,
    driver: Driver,
) -> None:
    body = json.dumps(BODIES[status]).encode()
    tls_server.script(Framed(status, body, framing, close=close, http10=http10, delay=delay))
    result = driver(framed_core, single())
    if status == 200:
        assert isinstance(result, Ok), result
        assert isinstance(result.value, SingleWriteResponse)
        assert result.value.result is not None and result.value.result.record_id == "rec-f"
    else:
        assert isinstance(result, Err)
        expected = WriteFailedError if status == 422 else ServerError
        assert type(result.error) is expected, repr(result.error)
        assert result.error.status == status
    # the default reply: the connection was either reused or replaced cleanly
    again = driver(framed_core, single())
    assert isinstance(again, Ok), again
    keeps_alive = not (close or http10 or framing == "until-close")
    assert tls_server.connections == (1 if keeps_alive else 2)


# -- an answer framed two ways at once -----------------------------------------------------
#
# RFC 9112 §6.3: Transfer-Encoding overrides Content-Length. ampwrite reads such an answer as
# chunked (what the message means; for a write that is not idempotent, refusing it would turn
# a known outcome into an unknown one) and closes the connection after it, so whatever the
# two framings disagree about cannot be read as the next answer.

DECLARED = {"shorter": 10, "longer": 10_000, "zero": 0, "over the size limit": 10**12}


@pytest.mark.parametrize("declared", DECLARED.values(), ids=DECLARED.keys())
def test_a_chunked_answer_is_read_as_chunked_whatever_its_content_length(
    tls_server: ScriptedServer, framed_core: Core, declared: int, driver: Driver
) -> None:
    body = json.dumps(BODIES[200]).encode()
    tls_server.script(Framed(200, body, "chunked", declared=declared))

    result = driver(framed_core, single())

    assert isinstance(result, Ok), result
    assert isinstance(result.value, SingleWriteResponse)
    assert result.value.result is not None and result.value.result.record_id == "rec-f"
    again = driver(framed_core, single())
    assert isinstance(again, Ok), again
    assert tls_server.connections == 2  # the connection of the mixed answer was not reused


CHUNKED_BODY = b"%x\r\n%s\r\n0\r\n\r\n" % (
    len(json.dumps(BODIES[200])),
    json.dumps(BODIES[200]).encode(),
)
UNTRUSTED_FRAMINGS = {
    "a coding ampwrite never asked for": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 5\r\n\r\n"
    ),
    "chunked twice": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n",
    "chunked in HTTP/1.0": b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n"
    b"Content-Length: 5\r\n\r\n",
}


@pytest.mark.parametrize("head", UNTRUSTED_FRAMINGS.values(), ids=UNTRUSTED_FRAMINGS.keys())
def test_a_transfer_encoding_that_is_not_plain_chunked_is_refused(
    tls_server: ScriptedServer, framed_core: Core, head: bytes, driver: Driver
) -> None:
    tls_server.script(head + CHUNKED_BODY)

    result = driver(framed_core, single())

    assert isinstance(result, Err) and type(result.error) is TransportError, result
    assert result.error.maybe_sent and result.error.kind == "interrupted"
    assert "Transfer-Encoding" in str(result.error)
    assert isinstance(driver(framed_core, single()), Ok)


# -- a TLS failure after the request went out ----------------------------------------------


@pytest.mark.parametrize("scheme", ["https"])
def test_a_tls_failure_after_the_request_was_sent_may_have_been_processed(
    tls_server: ScriptedServer, framed_core: Core, driver: Driver
) -> None:
    """The request was read, then the answer could not be decrypted: that is no handshake
    failure (which would mean nothing was sent) but a broken answer, and a retry of it could
    write twice."""
    tls_server.script(BelowTLS())

    result = driver(framed_core, single())

    assert len(tls_server.received) == 1
    assert isinstance(result, Err) and type(result.error) is TransportError, result
    assert result.error.kind == "interrupted" and result.error.maybe_sent
    assert isinstance(driver(framed_core, single()), Ok)
