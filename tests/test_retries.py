"""Retry rules: which outcomes are retried, how often, and how long ampwrite waits."""

from __future__ import annotations

import email.utils
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
import requests.adapters

from ampwrite import Core, Err, Ok, RetryConfig
from ampwrite.errors import (
    AmpWriteError,
    APIError,
    ConfigurationError,
    FailureKind,
    RateLimitError,
    RequestTimeoutError,
    RequestValidationError,
    ResponseValidationError,
    ServerError,
    TransportError,
)
from ampwrite.retries import Disposition, disposition, parse_retry_after, retry_delay
from tests.conftest import API_KEY, Driver, Sleeps
from tests.requests_data import single
from tests.scripted_server import (
    CLOSE,
    RESET,
    Action,
    Reply,
    ScriptedServer,
    Stall,
    json_reply,
)

OK_REPLY = json_reply(200, {"operationId": "op", "result": {"success": True, "recordId": "1"}})
AMBIGUOUS = RetryConfig(jitter=0.0, retry_ambiguous=True)
DEFAULT = RetryConfig(jitter=0.0)


def _core(url: str, retries: RetryConfig, sleeps: Callable[[float], None], **options: Any) -> Core:
    options.setdefault("timeout", (1.0, 0.5))
    return Core(API_KEY, server_url=url, retries=retries, sleep=sleeps, **options)


OUTCOMES: dict[str, Action] = {
    "429 with Retry-After": Reply(429, (("Retry-After", "2"),), b"{}"),
    "429 without Retry-After": Reply(429, body=b"{}"),
    "503": Reply(503, body=b"down", content_type="text/plain"),
    "500": Reply(500, body=b"oops", content_type="text/plain"),
    "502": Reply(502, body=b"bad gateway", content_type="text/plain"),
    "504": Reply(504, body=b"timeout", content_type="text/plain"),
    "reset after send": RESET,
    "closed after send": CLOSE,
    "read timeout": Stall(1.0),
}

# outcome -> (attempts with the default policy, attempts with retry_ambiguous), when the
# failure repeats forever and max_attempts is 3
ATTEMPTS = {
    "429 with Retry-After": (3, 3),
    "429 without Retry-After": (3, 3),
    "503": (3, 3),
    "500": (1, 3),
    "502": (1, 3),
    "504": (1, 3),
    "reset after send": (1, 3),
    "closed after send": (1, 3),
    "read timeout": (1, 3),
}


@pytest.mark.parametrize("outcome", list(OUTCOMES))
@pytest.mark.parametrize("policy", ["default", "ambiguous"])
def test_attempts_per_outcome(outcome: str, policy: str, sleeps: Sleeps, driver: Driver) -> None:
    base = DEFAULT if policy == "default" else AMBIGUOUS
    config = RetryConfig(
        jitter=0.0,
        max_attempts=3,
        retry_ambiguous=base.retry_ambiguous,
    )
    expected = ATTEMPTS[outcome][0 if policy == "default" else 1]
    with (
        ScriptedServer(default=OUTCOMES[outcome]) as server,
        _core(server.url, config, sleeps) as core,
    ):
        result = driver(core, single())

    assert isinstance(result, Err)
    assert result.error.attempts == expected
    assert len(server.received) == expected
    assert len(sleeps) == expected - 1


def test_retry_then_success_returns_ok(
    server: ScriptedServer, core: Core, sleeps: Sleeps, driver: Driver
) -> None:
    server.script(Reply(503, body=b""), Reply(429, body=b""), OK_REPLY)

    result = driver(core, single())

    assert isinstance(result, Ok)
    assert len(server.received) == 3
    assert sleeps == [0.5, 1.0]  # exponential backoff, no jitter


def test_backoff_is_exponential_and_capped(sleeps: Sleeps, driver: Driver) -> None:
    config = RetryConfig(
        initial_interval=1.0,
        exponent=3.0,
        max_interval=5.0,
        jitter=0.0,
        max_attempts=5,
        max_elapsed_time=1000.0,
    )
    with (
        ScriptedServer(default=Reply(503, body=b"")) as server,
        _core(server.url, config, sleeps) as core,
    ):
        driver(core, single())

    assert sleeps == [1.0, 3.0, 5.0, 5.0]


def test_jitter_spreads_waits_within_bounds(sleeps: Sleeps, driver: Driver) -> None:
    draws = iter([0.0, 1.0])
    config = RetryConfig(initial_interval=1.0, exponent=1.0, jitter=0.5, max_attempts=3)
    with (
        ScriptedServer(default=Reply(503, body=b"")) as server,
        _core(server.url, config, sleeps, rand=lambda: next(draws)) as core,
    ):
        driver(core, single())

    assert sleeps == [0.5, 1.5]


