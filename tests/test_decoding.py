"""One test per row of the decoding table, through the function and through the facade."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from ampwrite import AmpWrite, Core, Err, Ok, RetryConfig
from ampwrite.errors import (
    AmpWriteError,
    APIError,
    AuthenticationError,
    BadRequestError,
    RateLimitError,
    ResponseValidationError,
    ServerError,
    TransportError,
    WriteFailedError,
)
from ampwrite.models import BatchWriteResponse, SingleWriteResponse, WriteResult
from tests.conftest import API_KEY, Driver
from tests.requests_data import batch, single
from tests.scripted_server import CLOSE, RESET, Reply, ScriptedServer, json_reply

PROBLEM = {
    "type": "urn:problem-type:ampersand:rate-limit",
    "title": "Too Many Requests",
    "status": 429,
    "detail": "slow down",
    "requestId": "req-42",
    "retryable": True,
    "retryAfter": "2030-01-01T00:00:00Z",
    "causes": ["quota"],
    "remedy": "wait",
    "context": {"quota": 10},
    "extraField": 1,
}


def _call_both(
    server: ScriptedServer, driver: Driver, reply: Any, request: dict[str, Any]
) -> tuple[Any, Any]:
    """The function's Result and what the facade returned or raised, for the same answer."""
    results: list[Any] = []
    with Core(API_KEY, server_url=server.url, retries=RetryConfig.none()) as core:
        server.script(reply)
        results.append(driver(core, request))
    with AmpWrite(API_KEY, server_url=server.url, retries=RetryConfig.none()) as client:
        server.script(reply)
        try:
            results.append(client.write.records(request))
        except AmpWriteError as raised:
            results.append(raised)
    return results[0], results[1]


def test_200_single(server: ScriptedServer, driver: Driver) -> None:
    body = {
        "operationId": "op-1",
        "result": {"success": True, "recordId": "003", "data": {"email": "a@b.c"}},
        "someNewField": "tolerated",
    }
    result, value = _call_both(server, driver, json_reply(200, body), single())

    expected = SingleWriteResponse(
        operation_id="op-1",
        result=WriteResult(success=True, record_id="003", data={"email": "a@b.c"}),
    )
    assert result == Ok(expected)
    assert value == expected


def test_200_asynchronous_single_has_no_result(server: ScriptedServer, driver: Driver) -> None:
    result, value = _call_both(
        server, driver, json_reply(200, {"operationId": "op-2"}), single(mode="asynchronous")
    )

    assert result == Ok(SingleWriteResponse(operation_id="op-2", result=None))
    assert value == result.value


def test_200_batch_with_partial_success_is_ok(server: ScriptedServer, driver: Driver) -> None:
    body = {
        "operationId": "op-3",
        "successCount": 1,
        "failureCount": 1,
        "results": [{"success": True, "recordId": "1"}, {"success": False}],
        "errors": [{"message": "second record rejected"}],
    }
    result, value = _call_both(server, driver, json_reply(200, body), batch(2))

    assert isinstance(result, Ok)
    response = result.value
    assert isinstance(response, BatchWriteResponse)
    assert (response.success_count, response.failure_count) == (1, 1)
    assert [r.success for r in response.results] == [True, False]
    assert response.errors[0].message == "second record rejected"
    assert value == response


