"""What a server's words, a URL, a proxy or a caller's session must not be able to do: leak
the key, raise out of the functional API, carry the key in clear, or break the framing."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from ampwrite import Core, Err, Ok, RetryConfig, write_records
from ampwrite._transport import COALESCED_BYTES, _HTTPConnection
from ampwrite.cli import main
from ampwrite.errors import APIError, ConfigurationError, TransportError
from tests.conftest import API_KEY
from tests.requests_data import single, write_argv
from tests.scripted_server import Reply, ScriptedServer

EXIT_USAGE = 2

# -- the key in a server's words ------------------------------------------------------------------


def _everything_said(error: object) -> str:
    parts = [str(error), repr(error)]
    if isinstance(error, APIError):
        parts += [error.body, repr(dict(error.headers)), json.dumps(list(error.headers))]
    return "\n".join(parts)


def _call(server: ScriptedServer, answer: bytes, session: requests.Session | None = None) -> object:
    server.script(answer)
    with Core(API_KEY, server_url=server.url, retries=RetryConfig.none(), session=session) as core:
        result = write_records(core, single())
    assert isinstance(result, Err)
    return result.error


def test_a_key_echoed_in_the_reason_phrase_is_redacted(server: ScriptedServer) -> None:
    error = _call(server, f"HTTP/1.1 400 {API_KEY}\r\nContent-Length: 0\r\n\r\n".encode())
    assert isinstance(error, APIError) and error.status == 400
    assert API_KEY not in _everything_said(error)
    assert "***" in str(error)


def test_a_key_echoed_as_a_header_name_is_redacted(server: ScriptedServer) -> None:
    answer = f"HTTP/1.1 400 Bad\r\n{API_KEY}: yes\r\nX-Echo: {API_KEY}\r\nContent-Length: 0\r\n\r\n"
    error = _call(server, answer.encode())
    assert isinstance(error, APIError)
    assert API_KEY not in _everything_said(error)
    assert error.headers["***"] == "yes" and error.headers["x-echo"] == "***"


def test_a_key_in_a_malformed_status_line_is_redacted(server: ScriptedServer) -> None:
    error = _call(server, f"HTTP/1.1 4xx {API_KEY}\r\n\r\n".encode())
    assert isinstance(error, TransportError)
    assert API_KEY not in _everything_said(error)


ESCAPED_KEY = "".join(f"\\u{ord(c):04x}" for c in API_KEY)


@pytest.mark.parametrize(
    ("status", "body", "media"),
    [
        (400, f'{{"title": "bad", "detail": "key {ESCAPED_KEY}"}}'.encode(), "problem+json"),
        (
            422,
            f'{{"operationId": "o", "errors": [{{"message": "{ESCAPED_KEY}"}}]}}'.encode(),
            "json",
        ),
        (400, json.dumps({"title": "t", "detail": API_KEY}).encode("utf-16"), "problem+json"),
        (200, json.dumps({"operationId": API_KEY}).encode("utf-32"), "json"),
    ],
    ids=["escaped in a problem", "escaped in a 422", "UTF-16 problem", "UTF-32 answer"],
)
def test_a_key_hidden_from_a_byte_search_is_redacted_once_decoded(
    server: ScriptedServer, status: int, body: bytes, media: str
) -> None:
    server.script(Reply(status, (), body, f"application/{media}"))
    with Core(API_KEY, server_url=server.url, retries=RetryConfig.none()) as core:
        result = write_records(core, single())
    said = repr(result) + (_everything_said(result.error) if isinstance(result, Err) else "")
    assert API_KEY not in said
    if isinstance(result, Err) and isinstance(result.error, APIError):
        assert result.error.problem is not None or status == 422
        assert API_KEY not in repr(result.error.problem) + repr(result.error.__dict__)


def test_urllib3_logs_no_echoed_key(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    """On a caller's session urllib3 reads the answer (and logs what it cannot parse)."""
    answer = f"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nEcho {API_KEY}\r\n\r\n"
    caplog.set_level(logging.DEBUG)
    with requests.Session() as session:
        _call(server, answer.encode(), session)
    logged = (
        "\n".join(record.getMessage() + (record.exc_text or "") for record in caplog.records)
        + caplog.text
    )
    assert any(r.name.startswith("urllib3") for r in caplog.records)  # it did complain
    assert API_KEY not in logged