def test_retry_after_seconds_is_honoured(
    server: ScriptedServer, core: Core, sleeps: Sleeps, driver: Driver
) -> None:
    server.script(Reply(429, (("Retry-After", "3"),), b""), OK_REPLY)

    assert isinstance(driver(core, single()), Ok)
    assert sleeps == [3.0]


def test_retry_after_http_date_is_honoured(
    server: ScriptedServer, core: Core, sleeps: Sleeps, driver: Driver
) -> None:
    when = email.utils.formatdate(time.time() + 20, usegmt=True)
    server.script(Reply(503, (("Retry-After", when),), b""), OK_REPLY)

    assert isinstance(driver(core, single()), Ok)
    assert 18.0 <= sleeps[0] <= 20.0


def test_problem_retry_after_is_honoured(
    server: ScriptedServer, core: Core, sleeps: Sleeps, driver: Driver
) -> None:
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 10))
    problem = {"title": "Too Many Requests", "status": 429, "retryAfter": at}
    server.script(json_reply(429, problem, content_type="application/problem+json"), OK_REPLY)

    assert isinstance(driver(core, single()), Ok)
    assert 8.0 <= sleeps[0] <= 10.0


def test_a_retry_after_beyond_the_cap_is_not_waited_for(
    server: ScriptedServer, sleeps: Sleeps, driver: Driver
) -> None:
    config = RetryConfig(max_retry_after=4.0, max_elapsed_time=100.0)
    server.script(Reply(429, (("Retry-After", "3600"),), b""), OK_REPLY)
    with _core(server.url, config, sleeps) as core:
        result = driver(core, single())

    assert isinstance(result, Err) and isinstance(result.error, RateLimitError)
    assert result.error.retry_after == 3600.0 and result.error.attempts == 1
    assert sleeps == []


def test_retry_after_is_read_whatever_its_case(
    server: ScriptedServer, sleeps: Sleeps, driver: Driver
) -> None:
    server.script(Reply(503, (("RETRY-AFTER", "7"),), b""), OK_REPLY)
    with _core(server.url, RetryConfig(jitter=0.0), sleeps) as core:
        assert isinstance(driver(core, single()), Ok)

    assert sleeps == [7.0]


def test_a_retry_gets_only_what_is_left_of_max_elapsed_time(
    server: ScriptedServer, driver: Driver
) -> None:
    config = RetryConfig(retry_ambiguous=True, max_elapsed_time=2.0, initial_interval=0.01)
    server.script(Stall(1.5), Stall(5.0))
    with Core(API_KEY, server_url=server.url, retries=config, timeout=(1.0, 1.0)) as core:
        started = time.monotonic()
        result = driver(core, single())
        elapsed = time.monotonic() - started

    assert isinstance(result, Err) and isinstance(result.error, RequestTimeoutError)
    assert result.error.attempts == 2
    assert elapsed < 2.6  # not 1 s + a full second attempt of 1 s more


def test_max_elapsed_time_stops_retries(
    server: ScriptedServer, sleeps: Sleeps, driver: Driver
) -> None:
    config = RetryConfig(max_elapsed_time=5.0, max_attempts=100)
    server.script(
        Reply(429, (("Retry-After", "3"),), b""), Reply(429, (("Retry-After", "3"),), b"")
    )
    clock = FakeClock()
    with _core(server.url, config, clock.sleep, clock=clock) as core:
        result = driver(core, single())

    assert isinstance(result, Err) and isinstance(result.error, RateLimitError)
    assert result.error.attempts == 2
    assert result.error.retry_after == 3.0
    assert clock.now <= 5.0