@pytest.mark.parametrize(
    ("reply", "expected_type", "check"),
    [
        pytest.param(
            json_reply(
                422,
                {
                    "operationId": "op-4",
                    "errors": [{"message": "The record with ID 1 was not found"}],
                    "warnings": [{"message": "field ignored"}],
                    "result": {"success": False},
                    "rawResponse": '{"error": "Record not found"}',
                },
            ),
            WriteFailedError,
            lambda e: (
                e.operation_id == "op-4"
                and e.errors[0].message == "The record with ID 1 was not found"
                and e.warnings[0].message == "field ignored"
                and e.results == (WriteResult(success=False),)
                and e.raw_response == '{"error": "Record not found"}'
                and "was not found" in str(e)
            ),
            id="422 single",
        ),
        pytest.param(
            json_reply(
                422,
                {
                    "operationId": "op-5",
                    "successCount": 0,
                    "failureCount": 2,
                    "errors": [{"message": "Batch write failed: provider rolled back all records"}],
                },
            ),
            WriteFailedError,
            lambda e: e.success_count == 0 and e.failure_count == 2 and e.operation_id == "op-5",
            id="422 batch",
        ),
        pytest.param(
            Reply(400, body=b"required field not found", content_type="text/plain"),
            BadRequestError,
            lambda e: e.body == "required field not found" and "required field" in str(e),
            id="400 text/plain",
        ),
        pytest.param(
            json_reply(
                401,
                {"title": "Unauthorized", "status": 401},
                content_type="application/problem+json",
            ),
            AuthenticationError,
            lambda e: e.status == 401 and e.problem.title == "Unauthorized",
            id="401",
        ),
        pytest.param(
            json_reply(403, {"title": "Forbidden"}, content_type="application/problem+json"),
            AuthenticationError,
            lambda e: e.status == 403,
            id="403",
        ),
        pytest.param(
            json_reply(
                429,
                PROBLEM,
                content_type="application/problem+json",
                headers=[("Retry-After", "7"), ("X-Request-Id", "hdr-1")],
            ),
            RateLimitError,
            lambda e: (
                e.retry_after == 7.0
                and e.problem.request_id == "req-42"
                and e.request_id == "req-42"
                and e.problem.retryable is True
                and e.problem.causes == ("quota",)
                and e.problem.context == {"quota": 10}
                and e.problem.extras == {"extraField": 1}
            ),
            id="429 problem",
        ),
        pytest.param(
            json_reply(
                500,
                {"title": "Internal", "status": 500},
                content_type="application/problem+json",
                headers=[("X-Request-Id", "h")],
            ),
            ServerError,
            lambda e: e.status == 500 and e.request_id == "h",
            id="500",
        ),
        pytest.param(
            Reply(502, body=b"<html>bad gateway</html>", content_type="text/html"),
            ServerError,
            lambda e: e.problem is None and "bad gateway" in e.body,
            id="502 html",
        ),
        pytest.param(
            json_reply(
                404,
                {"title": "Not Found", "detail": "no such project"},
                content_type="application/problem+json",
            ),
            APIError,
            lambda e: type(e) is APIError and "no such project" in str(e),
            id="404",
        ),
        pytest.param(
            Reply(302, headers=(("Location", "https://elsewhere.example/steal"),)),
            APIError,
            lambda e: e.status == 302 and "https://elsewhere.example/steal" in str(e),
            id="redirect not followed",
        ),
        pytest.param(
            Reply(200, body=b"{not json"),
            ResponseValidationError,
            lambda e: e.status == 200 and e.body == "{not json",
            id="200 invalid JSON",
        ),
        pytest.param(
            json_reply(200, {"operationId": 12}),
            ResponseValidationError,
            lambda e: "operationId" in e.body,
            id="200 wrong shape",
        ),
        pytest.param(
            Reply(200, body=b"<html>login</html>", content_type="text/html"),
            ResponseValidationError,
            lambda e: "login" in e.body,
            id="200 html",
        ),
        pytest.param(
            Reply(200, body=b"\xff\xfe{}"),
            ResponseValidationError,
            lambda e: e.status == 200,
            id="200 invalid utf-8",
        ),
        pytest.param(
            json_reply(200, [1, 2]),
            ResponseValidationError,
            lambda e: e.status == 200,
            id="200 array",
        ),
        pytest.param(
            RESET,
            TransportError,
            lambda e: e.kind == "interrupted" and e.maybe_sent,
            id="reset",
        ),
        pytest.param(
            CLOSE,
            TransportError,
            lambda e: e.kind == "interrupted" and e.maybe_sent,
            id="closed without answer",
        ),
        pytest.param(
            b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"operationId"',
            TransportError,
            lambda e: e.kind == "interrupted",
            id="truncated body",
        ),
    ],
)
def test_error_rows(
    server: ScriptedServer,
    reply: Any,
    expected_type: type[AmpWriteError],
    check: Callable[[Any], bool],
    driver: Driver,
) -> None:
    result, raised = _call_both(server, driver, reply, single())

    assert isinstance(result, Err)
    assert type(result.error) is expected_type
    assert check(result.error)
    assert type(raised) is expected_type
    assert check(raised)
    assert API_KEY not in repr(result.error) and API_KEY not in str(result.error)