def test_the_cli_prints_no_echoed_key(
    server: ScriptedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.script(f"HTTP/1.1 400 {API_KEY}\r\n{API_KEY}: 1\r\nContent-Length: 0\r\n\r\n".encode())
    main(write_argv(server.url, API_KEY, "--record", "{}"))
    captured = capsys.readouterr()
    assert captured.out or captured.err
    assert API_KEY not in captured.out + captured.err


# -- keys too short to redact ---------------------------------------------------------------
#
# Every key ampwrite sends is redacted from what a server echoes; one too short to be a secret
# (a one-letter key is in nearly every word: replacing it would mangle answers) is refused.

SHORT_KEYS = ["Q", "Zq9", "Zq9-Wv2"]  # 1, 3 and 7 characters


@pytest.mark.parametrize("key", SHORT_KEYS, ids=len)
def test_a_key_too_short_to_redact_is_refused_and_nothing_is_sent(
    key: str, server: ScriptedServer
) -> None:
    server.default = f"HTTP/1.1 400 {key}\r\nX-Echo: {key}\r\nContent-Length: 0\r\n\r\n".encode()
    with pytest.raises(ConfigurationError, match="shorter than 8 characters") as caught:
        Core(key, server_url=server.url)
    assert key not in str(caught.value)
    with Core(lambda: key, server_url=server.url, retries=RetryConfig.none()) as core:
        result = write_records(core, single())
    assert isinstance(result, Err) and isinstance(result.error, ConfigurationError)
    assert "shorter than 8 characters" in str(result.error)
    assert server.received == []


def test_a_key_of_eight_characters_is_taken_and_redacted(server: ScriptedServer) -> None:
    key = "Zq9-Wv2x"
    echo = f"HTTP/1.1 400 {key}\r\nX-Echo: {key}\r\nContent-Length: {len(key)}\r\n\r\n{key}"
    server.script(echo.encode())
    with Core(key, server_url=server.url, retries=RetryConfig.none()) as core:
        result = write_records(core, single())
    assert server.received[0].headers["x-api-key"] == key
    assert isinstance(result, Err) and isinstance(result.error, APIError)
    assert key not in _everything_said(result.error)
    assert result.error.headers["X-Echo"] == "***" and result.error.body == "***"


# -- server URLs with whitespace or control characters ---------------------------------------------


BAD_URLS = [" http://127.0.0.1:1/v1", "\thttp://127.0.0.1:1/v1", "http://127.0.0.1:1/v1\n", "\x00"]


@pytest.mark.parametrize("url", BAD_URLS)
def test_a_server_url_with_whitespace_is_a_configuration_error(url: str) -> None:
    with pytest.raises(ConfigurationError, match="whitespace or control characters"):
        Core(API_KEY, server_url=url)


@pytest.mark.parametrize("url", BAD_URLS)
def test_a_per_call_server_url_with_whitespace_is_an_error_value(
    url: str, core: Core, server: ScriptedServer
) -> None:
    result = write_records(core, single(), server_url=url)
    assert isinstance(result, Err) and isinstance(result.error, ConfigurationError)
    assert server.received == []


def test_the_environment_server_url_is_named_when_it_is_unusable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AMPERSAND_SERVER_URL", " http://127.0.0.1:1/v1")
    with pytest.raises(ConfigurationError, match="AMPERSAND_SERVER_URL"):
        Core(API_KEY)


def test_the_cli_explains_a_server_url_with_whitespace(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status = main(write_argv(" http://127.0.0.1:1/v1", API_KEY, "--record", "{}"))
    captured = capsys.readouterr()
    assert status == EXIT_USAGE
    assert "whitespace" in captured.err and "Traceback" not in captured.err


# -- proxies never see a loopback server's traffic ---------------------------------------------


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedServer]:
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    with ScriptedServer() as scripted:
        yield scripted


def test_an_environment_proxy_is_not_used_for_a_loopback_server(
    proxy: ScriptedServer, server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{proxy.port}")
    with Core(API_KEY, server_url=server.url) as core:
        assert isinstance(write_records(core, single()), Ok)
    assert proxy.received == [] and len(server.received) == 1


def test_a_sessions_proxy_is_not_used_for_a_loopback_server(
    proxy: ScriptedServer, server: ScriptedServer
) -> None:
    session = requests.Session()
    session.proxies = {"http": f"http://127.0.0.1:{proxy.port}"}
    with Core(API_KEY, server_url=server.url, session=session) as core:
        assert isinstance(write_records(core, single()), Ok)
    assert proxy.received == [] and len(server.received) == 1


# -- a caller's session headers follow the per-call header rules -------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Transfer-Encoding", "chunked"),
        ("Host", "elsewhere.example"),
        ("Content-Length", "5"),
        ("Upgrade", "h2c"),
        ("X-Split", "a\r\nX-Injected: 1"),
    ],
)
def test_a_session_header_ampwrite_cannot_send_is_refused(
    name: str, value: str, server: ScriptedServer
) -> None:
    session = requests.Session()
    session.headers[name] = value
    with pytest.raises(ConfigurationError, match=rf"session\.headers\['{name}'\]"):
        Core(API_KEY, server_url=server.url, session=session)
    assert server.received == []


def test_requests_default_session_headers_are_accepted(server: ScriptedServer) -> None:
    session = requests.Session()  # Connection: keep-alive among its defaults
    with Core(API_KEY, server_url=server.url, session=session) as core:
        assert isinstance(write_records(core, single()), Ok)
    assert server.received[0].count("Connection") <= 1


# -- one write per request ----------------------------------------------------------------------


class _Recording:
    """A connected socket that records each `sendall`, and does it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.writes: list[bytes] = []

    def sendall(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        self.sock.sendall(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


@pytest.mark.parametrize("size", [0, 10, COALESCED_BYTES])
def test_a_small_request_leaves_in_one_write(server: ScriptedServer, size: int) -> None:
    connection = _HTTPConnection("127.0.0.1", server.port)
    connection.connect()
    recording = _Recording(connection.sock)
    connection.sock = recording
    body = b"x" * size

    connection.request("POST", "/v1/anything", body=body, headers={"X-Test": "1"})
    answer = connection.getresponse()

    assert answer.status == 200
    assert len(recording.writes) == 1, "head and body in one system call"
    assert recording.writes[0].endswith(b"\r\n\r\n" + body)
    assert server.received[0].body == body
    connection.close()


def test_a_large_body_goes_in_pieces_and_arrives_whole(server: ScriptedServer) -> None:
    record = {"blob": "y" * (3 * COALESCED_BYTES)}
    with Core(API_KEY, server_url=server.url) as core:
        assert write_records(core, single(record=record)).ok
    assert server.received[0].json()["record"] == record


def test_closing_a_core_closes_its_connections_and_it_writes_again(
    server: ScriptedServer,
) -> None:
    with Core(API_KEY, server_url=server.url, retries=RetryConfig.none()) as core:
        assert write_records(core, single()).ok
        assert write_records(core, single()).ok
        assert server.connections == 1, "one connection, kept alive"
        core.close()
        assert write_records(core, single()).ok
    assert len(server.received) == 3
    assert server.connections == 2, "the first was closed with the Core"