class FakeClock:
    """A clock that only moves when the retry loop sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_real_waits_respect_max_elapsed_time(server: ScriptedServer, driver: Driver) -> None:
    config = RetryConfig(initial_interval=0.1, exponent=2.0, max_elapsed_time=0.5, max_attempts=50)
    with Core(API_KEY, server_url=server.url, retries=config) as core:
        server.default = Reply(503, body=b"")
        started = time.monotonic()
        result = driver(core, single())
        elapsed = time.monotonic() - started

    assert isinstance(result, Err) and isinstance(result.error, ServerError)
    assert elapsed < 1.5
    assert 2 <= result.error.attempts <= 5


def test_none_means_one_attempt(server: ScriptedServer, sleeps: Sleeps, driver: Driver) -> None:
    server.default = Reply(429, body=b"")
    with _core(server.url, RetryConfig.none(), sleeps) as core:
        result = driver(core, single())

    assert isinstance(result, Err) and result.error.attempts == 1
    assert sleeps == []


def test_per_call_retries_override_the_core(
    server: ScriptedServer, core: Core, sleeps: Sleeps, driver: Driver
) -> None:
    server.default = Reply(503, body=b"")

    result = driver(core, single(), retries=RetryConfig.none())

    assert isinstance(result, Err) and result.error.attempts == 1


def test_connection_refused_is_retried(sleeps: Sleeps, driver: Driver) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = RetryConfig(jitter=0.0, max_attempts=3)
    with _core(f"http://127.0.0.1:{port}/v1", config, sleeps) as core:
        result = driver(core, single())

    assert isinstance(result, Err) and isinstance(result.error, TransportError)
    assert result.error.kind == "connect" and not result.error.maybe_sent
    assert result.error.attempts == 3


def test_connection_refused_is_not_retried_when_disabled(sleeps: Sleeps, driver: Driver) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = RetryConfig(jitter=0.0, retry_connection_errors=False)
    with _core(f"http://127.0.0.1:{port}/v1", config, sleeps) as core:
        result = driver(core, single())

    assert isinstance(result, Err) and result.error.attempts == 1


class ConnectTimeoutAdapter(requests.adapters.HTTPAdapter):
    """A connect timeout, which no loopback server can produce: the handshake always works."""

    def send(self, *args: Any, **kwargs: Any) -> requests.Response:
        raise requests.exceptions.ConnectTimeout("connect timed out")


def test_connect_timeout_is_retried_as_never_sent(sleeps: Sleeps, driver: Driver) -> None:
    session = requests.Session()
    session.mount("http://", ConnectTimeoutAdapter())
    config = RetryConfig(jitter=0.0, max_attempts=2)
    with _core("http://127.0.0.1:9/v1", config, sleeps, session=session) as core:
        result = driver(core, single())

    assert isinstance(result, Err) and isinstance(result.error, RequestTimeoutError)
    assert result.error.kind == "connect-timeout" and not result.error.maybe_sent
    assert result.error.attempts == 2


def test_read_timeout_is_a_timeout_error(
    server: ScriptedServer, sleeps: Sleeps, driver: Driver
) -> None:
    server.script(Stall(2.0))
    with _core(server.url, DEFAULT, sleeps, timeout=(1.0, 0.3)) as core:
        started = time.monotonic()
        result = driver(core, single())

    assert isinstance(result, Err) and isinstance(result.error, RequestTimeoutError)
    assert result.error.kind == "read-timeout" and result.error.maybe_sent
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize(
    ("headers", "problem_after", "expected"),
    [
        ({"Retry-After": "5"}, None, 5.0),
        ({"Retry-After": "0.5"}, None, 0.5),
        ({"Retry-After": "-3"}, None, 0.0),
        ({"Retry-After": "soon"}, None, None),
        ({"Retry-After": "nan"}, None, None),
        ({}, None, None),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, None, 0.0),
        ({}, "not a date", None),
        ({"Retry-After": "bogus"}, "1970-01-01T00:00:10Z", 0.0),
    ],
)
def test_parse_retry_after(
    headers: dict[str, str], problem_after: str | None, expected: float | None
) -> None:
    assert parse_retry_after(headers, problem_after) == expected


def test_parse_retry_after_reads_future_dates() -> None:
    assert parse_retry_after({}, "2030-01-01T00:00:10Z", now=lambda: 1893456000.0) == 10.0


# -- the decision itself: pure functions over values ---------------------------------------------


def _api(cls: type[APIError], status: int, **extra: Any) -> APIError:
    return cls("x", status=status, headers={}, body="", **extra)


DISPOSITIONS = [
    (RequestValidationError(()), Disposition.REJECTED),
    (ConfigurationError("x"), Disposition.REJECTED),
    (_api(RateLimitError, 429, retry_after=None), Disposition.REFUSED),
    (_api(ServerError, 503), Disposition.REFUSED),
    (_api(ServerError, 500), Disposition.AMBIGUOUS),
    (_api(ServerError, 502), Disposition.AMBIGUOUS),
    (_api(ServerError, 599), Disposition.AMBIGUOUS),
    (_api(APIError, 404), Disposition.REJECTED),
    (_api(APIError, 413), Disposition.REJECTED),
    (_api(APIError, 302), Disposition.REJECTED),
    (TransportError("x", maybe_sent=False, kind=FailureKind.CONNECT), Disposition.NOT_SENT),
    (
        RequestTimeoutError("x", maybe_sent=False, kind=FailureKind.CONNECT_TIMEOUT),
        Disposition.NOT_SENT,
    ),
    (RequestTimeoutError("x", maybe_sent=True, kind="read-timeout"), Disposition.AMBIGUOUS),
    (TransportError("x", maybe_sent=True, kind="interrupted"), Disposition.AMBIGUOUS),
    (TransportError("x", maybe_sent=True, kind="too-large"), Disposition.UNCERTAIN),
    (TransportError("x", maybe_sent=False, kind="tls"), Disposition.REJECTED),
    (TransportError("x", maybe_sent=False, kind="invalid"), Disposition.REJECTED),
    (ResponseValidationError("x", status=200, headers={}, body=""), Disposition.UNCERTAIN),
]


@pytest.mark.parametrize(("error", "expected"), DISPOSITIONS, ids=lambda v: repr(v)[:40])
def test_every_failure_has_one_disposition(error: AmpWriteError, expected: Disposition) -> None:
    assert disposition(error) is expected


def test_a_failure_kind_is_its_string() -> None:
    error = TransportError("x", maybe_sent=True, kind="read-timeout")
    assert error.kind is FailureKind.READ_TIMEOUT
    assert error.kind == "read-timeout"  # type: ignore[comparison-overlap]
    assert str(error.kind) == "read-timeout" and error.kind.maybe_sent


def _delay(error: AmpWriteError, config: RetryConfig = DEFAULT, **options: Any) -> float | None:
    options = {"attempt": 1, "elapsed": 0.0, "attempt_seconds": 1.0, **options}
    return retry_delay(config, error, rand=lambda: 0.5, **options)


def test_retry_delay_resends_only_what_cannot_have_been_written() -> None:
    assert _delay(_api(ServerError, 503)) == DEFAULT.initial_interval
    assert _delay(_api(ServerError, 500)) is None
    assert _delay(_api(ServerError, 500), AMBIGUOUS) == AMBIGUOUS.initial_interval
    assert _delay(TransportError("x", maybe_sent=True)) is None
    assert _delay(TransportError("x", maybe_sent=False, kind="connect")) is not None
    assert _delay(_api(APIError, 400)) is None


def test_an_idempotent_request_is_resent_after_ambiguous_failures() -> None:
    for error in (_api(ServerError, 500), TransportError("x", maybe_sent=True)):
        assert _delay(error, idempotent=True) == DEFAULT.initial_interval
    assert _delay(_api(APIError, 404), idempotent=True) is None
    assert _delay(_api(ServerError, 500), RetryConfig.none(), idempotent=True) is None


def test_retry_delay_takes_the_servers_wait_within_its_cap() -> None:
    limited = _api(RateLimitError, 429, retry_after=7.0)
    assert _delay(limited) == 7.0
    assert _delay(limited, RetryConfig(max_retry_after=5.0)) is None
    asked = _api(ServerError, 503)
    asked.headers["Retry-After"] = "3"
    assert _delay(asked) == 3.0


def test_retry_delay_stops_at_the_attempt_and_time_budgets() -> None:
    error = _api(ServerError, 503)
    assert _delay(error, attempt=DEFAULT.max_attempts) is None
    assert _delay(error, elapsed=DEFAULT.max_elapsed_time - 0.2) is None
    assert _delay(error, elapsed=DEFAULT.max_elapsed_time - 5.0) is not None


def test_a_wait_that_overran_the_budget_still_retries_within_bounds(
    server: ScriptedServer, driver: Driver
) -> None:
    """A retry's timeouts are never cut below zero (which was a local ValueError, reported
    as a failure that may have been processed), however long the wait between overran."""
    now = [0.0]

    def overshooting_sleep(seconds: float) -> None:
        now[0] += seconds + 5.0  # a paused process: far past max_elapsed_time

    server.script(Reply(503, body=b"{}"), OK_REPLY)
    config = RetryConfig(max_elapsed_time=1.0, initial_interval=0.01, jitter=0.0)
    with Core(
        API_KEY,
        server_url=server.url,
        retries=config,
        sleep=overshooting_sleep,
        clock=lambda: now[0],
    ) as core:
        result = driver(core, single())
    assert isinstance(result, Ok), result
    assert len(server.received) == 2