def test_422_as_problem_json_is_still_a_write_failure(
    server: ScriptedServer, driver: Driver
) -> None:
    reply = json_reply(
        422, {"title": "Unprocessable", "detail": "bad"}, content_type="application/problem+json"
    )
    result, _ = _call_both(server, driver, reply, single())

    assert isinstance(result, Err) and isinstance(result.error, WriteFailedError)
    assert result.error.operation_id is None
    assert result.error.problem is not None and result.error.problem.detail == "bad"


@pytest.mark.parametrize(
    ("reason", "title", "detail", "said"),
    [
        ("Unauthorized", "Unauthorized", "invalid API key", "401 Unauthorized: invalid API key"),
        ("Unauthorized", "unauthorized", None, "401 Unauthorized"),
        ("Unauthorized", "Key revoked", "Key revoked", "401 Unauthorized: Key revoked"),
        ("Nope", "Unauthorized", "invalid API key", "401 Nope: Unauthorized: invalid API key"),
    ],
)
def test_the_summary_says_each_thing_once(
    server: ScriptedServer,
    driver: Driver,
    reason: str,
    title: str,
    detail: str | None,
    said: str,
) -> None:
    problem = json.dumps({"title": title, "detail": detail}).encode()
    head = f"HTTP/1.1 401 {reason}\r\nContent-Type: application/problem+json\r\n"
    raw = head.encode() + b"Content-Length: %d\r\n\r\n" % len(problem) + problem
    result, _ = _call_both(server, driver, raw, single())

    assert isinstance(result, Err) and isinstance(result.error, AuthenticationError)
    assert str(result.error) == said


def test_an_echoed_key_is_redacted(server: ScriptedServer, driver: Driver) -> None:
    reply = Reply(400, body=f"bad key {API_KEY}".encode(), content_type="text/plain")
    result, _ = _call_both(server, driver, reply, single())

    assert isinstance(result, Err) and isinstance(result.error, BadRequestError)
    assert API_KEY not in str(result.error)
    assert API_KEY not in result.error.body


def test_error_body_is_truncated(server: ScriptedServer, driver: Driver) -> None:
    reply = Reply(500, body=b"x" * 100_000, content_type="text/plain")
    result, _ = _call_both(server, driver, reply, single())

    assert isinstance(result, Err) and isinstance(result.error, ServerError)
    assert len(result.error.body) < 17_000
    assert result.error.body.endswith("more bytes]")


def test_oversized_answer_is_not_read(server: ScriptedServer, driver: Driver) -> None:
    server.script(Reply(200, body=b" " * 2_000_000))
    with Core(API_KEY, server_url=server.url, max_response_bytes=1_000_000) as core:
        result = driver(core, single())

    assert isinstance(result, Err) and isinstance(result.error, TransportError)
    assert result.error.kind == "too-large"


def test_chunked_oversized_answer_is_cut(server: ScriptedServer, driver: Driver) -> None:
    chunk = b"10000\r\n" + b"a" * 0x10000 + b"\r\n"
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk * 4 + b"0\r\n\r\n"
    server.script(raw)
    with Core(API_KEY, server_url=server.url, max_response_bytes=100_000) as core:
        result = driver(core, single())

    assert isinstance(result, Err) and isinstance(result.error, TransportError)
    assert result.error.kind == "too-large"


def test_sent_body_is_the_api_json(core: Core, server: ScriptedServer, driver: Driver) -> None:
    request = single(
        associations=[{"to": {"id": "1"}, "types": []}],
        headers=[{"key": "Sforce-Auto-Assign", "value": "FALSE"}],
    )
    driver(core, request)

    sent = server.received[0]
    assert sent.method == "POST"
    assert sent.path == "/v1/projects/proj/integrations/int-1/objects/contacts"
    assert json.loads(sent.body) == request["requestBody"]
