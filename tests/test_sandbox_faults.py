"""Sandbox fault injection: each fault kind with a seed (deterministic), scripted faults
(``fail_next`` / ``reset_next``), latency, and fault settings over HTTP."""

from __future__ import annotations

import http.client
import json
import threading
import time
from datetime import datetime, timezone
from typing import Any

import pytest

from ampwrite.sandbox import Faults, Sandbox

WRITE_PATH = "/v1/projects/proj-1/integrations/int-1/objects/contacts"
CREATE = json.dumps({"groupRef": "g", "type": "create", "record": {"email": "a@x"}})

# What one write attempt came back as: an HTTP status, or "reset".
Outcome = int | str


def attempt(sb: Sandbox, body: str = CREATE) -> tuple[Outcome, dict[str, str], bytes]:
    host, port = sb.address
    conn = http.client.HTTPConnection(host, port, timeout=10)
    headers = {"X-Api-Key": sb.api_key, "Content-Type": "application/json"}
    try:
        conn.request("POST", WRITE_PATH, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    except (ConnectionResetError, http.client.RemoteDisconnected, BrokenPipeError):
        return "reset", {}, b""
    finally:
        conn.close()


def outcomes(sb: Sandbox, n: int) -> list[Outcome]:
    return [attempt(sb)[0] for _ in range(n)]


def test_rate_limit_answers_429_with_retry_after(sb: Sandbox) -> None:
    sb.set_faults(Faults(seed=1, rate_limit=1.0, retry_after=2.5))
    before = datetime.now(timezone.utc)
    status, headers, raw = attempt(sb)
    assert status == 429
    assert headers["Content-Type"] == "application/problem+json"
    assert headers["Retry-After"] == "3"
    problem = json.loads(raw)
    assert problem["status"] == 429
    assert problem["title"] == "Too Many Requests"
    assert problem["retryable"] is True
    assert problem["requestId"] == headers["X-Request-Id"]
    retry_at = datetime.fromisoformat(problem["retryAfter"].replace("Z", "+00:00"))
    assert 2.0 <= (retry_at - before).total_seconds() <= 4.0
    assert sb.records() == []


@pytest.mark.parametrize(
    ("field", "status", "has_retry_after"),
    [("error_500", 500, False), ("error_502", 502, False), ("error_503", 503, True)],
)
def test_server_errors(sb: Sandbox, field: str, status: int, has_retry_after: bool) -> None:
    sb.set_faults(Faults(**{field: 1.0}))  # type: ignore[arg-type]
    answer, headers, raw = attempt(sb)
    assert answer == status
    problem = json.loads(raw)
    assert problem["status"] == status
    assert problem["retryable"] is True
    assert ("Retry-After" in headers) is has_retry_after
    assert ("retryAfter" in problem) is has_retry_after
    assert sb.records() == []


def test_reset_drops_the_connection_and_stores_nothing(sb: Sandbox) -> None:
    sb.set_faults(Faults(reset=1.0))
    assert attempt(sb)[0] == "reset"
    assert sb.records() == []
    assert sb.requests[-1].status is None


def test_commit_then_fail_stores_then_answers_502(sb: Sandbox) -> None:
    sb.set_faults(Faults(commit_then_fail=1.0))
    status, _, raw = attempt(sb)
    assert status == 502
    assert json.loads(raw)["retryable"] is True
    assert [r["email"] for r in sb.records()] == ["a@x"]


def test_commit_then_fail_for_asynchronous_writes() -> None:
    with Sandbox(faults=Faults(commit_then_fail=1.0), async_delay=0.0) as sb:
        body = json.dumps({"groupRef": "g", "type": "create", "mode": "asynchronous", "record": {}})
        assert attempt(sb, body)[0] == 502
        deadline = time.monotonic() + 5
        while not sb.records() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(sb.records()) == 1


def test_mixed_faults_are_deterministic_for_a_seed() -> None:
    faults = Faults(
        seed=42,
        rate_limit=0.15,
        error_500=0.1,
        error_502=0.1,
        error_503=0.1,
        reset=0.1,
        commit_then_fail=0.1,
        retry_after=0,
    )
    runs = []
    stored = []
    for _ in range(2):
        with Sandbox(faults=faults) as sb:
            runs.append(outcomes(sb, 60))
            stored.append(len(sb.records()))
    assert runs[0] == runs[1]
    assert stored[0] == stored[1]
    seen = set(runs[0])
    assert {429, 500, 502, 503, "reset", 200} <= seen
    # Stored records: the 200s plus the commit-then-fail 502s.
    assert stored[0] > runs[0].count(200)

    with Sandbox(faults=Faults(**{**faults.to_json(), "seed": 7})) as sb:
        assert outcomes(sb, 60) != runs[0]


def test_set_faults_restarts_the_sequence(sb: Sandbox) -> None:
    faults = Faults(seed=5, error_500=0.5)
    sb.set_faults(faults)
    first = outcomes(sb, 20)
    sb.set_faults(faults)
    assert outcomes(sb, 20) == first
    sb.reset()
    assert outcomes(sb, 20) == first
    assert 200 in first
    assert 500 in first


def test_fault_rates_are_roughly_honoured(sb: Sandbox) -> None:
    sb.set_faults(Faults(seed=11, error_500=0.25))
    results = outcomes(sb, 200)
    assert 25 <= results.count(500) <= 75


def test_latency_is_added_to_valid_writes_only(sb: Sandbox) -> None:
    sb.set_faults(Faults(latency=0.2))
    started = time.monotonic()
    assert attempt(sb)[0] == 200
    assert time.monotonic() - started >= 0.19
    started = time.monotonic()
    assert attempt(sb, "{")[0] == 400
    assert time.monotonic() - started < 0.15


def test_a_write_in_progress_during_a_reset_is_not_applied(sb: Sandbox) -> None:
    sb.set_faults(Faults(latency=0.5))
    answers: list[Outcome] = []
    writer = threading.Thread(target=lambda: answers.append(attempt(sb)[0]))
    writer.start()
    deadline = time.monotonic() + 5
    while sb.wait_idle(timeout=0) and time.monotonic() < deadline:
        time.sleep(0.005)  # until the write has arrived
    assert not sb.wait_idle(timeout=0.1)  # the write is waiting out its latency
    sb.reset()
    writer.join(10)

    assert answers == [503]  # nothing written: a client may send it again
    assert sb.wait_idle(timeout=0)
    assert sb.records() == []
    assert sb.requests == []  # it belonged to the time before the reset
    assert attempt(sb)[0] == 200  # after the reset, writes are applied as usual
    assert len(sb.records()) == 1


def test_fail_next_answers_then_recovers(sb: Sandbox) -> None:
    sb.fail_next(503, count=2, retry_after=4)
    first, headers, raw = attempt(sb)
    assert first == 503
    assert headers["Retry-After"] == "4"
    assert json.loads(raw)["detail"]
    assert outcomes(sb, 2) == [503, 200]
    assert len(sb.records()) == 1


def test_fail_next_status_defaults(sb: Sandbox) -> None:
    sb.fail_next(429)
    sb.fail_next(500)
    sb.fail_next(401)
    status, headers, _ = attempt(sb)
    assert status == 429
    assert headers["Retry-After"] == "1"
    status, headers, _ = attempt(sb)
    assert status == 500
    assert "Retry-After" not in headers
    status, _, raw = attempt(sb)
    assert status == 401
    assert json.loads(raw)["retryable"] is False
    assert sb.records() == []


def test_fail_next_takes_precedence_over_random_faults(sb: Sandbox) -> None:
    sb.set_faults(Faults(rate_limit=1.0))
    sb.fail_next(500)
    assert outcomes(sb, 2) == [500, 429]


def test_reset_next(sb: Sandbox) -> None:
    sb.reset_next(2)
    assert outcomes(sb, 3) == ["reset", "reset", 200]
    assert len(sb.records()) == 1


@pytest.mark.parametrize(
    "bad",
    [
        {"status": 200},
        {"status": 600},
        {"status": 500, "count": 0},
        {"status": 500, "retry_after": -1.0},
    ],
)
def test_fail_next_refuses_bad_arguments(sb: Sandbox, bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        sb.fail_next(**bad)


@pytest.mark.parametrize(
    "bad",
    [
        {"rate_limit": 1.5},
        {"error_500": -0.1},
        {"error_500": 0.6, "error_502": 0.6},
        {"latency": float("inf")},
        {"retry_after": -1},
    ],
)
def test_faults_refuse_bad_values(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Faults(**bad)


def test_faults_refuse_wrong_types() -> None:
    with pytest.raises(TypeError):
        Faults(seed="1")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Faults(error_500=True)


def admin(sb: Sandbox, method: str, path: str, body: object = None) -> tuple[int, Any]:
    host, port = sb.address
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body))
        response = conn.getresponse()
        raw = response.read()
        is_json = "json" in response.getheader("Content-Type", "")
        return response.status, json.loads(raw) if is_json else raw.decode()
    finally:
        conn.close()


def test_faults_over_http(sb: Sandbox) -> None:
    status, body = admin(sb, "PUT", "/_sandbox/faults", {"seed": 3, "error_502": 1.0})
    assert status == 200
    assert body["error_502"] == 1.0
    assert sb.faults == Faults(seed=3, error_502=1.0)
    assert admin(sb, "GET", "/_sandbox/faults")[1] == body
    assert attempt(sb)[0] == 502
    assert admin(sb, "PUT", "/_sandbox/faults", {})[0] == 200
    assert attempt(sb)[0] == 200


@pytest.mark.parametrize(
    "body",
    [{"error_500": 2}, {"eror_500": 0.1}, {"seed": "x"}, [1], {"latency": True}],
)
def test_bad_faults_over_http_are_400(sb: Sandbox, body: object) -> None:
    status, text = admin(sb, "PUT", "/_sandbox/faults", body)
    assert status == 400
    assert isinstance(text, str)
    assert sb.faults == Faults()


def test_scripted_faults_over_http(sb: Sandbox) -> None:
    assert admin(sb, "POST", "/_sandbox/fail-next", {"status": 429, "retryAfter": 2})[0] == 200
    assert admin(sb, "POST", "/_sandbox/reset-next", {"count": 1})[0] == 200
    assert admin(sb, "POST", "/_sandbox/fail-next", {"status": 99})[0] == 400
    status, headers, _ = attempt(sb)
    assert status == 429
    assert headers["Retry-After"] == "2"
    assert outcomes(sb, 2) == ["reset", 200]
