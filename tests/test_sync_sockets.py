"""The synchronous transport on ampwrite's own HTTP/1.1 (a direct route): signals, threads,
deadlines and sockets, against real loopback servers."""

from __future__ import annotations

import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from ampwrite import _http1
from ampwrite._transport import Answer, Request, RequestsTransport, Timeouts
from ampwrite.errors import FailureKind, TransportError

from .scripted_server import CA_FILE, Reply, ScriptedServer, Stall, Trickle

pytestmark = pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs setitimer")


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as running:
        yield running


def _request(server: ScriptedServer, *, read: float = 5.0, total: float = 10.0) -> Request:
    return Request("GET", server.url, "/x", {}, None, Timeouts(1.0, read, total), 1 << 20)


class _Alarm(Exception):
    pass


def _raise_in(seconds: float, exc: BaseException) -> Any:
    def handler(signum: int, frame: object) -> None:
        raise exc

    previous = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    return previous


@pytest.mark.parametrize(
    "exc", [_Alarm("alarm"), TimeoutError("alarm"), OSError("alarm"), KeyboardInterrupt()]
)
def test_an_exception_raised_by_a_signal_handler_in_a_wait_propagates(
    server: ScriptedServer, exc: BaseException
) -> None:
    server.script(Stall(2.0), Reply(200, body=b"{}"))
    transport = RequestsTransport()
    previous = _raise_in(0.2, exc)
    try:
        with pytest.raises(type(exc)) as raised:
            transport.send(_request(server))
        assert raised.value is exc
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        transport.close()


def test_the_deadline_holds_with_a_signal_every_10_ms(server: ScriptedServer) -> None:
    server.script(Trickle(b"HTTP/1.1 200 OK\r\nX: " + b"a" * 10000, 0.05))
    ticks = []
    previous = signal.signal(signal.SIGALRM, lambda *_: ticks.append(1))
    signal.setitimer(signal.ITIMER_REAL, 0.01, 0.01)
    transport = RequestsTransport()
    try:
        started = time.monotonic()
        outcome = transport.send(_request(server, read=1.0, total=1.0))
        elapsed = time.monotonic() - started
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        transport.close()
    assert isinstance(outcome, TransportError)
    assert 0.9 < elapsed < 1.5
    assert len(ticks) > 20


def _settle(server: ScriptedServer, open_connections: int) -> int:
    deadline = time.monotonic() + 3
    while server.open_connections != open_connections and time.monotonic() < deadline:
        time.sleep(0.01)
    return server.open_connections


