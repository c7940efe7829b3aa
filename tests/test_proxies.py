"""Writes through a real proxy: plain or HTTPS, to a plain or an HTTPS server, on ampwrite's
session or a caller's (whose stock adapter keeps proxy pools of its own). Each works, and the
whole-attempt deadline holds on each against a server trickling its answer.

One limit is pinned, as docs/reliability.md describes it: through an HTTPS proxy to an HTTPS
server (TLS inside TLS) the deadline is checked between the TLS records of the answer, so a
proxy that relays one record a byte at a time stretches the attempt until that record is in.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests

from ampwrite import Core, Err, Ok, RetryConfig
from ampwrite.errors import RequestTimeoutError
from tests.conftest import API_KEY, Driver
from tests.proxy_server import CA_FILE, TARGET_HOST, Proxy
from tests.requests_data import single
from tests.scripted_server import Reply, ScriptedServer, Trickle

PROXY_ENV = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")
CA_ENV = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
TIMEOUT = (0.5, 0.5)  # the attempt's deadline: 1 s
TRICKLE = Trickle(b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 400, 0.01)  # 4 s, a byte each 10 ms
OK_BODY = b'{"operationId": "op-p", "result": {"success": true, "recordId": "rec-p"}}'


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy or CA bundle from the machine's environment (requests lets them win)."""
    for name in PROXY_ENV + CA_ENV:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture(params=["http", "https"], ids=lambda s: f"{s} server")
def target(request: pytest.FixtureRequest) -> Iterator[ScriptedServer]:
    with ScriptedServer(tls=request.param == "https") as server:
        yield server


@pytest.fixture(params=["http", "https"], ids=lambda s: f"{s} proxy")
def proxy(request: pytest.FixtureRequest, target: ScriptedServer) -> Iterator[Proxy]:
    with Proxy(target.port, tls=request.param == "https") as running:
        yield running


def _url(target: ScriptedServer) -> str:
    """The target under a name only the proxy can reach (loopback is never proxied)."""
    return target.url.replace("127.0.0.1", TARGET_HOST)


def _core(
    target: ScriptedServer,
    proxy: Proxy,
    session_kind: str,
    monkeypatch: pytest.MonkeyPatch,
    session: requests.Session | None = None,
) -> Core:
    if session_kind == "own session":
        monkeypatch.setenv("http_proxy", proxy.url)
        monkeypatch.setenv("https_proxy", proxy.url)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", CA_FILE)  # the proxy's and the server's
    else:
        session = session or _session(proxy)
    return Core(
        API_KEY,
        server_url=_url(target),
        timeout=TIMEOUT,
        retries=RetryConfig.none(),
        session=session,
        allow_insecure_http=True,
    )


def _session(proxy: Proxy) -> requests.Session:
    session = requests.Session()  # requests' own HTTPAdapter: proxy pools of its own
    session.proxies = {"http": proxy.url, "https": proxy.url}
    session.verify = CA_FILE
    return session


SESSIONS = pytest.mark.parametrize("session_kind", ["own session", "caller's session"])


@SESSIONS
def test_a_write_goes_through_the_proxy(
    target: ScriptedServer, proxy: Proxy, session_kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    target.script(Reply(200, body=OK_BODY))
    with _core(target, proxy, session_kind, monkeypatch) as core:
        result = Driver("sync")(core, single())

    assert isinstance(result, Ok), result
    expected = "CONNECT " if target.url.startswith("https") else "POST http://"
    assert [line.split(TARGET_HOST)[0] for line in proxy.requests] == [expected]
    assert target.received[0].headers["x-api-key"] == API_KEY


@SESSIONS
def test_a_trickling_server_cannot_stretch_an_attempt_through_a_proxy(
    target: ScriptedServer,
    proxy: Proxy,
    session_kind: str,
    monkeypatch: pytest.MonkeyPatch,
    driver: Driver,
) -> None:
    target.script(TRICKLE)
    with _core(target, proxy, session_kind, monkeypatch) as core:
        started = time.monotonic()
        result = driver(core, single())
        elapsed = time.monotonic() - started

    assert isinstance(result, Err) and isinstance(result.error, RequestTimeoutError), result
    assert elapsed < 2.5  # the deadline is 1 s; the trickle would take 4 s
    assert len(proxy.requests) == 1


def test_a_callers_proxy_pools_made_before_get_the_deadline(
    target: ScriptedServer, proxy: Proxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = _session(proxy)  # its proxy pool exists, a connection kept alive through it
    warm_up = session.get(_url(target) + "/warm-up", timeout=5)
    assert warm_up.status_code == 200
    target.script(TRICKLE)
    with _core(target, proxy, "caller's session", monkeypatch, session) as core:
        started = time.monotonic()
        result = Driver("sync")(core, single())
        elapsed = time.monotonic() - started

    assert isinstance(result, Err) and isinstance(result.error, RequestTimeoutError), result
    assert elapsed < 2.5


@SESSIONS
def test_inside_tls_in_tls_the_deadline_waits_for_the_record_being_relayed(
    session_kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer = Reply(200, (("X-Padding", "p" * 700),), OK_BODY)  # one TLS record, ~850 bytes
    with (
        ScriptedServer(answer, tls=True) as target,
        Proxy(target.port, tls=True, split_after=10_000, interval=0.003) as proxy,
        _core(target, proxy, session_kind, monkeypatch) as core,
    ):
        started = time.monotonic()
        result = Driver("sync")(core, single(record={"blob": "b" * 20_000}))
        elapsed = time.monotonic() - started

    # relayed a byte each 3 ms, the record takes over 2.5 s, past the 1 s deadline; the
    # attempt still ends as a timeout, once the record is in
    assert isinstance(result, Err) and isinstance(result.error, RequestTimeoutError), result
    assert elapsed > 2.0
