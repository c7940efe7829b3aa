"""The sandbox as an HTTP server: auth, routing, inspection in Python and under
``/_sandbox/``, the request log, keep-alive and protocol details, concurrency, and a clean,
prompt ``stop()``."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from typing import Any

import pytest
import requests

from ampwrite import Core, write_records
from ampwrite.core import MIN_API_KEY_LENGTH
from ampwrite.sandbox import Sandbox

WRITE_PATH = "/v1/projects/proj-1/integrations/int-1/objects/contacts"
CREATE = {"groupRef": "g", "type": "create", "record": {"email": "a@x"}}


def call(
    sb: Sandbox,
    method: str,
    path: str,
    body: object = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, http.client.HTTPMessage, bytes]:
    host, port = sb.address
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        data = None if body is None else json.dumps(body)
        conn.request(method, path, body=data, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def authed(sb: Sandbox) -> dict[str, str]:
    return {"X-Api-Key": sb.api_key, "Content-Type": "application/json"}


def sandbox_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("ampwrite-sandbox")]


# -- auth and routing --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, "missing X-Api-Key header"),
        ({"X-Api-Key": "wrong"}, "invalid API key"),
        ({"X-Api-Key": ""}, "invalid API key"),
        ({"Authorization": "Bearer sandbox-api-key"}, "missing X-Api-Key header"),
    ],
)
def test_missing_or_wrong_key_is_401(sb: Sandbox, headers: dict[str, str], detail: str) -> None:
    status, response_headers, raw = call(sb, "POST", WRITE_PATH, CREATE, headers)
    assert status == 401
    assert response_headers["Content-Type"] == "application/problem+json"
    problem = json.loads(raw)
    assert problem["status"] == 401
    assert problem["title"] == "Unauthorized"
    assert problem["detail"] == detail
    assert problem["retryable"] is False
    assert problem["requestId"] == response_headers["X-Request-Id"]
    assert problem["type"] == "about:blank"
    assert sb.records() == []


def test_auth_comes_before_body_validation(sb: Sandbox) -> None:
    status, _, _ = call(sb, "POST", WRITE_PATH, "not an object", {"X-Api-Key": "wrong"})
    assert status == 401
    host, port = sb.address
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.request("POST", WRITE_PATH, body=b"{{{", headers={"X-Api-Key": "nope"})
    assert conn.getresponse().status == 401
    conn.close()


def test_header_name_is_case_insensitive(sb: Sandbox) -> None:
    headers = {"x-api-key": sb.api_key, "content-type": "application/json"}
    assert call(sb, "POST", WRITE_PATH, CREATE, headers)[0] == 200


def test_custom_api_key() -> None:
    with Sandbox(api_key="k-123456") as sb:
        assert sb.api_key == "k-123456"
        json_type = {"Content-Type": "application/json"}
        good = {"X-Api-Key": "k-123456", **json_type}
        assert call(sb, "POST", WRITE_PATH, CREATE, good)[0] == 200
        wrong = {"X-Api-Key": "sandbox-api-key", **json_type}
        assert call(sb, "POST", WRITE_PATH, CREATE, wrong)[0] == 401


@pytest.mark.parametrize("key", ["", "k", "k-12345", "x" * (MIN_API_KEY_LENGTH - 1)])
def test_a_key_shorter_than_the_client_sends_is_refused(key: str) -> None:
    # the client refuses keys under MIN_API_KEY_LENGTH: a sandbox expecting one could never
    # be reached by it
    with pytest.raises(ValueError, match=f"at least {MIN_API_KEY_LENGTH} characters"):
        Sandbox(api_key=key)


def test_a_key_that_is_not_a_string_is_refused() -> None:
    with pytest.raises(ValueError, match="must be a string, got bytes"):
        Sandbox(api_key=b"k-12345678")  # type: ignore[arg-type]


def test_a_key_of_the_shortest_length_the_client_sends_works() -> None:
    key = "k" * MIN_API_KEY_LENGTH
    with Sandbox(api_key=key) as sb, Core(key, server_url=sb.url) as core:
        request = {
            "projectIdOrName": "proj-1",
            "integrationId": "int-1",
            "objectName": "contacts",
            "requestBody": CREATE,
        }
        assert write_records(core, request).ok


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/v1",
        "/v2/projects/p/integrations/i/objects/o",
        "/v1/projects/p/integrations/i/objects",
        "/v1/projects/p/integrations/i/objects/o/extra",
        "/v1/projects/p/integration/i/objects/o",
        "/_sandbox/nothing",
    ],
)
def test_unknown_paths_are_404_problem(sb: Sandbox, path: str) -> None:
    status, headers, raw = call(sb, "POST", path, CREATE, authed(sb))
    assert status == 404
    assert headers["Content-Type"] == "application/problem+json"
    assert json.loads(raw)["status"] == 404


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_wrong_method_is_405_problem(sb: Sandbox, method: str) -> None:
    status, headers, raw = call(sb, method, WRITE_PATH, None, authed(sb))
    assert status == 405
    assert headers["Content-Type"] == "application/problem+json"
    assert headers["Allow"] == "POST"
    assert json.loads(raw)["status"] == 405


def test_url_and_lifecycle() -> None:
    sb = Sandbox()
    with pytest.raises(RuntimeError):
        _ = sb.url
    sb.start()
    try:
        port = sb.address[1]
        assert sb.url == f"http://127.0.0.1:{port}/v1"
        assert sb.running
        assert sb.start() is sb
    finally:
        sb.stop()
    assert not sb.running
    sb.stop()


def test_requests_library_session_works(sb: Sandbox) -> None:
    with requests.Session() as session:
        session.headers["X-Api-Key"] = sb.api_key
        url = f"{sb.url}/projects/proj-1/integrations/int-1/objects/contacts"
        for _ in range(3):
            response = session.post(url, json=CREATE, timeout=10)
            assert response.status_code == 200
            assert response.json()["result"]["success"] is True
    assert len(sb.records()) == 3


# -- inspection ------------------------------------------------------------------------


def test_records_filters_and_copies(sb: Sandbox) -> None:
    paths = {
        "a": "/v1/projects/p1/integrations/i1/objects/contacts",
        "b": "/v1/projects/p1/integrations/i1/objects/leads",
        "c": "/v1/projects/p2/integrations/i2/objects/contacts",
    }
    for name, path in paths.items():
        body = {"groupRef": f"g-{name}", "type": "create", "record": {"name": name}}
        assert call(sb, "POST", path, body, authed(sb))[0] == 200
    assert [r["name"] for r in sb.records()] == ["a", "b", "c"]
    assert [r["name"] for r in sb.records(object_name="contacts")] == ["a", "c"]
    assert [r["name"] for r in sb.records(project_id_or_name="p1")] == ["a", "b"]
    assert [r["name"] for r in sb.records(integration_id="i2")] == ["c"]
    assert [r["name"] for r in sb.records(group_ref="g-b")] == ["b"]
    assert sb.records(project_id_or_name="p1", object_name="contacts", group_ref="g-c") == []
    copy = sb.records()[0]
    copy["name"] = "changed"
    assert sb.records()[0]["name"] == "a"
    assert all("id" in r for r in sb.records())

    status, headers, raw = call(sb, "GET", "/_sandbox/records?project=p1&object=contacts")
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert [r["name"] for r in json.loads(raw)] == ["a"]
    status, _, raw = call(sb, "GET", "/_sandbox/records?groupRef=g-c&integration=i2")
    assert [r["name"] for r in json.loads(raw)] == ["c"]
    assert len(json.loads(call(sb, "GET", "/_sandbox/records")[2])) == 3
    assert call(sb, "GET", "/_sandbox/records?objectName=contacts")[0] == 400


def test_request_log(sb: Sandbox) -> None:
    call(sb, "POST", WRITE_PATH + "?trace=1", CREATE, authed(sb))
    call(sb, "POST", WRITE_PATH, CREATE, {"X-Api-Key": "wrong"})
    call(sb, "POST", WRITE_PATH, "bad", authed(sb))
    call(sb, "GET", "/_sandbox/records")  # inspection is not logged
    log = sb.requests
    assert [(e.method, e.path, e.status) for e in log] == [
        ("POST", WRITE_PATH, 200),
        ("POST", WRITE_PATH, 401),
        ("POST", WRITE_PATH, 400),
    ]
    assert log[0].query == "trace=1"
    assert log[0].body == CREATE
    assert log[0].headers["X-Api-Key"] == "***"
    assert log[1].headers["X-Api-Key"] == "***"
    assert log[1].body is None
    assert log[2].body == "bad"
    assert log[0].request_id != log[1].request_id
    assert sb.api_key not in json.dumps([e.to_json() for e in log])

    status, _, raw = call(sb, "GET", "/_sandbox/requests")
    assert status == 200
    entries = json.loads(raw)
    assert [e["status"] for e in entries] == [200, 401, 400]
    assert entries[0]["body"] == CREATE
    assert entries[0]["headers"]["X-Api-Key"] == "***"


def test_request_log_is_bounded() -> None:
    from ampwrite.sandbox import _server

    assert _server.LOG_LIMIT == 10_000
    with Sandbox() as sb:
        assert sb._log.maxlen == _server.LOG_LIMIT


def test_reset_over_python_and_http(sb: Sandbox) -> None:
    call(sb, "POST", WRITE_PATH, CREATE, authed(sb))
    sb.reset()
    assert sb.records() == []
    assert sb.requests == []
    raw = call(sb, "POST", WRITE_PATH, CREATE, authed(sb))[2]
    assert json.loads(raw)["result"]["recordId"] == "003000000000001"
    assert call(sb, "POST", "/_sandbox/reset")[0] == 200
    assert sb.records() == []
    assert call(sb, "GET", "/_sandbox/reset")[0] == 405


def test_seed_and_configure_over_http(sb: Sandbox) -> None:
    seed = {
        "project": "proj-1",
        "integration": "int-1",
        "object": "contacts",
        "groupRef": "g",
        "record": {"id": "003seed", "email": "seed@x"},
    }
    status, _, raw = call(sb, "POST", "/_sandbox/records", seed)
    assert status == 201
    assert json.loads(raw) == {"id": "003seed", "email": "seed@x"}
    assert call(sb, "POST", "/_sandbox/records", seed)[0] == 400
    rules = {"requiredFields": ["email"], "uniqueFields": ["email"], "deleteEnabled": False}
    status, _, raw = call(sb, "PUT", "/_sandbox/objects/contacts", rules)
    assert status == 200
    assert json.loads(raw)["deleteEnabled"] is False
    body = {"groupRef": "g", "type": "delete", "record": {"id": "003seed"}}
    assert call(sb, "POST", WRITE_PATH, body, authed(sb))[0] == 422
    assert call(sb, "POST", WRITE_PATH, CREATE | {"record": {}}, authed(sb))[0] == 422
    bad = {"requiredFields": "email"}
    assert call(sb, "PUT", "/_sandbox/objects/contacts", bad)[0] == 400
    health = call(sb, "GET", "/_sandbox/health")
    assert json.loads(health[2])["url"] == sb.url


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/_sandbox/records", "GET, POST"),
        ("GET", "/_sandbox/reset", "POST"),
        ("POST", "/_sandbox/faults", "GET, PUT"),
        ("GET", "/_sandbox/objects/contacts", "PUT"),
    ],
)
def test_sandbox_endpoints_answer_405_with_allow(
    sb: Sandbox, method: str, path: str, allow: str
) -> None:
    status, headers, raw = call(sb, method, path)
    assert status == 405
    assert headers["Allow"] == allow
    assert json.loads(raw)["status"] == 405


# -- protocol details ------------------------------------------------------------------


def test_keep_alive_reuses_one_connection(sb: Sandbox) -> None:
    host, port = sb.address
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.connect()
    assert conn.sock is not None
    first_socket = conn.sock
    for _ in range(20):
        conn.request("POST", WRITE_PATH, body=json.dumps(CREATE), headers=authed(sb))
        response = conn.getresponse()
        response.read()
        assert response.status == 200
        assert response.getheader("Connection") is None
    assert conn.sock is first_socket
    conn.close()


def raw_exchange(sb: Sandbox, payload: bytes) -> bytes:
    with socket.create_connection(sb.address, timeout=10) as sock:
        sock.sendall(payload)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def test_chunked_body_and_connection_close(sb: Sandbox) -> None:
    body = json.dumps(CREATE).encode()
    half = len(body) // 2
    chunks = b"".join(
        f"{len(part):x}\r\n".encode() + part + b"\r\n" for part in (body[:half], body[half:])
    )
    payload = (
        (
            f"POST {WRITE_PATH} HTTP/1.1\r\nHost: x\r\nX-Api-Key: {sb.api_key}\r\n"
            "Content-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        ).encode()
        + chunks
        + b"0\r\n\r\n"
    )
    answer = raw_exchange(sb, payload)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Connection: close\r\n" in answer
    assert len(sb.records()) == 1


def test_expect_100_continue(sb: Sandbox) -> None:
    body = json.dumps(CREATE).encode()
    head = (
        f"POST {WRITE_PATH} HTTP/1.1\r\nHost: x\r\nX-Api-Key: {sb.api_key}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(sb.address, timeout=10) as sock:
        sock.sendall(head)
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(body)
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200 OK")


def test_http_10_closes_by_default(sb: Sandbox) -> None:
    body = json.dumps(CREATE).encode()
    payload = (
        f"POST {WRITE_PATH} HTTP/1.0\r\nX-Api-Key: {sb.api_key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    answer = raw_exchange(sb, payload)
    assert answer.startswith(b"HTTP/1.1 200 OK")
    assert b"Connection: close" in answer


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        (b"NONSENSE\r\n\r\n", b"400"),
        (b"GET / HTTP/2.0\r\n\r\n", b"505"),
        (b"POST /v1 HTTP/1.1\r\nContent-Length: abc\r\n\r\n", b"400"),
        (b"POST /v1 HTTP/1.1\r\nbad header line\r\n\r\n", b"400"),
    ],
)
def test_malformed_http_is_answered(sb: Sandbox, payload: bytes, status: bytes) -> None:
    answer = raw_exchange(sb, payload)
    assert answer.startswith(b"HTTP/1.1 " + status)
    assert b"Connection: close" in answer


# -- concurrency and shutdown ------------------------------------------------------------


def test_concurrent_creates_get_distinct_ids(sb: Sandbox) -> None:
    ids: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        try:
            host, port = sb.address
            conn = http.client.HTTPConnection(host, port, timeout=10)
            for i in range(50):
                body = {"groupRef": "g", "type": "create", "record": {"worker": n, "i": i}}
                conn.request("POST", WRITE_PATH, body=json.dumps(body), headers=authed(sb))
                response = conn.getresponse()
                answer: Any = json.loads(response.read())
                assert response.status == 200
                with lock:
                    ids.append(answer["result"]["recordId"])
            conn.close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert len(ids) == 400
    assert len(set(ids)) == 400
    assert len(sb.records()) == 400
    assert len(sb.requests) == 400


def test_stop_is_prompt_with_idle_keep_alive_clients() -> None:
    before = set(sandbox_threads())
    sb = Sandbox()
    sb.start()
    host, port = sb.address
    connections = []
    for _ in range(5):
        conn = http.client.HTTPConnection(host, port, timeout=10)
        conn.request("POST", WRITE_PATH, body=json.dumps(CREATE), headers=authed(sb))
        conn.getresponse().read()
        connections.append(conn)
    idle = socket.create_connection((host, port))  # connected, never sends anything
    time.sleep(0.05)
    assert len(set(sandbox_threads()) - before) >= 7
    started = time.monotonic()
    sb.stop()
    assert time.monotonic() - started < 1.0
    assert set(sandbox_threads()) <= before
    for conn in connections:
        conn.close()
    idle.close()
    with pytest.raises(OSError):
        socket.create_connection((host, port), timeout=1).close()


def test_no_threads_left_after_many_sandboxes() -> None:
    before = set(sandbox_threads())
    for _ in range(5):
        with Sandbox() as sb:
            call(sb, "POST", WRITE_PATH, CREATE, authed(sb))
    assert set(sandbox_threads()) <= before


def test_restart_after_stop() -> None:
    before = set(sandbox_threads())
    sb = Sandbox()
    with sb:
        call(sb, "POST", WRITE_PATH, CREATE, authed(sb))
    with sb:
        assert len(sb.records()) == 1
        assert call(sb, "POST", WRITE_PATH, CREATE, authed(sb))[0] == 200
    assert set(sandbox_threads()) <= before


def test_serve_forever_returns_when_stopped_elsewhere() -> None:
    sb = Sandbox()
    runner = threading.Thread(target=sb.serve_forever)
    runner.start()
    deadline = time.monotonic() + 5
    while not sb.running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert call(sb, "GET", "/_sandbox/health")[0] == 200
    sb.stop()
    runner.join(5)
    assert not runner.is_alive()