def _interrupted_send(transport: RequestsTransport, server: ScriptedServer) -> None:
    """A send that a KeyboardInterrupt (from SIGALRM) ends 0.2 s in."""
    previous = _raise_in(0.2, KeyboardInterrupt())
    try:
        with pytest.raises(KeyboardInterrupt):
            transport.send(_request(server))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_the_connection_waited_on_is_not_used_after_an_interrupt(server: ScriptedServer) -> None:
    server.script(Stall(5.0))
    transport = RequestsTransport()
    _interrupted_send(transport, server)
    try:
        assert _settle(server, 0) == 0  # closed at once, not left to the stalling server
        outcome = transport.send(_request(server))
        assert isinstance(outcome, Answer) and outcome.status == 200
        assert server.connections == 2
    finally:
        transport.close()


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("error::ResourceWarning")
@pytest.mark.parametrize("round_", range(10))
def test_first_sends_from_many_threads_keep_no_connection_after_close(
    server: ScriptedServer, round_: int
) -> None:
    transport = RequestsTransport()
    barrier = threading.Barrier(16)
    outcomes: list[Answer | TransportError] = []
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)

    def send() -> None:
        barrier.wait()
        outcomes.append(transport.send(_request(server)))

    try:
        threads = [threading.Thread(target=send) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(switch)
    transport.close()
    assert len(outcomes) == 16 and all(isinstance(o, Answer) for o in outcomes)
    assert _settle(server, 0) == 0  # every connection kept was closed by close()


def _slow_reader(pause: float) -> tuple[socket.socket, threading.Thread]:
    """A server that reads a request 4 KiB at a time, `pause` seconds apart (forever)."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(0.2)
            stop = time.monotonic() + 4
            while time.monotonic() < stop:
                time.sleep(pause)
                try:
                    if not conn.recv(4096):
                        return
                except TimeoutError:
                    continue
                except OSError:
                    return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener, thread


@pytest.mark.parametrize(
    ("pause", "timeouts", "bound"),
    [(0.05, Timeouts(1.0, 5.0, 1.0), 1.0), (5.0, Timeouts(1.0, 0.3, 10.0), 0.3)],
    ids=["deadline", "read-timeout"],
)
def test_a_large_body_sent_to_a_slow_reader_ends_in_time(
    pause: float, timeouts: Timeouts, bound: float
) -> None:
    listener, thread = _slow_reader(pause)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    transport = RequestsTransport()
    body = b"x" * (8 << 20)
    try:
        started = time.monotonic()
        outcome = transport.send(Request("POST", url, "/x", {}, body, timeouts, 1 << 20))
        elapsed = time.monotonic() - started
    finally:
        transport.close()
        listener.close()
    thread.join(6)
    assert isinstance(outcome, TransportError) and outcome.maybe_sent
    assert bound - 0.05 < elapsed < bound + 0.5


def test_the_select_branch_reads_answers_and_times_out(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where there is no poll() (Windows), waits go through select()."""
    monkeypatch.setattr(_http1, "_poll", None)
    server.script(Reply(200, body=b"{}"), Stall(2.0))
    transport = RequestsTransport()
    try:
        answer = transport.send(_request(server))
        started = time.monotonic()
        timed_out = transport.send(_request(server, read=0.3))
        elapsed = time.monotonic() - started
    finally:
        transport.close()
    assert isinstance(answer, Answer) and answer.status == 200
    assert isinstance(timed_out, TransportError) and timed_out.kind is FailureKind.READ_TIMEOUT
    assert 0.25 < elapsed < 1.0


@pytest.mark.parametrize(
    "headers",
    [{"X-A": "v\r\nX-Injected: 1"}, {"X-A": "v\nX-Injected: 1"}, {"X-A": "v\0"}, {"X:B": "v"}],
)
def test_a_header_that_would_break_the_head_is_never_sent(
    server: ScriptedServer, headers: dict[str, str]
) -> None:
    """As http.client refuses it (the transport of a caller's session): an invalid request,
    nothing sent."""
    transport = RequestsTransport()
    try:
        request = Request("GET", server.url, "/x", headers, None, Timeouts(1, 1, 2), 1 << 20)
        outcome = transport.send(request)
    finally:
        transport.close()
    assert isinstance(outcome, TransportError) and outcome.kind is FailureKind.INVALID
    assert not outcome.maybe_sent
    assert server.received == []


@pytest.mark.parametrize("used_before", [True, False])
def test_a_transport_used_after_close_makes_its_pool_again(
    server: ScriptedServer, used_before: bool
) -> None:
    """An attempt made after `close()` works, on a pool made again that keeps its connection
    alive (as `Core.close()` promises: what the Core needs is made again); the next
    `close()` closes that one too."""
    transport = RequestsTransport()
    if used_before:
        assert isinstance(transport.send(_request(server)), Answer)
    transport.close()
    assert isinstance(transport.send(_request(server)), Answer)
    assert isinstance(transport.send(_request(server)), Answer)
    assert server.connections == (2 if used_before else 1)
    transport.close()
    assert _settle(server, 0) == 0


def test_an_interrupt_in_a_tls_read_propagates_and_the_connection_is_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", CA_FILE)
    with ScriptedServer(tls=True) as server:
        server.script(Reply(200, body=b"{}"), Stall(5.0))
        transport = RequestsTransport()
        try:
            assert transport.direct(server.url) is not None
            assert isinstance(transport.send(_request(server)), Answer)  # a kept connection
            _interrupted_send(transport, server)
            outcome = transport.send(_request(server))
            assert isinstance(outcome, Answer) and outcome.status == 200
            assert server.connections == 2
        finally:
            transport.close()


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("error::ResourceWarning")
def test_close_from_another_thread_during_attempts(server: ScriptedServer) -> None:
    """Attempts in flight as `close()` runs end as they would have; none of their
    connections is kept (those after it go to a pool made again, which the next `close()`
    closes)."""
    server.default = Reply(200, body=b"{}", delay=0.3)
    transport = RequestsTransport()
    outcomes: list[Answer | TransportError] = []

    def send() -> None:
        for _ in range(3):
            outcomes.append(transport.send(_request(server)))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(0.45)
    transport.close()
    for thread in threads:
        thread.join()
    transport.close()
    assert len(outcomes) == 24 and all(isinstance(o, Answer) for o in outcomes)
    assert _settle(server, 0) == 0
